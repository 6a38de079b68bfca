// Which test patients the study's pictures show (SEED_NOTES section 8): a
// true positive, a false positive and a false negative (Slika 20), picked
// from RUN/scores_test.csv at the threshold the run chose on its validation
// patients (max F1, ties → lowest: eval::summarize, as `ctgrad predict`
// uses it), and one mild and one severe example (Slika 1, 16–19). The slice
// shown is read from the run's slice cache: the very pixels `ctgrad eval`
// scored (same preprocessing, same size, same uint8 rounding if any).
#pragma once
#include <cstdint>
#include <string>
#include <vector>

#include "metrics/patient_score.h"

namespace ctg::insight {

// One row of RUN/scores_test.csv (train/run.h), the struct `ctgrad eval`
// writes (metrics/patient_score.h).
using ScoredPatient = eval::PatientScore;
// Errors name the file and line.
std::vector<ScoredPatient> read_patient_scores(const std::string& path);

// The run's validation-chosen threshold (F1-maximising on RUN/scores_val.csv).
double validation_threshold(const std::string& run);

// "tp,fp,fn[,tn]" → the kinds, in the order given; errors name --cases.
std::vector<std::string> parse_case_list(const std::string& s);
// "mild,severe" (either or both); errors name --examples.
std::vector<std::string> parse_example_list(const std::string& s);

struct PickedCase {
  std::string kind;     // tp, fp, fn, tn, mild, severe
  bool found = false;
  std::string missing;  // why not, when !found ("no false positive at threshold 0.41")
  std::string patient;
  int label = 0, grade = -1;
  double score = 0;            // the patient's score (mean of its slices); NaN-free
  bool have_score = false;     // examples picked without scores have none
  int64_t z = -1;              // the slice shown (oriented volume)
  double slice_score = 0;      // that slice's score, when have_slice_score
  bool have_slice_score = false;
  std::string slice_rule;      // how z was chosen, for explain.json
};

// At threshold t (score ≥ t is positive, scikit-learn's rule):
//   tp: the positive predicted positive with the highest score (most confident)
//   fp: the negative predicted positive with the highest score
//   fn: the positive predicted negative with the lowest score
//   tn: the negative predicted negative with the lowest score
// (ties: the first in the file). The slice shown is the patient's slice whose
// score is the most extreme the same way (highest for tp/fp, lowest for fn/tn).
std::vector<PickedCase> pick_cases(const std::vector<ScoredPatient>& patients, double threshold,
                                   const std::vector<std::string>& kinds);

// The slice pixels of (patient, z) in a slice cache, side·side floats in [0,1].
struct CachedSlice {
  std::vector<float> pixels;
  int64_t side = 0;
  std::string source;  // the NIfTI file it came from
  int grade = -1;
};
// Errors name the cache and the patient/slice when absent.
CachedSlice cached_test_slice(const std::string& cache_path, const std::string& patient, int64_t z);

// mild: among the cache's label-0 test patients those of the lowest grade,
// severe: among the label-1 ones those of the highest grade; the first in
// cache order, its central slice. A class with no test patient is a missing
// case. Scores are attached when `patients` (scores_test.csv) is non-empty.
std::vector<PickedCase> pick_examples(const std::string& cache_path, const std::vector<std::string>& kinds,
                                      const std::vector<ScoredPatient>& patients);

}  // namespace ctg::insight
