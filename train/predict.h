// The study's own-scan check (SEED_NOTES section 7): one person's CT through
// the same preprocessing, ten slices chosen as for a test patient, each
// trained network's patient score against the threshold that run chose on
// its validation patients (max F1, ties → lowest).
#pragma once
#include <cstdint>
#include <string>
#include <vector>

namespace ctg::train {

struct ScanSlices {
  std::string path;
  int64_t size = 0;
  std::vector<int64_t> z;                 // the slices scored (oriented volume)
  std::vector<std::vector<float>> pixels; // size·size each, in [0, 1]
  int64_t depth = 0, usable = 0;
};
// Reads, orients and preprocesses the volume at `size`; picks the study's
// ten slices, or `chosen` (z indices of the oriented volume) when given.
// Errors: an unreadable file, z out of range, no usable lung slice.
ScanSlices scan_slices(const std::string& nifti, int64_t size, const std::vector<int64_t>& chosen = {});

struct Prediction {
  std::string run, net;
  double score = 0, threshold = 0;
  std::vector<double> slice_scores;
  // The run's class mapping (config.json "negative"/"positive"): which grades
  // a verdict expects, e.g. "CT-0,CT-1" for mild.
  std::string negative = "CT-0,CT-1", positive = "CT-2,CT-3,CT-4";
  bool severe() const { return score >= threshold; }
  // "severe (CT-2,CT-3,CT-4 expected)" or "mild (CT-0,CT-1 expected)".
  std::string verdict() const {
    return severe() ? "severe (" + positive + " expected)" : "mild (" + negative + " expected)";
  }
};
// Scores the slices with RUN's best network; the threshold comes from
// RUN/scores_val.csv (written by `ctgrad train` and `ctgrad eval --split val`).
Prediction predict_run(const std::string& run, const ScanSlices& scan, const std::string& device);

// `predict --out DIR`: the study's Slika 10 and 11 and the numbers behind them.
//   DIR/slices.png               the scored slices, preprocessed, in a grid; each
//                                titled with its z and every run's score for it
//   DIR/score_minus_threshold.png  score − threshold per run as horizontal bars
//                                (negative = mild expected), the verdict named
//   DIR/slices.npy               the slices [n, size, size] as the nets saw them
//   DIR/predict.csv              run, net, score, threshold, score_minus_threshold, verdict
//   DIR/predict.json             the same plus the z list and slice scores, and
//                                "pictures" [{file, caption}] as explain.json has
//                                (so `ctgrad report --predict DIR` embeds them)
// `scan` is the preprocessing shown (the first size scored); a prediction's
// slice scores go into the titles when it scored the same z list. All files
// are written atomically; returns the PNG names.
std::vector<std::string> write_predict_outputs(const std::string& out_dir, const std::string& scan_label,
                                               const ScanSlices& scan, const std::vector<Prediction>& preds);

// A DICOM folder → a NIfTI file in `tmp_dir` through dcm2niix (Debian's
// package of that name); a clear error when it is not installed or fails.
std::string dicom_to_nifti(const std::string& dicom_dir, const std::string& tmp_dir);

// "3,7,12" → {3, 7, 12}; errors name --slices.
std::vector<int64_t> parse_slice_list(const std::string& s);

}  // namespace ctg::train
