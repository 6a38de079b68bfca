// metrics/metrics.h, the measures: hand-computed cases (perfect, inverted, ties
// across classes, all-equal scores, a textbook example with every key worked
// out below), the lowest-threshold tie rule for F1, Youden's J and MCC on
// exact rational ties, and a brute-force O(n²) cross-check of AUC and AP.
// Curves and CSV files: tests/test_metrics_curves.cpp.
#include <doctest/doctest.h>

#include <cmath>
#include <random>

#include "engine/tensor.h"
#include "metrics/metrics.h"
#include "tests/test_util.h"

using namespace ctg;
using namespace ctg::eval;

namespace {

using ctg::test::error_of;

std::vector<Scored> make(const std::vector<double>& scores, const std::vector<int>& labels) {
  std::vector<Scored> d;
  for (size_t i = 0; i < scores.size(); ++i) d.push_back({scores[i], labels[i]});
  return d;
}
// Values computed in a different order than the hand formula: equal to the last bits.
doctest::Approx exactly(double v) { return doctest::Approx(v).epsilon(1e-14); }

// The textbook example, scores with labels (P = 4 positives, N = 4 negatives):
//   0.9:1  0.8:1  0.7:0  0.6:1  0.6:0  0.4:1  0.3:0  0.1:0
// Thresholds (a score ≥ t is positive), counts and measures by hand:
//   t    tp fp tn fn   F1 = 2tp/(2tp+fp+fn)   J = (tp−fp)/4   MCC = (tp·tn−fp·fn)/√((tp+fp)·4·4·(tn+fn))
//   0.9   1  0  4  3   2/5                    1/4             4/√112
//   0.8   2  0  4  2   4/6                    2/4             8/√192
//   0.7   2  1  3  2   4/7                    1/4             4/√240
//   0.6   3  2  2  1   6/9                    1/4             4/√240
//   0.4   4  2  2  0   8/10 (max)             2/4 (tie w 0.8) 8/√192 (tie with 0.8)
//   0.3   4  3  1  0   8/11                   1/4             4/√112
//   0.1   4  4  0  0   8/12                   0               0 (denominator 0)
// AUC: each positive against the 4 negatives, ties ½:
//   0.9 beats 4, 0.8 beats 4, 0.6 beats 0.3, 0.1 and ties 0.6 (2.5), 0.4 beats 2 → 12.5/16 = 0.78125.
// AP: recall rises at 0.9 (P=1), 0.8 (P=1), 0.6 (P=3/5), 0.4 (P=4/6), by ¼ each:
//   ¼·(1 + 1 + 3/5 + 2/3) = ¼·49/15 = 49/60.
// At threshold_f1 = 0.4: tp 4, fp 2, tn 2, fn 0; TPR 1, TNR ½, PPV ⅔, NPV 1, FPR ½,
// FNR 0, accuracy 6/8, BA ¾, F1 0.8, FM √(1·⅔), MCC 8/√192 = 1/√3, J ½.
// threshold_youden and threshold_mcc: 0.8 and 0.4 tie → the lower, 0.4.
std::vector<Scored> textbook() {
  return make({0.9, 0.8, 0.7, 0.6, 0.6, 0.4, 0.3, 0.1}, {1, 1, 0, 1, 0, 1, 0, 0});
}

}  // namespace

TEST_CASE("metrics: the textbook example, every key by hand") {
  const Summary s = summarize(textbook());
  CHECK(s.n == 8);
  CHECK(s.positives == 4);
  CHECK(s.negatives == 4);
  CHECK(s.auc == 0.78125);
  CHECK(s.average_precision == exactly(49.0 / 60));
  CHECK(s.threshold_f1 == 0.4);
  CHECK(s.threshold_youden == 0.4);
  CHECK(s.threshold_mcc == 0.4);
  const Confusion& c = s.at_f1;
  CHECK(c.threshold == 0.4);
  CHECK((c.tp == 4 && c.fp == 2 && c.tn == 2 && c.fn == 0));
  CHECK(c.tpr == 1.0);
  CHECK(c.tnr == 0.5);
  CHECK(c.ppv == exactly(2.0 / 3));
  CHECK(c.npv == 1.0);
  CHECK(c.fpr == 0.5);
  CHECK(c.fnr == 0.0);
  CHECK(c.accuracy == 0.75);
  CHECK(c.balanced_accuracy == 0.75);
  CHECK(c.f1 == exactly(0.8));
  CHECK(c.fowlkes_mallows == exactly(std::sqrt(2.0 / 3)));
  CHECK(c.mcc == exactly(1 / std::sqrt(3.0)));
  CHECK(c.youden_j == exactly(0.5));

  // The sweep, increasing thresholds, against the table above.
  const auto sw = threshold_sweep(textbook());
  REQUIRE(sw.size() == 7);
  const double t[] = {0.1, 0.3, 0.4, 0.6, 0.7, 0.8, 0.9};
  const int64_t tp[] = {4, 4, 4, 3, 2, 2, 1}, fp[] = {4, 3, 2, 2, 1, 0, 0};
  const double f1[] = {8. / 12, 8. / 11, 8. / 10, 6. / 9, 4. / 7, 4. / 6, 2. / 5};
  const double mcc[] = {0, 4 / std::sqrt(112.), 8 / std::sqrt(192.), 4 / std::sqrt(240.),
                        4 / std::sqrt(240.), 8 / std::sqrt(192.), 4 / std::sqrt(112.)};
  for (int k = 0; k < 7; ++k) {
    CHECK(sw[k].threshold == t[k]);
    CHECK(sw[k].tp == tp[k]);
    CHECK(sw[k].fp == fp[k]);
    CHECK(sw[k].tn == 4 - fp[k]);
    CHECK(sw[k].fn == 4 - tp[k]);
    CHECK(sw[k].f1 == exactly(f1[k]));
    CHECK(sw[k].youden_j == exactly((tp[k] - fp[k]) / 4.0));
    CHECK(sw[k].mcc == exactly(mcc[k]));
  }
}

TEST_CASE("metrics: format_summary prints the keys in order") {
  CHECK(format_summary(summarize(textbook())) ==
        "n: 8\npositives: 4\nnegatives: 4\nauc: 0.78125\naverage_precision: 0.8166666666666667\n"
        "threshold_f1: 0.4\ntp: 4\nfp: 2\ntn: 2\nfn: 0\ntpr: 1\ntnr: 0.5\nppv: 0.6666666666666666\nnpv: 1\n"
        "fpr: 0.5\nfnr: 0\naccuracy: 0.75\nbalanced_accuracy: 0.75\nf1: 0.8\nfowlkes_mallows: 0.816496580927726\n"
        "mcc: 0.5773502691896258\nyouden_j: 0.5\nthreshold_youden: 0.4\nthreshold_mcc: 0.4\n"
        "threshold_fm: 0.4\nthreshold_ba: 0.4\n");
}

TEST_CASE("metrics: Fowlkes-Mallows and balanced-accuracy thresholds, exact ties to the lowest") {
  // The textbook example: FM² = TPR·PPV = tp²/(4·(tp+fp)) per threshold
  //   0.9: 1/4, 0.8: 4/8, 0.7: 4/12, 0.6: 9/20, 0.4: 16/24 (max), 0.3: 16/28, 0.1: 16/32
  // BA = (J + 1)/2: J ties at 0.8 and 0.4 → 0.4.
  const Summary t = summarize(textbook());
  CHECK(t.threshold_fm == 0.4);
  CHECK(t.threshold_ba == 0.4);
  // 0.9:1 0.8:1 0.7:0 0.6:0 0.5:0 0.4:0 0.3:1 0.2:1 (P = 4). tp²/(tp+fp):
  //   0.9: 1/1, 0.8: 4/2 = 2, 0.7: 4/3, 0.6: 4/4, 0.5: 4/5, 0.4: 4/6, 0.3: 9/7, 0.2: 16/8 = 2
  // → FM = √(2/4) at 0.8 and at 0.2: a tie, the lowest (0.2) wins.
  // BA = ½(tp/4 + tn/4): 0.8: ½(2/4 + 4/4) = 3/4 (max; 0.2 gives ½(1 + 0) = ½) → 0.8.
  // F1 = 2tp/(2tp+fp+fn): 0.8: 4/6, 0.2: 8/12: tied too → 0.2; so F1 ≤ BA's threshold here.
  const auto d = make({0.9, 0.8, 0.7, 0.6, 0.5, 0.4, 0.3, 0.2}, {1, 1, 0, 0, 0, 0, 1, 1});
  const Summary s = summarize(d);
  CHECK(s.threshold_fm == 0.2);
  CHECK(s.threshold_ba == 0.8);
  CHECK(s.threshold_ba == s.threshold_youden);
  CHECK(s.threshold_f1 == 0.2);
  const auto sw = threshold_sweep(d);
  CHECK(sw.front().fowlkes_mallows == exactly(std::sqrt(0.5)));
}

TEST_CASE("metrics: a perfect classifier") {
  // 0.1:0 0.2:0 0.8:1 0.9:1. At 0.8 everything is right (F1 = J = MCC = 1); at
  // 0.2 F1 = 4/5, at 0.9 F1 = 2/3.
  const auto d = make({0.1, 0.2, 0.8, 0.9}, {0, 0, 1, 1});
  const Summary s = summarize(d);
  CHECK(s.auc == 1.0);
  CHECK(s.average_precision == 1.0);
  CHECK(s.threshold_f1 == 0.8);
  CHECK(s.threshold_youden == 0.8);
  CHECK(s.threshold_mcc == 0.8);
  const Confusion& c = s.at_f1;
  CHECK((c.tp == 2 && c.fp == 0 && c.tn == 2 && c.fn == 0));
  CHECK((c.tpr == 1 && c.tnr == 1 && c.ppv == 1 && c.npv == 1 && c.fpr == 0 && c.fnr == 0));
  CHECK((c.accuracy == 1 && c.balanced_accuracy == 1 && c.f1 == 1 && c.fowlkes_mallows == 1));
  CHECK((c.mcc == 1 && c.youden_j == 1));
}

TEST_CASE("metrics: an inverted classifier") {
  // 0.9:0 0.8:0 0.2:1 0.1:1: every negative above every positive → AUC 0.
  // AP: recall rises at 0.2 (tp 1, fp 2: P = 1/3) and 0.1 (tp 2, fp 2: P = 1/2),
  // by ½ each → ½·(1/3 + 1/2) = 5/12.
  // Thresholds 0.1, 0.2, 0.8, 0.9: F1 = 4/6, 2/5, 0, 0; J = 0, −½, −1, −½;
  // MCC = 0 (denominator 0: tn = fn = 0), −2/√12, −4/√16, −2/√12 → all three pick 0.1.
  const auto d = make({0.9, 0.8, 0.2, 0.1}, {0, 0, 1, 1});
  const Summary s = summarize(d);
  CHECK(s.auc == 0.0);
  CHECK(s.average_precision == exactly(5.0 / 12));
  CHECK(s.threshold_f1 == 0.1);
  CHECK(s.threshold_youden == 0.1);
  CHECK(s.threshold_mcc == 0.1);
  CHECK(s.at_f1.f1 == exactly(4.0 / 6));
  CHECK(s.at_f1.mcc == 0.0);
  const auto sw = threshold_sweep(d);
  REQUIRE(sw.size() == 4);
  CHECK(sw[2].mcc == -1.0);
  CHECK(sw[1].youden_j == -0.5);
}

TEST_CASE("metrics: ties across classes count half") {
  CHECK(roc_auc(make({0.5, 0.5}, {0, 1})) == 0.5);
  // One threshold, 0.5: tp 1, fp 1 → precision ½ at recall 1: AP ½.
  CHECK(average_precision(make({0.5, 0.5}, {0, 1})) == 0.5);
  // Positives 0.5, 0.5, 0.9; negatives 0.2, 0.5 (P·N = 6 pairs): each 0.5 positive
  // beats 0.2 and ties 0.5 (1.5 each), 0.9 beats both (2) → 5/6.
  CHECK(roc_auc(make({0.2, 0.5, 0.5, 0.5, 0.9}, {0, 0, 1, 1, 1})) == exactly(5.0 / 6));
  // A tie only within a class changes nothing: 0.3:0 0.7:1 0.7:1 → AUC 1.
  CHECK(roc_auc(make({0.3, 0.7, 0.7}, {0, 1, 1})) == 1.0);
}

TEST_CASE("metrics: all-equal scores") {
  // Five scores 0.3, labels 0 1 1 0 1: one threshold, everything predicted positive.
  // tp 3, fp 2, tn 0, fn 0: TPR 1, TNR 0, PPV 3/5, NPV 0/0 → 0, FPR 1, FNR 0,
  // accuracy 3/5, BA ½, F1 6/8, FM √(3/5), MCC 0 (denominator 5·3·2·0 = 0), J 0.
  // AUC ½ (every pair a tie); AP = 1·(3/5).
  const auto d = make({0.3, 0.3, 0.3, 0.3, 0.3}, {0, 1, 1, 0, 1});
  const Summary s = summarize(d);
  CHECK(s.auc == 0.5);
  CHECK(s.average_precision == exactly(0.6));
  CHECK((s.threshold_f1 == 0.3 && s.threshold_youden == 0.3 && s.threshold_mcc == 0.3));
  const Confusion& c = s.at_f1;
  CHECK((c.tp == 3 && c.fp == 2 && c.tn == 0 && c.fn == 0));
  CHECK((c.tpr == 1 && c.tnr == 0 && c.npv == 0 && c.fpr == 1 && c.fnr == 0));
  CHECK(c.ppv == exactly(0.6));
  CHECK(c.accuracy == exactly(0.6));
  CHECK(c.balanced_accuracy == 0.5);
  CHECK(c.f1 == 0.75);
  CHECK(c.fowlkes_mallows == exactly(std::sqrt(0.6)));
  CHECK(c.mcc == 0.0);
  CHECK(c.youden_j == 0.0);
  CHECK(threshold_sweep(d).size() == 1);
}

TEST_CASE("metrics: confusion_at and undefined rates") {
  const auto d = textbook();
  // Above every score: nothing predicted positive. PPV = 0/0 → 0, F1 = 0/(0+0+4) = 0,
  // MCC: (0+0)·… = 0 in the denominator → 0. TNR 1, NPV 4/8, accuracy 4/8.
  const Confusion none = confusion_at(d, 2.0);
  CHECK((none.tp == 0 && none.fp == 0 && none.tn == 4 && none.fn == 4));
  CHECK((none.ppv == 0 && none.f1 == 0 && none.mcc == 0 && none.fowlkes_mallows == 0));
  CHECK((none.tnr == 1 && none.npv == 0.5 && none.accuracy == 0.5 && none.youden_j == 0));
  // Between scores: 0.65 predicts 0.9, 0.8, 0.7 positive — the same counts as 0.7.
  const Confusion mid = confusion_at(d, 0.65);
  CHECK((mid.threshold == 0.65 && mid.tp == 2 && mid.fp == 1 && mid.tn == 3 && mid.fn == 2));
  // At a score: ≥ is positive, so 0.6 includes both 0.6s.
  const Confusion at = confusion_at(d, 0.6);
  CHECK((at.tp == 3 && at.fp == 2));
  CHECK(confusion_at({}, 0.5).tp == 0);
}

TEST_CASE("metrics: F1 ties go to the lowest threshold") {
  // 0.9:1 0.5:0 0.4:0 0.3:1. F1 at 0.3: 2·2/(4+2+0) = 2/3; at 0.4: 2/(2+2+1) = 2/5;
  // at 0.5: 2/(2+1+1) = 1/2; at 0.9: 2/(2+0+1) = 2/3. Max 2/3 at 0.9 and 0.3 → 0.3.
  const auto d = make({0.9, 0.5, 0.4, 0.3}, {1, 0, 0, 1});
  const auto sw = threshold_sweep(d);
  CHECK(sw[0].f1 == sw[3].f1);
  const Summary s = summarize(d);
  CHECK(s.threshold_f1 == 0.3);
  CHECK((s.at_f1.tp == 2 && s.at_f1.fp == 2 && s.at_f1.fn == 0));
}

TEST_CASE("metrics: Youden ties are exact, not floating-point") {
  // Scores 0…9 with labels alternating 0 1 0 1 …: P = N = 5. At threshold 1, 3,
  // 5, 7, 9: (tp, tn) = (5,1), (4,2), (3,3), (2,4), (1,5), so J = tp/5 + tn/5 − 1
  // = 1/5 at all five (and 0 at threshold 0). TPR + TNR − 1 in doubles gives
  // 0.19999999999999996 at 1 but 0.20000000000000018 at 3, so a floating
  // argmax would pick 3; the exact rule picks the lowest, 1.
  std::vector<Scored> d;
  for (int k = 0; k < 10; ++k) d.push_back({(double)k, k % 2});
  CHECK(summarize(d).threshold_youden == 1.0);
}

TEST_CASE("metrics: MCC ties are exact and MCC undefined is 0") {
  // Scores 0…9, labels 0 1 1 0 0 0 0 0 1 0 (P = 3, N = 7).
  //   threshold 1: tp 3, fp 6, tn 1, fn 0: MCC = 3/√(9·3·7·1) = 3/√189, MCC² = 1/21
  //   threshold 8: tp 1, fp 1, tn 6, fn 2: MCC = 4/√(2·3·7·8) = 4/√336, MCC² = 1/21
  // Equal, and the largest; the doubles differ (the one at 8 is larger), the
  // rule picks 1. Threshold 0 predicts all positive: tn = fn = 0 → MCC 0.
  const auto d = make({0, 1, 2, 3, 4, 5, 6, 7, 8, 9}, {0, 1, 1, 0, 0, 0, 0, 0, 1, 0});
  const auto sw = threshold_sweep(d);
  CHECK(sw[0].mcc == 0.0);
  CHECK(sw[1].mcc == exactly(3 / std::sqrt(189.0)));
  CHECK(sw[8].mcc == exactly(4 / std::sqrt(336.0)));
  for (const Confusion& c : sw) CHECK(c.mcc <= sw[8].mcc);
  CHECK(summarize(d).threshold_mcc == 1.0);
}

TEST_CASE("metrics: average precision by hand") {
  // scikit-learn's docstring example: 0.1:0 0.4:0 0.35:1 0.8:1. Recall rises at
  // 0.8 (tp 1, fp 0: P 1) and 0.35 (tp 2, fp 1: P 2/3) → ½·1 + ½·⅔ = 5/6.
  CHECK(average_precision(make({0.1, 0.4, 0.35, 0.8}, {0, 0, 1, 1})) == exactly(5.0 / 6));
  // Ties inside a threshold count together: 0.9:1 0.5:1 0.5:0 0.5:0 0.1:1 (P = 3):
  // at 0.9 P 1 (recall ⅓), at 0.5 tp 2 fp 2 → P ½ (recall ⅔), at 0.1 P 3/5 (recall 1):
  // ⅓·(1 + ½ + 3/5) = ⅓·21/10 = 7/10.
  CHECK(average_precision(make({0.9, 0.5, 0.5, 0.5, 0.1}, {1, 1, 0, 0, 1})) == exactly(0.7));
}

TEST_CASE("metrics: AUC and AP agree with brute force on random scores") {
  std::mt19937 rng(7);
  for (int trial = 0; trial < 50; ++trial) {
    std::vector<Scored> d;
    const int n = 2 + trial;
    for (int i = 0; i < n; ++i) d.push_back({(double)(rng() % (trial % 3 == 0 ? 4 : 1000)), (int)(rng() % 2)});
    d[0].label = 0, d[1].label = 1;
    // O(n²): pairs with half credit for ties; AP from each positive's own rank
    // (precision at the lowest threshold that includes it = #pos ≥ s / #all ≥ s,
    // each positive adding 1/P of recall).
    double pairs = 0, P = 0, N = 0, ap = 0;
    for (const auto& a : d) (a.label ? P : N) += 1;
    for (const auto& a : d) {
      if (!a.label) continue;
      double above = 0, pos_above = 0;
      for (const auto& b : d) {
        if (!b.label) pairs += a.score > b.score ? 1 : a.score == b.score ? 0.5 : 0;
        if (b.score >= a.score) above += 1, pos_above += b.label;
      }
      ap += pos_above / above / P;
    }
    CHECK(roc_auc(d) == exactly(pairs / (P * N)));
    CHECK(average_precision(d) == exactly(ap));
  }
}

TEST_CASE("metrics: bad input throws a clear error") {
  CHECK(error_of([] { summarize({}); }).find("no samples") != std::string::npos);
  CHECK(error_of([] { summarize(make({0.1, 0.2}, {1, 1})); }).find("one class only") != std::string::npos);
  CHECK(error_of([] { roc_auc(make({0.1, 0.2}, {0, 0})); }).find("one class only") != std::string::npos);
  CHECK(error_of([] { average_precision(make({0.1}, {0})); }).find("one class only") != std::string::npos);
  CHECK(error_of([] { threshold_sweep(make({0.1, 0.2}, {0, 2})); }).find("sample 1: label 2 is not 0 or 1") !=
        std::string::npos);
  CHECK(error_of([] { roc_auc(make({0.1, NAN}, {0, 1})); }).find("sample 1: score nan is not a finite") !=
        std::string::npos);
}
