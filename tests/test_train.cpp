// ctgrad train/eval/predict on a tiny synthetic cohort: the run folder's
// files, resume after a kill equals an uninterrupted run bit for bit, bad
// settings fail before any work, eval's per-patient scores, predict on a
// real chest CT.
#include <doctest/doctest.h>

#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <map>
#include <set>

#include "data/prep.h"
#include "data/synth.h"
#include "engine/checkpoint.h"
#include "nets/nets.h"
#include "test_util.h"
#include "train_fixture.h"
#include "train/evaluate.h"
#include "train/predict.h"
#include "train/data_source.h"
#include "train/run.h"
#include "train/scoring.h"
#include "train/trainer.h"

using namespace ctg;
using ctg::test::error_of;
using ctg::test::TempDir;
using ctg::test::one_epoch_run;
using ctg::test::tiny_cache;
using ctg::test::tiny_options;

namespace {

// A 10-patient cohort folder, not preprocessed (32² × 8 slices).
void unprepared_cohort(const std::string& dir) {
  data::SynthOptions so;
  so.patients_per_grade = 2;
  so.size = 32;
  so.slices = 8;
  so.workers = 1;
  data::synth_cohort(dir, so);
}

std::vector<double> values(const std::string& file, const std::string& key) {
  for (const auto& nt : load_safetensors(file).tensors)
    if (nt.name == key) return nt.tensor.to(DType::f64).to_vector();
  FAIL("no key " << key << " in " << file);
  return {};
}

}  // namespace

TEST_CASE("train writes the run folder: config, metrics per epoch, best and last checkpoints") {
  TempDir t;
  const auto o = tiny_options("cnn1", t / "run");
  train::TrainHooks quiet;
  quiet.quiet = true;
  const train::TrainResult r = train::run_training(o, quiet);
  CHECK(r.epochs_done == 3);
  CHECK(r.rows.size() == 3);
  for (const char* f : {"config.json", "metrics.csv", "summary.json", "best.safetensors", "last.safetensors",
                        "last.state.safetensors"})
    CHECK_MESSAGE(std::filesystem::exists(t / ("run/" + std::string(f))), f);
  const auto rows = train::read_metrics_csv(t / "run/metrics.csv");
  REQUIRE(rows.size() == 3);
  CHECK(rows[0].lr == doctest::Approx(1e-3));
  CHECK(rows[2].lr == doctest::Approx(1e-3 * 0.95 * 0.95));  // ExponentialLR per epoch
  for (const auto& row : rows) CHECK((row.val_auc >= 0 && row.val_auc <= 1));
  const auto cfg = train::read_json_file(t / "run/config.json");
  CHECK(cfg["net"] == "cnn1");
  CHECK(cfg["params"].get<int64_t>() == nets::make_net("cnn1", {48})->num_parameters());
  CHECK(cfg["split"]["val"].size() > 0);
  CHECK(cfg["name"] == "run");
  // best is the epoch with the highest validation AUC (the earliest on ties).
  int64_t best = 1;
  for (const auto& row : rows)
    if (row.val_auc > rows[(size_t)best - 1].val_auc) best = row.epoch;
  CHECK(r.best_epoch == best);
  // best.safetensors loads strictly into a fresh net of the same kind.
  auto net = nets::make_net("cnn1", {48});
  load_module(t / "run/best.safetensors", *net);
}

TEST_CASE("a run killed in the middle of epoch 3 and resumed ends bit-identical to an uninterrupted run") {
  TempDir t;
  // ResNet18 with dropout: BN running statistics, the dropout stream, Adam's
  // moments, the learning rate and the shuffle must all carry over.
  auto o = tiny_options("resnet18", t / "whole");
  o.dropout = "on";
  train::TrainHooks quiet;
  quiet.quiet = true;
  const train::TrainResult whole = train::run_training(o, quiet);

  auto k = tiny_options("resnet18", t / "killed");
  k.dropout = "on";
  train::TrainHooks kill = quiet;
  kill.on_batch = [](int64_t epoch, int64_t done, int64_t) {
    if (epoch == 3 && done == 2) throw std::runtime_error("killed");  // weights already moved in epoch 3
  };
  CHECK_THROWS_WITH(train::run_training(k, kill), "killed");
  CHECK(train::read_metrics_csv(t / "killed/metrics.csv").size() == 2);
  k.resume = true;
  k.epochs = 1;  // fewer epochs than are done: refused
  CHECK(error_of([&] { train::run_training(k, quiet); }).find("--epochs: 1 but the run has already finished 2") == 0);
  k.epochs = 3;
  const train::TrainResult resumed = train::run_training(k, quiet);

  for (const std::string key : {"conv1.weight", "layer4.1.bn2.running_var", "fc.weight", "fc.bias"})
    CHECK_MESSAGE(values(t / "whole/last.safetensors", key) == values(t / "killed/last.safetensors", key), key);
  CHECK(values(t / "whole/best.safetensors", "layer1.0.conv1.weight") ==
        values(t / "killed/best.safetensors", "layer1.0.conv1.weight"));
  CHECK(values(t / "whole/last.state.safetensors", "optim.fc.weight.exp_avg_sq") ==
        values(t / "killed/last.state.safetensors", "optim.fc.weight.exp_avg_sq"));
  // The metrics files agree to the digit (timings aside).
  const auto a = train::read_metrics_csv(t / "whole/metrics.csv"), b = train::read_metrics_csv(t / "killed/metrics.csv");
  REQUIRE(a.size() == 3);
  REQUIRE(b.size() == 3);
  for (size_t i = 0; i < a.size(); ++i) {
    CHECK(a[i].train_loss == b[i].train_loss);
    CHECK(a[i].val_loss == b[i].val_loss);
    CHECK(a[i].val_auc == b[i].val_auc);
    CHECK(a[i].lr == b[i].lr);
  }
  CHECK(resumed.rows.size() == whole.rows.size());
  CHECK(resumed.best_epoch == whole.best_epoch);
}

TEST_CASE("train refuses bad settings before any work, naming the flag") {
  TempDir t;
  auto o = tiny_options("cnn1", t / "run");
  o.net = "cnn3";
  CHECK(error_of([&] { train::run_training(o); }).find("--net: unknown net 'cnn3'") == 0);
  o = tiny_options("cnn1", t / "run");
  o.batch = 0;
  CHECK(error_of([&] { train::run_training(o); }).find("--batch") == 0);
  o = tiny_options("cnn1", t / "run");
  std::filesystem::create_directories(t / "empty");
  o.data = t / "empty";
  CHECK(error_of([&] { train::run_training(o); }).find("--data " + (t / "empty") + ": no studies/ folder") == 0);
  o = tiny_options("cnn1", t / "run");
  o.size = 64;  // the cache holds 48² slices
  CHECK(error_of([&] { train::run_training(o); }).find("--size: 64 but the cache") == 0);
  // Weights of another net.
  auto other = nets::make_net("cnn2", {48});
  save_module(t / "cnn2.safetensors", *other);
  o = tiny_options("cnn1", t / "run");
  o.init = t / "cnn2.safetensors";
  const std::string e = error_of([&] { train::run_training(o); });
  INFO(e);
  CHECK(e.find("--init: ") == 0);
  CHECK(e.find("cnn1 checkpoint") != std::string::npos);
  CHECK_FALSE(std::filesystem::exists(t / "run/metrics.csv"));
  o = tiny_options("cnn1", t / "run");
  o.resume = true;
  CHECK(error_of([&] { train::run_training(o); }).find("--resume: ") == 0);
}

TEST_CASE("a cohort folder with one class only is refused naming the class") {
  TempDir t;
  unprepared_cohort(t / "cohort");
  for (const char* g : {"CT-2", "CT-3", "CT-4"}) std::filesystem::remove_all(t / ("cohort/studies/" + std::string(g)));
  auto o = tiny_options("cnn1", t / "run");
  o.data = t / "cohort";
  o.size = 32;
  CHECK(error_of([&] { train::run_training(o); }) ==
        "--data " + (t / "cohort") + ": no severe (CT-2,CT-3,CT-4) patients: both classes are needed");
  CHECK_FALSE(std::filesystem::exists(t / "run"));
}

TEST_CASE("train checks --init against the net before it preprocesses a cohort folder") {
  TempDir t;
  unprepared_cohort(t / "cohort");
  save_module(t / "cnn2.safetensors", *nets::make_net("cnn2", {32}));
  auto o = tiny_options("cnn1", t / "run");
  o.data = t / "cohort";
  o.size = 32;
  o.init = t / "cnn2.safetensors";
  CHECK(error_of([&] { train::run_training(o); }).find("--init: ") == 0);
  CHECK_FALSE(std::filesystem::exists(train::folder_cache_path(t / "cohort", 32)));
  CHECK_FALSE(std::filesystem::exists(t / "run"));
}

TEST_CASE("per-patient scores group a patient's slices wherever they are, and refuse mixed labels") {
  const std::vector<train::SliceScore> s = {
      {"a", 1, 3, 0, 0.2}, {"b", 0, 5, 0, 0.9}, {"a", 1, 4, 0, 0.6}, {"b", 0, 6, 0, 0.5}, {"c", 1, 1, 0, 0.7}};
  const auto p = train::per_patient(s);
  REQUIRE(p.size() == 3);
  CHECK(p[0].patient == "a");
  CHECK(p[0].slices == std::vector<int64_t>{3, 4});
  CHECK(p[0].score == doctest::Approx(0.4));
  CHECK(p[1].score == doctest::Approx(0.7));
  CHECK(p[2].score == doctest::Approx(0.7));
  CHECK(p[1].label == 0);
  const std::vector<train::SliceScore> bad = {{"a", 1, 3, 0, 0.2}, {"a", 0, 4, 0, 0.6}};
  CHECK(error_of([&] { train::per_patient(bad); }).find("patient a has slices with labels 1 and 0") != std::string::npos);
}

TEST_CASE("eval scores each patient as the mean of its slice scores and writes the curves") {
  TempDir t;
  one_epoch_run(t / "run");
  train::EvalOptions eo;
  eo.device = "cpu";
  const auto out = train::evaluate_run(t / "run", eo);
  // Every test patient of the run's split, once, with exactly the cache's ten
  // chosen slices and its label; its score the mean of those slice scores.
  const auto cfg = train::read_json_file(t / "run/config.json");
  const auto cache = data::Cache::open(tiny_cache());
  std::map<std::string, std::vector<int64_t>> ten;
  std::map<std::string, int> label;
  for (const auto& r : cache->records())
    if (r.split == data::Split::test && r.in_ten) ten[r.patient].push_back(r.z), label[r.patient] = r.label;
  REQUIRE(out.patients.size() == cfg["split"]["test"].size());
  REQUIRE(out.patients.size() == ten.size());
  std::set<std::string> seen;
  for (const auto& p : out.patients) {
    CHECK(seen.insert(p.patient).second);
    CHECK(p.slices == ten[p.patient]);
    CHECK(p.label == label[p.patient]);
    REQUIRE(p.slice_scores.size() == p.slices.size());
    double sum = 0;
    for (double s : p.slice_scores) sum += s;
    CHECK(p.score == doctest::Approx(sum / (double)p.slice_scores.size()));
  }
  const auto back = eval::read_scores_csv(out.scores_path);
  REQUIRE(back.size() == out.patients.size());
  CHECK(back[0].score == doctest::Approx(out.patients[0].score).epsilon(1e-8));
  CHECK(std::filesystem::exists(t / "run/test_roc.csv"));
  CHECK(std::filesystem::exists(t / "run/measures_test.txt"));
  eo.central = true;
  const auto central = train::evaluate_run(t / "run", eo);
  for (const auto& p : central.patients) CHECK(p.slices.size() == 1);
  CHECK(std::filesystem::exists(t / "run/scores_test_central.csv"));
  eo.split = "train";
  CHECK(error_of([&] { train::evaluate_run(t / "run", eo); }).find("--split") == 0);
}

TEST_CASE("predict scores a real chest CT with a trained run") {
  TempDir t;
  one_epoch_run(t / "run");
  const std::string ct = std::string(CTGRAD_SOURCE_DIR) + "/../shared/fixtures/ct/lidc_chest_2slice.nii.gz";
  // Without validation scores there is no threshold yet.
  CHECK(error_of([&] { train::predict_run(t / "run", train::scan_slices(ct, 48), "cpu"); }).find("eval --run") !=
        std::string::npos);
  train::EvalOptions eo;
  eo.split = "val";
  eo.device = "cpu";
  train::evaluate_run(t / "run", eo);
  const auto scan = train::scan_slices(ct, 48);
  CHECK(scan.depth == 2);
  REQUIRE(scan.z.size() >= 1);  // a 2-slice scan: fewer than ten
  CHECK(scan.z.size() <= 2);
  const auto p = train::predict_run(t / "run", scan, "cpu");
  CHECK((p.score > 0 && p.score < 1));
  CHECK(p.slice_scores.size() == scan.z.size());
  // The verdict names the run's class mapping (the default here).
  CHECK(p.verdict() == (p.severe() ? "severe (CT-2,CT-3,CT-4 expected)" : "mild (CT-0,CT-1 expected)"));
  train::Prediction q = p;
  q.negative = "CT-0", q.positive = "CT-1,CT-2,CT-3,CT-4", q.score = q.threshold - 0.1;
  CHECK(q.verdict() == "mild (CT-0 expected)");
  CHECK(error_of([&] { train::scan_slices(ct, 48, {5}); }).find("--slices: slice 5 is outside") == 0);
  CHECK(error_of([&] { train::parse_slice_list("1,x"); }).find("--slices: 'x'") == 0);
  CHECK(train::parse_slice_list("0,1") == std::vector<int64_t>{0, 1});
}

TEST_CASE("a DICOM folder is converted through dcm2niix, or refused clearly without it") {
  TempDir t;
  std::filesystem::create_directories(t / "dicom");
  for (const char* f : {"0.dcm", "1.dcm"})
    std::filesystem::copy_file(std::string(CTGRAD_SOURCE_DIR) + "/../shared/fixtures/ct/" + f, t / ("dicom/" + std::string(f)));
  bool have = false;
  for (const char* d : {"/usr/bin/dcm2niix", "/usr/local/bin/dcm2niix"}) have = have || ::access(d, X_OK) == 0;
  if (have) {
    const std::string nii = train::dicom_to_nifti(t / "dicom", t / "out");
    const auto scan = train::scan_slices(nii, 32);
    CHECK(scan.depth == 2);
  } else {
    CHECK(error_of([&] { train::dicom_to_nifti(t / "dicom", t / "out"); }).find("needs dcm2niix") != std::string::npos);
  }
  // Not DICOM at all: dcm2niix (when there) finds nothing to convert.
  std::filesystem::create_directories(t / "empty");
  CHECK(error_of([&] { train::dicom_to_nifti(t / "empty", t / "out2"); }).find(t / "empty") == 0);
}
