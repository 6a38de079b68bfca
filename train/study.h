// `ctgrad study`: the study's protocol as one command. Every (net, learning
// rate, optimiser) is an ordinary run folder DIR/runs/<net>_<optimiser>_lr<lr>
// (ResNet18* from ImageNet weights: resnet18_imagenet_…), trained by
// run_training and scored on validation and test (and the central slice) by
// evaluate_run; the best run of each family (Dense, CNN, ResNet18, ResNet18*)
// is the one with the highest validation AUC (summary.json's best_val_auc,
// the earliest in plan order on ties). report/study_report.h turns the
// outcome into DIR/report.html.
//
// Resumable, because every step is: a run whose epochs are all done is only
// re-scored, a run with a committed epoch is resumed (bit-exact on the CPU,
// train/trainer.h), a run without one starts afresh. DIR/study.json records
// the settings that must not change between invocations (data, selection,
// size, batch, schedule, seeds); the lists (--nets, --lrs, --optimizers) may
// grow, and then only the new runs are trained. --epochs may grow too
// (finished runs are extended).
#pragma once
#include <cmath>
#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "train/config.h"
#include "train/run.h"

namespace ctg::train {

struct StudyOptions {
  std::string data, out;  // cohort folder or prep cache; the study folder
  std::vector<std::string> nets = {"dense20", "dense50", "dense100", "dense100x100", "cnn1", "cnn2", "resnet18"};
  std::string init_resnet18;  // ImageNet weights (safetensors from `ctgrad import`): adds the ResNet18* family
  std::vector<double> lrs = {5e-3, 1e-3, 1e-4};
  std::vector<std::string> optimizers = {"adam", "sgd"};
  int64_t epochs = 30, batch = 15, size = 512;
  double lr_decay = 0.95, weight_decay = 1e-4;
  std::string device = "auto";
  int workers = 2, threads = 0;
  uint64_t seed = 0, split_seed = 0;
  std::string negative = "CT-0,CT-1", positive = "CT-2,CT-3,CT-4";
  int64_t per_class = 0;
  std::string own_scan;  // a NIfTI volume for the report's own-scan check (SEED_NOTES section 7); "" for none
};

// Comma lists of the command line; errors name the flag (an unknown net, an
// empty list, a value that is not a positive number, a repeated entry).
std::vector<std::string> parse_net_list(const std::string& s);
std::vector<double> parse_lr_list(const std::string& s);
std::vector<std::string> parse_optimizer_list(const std::string& s);

// "5e-3", "1e-4", "2.5e-4": a learning rate as run names (and the report's legends) write it.
std::string lr_name(double lr);

// The family a run belongs to: "Dense", "CNN", "ResNet18", "ResNet18*".
std::string family_of(const std::string& net, bool imagenet_init);
const std::vector<std::string>& family_order();

struct StudyRun {
  std::string family, name, dir;  // dir = OUT/runs/name
  TrainOptions options;           // what run_training gets (resume set when continued)
};

// Checks every setting and returns the runs in order (family, net,
// optimiser, lr as given). Cheap: no data or network is touched.
std::vector<StudyRun> plan_study(const StudyOptions& o);

struct StudyProgress {
  int64_t run = 0, runs = 0;  // this run (from 1) of how many
  std::string name;
  // batch 0: `epoch` epochs are finished; batch > 0: epoch `epoch` is under
  // way, `batch` of `batches` done.
  int64_t epoch = 0, epochs = 0;
  int64_t batch = 0, batches = 0;
  double val_auc = NAN;                  // of the epoch just finished
  double eta_seconds = NAN;              // the whole study's remaining training time (NaN: no estimate yet)
  std::string stage;                     // "prep" (batch/batches: patients), "train", "score", "done"
};

struct StudyHooks {
  std::function<void(const StudyProgress&)> on_progress;
  // After each epoch's files are written (tests throw here to simulate a kill).
  std::function<void(const StudyRun&, const EpochRow&)> on_epoch;
};

struct StudyRunResult {
  StudyRun run;
  bool trained_now = false;  // epochs were trained in this invocation
  int64_t best_epoch = 0;
  double best_val_auc = 0, train_seconds = 0;
};

struct StudyOutcome {
  StudyOptions options;
  std::vector<StudyRunResult> runs;
  // Per family (family_order(), only those with runs): the family and the
  // index into `runs` of its best run.
  std::vector<std::pair<std::string, size_t>> best;
  std::string study_json;
};

// Every check first (plan_study, the data, study.json against these
// settings, each existing run folder's config.json against its run, the
// ResNet18* weights against the net), then the data is prepared once, then
// each run trained or resumed and scored on val, test and test's central
// slice. Throws ctg::Error naming the flag or file.
StudyOutcome run_study(const StudyOptions& o, const StudyHooks& hooks = {});

}  // namespace ctg::train
