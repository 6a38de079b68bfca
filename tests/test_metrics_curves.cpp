// metrics/metrics.h, the curves and the files: ROC, precision–recall and DET
// points for small hand-worked cases (the first is scikit-learn's docstring
// example for all three), write_curves' CSVs, and read_scores_csv — accepted
// variants and one error per kind of bad file, each naming the line.
#include <doctest/doctest.h>

#include <cmath>
#include <fstream>
#include <limits>
#include <sstream>

#include "engine/tensor.h"
#include "metrics/metrics.h"
#include "tests/test_util.h"

using namespace ctg;
using namespace ctg::eval;

namespace {

using ctg::test::error_of;
using ctg::test::TempDir;

const double kInf = std::numeric_limits<double>::infinity();

// 0.1:0 0.4:0 0.35:1 0.8:1 (P = N = 2). Decreasing thresholds and counts:
//   0.8: tp 1 fp 0 | 0.4: tp 1 fp 1 | 0.35: tp 2 fp 1 | 0.1: tp 2 fp 2
std::vector<Scored> four() { return {{0.1, 0}, {0.4, 0}, {0.35, 1}, {0.8, 1}}; }

using ctg::test::slurp;
std::string write(const TempDir& t, const std::string& name, const std::string& text) {
  std::ofstream(t / name) << text;
  return t / name;
}

}  // namespace

TEST_CASE("metrics curves: ROC of four samples") {
  // (0,0,inf) first, then (fp/N, tp/P, t) at 0.8, 0.4, 0.35, 0.1.
  const auto r = roc_curve(four());
  const double fpr[] = {0, 0, 0.5, 0.5, 1}, tpr[] = {0, 0.5, 0.5, 1, 1}, th[] = {kInf, 0.8, 0.4, 0.35, 0.1};
  REQUIRE(r.size() == 5);
  for (int k = 0; k < 5; ++k) CHECK((r[k].fpr == fpr[k] && r[k].tpr == tpr[k] && r[k].threshold == th[k]));
}

TEST_CASE("metrics curves: precision-recall of four samples") {
  // Increasing thresholds 0.1, 0.35, 0.4, 0.8: precision tp/(tp+fp) = 2/4, 2/3,
  // 1/2, 1/1; recall tp/2 = 1, 1, ½, ½; then (1, 0) with no threshold (NaN).
  const auto p = pr_curve(four());
  const double prec[] = {0.5, 2.0 / 3, 0.5, 1, 1}, rec[] = {1, 1, 0.5, 0.5, 0}, th[] = {0.1, 0.35, 0.4, 0.8};
  REQUIRE(p.size() == 5);
  for (int k = 0; k < 5; ++k) CHECK((p[k].precision == prec[k] && p[k].recall == rec[k]));
  for (int k = 0; k < 4; ++k) CHECK(p[k].threshold == th[k]);
  CHECK(std::isnan(p[4].threshold));
}

TEST_CASE("metrics curves: DET of four samples") {
  // Points inf (tp 0, fp 0), 0.8 (1, 0), 0.4 (1, 1), 0.35 (2, 1), 0.1 (2, 2). Kept:
  // from the last with fp = 0 (0.8) to the first with tp = P (0.35), reversed:
  // thresholds 0.35, 0.4, 0.8; fpr = fp/2 = ½, ½, 0; fnr = (2 − tp)/2 = 0, ½, ½.
  const auto d = det_curve(four());
  const double fpr[] = {0.5, 0.5, 0}, fnr[] = {0, 0.5, 0.5}, th[] = {0.35, 0.4, 0.8};
  REQUIRE(d.size() == 3);
  for (int k = 0; k < 3; ++k) CHECK((d[k].fpr == fpr[k] && d[k].fnr == fnr[k] && d[k].threshold == th[k]));
}

TEST_CASE("metrics curves: DET keeps the point at infinity when the top score is negative") {
  // 0.9:0 0.5:1 0.1:0. Points inf (0, 0), 0.9 (tp 0, fp 1), 0.5 (1, 1), 0.1 (1, 2):
  // the last with fp = 0 is inf, the first with tp = 1 is 0.5 → reversed: 0.5, 0.9, inf
  // with fpr ½, ½, 0 and fnr 0, 1, 1 (sklearn ≥ 1.7).
  const auto d = det_curve({{0.9, 0}, {0.5, 1}, {0.1, 0}});
  REQUIRE(d.size() == 3);
  CHECK((d[0].threshold == 0.5 && d[0].fpr == 0.5 && d[0].fnr == 0));
  CHECK((d[1].threshold == 0.9 && d[1].fpr == 0.5 && d[1].fnr == 1));
  CHECK((d[2].threshold == kInf && d[2].fpr == 0 && d[2].fnr == 1));
}

TEST_CASE("metrics curves: all-equal scores give two-point curves") {
  const std::vector<Scored> d = {{0.5, 0}, {0.5, 1}};
  const auto r = roc_curve(d);
  REQUIRE(r.size() == 2);
  CHECK((r[1].fpr == 1 && r[1].tpr == 1 && r[1].threshold == 0.5));
  const auto p = pr_curve(d);
  REQUIRE(p.size() == 2);
  CHECK((p[0].precision == 0.5 && p[0].recall == 1 && p[0].threshold == 0.5));
  // DET: inf (0, 0) and 0.5 (1, 1) are both kept → (fpr 1, fnr 0) at 0.5, (0, 1) at inf.
  const auto e = det_curve(d);
  REQUIRE(e.size() == 2);
  CHECK((e[0].fpr == 1 && e[0].fnr == 0 && e[0].threshold == 0.5));
  CHECK((e[1].fpr == 0 && e[1].fnr == 1 && e[1].threshold == kInf));
  CHECK(error_of([] { roc_curve({{0.5, 1}}); }).find("one class only") != std::string::npos);
}

TEST_CASE("metrics curves: write_curves writes the four CSVs") {
  TempDir t;
  const auto paths = write_curves(four(), t / "out", "test_");
  REQUIRE(paths.size() == 4);
  CHECK(paths[0] == t / "out/test_roc.csv");
  CHECK(slurp(paths[0]) == "fpr,tpr,threshold\n0,0,inf\n0,0.5,0.8\n0.5,0.5,0.4\n0.5,1,0.35\n1,1,0.1\n");
  CHECK(slurp(paths[1]) ==
        "precision,recall,threshold\n0.5,1,0.1\n0.6666666666666666,1,0.35\n0.5,0.5,0.4\n1,0.5,0.8\n1,0,nan\n");
  CHECK(slurp(paths[2]) == "fpr,fnr,threshold\n0.5,0,0.35\n0.5,0.5,0.4\n0,0.5,0.8\n");
  // Thresholds 0.1, 0.35, 0.4, 0.8: (tp, fp) = (2,2), (2,1), (1,1), (1,0).
  const std::string th = slurp(paths[3]);
  CHECK(th.rfind("threshold,f1,fowlkes_mallows,balanced_accuracy,mcc,youden_j,tpr,tnr\n0.1,", 0) == 0);
  CHECK(th.find("\n0.8,0.6666666666666666,0.7071067811865476,0.75,0.5773502691896258,0.5,0.5,1\n") !=
        std::string::npos);
  CHECK(t.listing() == std::set<std::string>{"out"});  // no temporaries left beside
}

TEST_CASE("metrics csv: accepted variants") {
  TempDir t;
  // Extra and quoted columns, CRLF line ends, spaces, a float label, a trailing blank line.
  const auto p = write(t, "s.csv",
                       "\xEF\xBB\xBFpatient,\"label\",notes,score\r\n"
                       "\"a,1\",1,\"say \"\"hi\"\"\", 0.75 \r\n"
                       "b,0.0,,1e-1\r\n"
                       "c,1.0,x,-2\r\n\r\n");
  const auto d = read_scores_csv(p);
  REQUIRE(d.size() == 3);
  CHECK((d[0].score == 0.75 && d[0].label == 1));
  CHECK((d[1].score == 0.1 && d[1].label == 0));
  CHECK((d[2].score == -2 && d[2].label == 1));
}

TEST_CASE("metrics csv: each bad file gets one error naming the file and line") {
  TempDir t;
  auto err = [&](const std::string& text) {
    const auto p = write(t, "bad.csv", text);
    std::string e = error_of([&] { read_scores_csv(p); });
    CHECK(e.rfind(p + ": ", 0) == 0);  // starts with the file name
    CHECK(e.find('\n') == std::string::npos);
    return e.substr(p.size() + 2);
  };
  CHECK(error_of([&] { read_scores_csv(t / "missing.csv"); }) ==
        t / "missing.csv" + ": cannot open: No such file or directory");
  CHECK(err("") == "line 1: empty file; expected a header with columns score,label");
  CHECK(err("patient,label\na,1\n") == "line 1: no 'score' column in the header 'patient,label'");
  CHECK(err("score,lbl\n0.1,1\n") == "line 1: no 'label' column in the header 'score,lbl'");
  CHECK(err("score,label,score\n") == "line 1: the header names column 'score' twice");
  CHECK(err("score,label\n\n") == "no data rows after the header (line 1)");
  CHECK(err("score,label\n0.1,0\n0.2,1\nabc,1\n") == "line 4: score 'abc' is not a number");
  CHECK(err("score,label\n0.1,0\n0.5x,1\n") == "line 3: score '0.5x' is not a number");
  CHECK(err("score,label\n0.1,0\n,1\n") == "line 3: score '' is not a number");
  CHECK(err("score,label\n0.1,0\nnan,1\n") == "line 3: score 'nan' is not finite");
  CHECK(err("score,label\n0.1,0\ninf,1\n") == "line 3: score 'inf' is not finite");
  CHECK(err("score,label\n0.1,0\n0.2,2\n") == "line 3: label '2' is not 0 or 1");
  CHECK(err("score,label\n0.1,0\n0.2,yes\n") == "line 3: label 'yes' is not 0 or 1");
  CHECK(err("score,label\n0.1,0\n\n0.2\n") ==
        "line 4: 1 field(s), but the header puts score in column 1 and label in column 2");
  CHECK(err("score,label\n\"0.1,0\n") == "line 2: unterminated quoted field");
  CHECK(err("score,label\n0.1,1\n0.2,1\n0.3,1\n") ==
        "all 3 rows have label 1 (one class only); AUC and the thresholds need both classes");
  CHECK(err("score,label\n0.1,0\n") == "the only row has label 0 (one class only); AUC and the thresholds need both classes");
}
