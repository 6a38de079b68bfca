// The threshold sweep and the two areas (metrics.h), from one sort by score
// (metrics/sweep.h). Conventions are scikit-learn's; see metrics.h.
#include <algorithm>
#include <cmath>
#include <numeric>
#include <string>

#include "engine/tensor.h"
#include "metrics/metrics.h"
#include "metrics/sweep.h"

namespace ctg::eval {

namespace detail {

namespace {

void check_sample(const Scored& s, size_t i) {
  if (!std::isfinite(s.score))
    throw Error("metrics/metrics.cpp: sample " + std::to_string(i) + ": score " + format_number(s.score) +
                " is not a finite number");
  if (s.label != 0 && s.label != 1)
    throw Error("metrics/metrics.cpp: sample " + std::to_string(i) + ": label " + std::to_string(s.label) +
                " is not 0 or 1");
}

double ratio(int64_t num, int64_t den) { return den == 0 ? 0.0 : (double)num / (double)den; }

}  // namespace

std::vector<Step> descending_steps(const std::vector<Scored>& data) {
  for (size_t i = 0; i < data.size(); ++i) check_sample(data[i], i);
  std::vector<size_t> order(data.size());
  std::iota(order.begin(), order.end(), size_t{0});
  std::sort(order.begin(), order.end(), [&](size_t a, size_t b) { return data[a].score > data[b].score; });
  std::vector<Step> steps;
  int64_t tp = 0, fp = 0;
  for (size_t k = 0; k < order.size(); ++k) {
    const Scored& s = data[order[k]];
    (s.label ? tp : fp) += 1;
    // Close the group at the last sample of each distinct score (0.0 == -0.0: one group).
    if (k + 1 == order.size() || data[order[k + 1]].score != s.score) steps.push_back({s.score, tp, fp});
  }
  return steps;
}

void require_both_classes(const std::vector<Step>& steps, const char* what) {
  if (steps.empty()) throw Error(std::string("metrics/metrics.cpp: ") + what + ": no samples");
  const int64_t P = steps.back().tp, N = steps.back().fp;
  if (P == 0 || N == 0)
    throw Error(std::string("metrics/metrics.cpp: ") + what + ": all " + std::to_string(P + N) + " samples have label " +
                (P == 0 ? "0" : "1") + " (one class only); it needs both classes");
}

Confusion confusion_from_counts(double threshold, int64_t tp, int64_t fp, int64_t tn, int64_t fn) {
  Confusion c;
  c.threshold = threshold;
  c.tp = tp, c.fp = fp, c.tn = tn, c.fn = fn;
  c.tpr = ratio(tp, tp + fn);  // sensitivity, recall
  c.tnr = ratio(tn, tn + fp);  // specificity
  c.ppv = ratio(tp, tp + fp);  // precision
  c.npv = ratio(tn, tn + fn);
  c.fpr = ratio(fp, fp + tn);
  c.fnr = ratio(fn, fn + tp);
  c.accuracy = ratio(tp + tn, tp + fp + tn + fn);
  c.balanced_accuracy = 0.5 * (c.tpr + c.tnr);
  // F1 = 2·PPV·TPR/(PPV+TPR) = 2TP/(2TP+FP+FN): one division of integers, so
  // equal F1 values are equal doubles.
  c.f1 = ratio(2 * tp, 2 * tp + fp + fn);
  c.fowlkes_mallows = std::sqrt(c.tpr * c.ppv);
  // MCC = (TP·TN − FP·FN) / √((TP+FP)(TP+FN)(TN+FP)(TN+FN)), 0 when a factor is 0.
  const double num = (double)tp * (double)tn - (double)fp * (double)fn;
  const double den = (double)(tp + fp) * (double)(tp + fn) * (double)(tn + fp) * (double)(tn + fn);
  c.mcc = den == 0 ? 0.0 : num / std::sqrt(den);
  c.youden_j = c.tpr + c.tnr - 1;
  return c;
}

}  // namespace detail

using detail::Step;

Confusion confusion_at(const std::vector<Scored>& data, double threshold) {
  const auto steps = detail::descending_steps(data);  // validates; O(n log n) is fine here
  int64_t P = 0, N = 0, tp = 0, fp = 0;
  if (!steps.empty()) P = steps.back().tp, N = steps.back().fp;
  for (const Step& s : steps)  // the last step with s.threshold ≥ threshold holds the counts
    if (s.threshold >= threshold) tp = s.tp, fp = s.fp;
  return detail::confusion_from_counts(threshold, tp, fp, N - fp, P - tp);
}

std::vector<Confusion> threshold_sweep(const std::vector<Scored>& data) {
  const auto steps = detail::descending_steps(data);
  std::vector<Confusion> out;
  if (steps.empty()) return out;
  const int64_t P = steps.back().tp, N = steps.back().fp;
  out.reserve(steps.size());
  for (auto it = steps.rbegin(); it != steps.rend(); ++it)
    out.push_back(detail::confusion_from_counts(it->threshold, it->tp, it->fp, N - it->fp, P - it->tp));
  return out;
}

// AUC = P(score of a random positive > score of a random negative), a tie
// counting ½ — the Mann–Whitney U / (P·N), which equals the trapezoidal area
// under the full ROC curve that roc_auc_score integrates. Counting in halves
// keeps it an integer: 2U = Σ over score groups g of
//   pos_g · (2·#negatives below g + neg_g),
// so the one rounding is the final division (sklearn's trapezoid sum may
// differ from it in the last bit).
double roc_auc(const std::vector<Scored>& data) {
  const auto steps = detail::descending_steps(data);
  detail::require_both_classes(steps, "roc_auc");
  const int64_t P = steps.back().tp, N = steps.back().fp;
  int64_t twice_u = 0, prev_tp = 0, prev_fp = 0;
  for (const Step& s : steps) {
    const int64_t pos = s.tp - prev_tp, neg = s.fp - prev_fp;
    twice_u += pos * (2 * (N - s.fp) + neg);
    prev_tp = s.tp, prev_fp = s.fp;
  }
  return (double)twice_u / (2.0 * (double)P * (double)N);
}

// AP = Σ_k (R_k − R_{k−1}) · P_k over the distinct thresholds from the highest
// down (R_0 = 0): R_k = tp_k/P, P_k = tp_k/(tp_k+fp_k). Only thresholds where
// recall grows contribute, each by (Δtp/P)·P_k. No interpolation.
double average_precision(const std::vector<Scored>& data) {
  const auto steps = detail::descending_steps(data);
  detail::require_both_classes(steps, "average_precision");
  const double P = (double)steps.back().tp;
  double ap = 0;
  int64_t prev_tp = 0;
  for (const Step& s : steps) {
    if (s.tp > prev_tp) ap += (double)(s.tp - prev_tp) / P * ((double)s.tp / (double)(s.tp + s.fp));
    prev_tp = s.tp;
  }
  return ap;
}

}  // namespace ctg::eval
