// The pictures around explain: the preprocessing view (Slika 9) against
// data/preprocess, predict --out's pictures and numbers (Slika 10-11), and
// the report's Insight section embedding the PNGs of a hand-made explain.json
// (the data: URI decoded and compared byte for byte).
#include <doctest/doctest.h>

#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>

#include "data/nifti.h"
#include "data/preprocess.h"
#include "data/synth.h"
#include "insight/image.h"
#include "insight/npy.h"
#include "insight/preprocess_view.h"
#include "report/insight_section.h"
#include "test_util.h"
#include "train/predict.h"

using namespace ctg;
using ctg::test::error_of;
using ctg::test::TempDir;

namespace {

using ctg::test::slurp;

std::string unbase64(const std::string& s) {
  auto val = [](char c) -> int {
    if (c >= 'A' && c <= 'Z') return c - 'A';
    if (c >= 'a' && c <= 'z') return c - 'a' + 26;
    if (c >= '0' && c <= '9') return c - '0' + 52;
    return c == '+' ? 62 : c == '/' ? 63 : -1;
  };
  std::string out;
  uint32_t acc = 0;
  int bits = 0;
  for (char c : s) {
    const int v = val(c);
    if (v < 0) break;  // '=' padding ends the data
    acc = (acc << 6) | (uint32_t)v, bits += 6;
    if (bits >= 8) bits -= 8, out += (char)((acc >> bits) & 0xff);
  }
  return out;
}

// The payload of every data:image/png;base64 URI in html, in order.
std::vector<std::string> data_uris(const std::string& html) {
  std::vector<std::string> out;
  const std::string key = "data:image/png;base64,";
  for (size_t p = html.find(key); p != std::string::npos; p = html.find(key, p + 1)) {
    const size_t a = p + key.size(), e = html.find('"', a);
    out.push_back(unbase64(html.substr(a, e - a)));
  }
  return out;
}

insight::Image small_picture(uint8_t shade) {
  std::vector<float> v(12 * 16);
  for (size_t i = 0; i < v.size(); ++i) v[i] = (float)(i % 16) * shade;
  insight::MapStyle s;
  s.title = "test map " + std::to_string(shade);
  return insight::render_map(v.data(), 12, 16, s);
}

}  // namespace

TEST_CASE("insight: the preprocessing figure's steps are what data/preprocess computes") {
  TempDir t;
  const data::SynthVolume sv = data::synth_phantom(3, 7, 3, 64, 8);
  std::vector<int16_t> stored;
  const data::NiftiWriteSpec spec = data::synth_store(sv, 1, &stored);  // a reoriented layout: the view must orient
  const std::string ct = t / "ct.nii.gz";
  data::write_nifti(ct, spec, stored.data());
  const int64_t z = 4;
  const insight::PreprocessFigure fig = insight::write_preprocess_figure(ct, z, 32, t / "out");
  CHECK(fig.z == z);
  CHECK(fig.depth == 8);
  REQUIRE(fig.pictures.size() == 1);
  CHECK(fig.arrays.size() == 7);
  const insight::Image png = insight::read_png(t / "out/preprocess.png");
  CHECK(png.width > 4 * 256);  // four ~256-px panels a row
  CHECK(png.height > 2 * 256);

  const data::OrientedVolume v = data::orient_axial(data::read_nifti(ct));
  const float* hu = v.slice(z);
  const size_t n = (size_t)(v.width * v.height);
  data::PreprocessOptions opt;
  opt.size = 32;
  auto load = [&](const std::string& step) {
    const insight::NpyArray a = insight::read_npy(t / ("out/preprocess_" + step + ".npy"));
    return a;
  };
  const auto raw = load("raw_hu"), win = load("lung_window"), thr = load("threshold"), tissue = load("largest_region"),
             body = load("body_mask"), masked = load("masked"), crop = load("cropped");
  CHECK(raw.shape == std::vector<int64_t>{v.height, v.width});
  CHECK(raw.data == std::vector<float>(hu, hu + n));
  const data::BodyMasks M = [&] {
    std::vector<float> w(n);
    for (size_t i = 0; i < n; ++i) w[i] = data::lung_window(hu[i], opt);
    return data::body_masks(w.data(), v.width, v.height, opt);
  }();
  REQUIRE(M.found);
  size_t in_body = 0, mismatches = 0;
  for (size_t i = 0; i < n; ++i) {
    const float w = data::lung_window(hu[i], opt);
    mismatches += win.data[i] != w;
    mismatches += thr.data[i] != (w > 0.69f ? 1.f : 0.f);
    mismatches += tissue.data[i] != (float)M.tissue[i];
    mismatches += body.data[i] != (float)M.body[i];
    mismatches += masked.data[i] != (M.body[i] ? w : 0.f);
    mismatches += tissue.data[i] > thr.data[i];  // the largest region lies inside the threshold
    mismatches += tissue.data[i] > body.data[i];  // and inside the closed, filled mask
    in_body += M.body[i];
  }
  CHECK(mismatches == 0);
  CHECK(in_body > n / 10);  // a real body, not an empty mask
  CHECK(in_body < n);
  const data::PreprocessedSlice ps = data::preprocess_slice(hu, v.width, v.height, opt);
  CHECK(crop.shape == std::vector<int64_t>{32, 32});
  CHECK(crop.data == ps.pixels);

  CHECK(error_of([&] { insight::write_preprocess_figure(ct, 8, 32, t / "o2"); }).find("--slice: slice 8 is outside") == 0);
  CHECK(error_of([&] { insight::write_preprocess_figure(t / "none.nii.gz", 0, 32, t / "o3"); }).find("none.nii.gz") !=
        std::string::npos);
  const insight::PreprocessFigure central = insight::write_preprocess_figure(ct, -1, 16, t / "o4");
  CHECK(central.z >= 0);
  CHECK(central.z < 8);
}

TEST_CASE("insight: predict --out writes Slika 10 and 11 with their numbers") {
  TempDir t;
  train::ScanSlices scan;
  scan.path = "my_ct.nii.gz", scan.size = 16, scan.z = {3, 9}, scan.depth = 12, scan.usable = 10;
  for (int k = 0; k < 2; ++k) {
    std::vector<float> px(16 * 16);
    for (size_t i = 0; i < px.size(); ++i) px[i] = (float)((i + 7 * k) % 17) / 16.f;
    scan.pixels.push_back(px);
  }
  train::Prediction a, b;
  a.run = "runs/cnn2", a.net = "cnn2", a.score = 0.7, a.threshold = 0.4, a.slice_scores = {0.6, 0.8};
  b.run = "runs/resnet18/", b.net = "resnet18", b.score = 0.2, b.threshold = 0.5, b.slice_scores = {0.1, 0.3};
  const auto pngs = train::write_predict_outputs(t / "p", scan.path, scan, {a, b});
  CHECK(pngs == std::vector<std::string>{"slices.png", "score_minus_threshold.png"});
  for (const auto& f : pngs) {
    const insight::Image img = insight::read_png(t / ("p/" + f));
    CHECK(img.width > 100);
    CHECK(img.height > 100);
  }
  const auto stack = insight::read_npy(t / "p/slices.npy");
  CHECK(stack.shape == std::vector<int64_t>{2, 16, 16});
  CHECK(std::equal(scan.pixels[1].begin(), scan.pixels[1].end(), stack.data.begin() + 256));
  const nlohmann::json j = nlohmann::json::parse(slurp(t / "p/predict.json"));
  CHECK(j["z"] == nlohmann::json({3, 9}));
  REQUIRE(j["runs"].size() == 2);
  CHECK(j["runs"][0]["verdict"] == "severe");
  CHECK(j["runs"][1]["verdict"] == "mild");
  CHECK(j["runs"][1]["score_minus_threshold"].get<double>() == doctest::Approx(-0.3));
  REQUIRE(j["pictures"].size() == 2);
  CHECK(j["pictures"][0]["file"] == "slices.png");
  CHECK(j["arrays"][0]["shape"] == nlohmann::json({2, 16, 16}));
  const std::string csv = slurp(t / "p/predict.csv");
  CHECK(csv.find("run,net,score,threshold,score_minus_threshold,verdict\n") == 0);
  CHECK(csv.find("runs/resnet18/,resnet18,0.200000,0.500000,-0.300000,mild\n") != std::string::npos);

  // The report embeds predict's pictures (--predict DIR).
  const std::string html = report::insight_section({}, {}, {t / "p"});
  const auto uris = data_uris(html);
  REQUIRE(uris.size() == 2);
  CHECK(uris[0] == slurp(t / "p/slices.png"));
  CHECK(uris[1] == slurp(t / "p/score_minus_threshold.png"));
  CHECK(html.find("Slika 11") != std::string::npos);
}

TEST_CASE("insight: the report embeds the pictures of a hand-made explain.json") {
  CHECK(report::base64("") == "");  // RFC 4648 section 10's test vectors
  CHECK(report::base64("f") == "Zg==");
  CHECK(report::base64("fo") == "Zm8=");
  CHECK(report::base64("foo") == "Zm9v");
  CHECK(report::base64("foob") == "Zm9vYg==");
  CHECK(report::base64("fooba") == "Zm9vYmE=");
  CHECK(report::base64("foobar") == "Zm9vYmFy");
  CHECK(unbase64(report::base64(std::string("\x00\xff\x80\x7f", 4))) == std::string("\x00\xff\x80\x7f", 4));

  TempDir t;
  namespace fs = std::filesystem;
  // RUN/explain/tp/ with two pictures, RUN/explain/ with the filters; found without --explain.
  fs::create_directories(t / "run/explain/tp");
  insight::write_png(t / "run/explain/tp/saliency.png", small_picture(1));
  insight::write_png(t / "run/explain/tp/ig.png", small_picture(2));
  insight::write_png(t / "run/explain/filters.png", small_picture(3));
  const std::string run = t / "run";
  std::ofstream(t / "run/explain/tp/explain.json")
      << nlohmann::json{{"net", "cnn2"}, {"run", run}, {"device", "cpu"}, {"target", "score"}, {"case", "tp"},
                        {"input", {{"file", "study_0041.nii.gz"}, {"slice", 17}, {"patient", "0041"}, {"label", 1}, {"score", 0.93}}},
                        {"methods", {"saliency", "ig"}},
                        {"pictures", {{{"file", "saliency.png"}, {"caption", "Saliency <abs> of the TP"}},
                                      {{"file", "ig.png"}, {"caption", "Integrated gradients"}}}},
                        {"ig_delta", 0.0012}}
             .dump();
  std::ofstream(t / "run/explain/explain.json")
      << nlohmann::json{{"net", "cnn2"}, {"run", run}, {"case", nullptr},
                        {"pictures", nlohmann::json::array({{{"file", "filters.png"}, {"caption", "conv1 filters"}}})}}
             .dump();
  report::RunData rd;
  rd.dir = run;
  const std::string html = report::insight_section({rd}, {}, {});
  const auto uris = data_uris(html);
  REQUIRE(uris.size() == 3);
  CHECK(uris[0] == slurp(t / "run/explain/filters.png"));  // input-independent first, then the TP
  CHECK(uris[1] == slurp(t / "run/explain/tp/saliency.png"));
  CHECK(uris[2] == slurp(t / "run/explain/tp/ig.png"));
  CHECK(html.find("Saliency &lt;abs&gt; of the TP") != std::string::npos);  // captions escaped
  CHECK(html.find("True positive") != std::string::npos);
  CHECK(html.find("patient 0041") != std::string::npos);
  CHECK(html.find("src=\"http") == std::string::npos);  // self-contained
  // The same folder through --explain is not shown twice.
  CHECK(data_uris(report::insight_section({rd}, {t / "run/explain"}, {})).size() == 3);
  CHECK(report::insight_section({}, {}, {}).empty());

  // Errors name the file at fault.
  std::ofstream(t / "run/explain/tp/explain.json")
      << R"({"run": "x", "pictures": [{"file": "missing.png", "caption": "gone"}]})";
  CHECK(error_of([&] { report::insight_section({rd}, {}, {}); }).find("missing.png is listed but missing") !=
        std::string::npos);
  std::ofstream(t / "run/explain/tp/explain.json") << R"({"pictures": [{"file": "../../secret.png"}]})";
  CHECK(error_of([&] { report::insight_section({rd}, {}, {}); }).find("inside its folder") != std::string::npos);
  std::ofstream(t / "run/explain/tp/explain.json") << "{not json";
  CHECK(error_of([&] { report::insight_section({rd}, {}, {}); }).find("tp/explain.json: malformed JSON") !=
        std::string::npos);
  CHECK(error_of([&] { report::insight_section({}, {t / "nowhere"}, {}); }).find("--explain:") == 0);
  CHECK(error_of([&] { report::insight_section({}, {}, {t / "run"}); }).find("--predict:") == 0);
}

TEST_CASE("insight: ctgrad report's page carries the Insight section (RUN/explain and --explain)") {
  TempDir t;
  namespace fs = std::filesystem;
  const std::string run = t / "run";
  fs::create_directories(run + "/explain/fn");
  auto write = [](const std::string& p, const std::string& s) { std::ofstream(p) << s; };
  const std::string scores = "patient,label,score,slices,slice_scores\nstudy_0,1,0.9,3,0.9\nstudy_1,0,0.2,3,0.2\n"
                             "study_2,1,0.4,3,0.4\nstudy_3,0,0.6,3,0.6\n";
  write(run + "/config.json", R"({"name": "r", "net": "cnn2", "params": 10, "epochs": 1})");
  write(run + "/summary.json", R"({"best_epoch": 1, "best_val_auc": 0.75, "epochs_done": 1, "train_seconds": 1.5})");
  write(run + "/metrics.csv",
        "epoch,train_loss,val_loss,val_auc,lr,images_per_s,epoch_seconds,elapsed_seconds\n1,0.7,0.6,0.75,0.005,10,1,1\n");
  write(run + "/scores_val.csv", scores);
  write(run + "/scores_test.csv", scores);
  insight::write_png(run + "/explain/fn/occlusion.png", small_picture(5));
  write(run + "/explain/fn/explain.json",
        R"({"net": "cnn2", "case": "fn", "pictures": [{"file": "occlusion.png", "caption": "Occlusion 16/8 of the FN"}]})");
  fs::create_directories(t / "elsewhere/mild");
  insight::write_png(t / "elsewhere/mild/saliency.png", small_picture(6));
  write(t / "elsewhere/mild/explain.json",
        R"({"net": "cnn2", "run": "other", "case": "mild", "pictures": [{"file": "saliency.png", "caption": "Saliency of a mild slice"}]})");

  const std::string plain = slurp(report::build_report({run}, t / "out1"));
  CHECK(plain.find("<h2>Insight") != std::string::npos);  // found under RUN/explain without flags
  auto uris = data_uris(plain);
  REQUIRE(uris.size() == 1);
  CHECK(uris[0] == slurp(run + "/explain/fn/occlusion.png"));
  CHECK(plain.find("False negative") != std::string::npos);

  report::ReportExtras ex;
  ex.explain_dirs = {t / "elsewhere"};
  const std::string with = slurp(report::build_report({run}, t / "out2", ex));
  uris = data_uris(with);
  REQUIRE(uris.size() == 2);
  CHECK(std::count(uris.begin(), uris.end(), slurp(t / "elsewhere/mild/saliency.png")) == 1);
  CHECK(with.find("Saliency of a mild slice") != std::string::npos);

  // A run without explain outputs: no Insight heading at all.
  fs::remove_all(run + "/explain");
  CHECK(slurp(report::build_report({run}, t / "out3")).find("<h2>Insight") == std::string::npos);
}
