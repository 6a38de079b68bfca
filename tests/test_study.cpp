// `ctgrad study` (train/study.h, report/study_report.h) and Table 1
// (`ctgrad summary --all`): bad settings fail before any work; a study killed
// in the middle of a run and started again ends with the same runs, scores
// and report as one never interrupted; more learning rates add only the new
// runs; the report holds every figure.
#include <doctest/doctest.h>

#include <filesystem>
#include <fstream>
#include <regex>
#include <sstream>

#include "data/cache.h"
#include "nets/summary.h"
#include "report/study.h"
#include "report/study_report.h"
#include "tests/test_util.h"
#include "tests/train_fixture.h"
#include "train/study.h"

using namespace ctg;
namespace fs = std::filesystem;
using ctg::test::error_of;
using ctg::test::TempDir;

namespace {

using ctg::test::slurp;

train::StudyOptions tiny_study(const std::string& out) {
  train::StudyOptions o;
  o.data = test::tiny_cache();
  o.out = out;
  o.nets = {"dense20", "cnn1"};
  o.lrs = {1e-3, 1e-4};
  o.optimizers = {"adam"};
  o.epochs = 2;
  o.batch = 4;
  o.size = 48;
  o.device = "cpu";
  o.workers = 1;
  o.seed = 3;
  return o;
}

size_t count(const std::string& s, const std::string& what) {
  size_t n = 0;
  for (size_t i = s.find(what); i != std::string::npos; i = s.find(what, i + 1)) ++n;
  return n;
}

// The report without what depends on the wall clock (durations and the
// parameters-vs-time panels): what must be equal between two studies.
std::string timeless(const std::string& html) {
  std::string s = html;
  // Each such panel opens with <svg … aria-label="NAME: parameters against training time">.
  const std::string panel = "parameters against training time\">", end = "</svg>\n<figcaption";
  for (size_t at = s.find(panel); at != std::string::npos; at = s.find(panel)) {
    const size_t open = s.rfind("<svg", at), close = s.find(end, at);
    REQUIRE((open != std::string::npos && close != std::string::npos));
    s.erase(open, close + 6 - open);
  }
  return std::regex_replace(s, std::regex(R"(\d+(\.\d+)? s\b|\d+ min \d+ s)"), "T");
}

}  // namespace

TEST_CASE("study: bad settings fail in one line before any work") {
  TempDir t;
  CHECK(error_of([] { train::parse_net_list("dense20,cnn3"); }).find("--nets: unknown net 'cnn3' (known: dense20") == 0);
  CHECK(error_of([] { train::parse_lr_list(""); }) == "--lrs: an empty list (e.g. --lrs 5e-3,1e-3,1e-4)");
  CHECK(error_of([] { train::parse_lr_list("1e-3,,1e-4"); }) == "--lrs: an empty entry in '1e-3,,1e-4'");
  CHECK(error_of([] { train::parse_lr_list("1e-3,-2"); }) == "--lrs: '-2' is not a positive number");
  CHECK(error_of([] { train::parse_optimizer_list("adam,rmsprop"); }) ==
        "--optimizers: expected adam and/or sgd, got 'rmsprop'");
  auto o = tiny_study(t / "study");
  o.nets = {"dense20", "vgg16"};
  CHECK(error_of([&] { train::run_study(o); }).find("--nets: unknown net 'vgg16'") == 0);
  o = tiny_study(t / "study");
  o.lrs = {};
  CHECK(error_of([&] { train::run_study(o); }) == "--lrs: an empty list (e.g. --lrs 5e-3,1e-3,1e-4)");
  o = tiny_study(t / "study");
  o.negative = "CT-0,CT-1,CT-2", o.positive = "CT-2,CT-3,CT-4";
  CHECK(error_of([&] { train::run_study(o); }) == "--negative/--positive: grade CT-2 is in both classes");
  o = tiny_study(t / "study");
  o.own_scan = t / "mine.nii.gz";
  CHECK(error_of([&] { train::run_study(o); }) == "--own-scan: " + (t / "mine.nii.gz") + ": no such file");
  o = tiny_study(t / "study");
  o.init_resnet18 = t / "missing.safetensors";
  CHECK(error_of([&] { train::run_study(o); }) == "--init-resnet18: given, but resnet18 is not in --nets");
  o.nets = {"resnet18"};
  CHECK(error_of([&] { train::run_study(o); }).find("--init-resnet18: " + (t / "missing.safetensors") + ": no such file") == 0);
  CHECK_FALSE(fs::exists(t / "study"));  // nothing was written
}

TEST_CASE("study: the plan names every (net, optimiser, lr) run by family") {
  train::StudyOptions o = tiny_study("/s");
  o.nets = {"cnn2", "dense20", "resnet18"};
  o.optimizers = {"adam", "sgd"};
  o.lrs = {5e-3, 2.5e-4};
  const auto runs = train::plan_study(o);
  std::vector<std::string> names, families;
  for (const auto& r : runs) names.push_back(r.name), families.push_back(r.family);
  CHECK(names == std::vector<std::string>{"dense20_adam_lr5e-3", "dense20_adam_lr2.5e-4", "dense20_sgd_lr5e-3",
                                          "dense20_sgd_lr2.5e-4", "cnn2_adam_lr5e-3", "cnn2_adam_lr2.5e-4",
                                          "cnn2_sgd_lr5e-3", "cnn2_sgd_lr2.5e-4", "resnet18_adam_lr5e-3",
                                          "resnet18_adam_lr2.5e-4", "resnet18_sgd_lr5e-3", "resnet18_sgd_lr2.5e-4"});
  CHECK(families.front() == "Dense");
  CHECK(families.back() == "ResNet18");
  CHECK(runs[3].dir == "/s/runs/dense20_sgd_lr2.5e-4");
  CHECK(runs[3].options.lr == 2.5e-4);
  CHECK(runs[3].options.optimizer == "sgd");
  CHECK(report::lr_text(1e-4) == "1e-4");
  CHECK(report::lr_text(0.005) == "5e-3");
}

TEST_CASE("study: killed mid-run and restarted, it ends with the same runs, scores and report") {
  TempDir t;
  // Uninterrupted.
  const auto whole = train::run_study(tiny_study(t / "a"));
  const std::string report_a = report::build_study_report(whole, false);
  // Killed after the first epoch of the third run (its folder is left mid-training).
  train::StudyHooks kill;
  kill.on_epoch = [](const train::StudyRun& r, const train::EpochRow& e) {
    if (r.name == "cnn1_adam_lr1e-3" && e.epoch == 1) throw std::runtime_error("killed");
  };
  CHECK_THROWS_AS(train::run_study(tiny_study(t / "b"), kill), std::runtime_error);
  CHECK(fs::exists(t / "b/runs/cnn1_adam_lr1e-3/last.state.safetensors"));
  CHECK_FALSE(fs::exists(t / "b/runs/cnn1_adam_lr1e-4"));
  std::vector<std::string> trained;
  const auto resumed = train::run_study(tiny_study(t / "b"));
  for (const auto& r : resumed.runs) trained.push_back(r.run.name + (r.trained_now ? " trained" : " scored"));
  CHECK(trained == std::vector<std::string>{"dense20_adam_lr1e-3 scored", "dense20_adam_lr1e-4 scored",
                                            "cnn1_adam_lr1e-3 trained", "cnn1_adam_lr1e-4 trained"});
  const std::string report_b = report::build_study_report(resumed, false);
  REQUIRE(whole.runs.size() == resumed.runs.size());
  for (size_t i = 0; i < whole.runs.size(); ++i) {
    const std::string a = whole.runs[i].run.dir, b = resumed.runs[i].run.dir;
    INFO(a);
    CHECK(fs::path(a).filename() == fs::path(b).filename());
    CHECK(whole.runs[i].best_val_auc == resumed.runs[i].best_val_auc);
    for (const char* f : {"scores_val.csv", "scores_test.csv", "scores_test_central.csv", "measures_test.txt"})
      CHECK(slurp(a + "/" + f) == slurp(b + "/" + f));
  }
  CHECK(whole.best == resumed.best);
  // The same page, up to training times and paths.
  std::string ta = timeless(report_a), tb = timeless(report_b);
  ta = std::regex_replace(ta, std::regex(t.str() + "/a"), "DIR"), tb = std::regex_replace(tb, std::regex(t.str() + "/b"), "DIR");
  CHECK(ta == tb);

  // More learning rates: only the new runs are trained.
  auto more = tiny_study(t / "b");
  more.lrs = {1e-3, 1e-4, 3e-3};
  const auto grown = train::run_study(more);
  trained.clear();
  for (const auto& r : grown.runs)
    if (r.trained_now) trained.push_back(r.run.name);
  CHECK(trained == std::vector<std::string>{"dense20_adam_lr3e-3", "cnn1_adam_lr3e-3"});
  // A setting that would mix two studies is refused naming its flag.
  auto other = tiny_study(t / "b");
  other.batch = 5;
  CHECK(error_of([&] { train::run_study(other); }).find("--batch: 5 but the study in " + (t / "b") + " was run with 4") == 0);
}

TEST_CASE("study: the report has Slika 3-4 per family, Table 1 and the best runs' Figures 6-8") {
  TempDir t;
  auto o = tiny_study(t / "s");
  o.epochs = 1;
  // The own-scan check on one of the cohort's test volumes.
  auto cache = data::Cache::open(test::tiny_cache());
  for (const auto& r : cache->records())
    if (r.split == data::Split::test) o.own_scan = r.source;
  const auto out = train::run_study(o);
  const std::string html = slurp(report::build_study_report(out, true));
  CHECK(html.find("<h2>Dense: learning rates and optimisers (Slika 3)</h2>") != std::string::npos);
  CHECK(html.find("<h2>CNN: learning rates and optimisers (Slika 4)</h2>") != std::string::npos);
  CHECK(count(html, ": validation AUC per epoch") == 2 * 2);      // title and aria label, per family
  CHECK(count(html, ": parameters against training time") >= 2);  // runs too fast to time drop out of the log axes
  for (const char* net : {"dense20", "dense50", "dense100", "dense100x100", "cnn1", "cnn2", "resnet18"})
    CHECK(html.find("<td class=\"name\">" + std::string(net) + "</td>") != std::string::npos);
  for (const char* h : {"Summary (Figure 7)", "ROC, precision–recall and DET curves (Figure 6)", "Score histograms",
                        "Confusion matrices at the validation-chosen threshold", "Central slice only vs all 10 slices (Figure 8)",
                        "Training curves", "Table 1: the networks", "All runs"})
    CHECK(html.find(std::string("<h2>") + h + "</h2>") != std::string::npos);
  // Every run in the table of runs, the two best in Figures 6-8.
  for (const auto& r : out.runs) CHECK(html.find(r.run.name) != std::string::npos);
  CHECK(out.best.size() == 2);
  CHECK(count(html, "max Fowlkes–Mallows on validation") == 2);  // one histogram per best run
  CHECK(html.find("at threshold ") != std::string::npos);          // the ROC's operating point
  CHECK(html.find("<b>Own-scan check</b> of <code>" + o.own_scan + "</code>") != std::string::npos);
  CHECK(count(html, "<td class=\"name\">" + out.runs[out.best[0].second].run.name + "</td>") >= 2);
}

TEST_CASE("Table 1 (`summary --all`): the study's parameter counts, sizes and pass sizes") {
  const auto rows = nets::table1(512, false);
  REQUIRE(rows.size() == 7);
  const std::vector<std::string> names = {"dense20", "dense50", "dense100", "dense100x100", "cnn1", "cnn2", "resnet18"};
  const std::vector<int64_t> params = {5242921, 13107301, 26214601, 26224701, 34166, 931411, 11170753};
  const std::vector<std::string> mb = {"20.00", "50.00", "100.00", "100.04", "0.13", "3.55", "42.61"};
  const std::vector<std::string> pass = {"168 B", "408 B", "808 B", "1608 B", "2.42 MB", "5.22 MB", "328.00 MB"};
  for (size_t i = 0; i < 7; ++i) {
    INFO(names[i]);
    CHECK(rows[i].net == names[i]);
    CHECK(rows[i].summary.total_params == params[i]);
    char b[32];
    std::snprintf(b, sizeof b, "%.2f", rows[i].summary.params_mb());
    CHECK(std::string(b) == mb[i]);
    CHECK(nets::pass_size_text(rows[i].summary) == pass[i]);
  }
  const std::string text = nets::format_table1(rows);
  CHECK(text.find("cnn2") != std::string::npos);
  CHECK(text.find("11,170,753") != std::string::npos);
  // Measured at a small side: every net saves something for backward.
  for (const auto& r : nets::table1(64, true)) CHECK(r.summary.saved_activation_bytes > 0);
}
