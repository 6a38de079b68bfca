// ROC, precision–recall and DET curves exactly as scikit-learn returns them
// (roc_curve with drop_intermediate=False, precision_recall_curve, det_curve
// of sklearn ≥ 1.7), and their CSV files. All three come from the cumulative
// counts (tp_k, fp_k) at the distinct scores s_1 > … > s_m (metrics/sweep.h),
// with P = tp_m positives and N = fp_m negatives.
#include <cmath>
#include <filesystem>
#include <limits>
#include <string>

#include "base/atomic_file.h"
#include "engine/tensor.h"
#include "metrics/metrics.h"
#include "metrics/sweep.h"

namespace ctg::eval {

using detail::Step;

namespace {

constexpr double kInf = std::numeric_limits<double>::infinity();
constexpr double kNaN = std::numeric_limits<double>::quiet_NaN();

std::vector<Step> checked_steps(const std::vector<Scored>& data, const char* what) {
  auto steps = detail::descending_steps(data);
  detail::require_both_classes(steps, what);
  return steps;
}

}  // namespace

// Decreasing threshold: (0, 0, +inf) — nothing predicted positive — then
// (fp_k/N, tp_k/P, s_k) for k = 1…m, ending at (1, 1, s_m).
std::vector<RocPoint> roc_curve(const std::vector<Scored>& data) {
  const auto steps = checked_steps(data, "roc_curve");
  const double P = (double)steps.back().tp, N = (double)steps.back().fp;
  std::vector<RocPoint> out{{0.0, 0.0, kInf}};
  for (const Step& s : steps) out.push_back({(double)s.fp / N, (double)s.tp / P, s.threshold});
  return out;
}

// Increasing threshold: (tp_k/(tp_k+fp_k), tp_k/P, s_k) for k = m…1, then
// sklearn's final point precision 1, recall 0, which has no threshold: NaN
// here (written "nan" in the CSV). Not cut at full recall, as current sklearn
// (older versions stopped at the first point with recall 1).
std::vector<PrPoint> pr_curve(const std::vector<Scored>& data) {
  const auto steps = checked_steps(data, "pr_curve");
  const double P = (double)steps.back().tp;
  std::vector<PrPoint> out;
  for (auto it = steps.rbegin(); it != steps.rend(); ++it)
    out.push_back({(double)it->tp / (double)(it->tp + it->fp), (double)it->tp / P, it->threshold});
  out.push_back({1.0, 0.0, kNaN});
  return out;
}

// det_curve: the points (+inf, tp 0, fp 0), s_1, …, s_m, cut to run from the
// last one with fp = 0 (the lowest threshold still without false positives,
// +inf when the top score is a negative) to the first one with tp = P (the
// highest threshold without false negatives), then reversed: increasing
// threshold, fpr = fp/N falling, fnr = (P − tp)/P rising.
std::vector<DetPoint> det_curve(const std::vector<Scored>& data) {
  auto steps = checked_steps(data, "det_curve");
  steps.insert(steps.begin(), Step{kInf, 0, 0});
  const int64_t P = steps.back().tp, N = steps.back().fp;
  size_t first = 0, last = steps.size() - 1;
  while (first + 1 < steps.size() && steps[first + 1].fp == 0) ++first;
  while (last > 0 && steps[last - 1].tp == P) --last;
  // first ≤ last: a step after one with tp = P adds only negatives, so fp > 0 there.
  std::vector<DetPoint> out;
  for (size_t k = last + 1; k-- > first;)
    out.push_back({(double)steps[k].fp / (double)N, (double)(P - steps[k].tp) / (double)P, steps[k].threshold});
  return out;
}

namespace {

std::string row(std::initializer_list<double> values) {
  std::string r;
  for (double v : values) r += (r.empty() ? "" : ",") + detail::format_number(v);
  return r + "\n";
}

void write_atomically(const std::string& path, const std::string& text) {
  write_file_atomic(path, text);
}

}  // namespace

std::vector<std::string> write_curves(const std::vector<Scored>& data, const std::string& dir,
                                      const std::string& prefix) {
  std::string roc = "fpr,tpr,threshold\n", pr = "precision,recall,threshold\n", det = "fpr,fnr,threshold\n";
  for (const RocPoint& p : roc_curve(data)) roc += row({p.fpr, p.tpr, p.threshold});
  for (const PrPoint& p : pr_curve(data)) pr += row({p.precision, p.recall, p.threshold});
  for (const DetPoint& p : det_curve(data)) det += row({p.fpr, p.fnr, p.threshold});
  std::string th = "threshold,f1,fowlkes_mallows,balanced_accuracy,mcc,youden_j,tpr,tnr\n";
  for (const Confusion& c : threshold_sweep(data))
    th += row({c.threshold, c.f1, c.fowlkes_mallows, c.balanced_accuracy, c.mcc, c.youden_j, c.tpr, c.tnr});

  std::error_code ec;
  std::filesystem::create_directories(dir, ec);
  if (ec) throw Error("metrics/curves.cpp: write_curves: cannot create folder " + dir + ": " + ec.message());
  const std::filesystem::path d(dir);
  std::vector<std::string> paths;
  const std::pair<const char*, const std::string*> files[] = {
      {"roc.csv", &roc}, {"pr.csv", &pr}, {"det.csv", &det}, {"thresholds.csv", &th}};
  for (const auto& [name, text] : files) {
    paths.push_back((d / (prefix + name)).string());
    write_atomically(paths.back(), *text);
  }
  return paths;
}

}  // namespace ctg::eval
