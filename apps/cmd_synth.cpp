// ctgrad synth: write the synthetic MosMedData-like cohort (data/synth.h).
#include <unistd.h>

#include <chrono>
#include <cstdio>

#include "apps/commands.h"
#include "apps/progress.h"
#include "data/synth.h"
#include "engine/tensor.h"

namespace ctg::apps {

namespace {

struct SynthArgs {
  std::string out;
  data::SynthOptions opt;
};

void run_synth(const SynthArgs& a) {
  const auto t0 = std::chrono::steady_clock::now();
  const int64_t total = 5 * a.opt.patients_per_grade;
  uint64_t bytes = 0;
  std::printf("synth: %lld patients (%lld per grade), %lld² × %lld slices, seed %llu → %s\n", (long long)total,
              (long long)a.opt.patients_per_grade, (long long)a.opt.size, (long long)a.opt.slices,
              (unsigned long long)a.opt.seed, a.out.c_str());
  std::fflush(stdout);
  // Called under the cohort's lock, so the counters need no lock of their own.
  Progress bar("synth", "files");
  auto progress = [&](int64_t done, int64_t n, const data::SynthPatient& p) {
    bytes += p.bytes;
    bar(done, n);
  };
  const auto patients = data::synth_cohort(a.out, a.opt, progress);
  const double s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  int reoriented = 0;
  for (const auto& p : patients) reoriented += p.layout != 0;
  std::printf("files: %zu\nreoriented: %d\nmegabytes: %.1f\nseconds: %.2f\nmanifest: %s/synth.csv\n", patients.size(),
              reoriented, (double)bytes / 1e6, s, a.out.c_str());
}

}  // namespace

static Registrar reg([](CLI::App& app) {
  auto* cmd = app.add_subcommand(
      "synth",
      "Write a synthetic MosMedData-like cohort: DIR/studies/CT-0..CT-4/study_NNNN.nii.gz (int16 HU chest phantoms; "
      "grades 1-4 with ground-glass/consolidation covering <25/25-50/50-75/>75 % of the lungs) and DIR/synth.csv. "
      "The same seed gives byte-identical files for any number of workers.");
  auto a = std::make_shared<SynthArgs>();
  cmd->add_option("--out", a->out, "Output directory")->required();
  cmd->add_option("--patients", a->opt.patients_per_grade, "Patients per grade (CT-0..CT-4)")
      ->capture_default_str()
      ->check(CLI::Range(1, 100000));
  cmd->add_option("--size", a->opt.size, "Matrix size of a slice (size × size)")
      ->capture_default_str()
      ->check(CLI::Range(16, 4096));
  cmd->add_option("--slices", a->opt.slices, "Axial slices per volume")->capture_default_str()->check(CLI::Range(3, 2048));
  cmd->add_option("--seed", a->opt.seed, "Random seed")->capture_default_str();
  cmd->add_option("--workers", a->opt.workers, "Threads (0 = hardware concurrency)")
      ->capture_default_str()
      ->check(CLI::Range(0, 1024));
  cmd->add_option("--gzip-level", a->opt.gzip_level, "zlib level of the .nii.gz files")
      ->capture_default_str()
      ->check(CLI::Range(0, 9));
  cmd->add_option("--reoriented", a->opt.reoriented_fraction,
                  "Fraction of volumes stored flipped/transposed (with a matching affine)")
      ->capture_default_str()
      ->check(CLI::Range(0.0, 1.0));
  cmd->callback([a]() { run_synth(*a); });
});

}  // namespace ctg::apps
