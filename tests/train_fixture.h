// The tiny cohort and run settings shared by the training tests
// (tests/test_train.cpp, tests/cuda_vs_cpu_train.cpp).
#pragma once
#include <string>

#include "data/prep.h"
#include "data/synth.h"
#include "test_util.h"
#include "train/trainer.h"

namespace ctg::test {

// The tiny cohort (30 patients: DIR/cohort, NIfTI) and its cache of 48²
// slices (DIR/c.bin, returned); tests that damage the volumes make their own.
inline std::string make_tiny_cohort(const std::string& dir) {
  data::SynthOptions so;
  so.patients_per_grade = 6;
  so.size = 64;
  so.slices = 24;
  so.seed = 5;
  so.workers = 2;
  data::synth_cohort(dir + "/cohort", so);
  data::PrepOptions po;
  po.data_dir = dir + "/cohort";
  po.out = dir + "/c.bin";
  po.size = 48;
  po.workers = 2;
  data::prep_cache(po);
  return po.out;
}

// One cohort and cache per test binary.
inline const std::string& tiny_cache() {
  static TempDir dir;
  static const std::string cache = make_tiny_cohort(dir.str());
  return cache;
}

inline train::TrainOptions tiny_options(const std::string& net, const std::string& out) {
  train::TrainOptions o;
  o.net = net;
  o.data = tiny_cache();
  o.out = out;
  o.epochs = 3;
  o.batch = 4;
  o.device = "cpu";
  o.workers = 2;
  o.seed = 9;
  o.lr = 1e-3;
  return o;
}

// A cnn1 run of one epoch (for eval and predict).
inline void one_epoch_run(const std::string& out) {
  auto o = tiny_options("cnn1", out);
  o.epochs = 1;
  train::TrainHooks quiet;
  quiet.quiet = true;
  train::run_training(o, quiet);
}

}  // namespace ctg::test
