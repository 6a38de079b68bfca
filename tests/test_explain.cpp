// insight/activations.h and insight/cases.h, and the `ctgrad explain`
// command: filters equal the weights, feature maps equal the modules'
// outputs, the head map's maximum equals the logit, the TP/FP/FN/TN picks,
// the files an explain run writes, and one clear line for each bad input.
#include <doctest/doctest.h>

#include <sys/wait.h>
#include <unistd.h>

#include <cmath>
#include <cstdio>
#include <fstream>
#include <nlohmann/json.hpp>
#include <random>

#include "data/nifti.h"
#include "engine/autograd.h"
#include "engine/checkpoint.h"
#include "engine/ops.h"
#include "insight/activations.h"
#include "insight/cases.h"
#include "insight/image.h"
#include "insight/npy.h"
#include "nets/nets.h"
#include "tests/cuda_check.h"
#include "tests/test_util.h"
#include "tests/train_fixture.h"
#include "train/evaluate.h"

using namespace ctg;
using test::error_of;
using test::TempDir;

namespace {

Tensor param(const Module& m, const std::string& key) {
  for (const auto& [n, t] : m.state_dict())
    if (n == key) return t;
  FAIL("no key " << key);
  return {};
}

using test::Ran;
// `ctgrad ARGS` (tests/test_util.h).
Ran ctgrad(const std::string& args) { return test::run_ctgrad(args); }

// A 32×32×3 float volume of values in [0,1] and a cnn2 / resnet18 checkpoint for it.
struct HookFiles {
  TempDir t;
  std::string volume = t / "v.nii.gz", cnn2 = t / "cnn2.safetensors", resnet = t / "resnet18.safetensors";
  std::vector<float> voxels;
  HookFiles() {
    data::NiftiWriteSpec spec;
    spec.nx = spec.ny = 32;
    spec.nz = 3;
    std::mt19937_64 rng(3);
    std::uniform_real_distribution<float> u(0, 1);
    voxels.resize(32 * 32 * 3);
    for (float& v : voxels) v = u(rng);
    data::write_nifti(volume, spec, voxels.data());
    save_module(cnn2, *nets::make_net("cnn2", {32, 1, false}));
    save_module(resnet, *nets::make_net("resnet18", {32, 2, false}));
  }
};

nlohmann::json read_json(const std::string& path) {
  std::ifstream in(path);
  REQUIRE_MESSAGE(in.good(), path);
  return nlohmann::json::parse(in);
}

// Every picture listed exists and decodes; every array listed has its shape.
void check_listed(const std::string& dir, const nlohmann::json& j) {
  REQUIRE(j["pictures"].is_array());
  for (const auto& p : j["pictures"]) {
    const insight::Image img = insight::read_png(dir + "/" + p["file"].get<std::string>());
    CHECK(img.width > 0);
    CHECK(!p["caption"].get<std::string>().empty());
  }
  for (const auto& a : j["arrays"])
    CHECK(insight::read_npy(dir + "/" + a["file"].get<std::string>()).shape == a["shape"].get<std::vector<int64_t>>());
}

}  // namespace

TEST_CASE("explain: filters equal the conv weights, laid out filter by filter") {
  auto net = nets::make_net("cnn2", {32, 1, false});
  CHECK(insight::conv_layer_names(*net) == std::vector<std::string>{"conv1", "conv2", "conv3"});
  const Tensor w = insight::conv_filters(*net, "conv2");
  REQUIRE(w.shape() == Shape{20, 10, 5, 5});
  const Tensor want = param(*net, "conv2.weight");
  for (int64_t i = 0; i < w.numel(); i += 7) CHECK(w.data<float>()[i] == want.data<float>()[i]);
  // I > 1: row o, column i holds W[o, i], one cell of 0 between filters.
  const insight::Mosaic m = insight::filter_mosaic(w);
  CHECK(m.rows == 20);
  CHECK(m.cols == 10);
  CHECK(m.width == 10 * 6 - 1);
  CHECK(m.values[(size_t)((3 * 6 + 2) * m.width + 7 * 6 + 4)] == want.data<float>()[((3 * 10 + 7) * 5 + 2) * 5 + 4]);
  CHECK(m.values[(size_t)(5 * m.width)] == 0.0f);  // the gap row below the first filters
  // I = 1: 10 filters in a 4-column grid.
  const insight::Mosaic m1 = insight::filter_mosaic(insight::conv_filters(*net, "conv1"));
  CHECK(m1.cols == 4);
  CHECK(m1.rows == 3);
  const Tensor w1 = param(*net, "conv1.weight");
  CHECK(m1.values[(size_t)((1 * 6 + 1) * m1.width + 2 * 6 + 3)] == w1.data<float>()[(6 * 5 + 1) * 5 + 3]);
  const std::string e = error_of([&] { insight::conv_filters(*net, "fc1"); });
  CHECK(e.find("--layer: 'fc1'") == 0);
  CHECK(e.find("conv1, conv2, conv3") != std::string::npos);
  // --diff: this checkpoint minus another one's filters.
  TempDir t;
  auto other = nets::make_net("cnn2", {32, 2, false});
  save_module(t / "other.safetensors", *other);
  const Tensor d = insight::filter_difference(w, t / "other.safetensors", "conv2");
  const Tensor ow = param(*other, "conv2.weight");
  for (int64_t i = 0; i < d.numel(); i += 11) CHECK(d.data<float>()[i] == w.data<float>()[i] - ow.data<float>()[i]);
  save_module(t / "resnet.safetensors", *nets::make_net("resnet18", {32, 1, false}));
  CHECK(error_of([&] { insight::filter_difference(w, t / "resnet.safetensors", "conv2"); }).find("--diff") == 0);
}

TEST_CASE("explain: feature maps equal the modules' outputs, by name and by conv number") {
  auto net = nets::make_net("cnn2", {32, 1, false});
  net->eval();
  std::mt19937_64 rng(5);
  const Tensor x = test::rand_f32({1, 1, 32, 32}, rng, 0, 1);
  const auto maps = insight::feature_maps(*net, x, {"conv1", "bn1", "2"});
  REQUIRE(maps.size() == 3);
  // The same computation spelled out with the ops (CNN: conv k5 p3, strides 3, 2).
  Tensor rm1 = param(*net, "bn1.running_mean"), rv1 = param(*net, "bn1.running_var");
  autograd::NoGradGuard ng;
  const Tensor c1 = ops::conv2d(x, param(*net, "conv1.weight"), Tensor(), {3, 3, 3, 3});
  const Tensor b1 = ops::batchnorm2d(c1, param(*net, "bn1.weight"), param(*net, "bn1.bias"), rm1, rv1, false);
  const Tensor c2 = ops::conv2d(ops::maxpool2d(ops::relu(b1), {}), param(*net, "conv2.weight"), Tensor(), {2, 2, 3, 3});
  const Tensor* want[] = {&c1, &b1, &c2};
  for (int k = 0; k < 3; ++k) {
    const Tensor& w = *want[k];
    CHECK(maps[k].second.shape() == Shape{w.size(1), w.size(2), w.size(3)});
    test::check_close(maps[k].second.reshape(w.shape()), w, 1e-6, 1e-6, maps[k].first);
  }
  // ResNet18: 21 convolutions in execution order, the last the 1×1 head fc (the study's layers 1, 10, 20).
  auto resnet = nets::make_net("resnet18", {32, 1, false});
  resnet->eval();
  const auto r = insight::feature_maps(*resnet, x, {"2", "layer1.0.conv1", "8", "layer2.0.downsample.0", "20",
                                                    "layer4.1.conv2", "layer1.0.relu"});
  for (int k = 0; k < 6; k += 2) test::check_close(r[k].second, r[k + 1].second, 0, 0, r[k].first);
  CHECK(r[4].second.size(0) == 512);
  CHECK(r[6].second.size(0) == 64);
  const std::string e = error_of([&] { insight::feature_maps(*resnet, x, {"layer9"}); });
  CHECK(e.find("--layers: unknown layer 'layer9'") == 0);
  CHECK(e.find("layer2.0.downsample.0") != std::string::npos);
  const std::string e21 = error_of([&] { insight::feature_maps(*resnet, x, {"22"}); });
  CHECK_MESSAGE(e21.find("1..21") != std::string::npos, e21);
  CHECK(error_of([&] { insight::feature_maps(*net, x, {"fc1"}); }).find("not a feature map") != std::string::npos);
}

TEST_CASE("explain: ResNet18's head map has the logit as its maximum, on CPU and CUDA") {
  auto net = nets::make_net("resnet18", {64, 4, false});
  net->eval();
  std::mt19937_64 rng(6);
  const Tensor x = test::rand_f32({1, 1, 64, 64}, rng, 0, 1);
  const Tensor hm = insight::head_map(*net, x, "resnet18");
  REQUIRE(hm.shape() == Shape{2, 2});
  autograd::NoGradGuard ng;
  const double logit = (*net)(x).item();
  double top = -1e30, low = 1e30;
  for (double v : hm.to_vector()) top = std::max(top, v), low = std::min(low, v);
  CHECK(top == logit);
  CHECK(low < top);  // a map, not one value repeated
  cuda::set_emulation(true);
  REQUIRE_MESSAGE(cuda::available(), cuda::device_description());
  net->to(Device::cuda);
  test::check_close(insight::head_map(*net, x.to(Device::cuda), "resnet18"), hm, 1e-5, 1e-4, "head map on cuda");
  auto cnn = nets::make_net("cnn2", {32, 1, false});
  CHECK(error_of([&] { insight::head_map(*cnn, x, "cnn2"); }).find("cnn2 has no head map") != std::string::npos);
}

TEST_CASE("explain: TP, FP, FN and TN picks at the threshold, missing cases named") {
  TempDir t;
  std::ofstream(t / "s.csv") << "patient,label,score,slices,slice_scores\n"
                             << "a,1,0.9,3 4 5,0.8 0.95 0.9\n"
                             << "b,1,0.95,1 2,0.96 0.94\n"
                             << "\"c,x\",0,0.7,7 8,0.6 0.8\n"
                             << "d,1,0.3,2 3,0.2 0.4\n"
                             << "e,0,0.1,5 6,0.15 0.05\n"
                             << "f,0,0.2,5,0.2\n";
  const auto p = insight::read_patient_scores(t / "s.csv");
  REQUIRE(p.size() == 6);
  CHECK(p[2].patient == "c,x");
  const auto c = insight::pick_cases(p, 0.5, {"tp", "fp", "fn", "tn"});
  CHECK(c[0].patient == "b");  // the most confident true positive
  CHECK(c[0].z == 1);          // its highest-scoring slice
  CHECK(c[1].patient == "c,x");
  CHECK(c[1].z == 8);
  CHECK(c[2].patient == "d");  // the lowest-scoring false negative
  CHECK(c[2].z == 2);
  CHECK(c[3].patient == "e");
  CHECK(c[3].z == 6);
  const auto none = insight::pick_cases(p, 0.75, {"fp"});
  CHECK_FALSE(none[0].found);
  CHECK(none[0].missing.find("no false positive") == 0);
  CHECK(error_of([] { insight::parse_case_list("tp,xx"); }).find("--cases: 'xx'") == 0);
  CHECK(error_of([] { insight::parse_example_list("mild,mild"); }).find("--examples") == 0);
}

TEST_CASE("explain: the parity hook writes every stated file, and the head map matches the net") {
  HookFiles h;
  const std::string out = h.t / "out";
  const Ran r = ctgrad("explain --net cnn2 --weights " + h.cnn2 + " --input " + h.volume +
                       " --slice 1 --raw --method all --ig-steps 4 --occlusion-window 8 --occlusion-stride 8 --out " + out);
  INFO(r.out);
  REQUIRE(r.rc == 0);
  CHECK(r.out.find("convergence delta") != std::string::npos);
  for (const char* f : {"saliency.npy", "ig.npy", "occlusion.npy"})
    CHECK(insight::read_npy(out + "/" + f).shape == std::vector<int64_t>{32, 32});
  CHECK(insight::read_npy(out + "/features/conv1.npy").shape.size() == 3);
  CHECK(insight::read_npy(out + "/filters.npy").shape == std::vector<int64_t>{10, 1, 5, 5});
  const auto j = read_json(out + "/explain.json");
  CHECK(j["net"] == "cnn2");
  CHECK(j["input"]["slice"] == 1);
  CHECK(j.contains("ig_delta"));
  CHECK(j["methods"].size() == 5);  // filters, features, saliency, occlusion, ig (no head map on cnn2)
  check_listed(out, j);
  // The input is slice 1 in file order, unchanged.
  const auto in = insight::read_npy(out + "/input.npy");
  CHECK(in.data[37] == h.voxels[32 * 32 + 37]);
  // ResNet18: headmap.npy's maximum is the logit of that slice.
  const Ran rr = ctgrad("explain --net resnet18 --weights " + h.resnet + " --input " + h.volume +
                        " --slice 2 --raw --method headmap,features --layers 1,layer1.0.bn2 --out " + out + "/r");
  INFO(rr.out);
  REQUIRE(rr.rc == 0);
  const auto hm = insight::read_npy(out + "/r/headmap.npy");
  auto net = nets::make_net("resnet18", {32, 2, false});
  net->eval();
  Tensor x = Tensor::empty({1, 1, 32, 32});
  std::copy(h.voxels.begin() + 2 * 1024, h.voxels.begin() + 3 * 1024, x.data<float>());
  autograd::NoGradGuard ng;
  CHECK(*std::max_element(hm.data.begin(), hm.data.end()) == doctest::Approx((*net)(x).item()).epsilon(1e-6));
  CHECK(insight::read_npy(out + "/r/features/layer1.0.bn2.npy").shape[0] == 64);
}

TEST_CASE("explain: each bad input is one clear line and exit status 1") {
  HookFiles h;
  const std::string hook = "explain --net cnn2 --weights " + h.cnn2 + " --input " + h.volume + " --raw --out " + (h.t / "o");
  struct Bad { std::string args, says; };
  const std::vector<Bad> bad = {
      {hook + " --slice 0 --method features --layers conv9", "unknown layer 'conv9'"},
      {hook + " --slice 0 --method occlusion --occlusion-window 40", "--occlusion-window: 40 is larger than the slice"},
      {hook + " --slice 3 --method saliency", "--slice: 3 is outside"},
      {hook + " --slice 0 --method headmap", "cnn2 has no head map"},
      {hook + " --slice 0 --method ig --ig-method simpson", "--ig-method"},
      {hook + " --slice 0 --method saliency --target prob", "--target"},
      {"explain --run " + (h.t / "norun") + " --cases tp", "no such run folder"},
      {"explain --run " + h.t.str() + " --cases tp,fp,fn", "scores_test.csv not found"},
  };
  for (const Bad& b : bad) {
    const Ran r = ctgrad(b.args);
    CAPTURE(b.args);
    CAPTURE(r.out);
    CHECK(r.rc == 1);
    CHECK(r.out.find(b.says) != std::string::npos);
    CHECK(std::count(r.out.begin(), r.out.end(), '\n') == 1);
  }
}

TEST_CASE("explain: --run with --cases and --examples writes a folder per case") {
  TempDir t;
  test::one_epoch_run(t / "run");  // a cnn1 run on the tiny cohort, with scores_val.csv
  train::EvalOptions eo;
  eo.device = "cpu";
  train::evaluate_run(t / "run", eo);  // scores_test.csv
  eo.split = "val";
  train::evaluate_run(t / "run", eo);  // scores_val.csv: the threshold
  const Ran r = ctgrad("explain --run " + (t / "run") + " --cases tp,fp,fn,tn --examples mild,severe "
                       "--method saliency,occlusion,features,preprocess --layers conv1 --occlusion-window 24 --occlusion-stride 24");
  INFO(r.out);
  REQUIRE(r.rc == 0);
  const std::string out = t / "run/explain";
  const auto top = read_json(out + "/explain.json");
  REQUIRE(top["cases"].size() == 6);
  int found = 0;
  for (const auto& c : top["cases"]) {
    if (!c["found"].get<bool>()) {  // said and skipped
      CHECK(r.out.find(c["case"].get<std::string>() + ": no ") != std::string::npos);
      continue;
    }
    ++found;
    const std::string dir = out + "/" + c["dir"].get<std::string>();
    const auto j = read_json(dir + "/explain.json");
    CHECK(j["case"] == c["case"]);
    CHECK(j["input"]["patient"] == c["patient"]);
    CHECK(j["input"]["slice"].is_number_integer());
    CHECK(insight::read_npy(dir + "/saliency.npy").shape == std::vector<int64_t>{48, 48});
    check_listed(dir, j);
  }
  CHECK(found >= 3);  // mild, severe and at least one of the scored cases
}
