// ctgrad eval: score a run's best network on its validation or test patients
// (mean of the ten slice scores per patient, or the central slice only) and
// print the measures; the scores, measures and curves go into the run folder.
#include <cstdio>

#include "apps/commands.h"
#include "apps/progress.h"
#include "train/distributed.h"
#include "train/evaluate.h"

namespace ctg::apps {

namespace {
struct EvalArgs {
  std::string run, slices = "all";
  train::EvalOptions opt;
};

void run_eval(EvalArgs a) {
  if (a.slices != "all" && a.slices != "central")
    throw Error("--slices: expected all (the ten chosen slices) or central, got '" + a.slices + "'");
  a.opt.central = a.slices == "central";
  // Under mpirun the ranks share the slices (rank 0 writes and prints).
  const std::shared_ptr<dist::Communicator> comm = dist::init(false);
  a.opt.comm = comm.get();
  Progress progress("eval", "slices");
  const auto out = train::evaluate_run(a.run, a.opt, [&](int64_t d, int64_t t) { progress(d, t); });
  if (!comm->is_root()) {
    comm->barrier();
    return;
  }
  std::printf("run: %s\nsplit: %s\nslices: %s\npatients: %zu\n", a.run.c_str(), a.opt.split.c_str(),
              a.slices.c_str(), out.patients.size());
  std::fputs(eval::format_summary(out.summary).c_str(), stdout);
  std::printf("scores: %s\nmeasures: %s\n", out.scores_path.c_str(), out.measures_path.c_str());
  for (const auto& p : out.curve_paths) std::printf("curve: %s\n", p.c_str());
  std::fflush(stdout);
  comm->barrier();
}
}  // namespace

static Registrar reg([](CLI::App& app) {
  auto* cmd = app.add_subcommand(
      "eval",
      "Score RUN's best network on the val or test patients: each patient's score is the mean of its slice scores. "
      "Writes RUN/scores_<split>[_central].csv, measures_<split>[_central].txt and the ROC/PR/DET/threshold curves.");
  auto a = std::make_shared<EvalArgs>();
  cmd->add_option("--run", a->run, "run folder (from ctgrad train)")->required();
  cmd->add_option("--split", a->opt.split, "val|test")->capture_default_str();
  cmd->add_option("--slices", a->slices, "all (the ten chosen slices) | central (the central slice only)")
      ->capture_default_str();
  cmd->add_option("--device", a->opt.device, "auto|cpu|cuda")->capture_default_str();
  cmd->add_option("--workers", a->opt.workers, "loader threads")->capture_default_str();
  cmd->add_option("--batch", a->opt.batch, "slices per forward pass")->capture_default_str();
  cmd->callback([a]() { run_eval(*a); });
});

}  // namespace ctg::apps
