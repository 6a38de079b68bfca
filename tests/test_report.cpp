// `ctgrad report`: the SVG layer's helpers (ticks, formatting, probit), and
// the whole page built from hand-written run directories whose measures were
// worked out by hand (below, next to the scores).
#include <doctest/doctest.h>

#include <cmath>
#include <filesystem>
#include <fstream>
#include <regex>
#include <sstream>

#include "report/report.h"
#include "report/svg.h"
#include "report/svg_frame.h"
#include "tests/test_util.h"

using namespace ctg;
using namespace ctg::report;
using ctg::test::error_of;
using ctg::test::TempDir;

namespace {

void write(const std::string& path, const std::string& text) {
  std::ofstream(path) << text;
}
using ctg::test::slurp;

// patient,label,score,slices,slice_scores, as `ctgrad eval` writes it.
std::string scores_csv(const std::vector<std::pair<double, int>>& rows) {
  std::string s = "patient,label,score,slices,slice_scores\n";
  for (size_t i = 0; i < rows.size(); ++i)
    s += "study_" + std::to_string(i) + "," + std::to_string(rows[i].second) + "," + std::to_string(rows[i].first) +
         ",3 4," + std::to_string(rows[i].first) + " " + std::to_string(rows[i].first) + "\n";
  return s;
}

// Validation scores shared by both runs. F1 per candidate threshold:
// 0.1: 6/9=.667, 0.2: .75, 0.4: P 3/4 R 1 → .857 (max), 0.6: .667, 0.7: .8, 0.9: .5
// → threshold_f1 = 0.4.
const std::vector<std::pair<double, int>> kVal = {{0.9, 1}, {0.7, 1}, {0.6, 0}, {0.4, 1}, {0.2, 0}, {0.1, 0}};
// alpha, test: AUC = (4+4+3+3)/16 = 0.875. At 0.4: TP 3 (.95 .8 .45), FP 1 (.5),
// FN 1 (.35), TN 3 → F1 .75, sensitivity .75, specificity .75,
// MCC (9−1)/√(4·4·4·4) = .5. AP = .25 + .25 + .25·3/4 + .25·4/5 = .8875.
const std::vector<std::pair<double, int>> kAlphaTest = {{0.95, 1}, {0.8, 1}, {0.5, 0}, {0.45, 1},
                                                        {0.35, 1}, {0.3, 0},  {0.25, 0}, {0.1, 0}};
// beta, test (a tie at 0.6): AUC = (3 + 2.5 + 1)/9 = .7222. At 0.4: TP 2, FP 1,
// FN 1, TN 2 → F1 4/6 = .667, MCC (4−1)/9 = .333, sens = spec = .667.
const std::vector<std::pair<double, int>> kBetaTest = {{0.9, 1}, {0.6, 1}, {0.6, 0}, {0.2, 1}, {0.3, 0}, {0.1, 0}};
// beta, central slice only: AUC = (3 + 2 + 2)/9 = .7778.
const std::vector<std::pair<double, int>> kBetaCentral = {{0.8, 1}, {0.55, 1}, {0.7, 0}, {0.3, 1}, {0.2, 0}, {0.25, 0}};

std::string make_run(const TempDir& t, const std::string& folder, const std::string& name, const std::string& net,
                     const std::vector<std::pair<double, int>>& test, const std::vector<std::pair<double, int>>* central) {
  const std::string dir = t / folder;
  std::filesystem::create_directories(dir);
  std::string escaped;  // JSON string escaping for the few characters the names use
  for (char c : name) escaped += c == '"' || c == '\\' ? std::string("\\") + c : std::string(1, c);
  write(dir + "/config.json", "{\"name\": \"" + escaped + "\", \"net\": \"" + net + "\", \"params\": 1234567, \"epochs\": 3}\n");
  write(dir + "/summary.json", "{\"best_epoch\": 2, \"best_val_auc\": 0.8, \"epochs_done\": 3, \"train_seconds\": 125.5}\n");
  write(dir + "/metrics.csv",
        "epoch,train_loss,val_loss,val_auc,lr,images_per_s,epoch_seconds,elapsed_seconds\n"
        "1,0.70,0.68,0.60,0.005,10,40,40\n2,0.55,0.60,0.80,0.00475,10,40,80\n3,0.40,0.62,0.75,0.0045,10,40,125.5\n");
  write(dir + "/scores_val.csv", scores_csv(kVal));
  write(dir + "/scores_test.csv", scores_csv(test));
  if (central) write(dir + "/scores_test_central.csv", scores_csv(*central));
  return dir;
}

// Every element opened is closed, in order (void elements aside); "" when so,
// else what is wrong. The page's text and attributes are escaped, so a raw
// '<' or '>' inside them would show up here as a broken tag.
std::string tag_balance(const std::string& html) {
  std::vector<std::string> stack;
  for (size_t i = html.find('<'); i != std::string::npos; i = html.find('<', i + 1)) {
    const size_t end = html.find('>', i);
    if (end == std::string::npos) return "unterminated tag at " + std::to_string(i);
    const std::string tag = html.substr(i + 1, end - i - 1);
    if (tag.empty() || tag[0] == '!') continue;
    const bool closing = tag[0] == '/';
    const std::string name = tag.substr(closing, tag.find_first_of(" \n/>", closing) - closing);
    if (name.empty() || name.find_first_not_of("abcdefghijklmnopqrstuvwxyz0123456789") != std::string::npos)
      return "bad tag <" + tag + ">";
    if (closing) {
      if (stack.empty() || stack.back() != name) return "</" + name + "> closes <" + (stack.empty() ? "" : stack.back()) + ">";
      stack.pop_back();
    } else if (tag.back() != '/' && name != "meta" && name != "br") {
      stack.push_back(name);
    }
  }
  return stack.empty() ? "" : "<" + stack.back() + "> never closed";
}

// Coordinates are plain numbers (or path commands): never nan/inf.
std::string bad_coordinate(const std::string& html) {
  static const std::regex attr(R"re(\s(x|y|x1|x2|y1|y2|cx|cy|r|d|width|height|viewBox)="([^"]*)")re");
  for (auto it = std::sregex_iterator(html.begin(), html.end(), attr); it != std::sregex_iterator(); ++it)
    if ((*it)[2].str().find_first_not_of("0123456789.- MLHVZ") != std::string::npos) return (*it)[0].str();
  return "";
}

// The cells (tags stripped) of the summary table's row whose first cell ends with `name`.
std::vector<std::string> table_row(const std::string& html, const std::string& name) {
  const size_t table = html.find("<table class=\"summary\">");
  const size_t end = html.find("</table>", table);
  for (size_t r = html.find("<tr>", table); r < end; r = html.find("<tr>", r + 1)) {
    const std::string row = html.substr(r, html.find("</tr>", r) - r);
    std::vector<std::string> cells;
    for (size_t c = row.find("<td"); c != std::string::npos; c = row.find("<td", c + 1)) {
      const size_t open = row.find('>', c) + 1;
      std::string text = std::regex_replace(row.substr(open, row.find("</td>", open) - open), std::regex("<[^>]*>"), "");
      cells.push_back(text);
    }
    if (!cells.empty() && cells[0] == name) return cells;
  }
  return {};
}

}  // namespace

TEST_CASE("report: nice ticks, fixed formatting, escaping, probit") {
  Ticks t = nice_ticks(0, 1);
  CHECK(t.lo == 0);
  CHECK(t.hi == doctest::Approx(1));
  CHECK(t.step == doctest::Approx(0.2));
  CHECK(t.decimals == 1);
  CHECK(t.values.size() == 6);
  t = nice_ticks(0.13, 0.87);  // widened outwards to whole steps
  CHECK(t.lo == 0);
  CHECK(t.hi == doctest::Approx(1));
  t = nice_ticks(-3.2, 17);
  CHECK(t.step == doctest::Approx(10));
  CHECK(t.decimals == 0);
  CHECK(t.values == std::vector<double>{-10, 0, 10, 20});
  t = nice_ticks(0.6, 1.0);  // 0.6/0.2 is 2.999… in floating point: must not add a step below
  CHECK(t.lo == doctest::Approx(0.6));
  t = nice_ticks(5, 5);  // one value: widened around it
  CHECK(t.lo < 5);
  CHECK(t.hi > 5);
  t = nice_ticks(0, 0.003);
  CHECK(t.step == doctest::Approx(0.001));
  CHECK(t.decimals == 3);
  CHECK(error_of([] { nice_ticks(2, 1); }).find("report/svg") != std::string::npos);
  CHECK(error_of([] { nice_ticks(0, NAN); }).find("not a finite interval") != std::string::npos);

  CHECK(fmt(0.5, 3) == "0.500");
  CHECK(fmt(-0.0001, 2) == "0.00");
  CHECK(fmt(2.0 / 3.0, 2) == "0.67");
  CHECK(escape("a<b & \"c\" 'd'>") == "a&lt;b &amp; &quot;c&quot; &#39;d&#39;&gt;");
  CHECK(probit(0.5) == doctest::Approx(0).epsilon(1e-9));
  CHECK(probit(0.975) == doctest::Approx(1.959964).epsilon(1e-6));
  CHECK(probit(0.001) == doctest::Approx(-3.090232).epsilon(1e-6));
  CHECK(probit(0.2) == doctest::Approx(-probit(0.8)).epsilon(1e-9));
  CHECK(error_of([] { probit(0); }).find("probit") != std::string::npos);
}

TEST_CASE("report: axis mappers for linear, log and probit scales") {
  auto lin = detail::make_mapper(Axis{"x", Scale::linear, 0, 1}, {}, 100, 200);
  CHECK(lin(0.25) == doctest::Approx(125));
  CHECK(lin(7) == doctest::Approx(200));  // clamped into the axis
  CHECK(lin.labels.front() == "0.0");
  CHECK(lin.labels.back() == "1.0");
  auto lg = detail::make_mapper(Axis{"x", Scale::log10}, {0.03, 20, -1}, 0, 400);  // -1 cannot be shown: ignored
  CHECK(lg.lo == doctest::Approx(0.01));
  CHECK(lg.hi == doctest::Approx(100));
  CHECK(lg.labels == std::vector<std::string>{"0.01", "0.1", "1", "10", "100"});
  CHECK(lg(1) == doctest::Approx(200));
  auto pb = detail::make_mapper(Axis{"x", Scale::probit}, {}, 0, 600);
  CHECK(pb(0.5) == doctest::Approx(300));
  CHECK(pb(0) == doctest::Approx(0));  // rate 0 sits on the frame edge
  CHECK(pb(1) == doctest::Approx(600));
  CHECK(pb.labels.front() == "1%");  // ±3 normal deviates: 0.135% … 99.865%
  CHECK(pb.labels.back() == "99%");
  auto wide = detail::make_mapper(Axis{"x", Scale::probit, 0.0005, 0.9995}, {}, 0, 600);
  CHECK(wide.labels.front() == "0.1%");
  CHECK(wide.labels.back() == "99.9%");
}

TEST_CASE("report: SVG charts are balanced, escaped and deterministic") {
  Plot p;
  p.title = "T <1> & \"2\"";
  p.x = Axis{"fpr", Scale::probit};
  p.y = Axis{"fnr", Scale::probit};
  Series s;
  s.name = "a&b";
  s.x = {0, 0.1, NAN, 0.5, 1};
  s.y = {1, 0.5, 0.3, 0.2, 0};
  s.mark_max = true;
  p.series.push_back(s);
  p.vlines.push_back({0.3, "t", "#000000", true});
  const std::string svg = line_plot(p);
  CHECK(tag_balance(svg) == "");
  CHECK(bad_coordinate(svg) == "");
  CHECK(svg.find("T &lt;1&gt; &amp; &quot;2&quot;") != std::string::npos);
  CHECK(svg.find("a&amp;b (max 1.000 at 0.000)") != std::string::npos);
  CHECK(svg == line_plot(p));

  Histogram h;
  h.title = "h";
  h.negatives = {0.1, 0.12, 0.5};
  h.positives = {0.9, 1.0};
  h.vlines.push_back({0.4, "threshold", "#000000", false});
  const std::string hs = histogram(h);
  CHECK(tag_balance(hs) == "");
  CHECK(bad_coordinate(hs) == "");
  CHECK(hs.find("mild (label 0), n = 3") != std::string::npos);

  ConfusionPlot c;
  c.title = "m";
  c.tn = 7, c.fp = 0, c.fn = 1, c.tp = 3;
  const std::string cs = confusion_matrix(c);
  CHECK(tag_balance(cs) == "");
  CHECK(cs.find(">7</text>") != std::string::npos);
  CHECK(cs.find("TP · 75% of row") != std::string::npos);
  CHECK(cs.find("FP · 0% of row") != std::string::npos);
}

TEST_CASE("report: page from two runs, with hand-computed measures") {
  TempDir t;
  const std::string a = make_run(t, "run_a", "alpha", "cnn2", kAlphaTest, nullptr);
  const std::string b = make_run(t, "run_b", "beta <&>", "resnet18", kBetaTest, &kBetaCentral);
  const std::string path = build_report({a, b}, t / "out");
  CHECK(path == t / "out/report.html");
  REQUIRE(std::filesystem::is_regular_file(path));
  const std::string html = slurp(path);
  CHECK(tag_balance(html) == "");
  CHECK(bad_coordinate(html) == "");
  CHECK(html.find("<script") == std::string::npos);
  CHECK(html.find("http://") == html.find("http://www.w3.org/2000/svg"));  // the SVG namespace only: no network
  CHECK(html.find("beta &lt;&amp;&gt;") != std::string::npos);
  CHECK(html.find("beta <&>") == std::string::npos);

  const auto ra = table_row(html, "alpha");
  REQUIRE(ra.size() == 14);
  CHECK(ra[1] == "cnn2");
  CHECK(ra[2] == "1,234,567");
  CHECK(ra[3] == "2 min 06 s");
  CHECK(ra[4] == "2 (0.800)");
  CHECK(ra[5] == "0.400");  // max F1 on validation
  CHECK(std::stod(ra[6]) == doctest::Approx(0.875));
  CHECK(std::stod(ra[7]) == doctest::Approx(0.8875).epsilon(0.002));
  CHECK(ra[8] == "0.750");  // F1 on test at the validation threshold
  CHECK(ra[9] == "0.500");  // MCC
  CHECK(ra[10] == "0.750");
  CHECK(ra[11] == "0.750");
  CHECK(ra[13] == "3 / 1 / 3 / 1");
  const auto rb = table_row(html, "beta &lt;&amp;&gt;");
  REQUIRE(rb.size() == 14);
  CHECK(rb[6] == "0.722");
  CHECK(rb[8] == "0.667");
  CHECK(rb[9] == "0.333");
  CHECK(rb[13] == "2 / 1 / 2 / 1");
  CHECK(html.find("<td class=\"num best\">0.875</td>") != std::string::npos);  // alpha's AUC is the better

  for (const char* title : {"Summary (Figure 7)", "ROC on test", "Precision–recall on test", "DET on test",
                            "alpha: measures vs threshold (test)", "alpha: test scores per class",
                            "Confusion matrices at the validation-chosen threshold", "alpha (cnn2)",
                            "ROC on test: central slice vs all 10", "Loss per epoch", "Validation AUC per epoch"})
    CHECK_MESSAGE(html.find(title) != std::string::npos, title);
  CHECK(html.find("central slice (AUC 0.778)") != std::string::npos);
  CHECK(html.find("AUC 0.875") != std::string::npos);
  CHECK(html.find("Not shown (no <code>scores_test_central.csv</code>): alpha") != std::string::npos);
  CHECK(html.find("threshold 0.400 (max F1 on validation)") != std::string::npos);
  // alpha's test F1 peaks at 0.35 (TP 4, FP 1: 8/9), above the F1 of 0.75 at the validation threshold.
  CHECK(html.find("F1 (max 0.889 at 0.350)") != std::string::npos);

  // Deterministic: the same runs give the same bytes.
  CHECK(build_report({a, b}, t / "out2") != "");
  CHECK(slurp(t / "out2/report.html") == html);
}

TEST_CASE("report: no central scores anywhere is said, not an error") {
  TempDir t;
  const std::string a = make_run(t, "run_a", "alpha", "cnn2", kAlphaTest, nullptr);
  const std::string html = slurp(build_report({a}, t.str()));
  CHECK(html.find("No run has <code>scores_test_central.csv</code>") != std::string::npos);
  CHECK(tag_balance(html) == "");
}

TEST_CASE("report: runs with validation scores only (a learning-rate comparison) are accepted") {
  TempDir t;
  const std::string a = make_run(t, "run_a", "alpha", "cnn2", kAlphaTest, nullptr);
  const std::string b = make_run(t, "run_b", "beta", "cnn1", kBetaTest, nullptr);
  std::filesystem::remove(b + "/scores_test.csv");
  std::string html = slurp(build_report({a, b}, t / "out"));
  CHECK(tag_balance(html) == "");
  CHECK(html.find("no test scores (validation only)") != std::string::npos);
  CHECK(html.find("alpha: test scores per class") != std::string::npos);
  CHECK(html.find("beta: test scores per class") == std::string::npos);
  CHECK(html.find("beta (best 0.800, epoch 2)") != std::string::npos);  // its training curve
  // The histogram marks the three validation maxima: F1 (used), FM and BA; the
  // ROC the operating point at the validation F1 threshold (0.4: TPR ¾, FPR ¼).
  CHECK(html.find("max F1 on validation: 0.400 (chosen)") != std::string::npos);
  CHECK(html.find("max Fowlkes–Mallows on validation: 0.400") != std::string::npos);
  CHECK(html.find("max balanced accuracy on validation: 0.400") != std::string::npos);
  CHECK(html.find("alpha at threshold 0.400: TPR 0.750, FPR 0.250") != std::string::npos);
  // No run with test scores at all: the test figures are left out, said so.
  std::filesystem::remove(a + "/scores_test.csv");
  html = slurp(build_report({a, b}, t / "out"));
  CHECK(tag_balance(html) == "");
  CHECK(html.find("No run has test scores") != std::string::npos);
  CHECK(html.find("Loss per epoch") != std::string::npos);
}

TEST_CASE("report: errors name the missing or malformed file") {
  TempDir t;
  const std::string a = make_run(t, "run_a", "alpha", "cnn2", kAlphaTest, nullptr);
  std::filesystem::remove(a + "/scores_val.csv");
  std::string e = error_of([&] { build_report({a}, t / "out"); });
  CHECK(e.find(a + "/scores_val.csv: no such file") != std::string::npos);
  CHECK(!std::filesystem::exists(t / "out/report.html"));

  const std::string b = make_run(t, "run_b", "beta", "cnn1", kBetaTest, nullptr);
  write(b + "/config.json", "{\"name\": \"beta\", \"net\": ");
  e = error_of([&] { build_report({b}, t / "out"); });
  CHECK(e.find(b + "/config.json: not valid JSON") != std::string::npos);
  write(b + "/config.json", "{\"name\": \"beta\"}");
  e = error_of([&] { build_report({b}, t / "out"); });
  CHECK(e.find(b + "/config.json: missing key \"net\"") != std::string::npos);
  write(b + "/config.json", "{\"name\": \"beta\", \"net\": 3}");
  CHECK(error_of([&] { build_report({b}, t / "out"); }).find("\"net\" is not a string") != std::string::npos);

  const std::string c = make_run(t, "run_c", "gamma", "cnn1", kBetaTest, nullptr);
  write(c + "/metrics.csv", "epoch,train_loss,val_loss,val_auc\n1,abc,0.5,0.5\n");
  CHECK(error_of([&] { build_report({c}, t / "out"); }).find(c + "/metrics.csv:2: 'abc' is not a number") != std::string::npos);
  write(c + "/metrics.csv", "epoch,train_loss\n");
  CHECK(error_of([&] { build_report({c}, t / "out"); }).find("no column 'val_loss'") != std::string::npos);

  CHECK(error_of([&] { build_report({t / "nowhere"}, t / "out"); }).find("no such run directory") != std::string::npos);
  CHECK(error_of([&] { build_report({}, t / "out"); }).find("no run directories") != std::string::npos);
  CHECK(!std::filesystem::exists(t / "out/report.html"));
}
