// The training loop of `ctgrad train` (SEED_NOTES section 4): minibatches of
// the training patients' central slices with the reference's input noise,
// BCE-with-logits, Adam or SGD with weight decay, ×lr_decay per epoch; after
// each epoch the validation AUC per patient (mean of the ten slice scores)
// decides which epoch is kept as best. Files: train/run.h.
//
// Resuming: RUN/last.state.safetensors holds everything the next epoch
// depends on — the weights, the optimiser's moments and step, the learning
// rate, the best AUC so far — and every random draw of epoch e (shuffle,
// noise, dropout masks) is a function of (seed, e). So a run killed at any
// point and resumed gives, on the CPU, bit for bit the weights an
// uninterrupted run gives (tests/test_train.cpp checks it).
#pragma once
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "data/dataset.h"
#include "data/loader.h"
#include "train/config.h"
#include "train/distributed.h"
#include "train/run.h"

namespace ctg::train {

struct TrainHooks {
  // Called after each epoch's files are written (tests throw here to
  // simulate a run killed between epochs).
  std::function<void(const EpochRow&)> on_epoch;
  // (done, total) batches of the current epoch; for a progress bar.
  std::function<void(int64_t epoch, int64_t done, int64_t total)> on_batch;
  bool quiet = false;  // no log lines on stderr
};

struct TrainResult {
  int64_t best_epoch = 0, epochs_done = 0;
  double best_val_auc = 0, train_seconds = 0;
  std::vector<EpochRow> rows;
};

// Trains o.net into o.out (a fresh run, or with o.resume the continuation of
// the run there). Checks everything before the first epoch (validate(),
// the data, the init weights against the net) and throws ctg::Error naming
// the flag or file.
//
// Data-parallel (train/distributed.h): with a communicator of N ranks every
// rank calls this with the same options; each trains on its shard of every
// global batch, the loss of rank r is weighted by n_r / n (its share of the
// batch) and the gradients summed, which is the gradient of one process's
// mean loss over the whole batch; rank 0 alone writes the run folder.
TrainResult run_training(const TrainOptions& o, const TrainHooks& hooks = {},
                         std::shared_ptr<dist::Communicator> comm = nullptr);

// The run folder against --resume: a continuation needs
// RUN/last.state.safetensors (a finished epoch); a fresh run must not
// overwrite one. Throws ctg::Error naming --resume or --out. run_training
// calls it first; `ctgrad train --resume` too, before it reads config.json.
void check_resume_state(const std::string& out, bool resume);

// The training slices from `source`: "cache", the cache's train records, or
// "nifti", the same records decoded and preprocessed from their volumes on
// every load (the timing study's comparison).
std::shared_ptr<const data::Dataset> training_dataset(const std::shared_ptr<const data::Cache>& cache,
                                                      const std::string& source);

// The training loader: batches of `batch`, shuffled per epoch from `seed`,
// Gaussian noise of std `noise_std` on each image (train/config.h, --noise).
data::LoaderOptions training_loader_options(int64_t batch, uint64_t seed, int workers, bool pin_memory,
                                            Device device, double noise_std);

}  // namespace ctg::train
