// Internal to metrics/: the one sort every measure in metrics.h is built on.
//
// Sorting the (score, label) pairs by decreasing score and walking the
// distinct scores s_1 > s_2 > … > s_m gives, at threshold s_k (a score ≥ s_k
// is predicted positive), the cumulative counts
//   tp_k = #positives with score ≥ s_k,   fp_k = #negatives with score ≥ s_k,
// so every confusion matrix, curve point and area follows in O(n log n) —
// this is scikit-learn's _binary_clf_curve (confusion_matrix_at_thresholds).
#pragma once
#include <cstdint>
#include <string>
#include <vector>

#include "metrics/metrics.h"

namespace ctg::eval::detail {

struct Step {
  double threshold;  // s_k
  int64_t tp, fp;    // cumulative counts at s_k (score ≥ s_k)
};

// One Step per distinct score, decreasing threshold; the last Step holds
// (P, N), the class totals. Empty data gives no steps. Throws ctg::Error
// naming the sample for a non-finite score or a label other than 0/1.
std::vector<Step> descending_steps(const std::vector<Scored>& data);

// Throws ctg::Error (naming `what`) unless both classes are present.
void require_both_classes(const std::vector<Step>& steps, const char* what);

// The confusion matrix and its rates from the four counts; a rate with an
// empty denominator is 0 (scikit-learn's zero_division=0).
Confusion confusion_from_counts(double threshold, int64_t tp, int64_t fp, int64_t tn, int64_t fn);

// The shortest decimal that reads back as the same double (like Python's
// repr): 0.75 → "0.75", 0.1 → "0.1", 2/3 → "0.6666666666666666";
// "inf", "-inf" and "nan" for the non-finite values.
std::string format_number(double v);

}  // namespace ctg::eval::detail
