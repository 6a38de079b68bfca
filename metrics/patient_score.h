// One patient's score, as `ctgrad eval` writes it (train/scoring.h:
// write_scores_csv) and the TP/FP/FN picker reads it back (insight/cases.h):
// one row of RUN/scores_<split>.csv. One struct for both, below train and
// insight.
#pragma once
#include <cstdint>
#include <string>
#include <vector>

namespace ctg::eval {

struct PatientScore {
  std::string patient;
  int label = 0;
  double score = 0;  // mean of the slices' probabilities (sigmoid outputs)
  std::vector<int64_t> slices;       // the z of each scored slice
  std::vector<double> slice_scores;  // their probabilities, in that order
};

}  // namespace ctg::eval
