// ctgrad prep: preprocess a MosMedData-layout cohort into one slice cache
// (data/cache.h) and its split (CACHE.split.csv), in parallel, with a
// progress bar on a terminal and plain progress lines otherwise.
#include <unistd.h>

#include <chrono>
#include <cstdio>

#include "apps/commands.h"
#include "apps/progress.h"
#include "data/prep.h"
#include "engine/tensor.h"

namespace ctg::apps {

namespace {

struct PrepArgs {
  data::PrepOptions opt;
  std::string negative = "CT-0,CT-1", positive = "CT-2,CT-3,CT-4", dtype = "f32";
};


void run_prep(PrepArgs a, CLI::App* cmd) {
  if (!a.opt.split_csv.empty())
    for (const char* flag : {"--negative", "--positive", "--per-class"})
      if (cmd->count(flag))
        throw Error(std::string(flag) + ": --split " + a.opt.split_csv + " already fixes the patients and their classes");
  if (a.opt.split_csv.empty()) a.opt.mapping = data::parse_class_mapping(a.negative, a.positive);
  if (a.opt.per_class < 0) throw Error("--per-class: must be ≥ 0 (0 keeps every patient)");
  a.opt.dtype = data::parse_slice_dtype(a.dtype);
  Progress progress("prep", "patients");
  const data::PrepReport r = data::prep_cache(a.opt, [&](int64_t d, int64_t t) { progress(d, t); });
  for (const auto& s : r.skipped)
    std::fprintf(stderr, "  skipped %s (%s): %s\n", s.patient.c_str(), data::split_name(s.split), s.reason.c_str());
  const auto cache = data::Cache::open(a.opt.out);  // validate what was written, and count it
  int64_t patients[data::kNumSplits] = {};
  std::string last;
  for (const auto& rec : cache->records())
    if (rec.patient != last) patients[(int)rec.split]++, last = rec.patient;
  std::printf("cache: %s\nsplit_csv: %s\nsize: %lld\ndtype: %s\nworkers: %d\npatients: %lld\nskipped: %zu\n",
              a.opt.out.c_str(), r.split_csv.c_str(), (long long)cache->side(), data::slice_dtype_name(cache->dtype()),
              r.workers, (long long)r.patients, r.skipped.size());
  for (int s = 0; s < data::kNumSplits; ++s)
    std::printf("%s: %lld patients, %llu slices\n", data::split_name((data::Split)s), (long long)patients[s],
                (unsigned long long)cache->header().split_records[s]);
  std::printf("bytes: %llu\nseconds: %.2f\n", (unsigned long long)cache->header().file_bytes, r.seconds);
}

}  // namespace

static Registrar reg([](CLI::App& app) {
  auto* cmd = app.add_subcommand(
      "prep",
      "Preprocess DIR/studies/CT-0 … CT-4/*.nii.gz into one slice cache CACHE (train: the central slice per patient; "
      "val/test: the ten chosen slices and the central one) and write the patient split to CACHE.split.csv. "
      "Patients with too few usable slices are listed and skipped.");
  auto a = std::make_shared<PrepArgs>();
  cmd->add_option("--data", a->opt.data_dir, "cohort folder (MosMedData layout: DIR/studies/CT-g/*.nii[.gz])");
  cmd->add_option("--out", a->opt.out, "cache file to write (atomically)")->required();
  cmd->add_option("--size", a->opt.size, "slice side in pixels")->check(CLI::Range(8, 4096));
  cmd->add_option("--workers", a->opt.workers, "worker threads (0: one per hardware thread)")->check(CLI::NonNegativeNumber);
  cmd->add_option("--seed", a->opt.seed, "seed of the patient split");
  cmd->add_option("--negative", a->negative, "grades of the mild class (label 0)");
  cmd->add_option("--positive", a->positive, "grades of the severe class (label 1)");
  cmd->add_option("--per-class", a->opt.per_class,
                  "keep N patients of each class, stratified by grade and seeded by --seed (0: all); "
                  "226 gives the report's 272/90/90 split");
  cmd->add_option("--split", a->opt.split_csv, "reuse this split.csv (patient,grade,label,split,path) instead of drawing one");
  cmd->add_option("--dtype", a->dtype, "slice storage: f32 (exact) or u8 (4× smaller, rounded to 1/255)");
  cmd->callback([a, cmd]() {
    if (a->opt.data_dir.empty() && a->opt.split_csv.empty()) throw Error("prep: --data DIR (or --split FILE) is required");
    run_prep(*a, cmd);
  });
});

}  // namespace ctg::apps
