// The names of the files in a run folder, for everyone who reads one: train
// writes the folder, and eval, predict, insight (the TP/FP/FN cases) and the
// report read it. Only names live here, no training: so a layer below train
// (insight) can find a run's scores without including train/. What each file
// holds is described in train/run.h.
#pragma once
#include <string>

namespace ctg::data {

// RUN/NAME
inline std::string run_file(const std::string& run, const std::string& name) { return run + "/" + name; }
// "scores_test.csv", "scores_test_central.csv": what `ctgrad eval --split S
// [--slices central]` writes.
inline std::string scores_name(const std::string& split, bool central) {
  return "scores_" + split + (central ? "_central" : "") + ".csv";
}

}  // namespace ctg::data
