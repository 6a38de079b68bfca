// The settings of a training run (`ctgrad train`), their checks, and
// RUN/config.json (train/run.h). Defaults are the study's (SEED_NOTES
// section 4): Adam, lr 5e-3 decayed ×0.95 per epoch, weight decay 1e-4,
// batch 15, 512² inputs, unit noise on the 0–255 scale during training.
#pragma once
#include <cstdint>
#include <string>

#include <nlohmann/json.hpp>

#include "data/cohort.h"

namespace ctg::train {

struct TrainOptions {
  std::string net;              // nets::net_names()
  std::string data;             // a cohort folder (DIR/studies/CT-g) or a `ctgrad prep` cache
  std::string out;              // the run folder
  int64_t epochs = 20;
  int64_t batch = 15;
  double lr = 5e-3, lr_decay = 0.95, weight_decay = 1e-4;
  std::string optimizer = "adam";  // adam | sgd (momentum below)
  double momentum = 0.9;
  std::string device = "auto";     // auto | cpu | cuda
  int workers = 2;
  bool pin_memory = false;
  // Where the training slices come from: "cache" (the prep cache) or "nifti"
  // (each volume read, decoded and preprocessed by the loader's workers on
  // every load, as the study's DataLoader did): the same slices and values,
  // so the same weights; only the cost differs (bench timing measures it).
  std::string source = "cache";
  int64_t size = 0;             // 0: the cache's side, or 512 for a folder
  uint64_t seed = 0;            // initialisation, shuffling, noise, dropout
  std::string dropout = "auto"; // auto (on for resnet18, as the reference code) | on | off
  std::string init;             // weights to start from (safetensors, e.g. from `ctgrad import`)
  bool resume = false;          // continue RUN from last.state.safetensors
  int threads = 0;              // CPU threads (0: the library default)
  double noise = 1.0 / 255.0;   // std of the training noise on [0, 1] images
  uint64_t split_seed = 0;      // the patient split of a cohort folder (`prep --seed`)
  int eval_batch = 0;           // 0: 2 × batch
  // The cohort's selection (a cohort folder; a cache was selected by prep):
  // which grades are mild (label 0) and severe (label 1), and N patients per
  // class (0: all). config.json records "negative"/"positive" as lists of
  // grade names and "per_class".
  std::string negative = "CT-0,CT-1", positive = "CT-2,CT-3,CT-4";
  int64_t per_class = 0;
  // Data-parallel runs (train/distributed.h): `distributed` asks for an MPI
  // job even with one rank (N = 1 through MPI/NCCL); sync_bn reduces the
  // BatchNorm statistics across ranks (per-rank statistics otherwise, DDP's default).
  bool distributed = false;
  bool sync_bn = false;
  // --cuda-graph (train/graph_step.h): each full batch's step replayed from a
  // CUDA graph captured on the second batch; the same weights as without it.
  // CUDA only, one process, no dropout.
  bool cuda_graph = false;

  data::ClassMapping mapping() const;  // parse_class_mapping(negative, positive)
  bool dropout_on() const { return dropout == "on" || (dropout == "auto" && net == "resnet18"); }
};

// Checks every setting that can be checked without touching the data or the
// network (ranges, names, files that must exist); throws ctg::Error naming
// the flag.
void validate(const TrainOptions& o);

nlohmann::json to_json(const TrainOptions& o);
// Reads RUN/config.json back (for eval/predict/resume); errors name the file and key.
TrainOptions options_from_json(const nlohmann::json& j, const std::string& file);
nlohmann::json read_json_file(const std::string& path);
// Atomic (temp + rename).
void write_json_file(const std::string& path, const nlohmann::json& j);
// Compiler, CUDA backend, build type: what produced the numbers.
nlohmann::json build_info();
std::string utc_now();  // 2026-11-25T23:59:59Z

}  // namespace ctg::train
