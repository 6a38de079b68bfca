// `ctgrad eval`: score a run's best network on the validation or test
// patients and write RUN/scores_<split>[_central].csv, the measures and the
// curves (train/run.h). Also used by `ctgrad train` at its end (validation
// scores, from which the F1 threshold is chosen) and by `ctgrad predict`.
#pragma once
#include <memory>
#include <string>
#include <vector>

#include "engine/module.h"
#include "metrics/metrics.h"
#include "train/config.h"
#include "train/scoring.h"

namespace ctg::train {

// A finished run, read back: its settings and its best network.
struct LoadedRun {
  std::string dir;
  TrainOptions options;
  nlohmann::json config;
  std::shared_ptr<Module> net;  // best.safetensors, in eval mode, on `device`
};
// Errors name the run's file at fault (no config.json, no best.safetensors).
// Without a net, only the settings are read (cheap: for checks before work).
LoadedRun load_run(const std::string& run, Device device, bool with_net = true);

struct EvalOutcome {
  std::vector<PatientScore> patients;
  eval::Summary summary;
  std::string scores_path, measures_path;
  std::vector<std::string> curve_paths;
};

struct EvalOptions {
  std::string split = "test";  // val | test
  bool central = false;        // the central slice only (Figure 8) instead of the ten
  std::string device = "auto";
  int workers = 2;
  int64_t batch = 30;
  // Several ranks (mpirun): each scores its part of the slices, the scores
  // are gathered (score_slices_split) and rank 0 alone writes the files;
  // every rank returns the same outcome. nullptr: this process alone.
  dist::Communicator* comm = nullptr;
};

EvalOutcome evaluate_run(const std::string& run, const EvalOptions& opt,
                         const std::function<void(int64_t, int64_t)>& progress = {});

}  // namespace ctg::train
