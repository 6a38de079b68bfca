// summarize() and format_summary() (metrics.h): AUC, AP and the thresholds
// that maximise F1, Youden's J, MCC, Fowlkes–Mallows and balanced accuracy, each chosen by an exact comparison of
// the rational values so that equal measures are real ties, broken towards
// the lowest threshold (more predicted positives, fewer false negatives).
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <string>

#include "engine/tensor.h"
#include "metrics/metrics.h"
#include "metrics/sweep.h"

namespace ctg::eval {

namespace {

using i128 = __int128;
using u128 = unsigned __int128;

// F1 = 2TP / (2TP+FP+FN) (0/0 → 0, as 0/1): a > b ⇔ a.num·b.den > b.num·a.den.
bool f1_greater(const Confusion& a, const Confusion& b) {
  const i128 an = 2 * (i128)a.tp, ad = an + a.fp + a.fn, bn = 2 * (i128)b.tp, bd = bn + b.fp + b.fn;
  return an * (bd == 0 ? 1 : bd) > bn * (ad == 0 ? 1 : ad);
}

// J = TP/P + TN/N − 1 = (TP·N + TN·P − P·N)/(P·N); P and N are the same at
// every threshold, so comparing J is comparing TP·N + TN·P.
bool youden_greater(const Confusion& a, const Confusion& b, int64_t P, int64_t N) {
  return (i128)a.tp * N + (i128)a.tn * P > (i128)b.tp * N + (i128)b.tn * P;
}

// FM = √(TPR·PPV) = √(TP/P · TP/(TP+FP)) = TP/√(P·(TP+FP)) (PPV 0/0 → 0, so
// FM 0). P is the same at every threshold, so FM_a > FM_b ⇔ TP_a²/(TP_a+FP_a)
// > TP_b²/(TP_b+FP_b), compared as TP_a²·(TP_b+FP_b) > TP_b²·(TP_a+FP_a)
// with 0/0 read as 0/1; below 2⁹⁶ for n < 2³².
bool fm_greater(const Confusion& a, const Confusion& b) {
  const i128 an = (i128)a.tp * a.tp, ad = (i128)a.tp + a.fp, bn = (i128)b.tp * b.tp, bd = (i128)b.tp + b.fp;
  return an * (bd == 0 ? 1 : bd) > bn * (ad == 0 ? 1 : ad);
}

// BA = ½(TP/P + TN/N) = (J + 1)/2: the same order as Youden's J.
bool ba_greater(const Confusion& a, const Confusion& b, int64_t P, int64_t N) { return youden_greater(a, b, P, N); }

// 128×128 → 256-bit product as (hi, lo), for the MCC comparison below.
struct U256 {
  u128 hi, lo;
};
U256 mul(u128 a, u128 b) {
  const uint64_t a0 = (uint64_t)a, a1 = (uint64_t)(a >> 64), b0 = (uint64_t)b, b1 = (uint64_t)(b >> 64);
  const u128 p00 = (u128)a0 * b0, p01 = (u128)a0 * b1, p10 = (u128)a1 * b0, p11 = (u128)a1 * b1;
  const u128 mid = (p00 >> 64) + (uint64_t)p01 + (uint64_t)p10;
  return {p11 + (p01 >> 64) + (p10 >> 64) + (mid >> 64), (mid << 64) | (uint64_t)p00};
}
bool less(const U256& x, const U256& y) { return x.hi != y.hi ? x.hi < y.hi : x.lo < y.lo; }

// MCC = X/√D with X = TP·TN − FP·FN, D = (TP+FP)(TP+FN)(TN+FP)(TN+FN); D = 0
// means MCC = 0. For the same sign, |X1|/√D1 > |X2|/√D2 ⇔ X1²·D2 > X2²·D1:
// X² and D are below n⁴ < 2¹²⁸ for n < 2³², and their product fits 256 bits.
struct MccParts {
  int sign;  // of X (0 when D = 0)
  u128 x2, d;
};
MccParts mcc_parts(const Confusion& c) {
  const u128 d = (u128)(c.tp + c.fp) * (u128)(c.tp + c.fn) * (u128)(c.tn + c.fp) * (u128)(c.tn + c.fn);
  const i128 x = (i128)c.tp * c.tn - (i128)c.fp * c.fn;
  if (d == 0 || x == 0) return {0, 0, 1};
  const u128 ax = (u128)(x < 0 ? -x : x);
  return {x < 0 ? -1 : 1, ax * ax, d};
}
bool mcc_greater(const Confusion& a, const Confusion& b) {
  const MccParts p = mcc_parts(a), q = mcc_parts(b);
  if (p.sign != q.sign) return p.sign > q.sign;
  if (p.sign == 0) return false;
  const U256 lhs = mul(p.x2, q.d), rhs = mul(q.x2, p.d);  // p.x2/p.d vs q.x2/q.d
  return p.sign > 0 ? less(rhs, lhs) : less(lhs, rhs);
}

std::string line(const char* key, const std::string& value) { return std::string(key) + ": " + value + "\n"; }
std::string num(double v) { return detail::format_number(v); }
std::string count(int64_t v) { return std::to_string(v); }

}  // namespace

Summary summarize(const std::vector<Scored>& data) {
  const auto steps = detail::descending_steps(data);
  detail::require_both_classes(steps, "summarize");
  if (data.size() >= (size_t{1} << 32))
    throw Error("metrics/summary.cpp: summarize: " + std::to_string(data.size()) +
                " samples; the exact comparisons need fewer than 2^32");
  Summary s;
  s.positives = steps.back().tp;
  s.negatives = steps.back().fp;
  s.n = s.positives + s.negatives;
  s.auc = roc_auc(data);
  s.average_precision = average_precision(data);
  // Increasing thresholds; a later (higher) threshold replaces the best only
  // when strictly better, so ties keep the lowest.
  const auto sweep = threshold_sweep(data);
  const Confusion *best_f1 = &sweep[0], *best_j = &sweep[0], *best_mcc = &sweep[0], *best_fm = &sweep[0],
                  *best_ba = &sweep[0];
  for (const Confusion& c : sweep) {
    if (f1_greater(c, *best_f1)) best_f1 = &c;
    if (youden_greater(c, *best_j, s.positives, s.negatives)) best_j = &c;
    if (mcc_greater(c, *best_mcc)) best_mcc = &c;
    if (fm_greater(c, *best_fm)) best_fm = &c;
    if (ba_greater(c, *best_ba, s.positives, s.negatives)) best_ba = &c;
  }
  s.threshold_f1 = best_f1->threshold;
  s.threshold_youden = best_j->threshold;
  s.threshold_mcc = best_mcc->threshold;
  s.threshold_fm = best_fm->threshold;
  s.threshold_ba = best_ba->threshold;
  s.at_f1 = *best_f1;
  return s;
}

std::string format_summary(const Summary& s) {
  const Confusion& c = s.at_f1;
  std::string o;
  o += line("n", count(s.n)) + line("positives", count(s.positives)) + line("negatives", count(s.negatives));
  o += line("auc", num(s.auc)) + line("average_precision", num(s.average_precision));
  o += line("threshold_f1", num(s.threshold_f1));
  o += line("tp", count(c.tp)) + line("fp", count(c.fp)) + line("tn", count(c.tn)) + line("fn", count(c.fn));
  o += line("tpr", num(c.tpr)) + line("tnr", num(c.tnr)) + line("ppv", num(c.ppv)) + line("npv", num(c.npv));
  o += line("fpr", num(c.fpr)) + line("fnr", num(c.fnr));
  o += line("accuracy", num(c.accuracy)) + line("balanced_accuracy", num(c.balanced_accuracy));
  o += line("f1", num(c.f1)) + line("fowlkes_mallows", num(c.fowlkes_mallows));
  o += line("mcc", num(c.mcc)) + line("youden_j", num(c.youden_j));
  o += line("threshold_youden", num(s.threshold_youden)) + line("threshold_mcc", num(s.threshold_mcc));
  o += line("threshold_fm", num(s.threshold_fm)) + line("threshold_ba", num(s.threshold_ba));
  return o;
}

namespace detail {

std::string format_number(double v) {
  if (std::isnan(v)) return "nan";
  if (std::isinf(v)) return v > 0 ? "inf" : "-inf";
  if (v == 0) return "0";  // also −0 (a rate of 0 printed as "-0" would only confuse)
  char buf[40];
  for (int p = 1; p <= 17; ++p) {
    std::snprintf(buf, sizeof buf, "%.*g", p, v);
    if (std::strtod(buf, nullptr) == v) break;
  }
  return buf;
}

}  // namespace detail

}  // namespace ctg::eval
