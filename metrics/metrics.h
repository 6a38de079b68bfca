// Binary-classifier measures of the study (section 4 of SEED_NOTES.md), with
// scikit-learn's conventions so numbers can be checked against it:
//   - a score at or above the threshold is predicted positive;
//   - the candidate thresholds are the distinct scores;
//   - AUC counts a positive/negative pair with equal scores as half a win
//     (roc_auc_score); average precision is Σ (R_k − R_{k−1}) P_k over the
//     distinct thresholds (average_precision_score);
//   - MCC is 0 when its denominator is 0.
// Everything here is a pure function of (score, label) pairs: per-patient
// scores from `ctgrad eval`, or any CSV given to `ctgrad metrics`.
#pragma once
#include <cstdint>
#include <string>
#include <vector>

namespace ctg::eval {

struct Scored {
  double score = 0;
  int label = 0;  // 0 negative (mild), 1 positive (severe)
};

// The confusion matrix and the rates derived from it at one threshold.
struct Confusion {
  double threshold = 0;
  int64_t tp = 0, fp = 0, tn = 0, fn = 0;
  double tpr = 0, tnr = 0, ppv = 0, npv = 0, fpr = 0, fnr = 0;
  double accuracy = 0, balanced_accuracy = 0;  // ½(TPR + TNR)
  double f1 = 0, fowlkes_mallows = 0;          // FM = √(TPR·PPV)
  double mcc = 0, youden_j = 0;                // J = TPR + TNR − 1
};
// Rates with an empty denominator are 0 (as scikit-learn's zero_division=0).
Confusion confusion_at(const std::vector<Scored>& data, double threshold);

// One row per distinct score, in increasing threshold order.
std::vector<Confusion> threshold_sweep(const std::vector<Scored>& data);

double roc_auc(const std::vector<Scored>& data);
double average_precision(const std::vector<Scored>& data);
// Both throw ctg::Error for empty data or one class only (scikit-learn gives
// nan or raises), as do the three curves below; every function here throws
// for a non-finite score or a label other than 0/1.

// Curves as scikit-learn returns them.
struct RocPoint { double fpr, tpr, threshold; };   // roc_curve(drop_intermediate=False), (0,0,+inf) first
struct PrPoint { double precision, recall, threshold; };  // precision_recall_curve, (1,0) last with threshold NaN
struct DetPoint { double fpr, fnr, threshold; };   // det_curve
std::vector<RocPoint> roc_curve(const std::vector<Scored>& data);
std::vector<PrPoint> pr_curve(const std::vector<Scored>& data);
std::vector<DetPoint> det_curve(const std::vector<Scored>& data);

// The summary `ctgrad metrics` prints: AUC, AP, the chosen thresholds and
// the full confusion at the F1 threshold. Every threshold maximises its
// measure over the distinct scores by an exact (integer) comparison, ties
// going to the lowest threshold (more predicted positives, fewer FN).
struct Summary {
  int64_t n = 0, positives = 0, negatives = 0;
  double auc = 0, average_precision = 0;
  double threshold_f1 = 0;      // max F1; among equal F1 the lowest threshold (fewer FN)
  double threshold_youden = 0;  // max J; ties → lowest
  double threshold_mcc = 0;     // max MCC; ties → lowest
  double threshold_fm = 0;      // max Fowlkes–Mallows √(TPR·PPV); ties → lowest
  // max balanced accuracy ½(TPR+TNR); ties → lowest. BA = (J + 1)/2, so this
  // is always threshold_youden; its own key because the study's figures name it.
  double threshold_ba = 0;
  Confusion at_f1;              // confusion_at(data, threshold_f1)
};
// Throws ctg::Error when data is empty or holds one class only.
Summary summarize(const std::vector<Scored>& data);

// `key: value` lines, keys as in the issue: auc, average_precision,
// threshold_f1, tp, fp, tn, fn, tpr, tnr, ppv, npv, fpr, fnr, accuracy,
// balanced_accuracy, f1, fowlkes_mallows, mcc, youden_j, threshold_youden,
// threshold_mcc, threshold_fm, threshold_ba (plus n, positives, negatives).
std::string format_summary(const Summary& s);

// Reads a CSV whose header has columns `score` and `label` (others ignored;
// quoted fields allowed). Errors name the file and line: no such column, no
// rows, a non-numeric or non-finite score, a label other than 0/1, one class only.
std::vector<Scored> read_scores_csv(const std::string& path);

// Writes DIR/PREFIXroc.csv (fpr,tpr,threshold), PREFIXpr.csv
// (precision,recall,threshold), PREFIXdet.csv (fpr,fnr,threshold) and
// PREFIXthresholds.csv (threshold,f1,fowlkes_mallows,balanced_accuracy,mcc,youden_j,tpr,tnr),
// each atomically. Returns the paths written.
std::vector<std::string> write_curves(const std::vector<Scored>& data, const std::string& dir,
                                      const std::string& prefix = "");
// Numbers are written in their shortest round-trip decimal form; the ROC's first
// threshold as `inf`, the PR curve's last point (no threshold) as `nan`.

}  // namespace ctg::eval
