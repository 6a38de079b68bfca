// A run directory: what `ctgrad train` writes and `ctgrad eval`, `report` and
// `predict` read. Every file is written atomically (temp + rename).
//
//   RUN/config.json        every setting of the run: name (the folder's base
//                          name), net, params, size, epochs, batch, lr, lr_decay,
//                          weight_decay, optimizer, momentum, device (as asked),
//                          device_used, workers, pin_memory, seed, split_seed,
//                          dropout, noise, threads, eval_batch, negative and
//                          positive (the class mapping: lists of grade names,
//                          ["CT-0","CT-1"]), per_class (0: all), init (absolute
//                          path or ""), data, cache and split_csv (absolute),
//                          split {"train":[ids],"val":[ids],"test":[ids]}, build
//                          {configured_at_commit, compiler, build_type,
//                          cuda_backend, cuda_device}, created (UTC), resumed
//                          (UTC, the last resume)
//   RUN/metrics.csv        one row per finished epoch:
//                          epoch,train_loss,val_loss,val_auc,lr,images_per_s,epoch_seconds,elapsed_seconds
//                          (epoch counts from 1; lr is the rate used in that epoch;
//                          val_loss is the mean slice BCE on the validation slices)
//   RUN/last.safetensors   the model after the last finished epoch
//   RUN/last.state.safetensors  what --resume needs, in one file (the commit
//                          point of an epoch): model.* weights, optim.* moments
//                          and step and lr, metadata epoch/best_epoch/
//                          best_val_auc/elapsed_seconds
//   RUN/best.safetensors   the model of the epoch with the best validation AUC
//                          (the earliest on ties)
//   RUN/summary.json       best_epoch, best_val_auc, epochs_done, epochs, train_seconds
//   RUN/scores_<split>.csv          (ctgrad eval; split val|test)
//   RUN/scores_<split>_central.csv  (ctgrad eval --slices central)
//                          patient,label,score,slices,slice_scores — score is
//                          the mean of the slices' sigmoid outputs; `slices`
//                          the z of each slice and `slice_scores` their
//                          scores, space-separated within the field
//   RUN/measures_<split>[_central].txt  `ctgrad metrics`' key: value lines
//   RUN/<split>[_central]_{roc,pr,det,thresholds}.csv  curves (metrics/metrics.h)
#pragma once
#include <cstdint>
#include <string>
#include <vector>

#include "data/run_layout.h"

namespace ctg::train {

// The file names (RUN/NAME, scores_<split>[_central].csv) live one layer down,
// in data/run_layout.h, for the readers below train.
using data::run_file;
using data::scores_name;

// One row of RUN/metrics.csv.
struct EpochRow {
  int64_t epoch = 0;  // from 1
  double train_loss = 0, val_loss = 0, val_auc = 0, lr = 0;
  double images_per_s = 0, epoch_seconds = 0, elapsed_seconds = 0;
};

// Written whole and atomically each epoch (%.9g numbers); the reader's errors
// name the file and line.
void write_metrics_csv(const std::string& path, const std::vector<EpochRow>& rows);
std::vector<EpochRow> read_metrics_csv(const std::string& path);

// %.9g, and %.17g (a double that survives the round trip through text: the
// resume position is stored as metadata strings).
std::string fmt9(double v);
std::string exact(double v);

}  // namespace ctg::train
