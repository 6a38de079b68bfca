// load_weights on every fixture in shared/fixtures/weights (written by
// PyTorch and by the safetensors library), the two numeric oracles
// reproduced with our ops and layers, and the torchvision resnet18 import.
// Expected values come from torch.load(map_location='cpu') in PyTorch 1.13.
#include <doctest/doctest.h>

#include <cmath>

#include "engine/autograd.h"
#include "engine/checkpoint.h"
#include "engine/layers.h"
#include "interop/import_resnet18.h"
#include "interop/weights.h"
#include "nets/nets.h"
#include "tests/test_util.h"
#include "tests/torch_file_util.h"

using namespace ctg;
using namespace ctg::interop;
using namespace ctg::test;

namespace {

std::map<std::string, NamedTensor> by_name(const LoadedWeights& w) {
  std::map<std::string, NamedTensor> m;
  for (const NamedTensor& t : w.tensors) m[t.name] = t;
  return m;
}
float f32(double v) { return (float)v; }

// multi_layer.safetensors' model: conv(3→4, k3, pad 1) → BN → ReLU → flatten → Linear(256, 16).
struct MultiLayer : Module {
  std::shared_ptr<Conv2d> conv1;
  std::shared_ptr<BatchNorm2d> norm1;
  std::shared_ptr<Linear> fc1;
  explicit MultiLayer(Generator& g) {
    conv1 = register_module("conv1", std::make_shared<Conv2d>(3, 4, 3, 1, 1, true, g));
    norm1 = register_module("norm1", std::make_shared<BatchNorm2d>(4));
    fc1 = register_module("fc1", std::make_shared<Linear>(256, 16, true, g));
  }
  std::string type_name() const override { return "MultiLayer"; }
  Tensor forward(const Tensor& x) override { return (*fc1)(ops::flatten(ops::relu((*norm1)((*conv1)(x))))); }
};

}  // namespace

TEST_CASE("load_weights: every fixture, names, shapes, dtypes and values") {
  const LoadedWeights h = load_weights(weights_fixture("float16.pt"));
  REQUIRE(h.tensors.size() == 1);
  CHECK(h.format == "torch");
  CHECK(h.tensors[0].name == "tensor");
  CHECK(h.tensors[0].source_dtype == "F16");
  CHECK(h.tensors[0].tensor.to_vector() == std::vector<double>{1.5, -2.25, 3.125});
  const LoadedWeights b = load_weights(weights_fixture("bfloat16.pt"));
  CHECK(b.tensors[0].source_dtype == "BF16");
  CHECK(b.tensors[0].tensor.to_vector() == std::vector<double>{1.5, -2.5, 3.5});

  const LoadedWeights c = load_weights(weights_fixture("checkpoint.pt"));
  CHECK(c.state_dict_key == "model_state_dict");
  REQUIRE(c.tensors.size() == 4);
  CHECK(c.tensors[0].name == "fc1.weight");
  CHECK(c.tensors[0].tensor.shape() == Shape{10, 5});
  CHECK(f32(c.tensors[0].tensor.at(0)) == 1.0414010286331177f);
  CHECK(f32(c.tensors[0].tensor.at(49)) == 1.080486536026001f);
  CHECK(c.tensors[3].name == "fc2.bias");
  CHECK(f32(c.tensors[3].tensor.at(2)) == 0.4995947778224945f);
  REQUIRE(c.skipped.size() == 3);
  CHECK(c.skipped[0].key == "optimizer_state_dict.state.0.momentum_buffer");
  CHECK(c.skipped[0].what == "tensor float32 [10, 5] outside 'model_state_dict'");
  CHECK(c.skipped[1].key == "epoch");
  CHECK(c.skipped[1].what == "int 42");
  CHECK(c.skipped[2].what == "float 0.123");

  const LoadedWeights m = load_weights(weights_fixture("mnist.pt"));  // saved on 'mps'
  REQUIRE(m.tensors.size() == 20);
  auto mn = by_name(m);
  CHECK(mn["fc1.weight"].tensor.shape() == Shape{32, 11616});
  CHECK(f32(mn["fc1.weight"].tensor.at(0)) == 0.0016727697802707553f);
  CHECK(f32(mn["fc1.weight"].tensor.at(32 * 11616 - 1)) == -0.01694413833320141f);
  CHECK(f32(mn["norm2.running_var"].tensor.at(3)) == 64.97479248046875f);
  CHECK(mn["norm1.num_batches_tracked"].tensor.dtype() == DType::i64);
  CHECK(mn["norm1.num_batches_tracked"].tensor.shape().empty());
  CHECK(mn["norm1.num_batches_tracked"].tensor.item() == 3752);
  CHECK(m.tensors[0].name == "conv1.weight");  // file order
  CHECK(m.tensors[19].name == "norm2.num_batches_tracked");

  const LoadedWeights s = load_weights(weights_fixture("mnist.safetensors"));
  CHECK(s.format == "safetensors");
  auto sn = by_name(s);
  CHECK(sn.size() == 20);
  CHECK(f32(sn["fc1.weight"].tensor.at(0)) == -0.0002291733107995242f);
  CHECK(f32(sn["fc1.weight"].tensor.at(32 * 11616 - 1)) == -0.0007706402102485299f);
  CHECK(sn["norm2.num_batches_tracked"].tensor.item() == 7504);

  const LoadedWeights n = load_weights(weights_fixture("complex_nested.pt"));
  REQUIRE(n.tensors.size() == 23);
  auto nn = by_name(n);
  CHECK(nn["conv_blocks.0.conv.weight"].tensor.shape() == Shape{4, 2, 3, 2});
  CHECK(f32(nn["conv_blocks.1.conv.weight"].tensor.at(6 * 4 * 3 * 2 - 1)) == -0.0979408323764801f);
  CHECK(nn["conv_blocks.1.norm.num_batches_tracked"].tensor.item() == 2);
  CHECK(n.skipped.empty());

  CHECK(error_of([] { load_weights(weights_fixture("simple_legacy.pt")); }) ==
        weights_fixture("simple_legacy.pt") +
            ": legacy (pre-1.6) torch.save format is not supported; re-save it with torch.save(obj, path) from "
            "PyTorch ≥ 1.6");
  CHECK(contains(error_of([] { load_weights("/nonexistent/w.pth"); }), "/nonexistent/w.pth: cannot open"));
}

TEST_CASE("load_weights: the complex_nested.pt oracle with our ops") {
  auto t = by_name(load_weights(weights_fixture("complex_nested.pt")));
  autograd::NoGradGuard ng;
  Tensor x = Tensor::full({1, 2, 9, 6}, 0.5);  // ones − 0.5
  auto bn = [&](const Tensor& h, const std::string& p) {
    return ops::batchnorm2d(h, t[p + ".weight"].tensor, t[p + ".bias"].tensor, t[p + ".running_mean"].tensor,
                            t[p + ".running_var"].tensor, false);
  };
  for (int i = 0; i < 2; ++i) {  // Conv2d(k=(3,2)) → BatchNorm2d
    const std::string p = "conv_blocks." + std::to_string(i);
    x = bn(ops::conv2d(x, t[p + ".conv.weight"].tensor, t[p + ".conv.bias"].tensor, {}), p + ".norm");
  }
  x = ops::flatten(bn(x, "norm1"));
  x = ops::relu(ops::linear(x, t["fc1.weight"].tensor, t["fc1.bias"].tensor));
  const std::vector<double> z = ops::linear(x, t["fc2.weight"].tensor, t["fc2.bias"].tensor).to_vector();
  double lse = 0;
  for (double v : z) lse += std::exp(v);
  lse = std::log(lse);
  const double oracle[10] = {-2.306613, -2.0589454, -2.2983727, -2.358294,  -2.2963955,
                             -2.4160905, -2.107669, -2.4284208, -2.526469, -2.3199186};
  for (int i = 0; i < 10; ++i) CHECK(z[i] - lse == doctest::Approx(oracle[i]).epsilon(1e-6));
}

TEST_CASE("load_weights: the multi_layer.safetensors oracle with our layers") {
  Generator g(0);
  MultiLayer net(g);
  net.load_state_dict(from_named(load_weights(weights_fixture("multi_layer.safetensors")).tensors), true);
  net.eval();
  autograd::NoGradGuard ng;
  const std::vector<double> y = net(Tensor::full({1, 3, 8, 8}, 1.0)).to_vector();
  const double oracle[16] = {0.04971555,  -0.16849735, 0.05182848,  -0.18032673, 0.23138367,  0.05041867,
                             0.13005908,  -0.32202929, -0.07915690, -0.03232457, -0.19790289, -0.17476529,
                             -0.19627589, -0.21757686, -0.31376451, 0.08377837};
  REQUIRE(y.size() == 16);
  for (int i = 0; i < 16; ++i) CHECK(y[i] == doctest::Approx(oracle[i]).epsilon(1e-6));
}

namespace {

// A torchvision-layout resnet18 state dict: our body (random Kaiming weights,
// random BN statistics), a 3-channel conv1 and a 1000-class Linear head.
std::vector<NamedTensor> torchvision_resnet18(uint64_t seed) {
  auto body = nets::make_net("resnet18", {64, seed, false});
  Generator g(seed + 100);
  std::vector<NamedTensor> out;
  for (auto& [name, t] : body->state_dict()) {
    Tensor v = t.clone();
    if (name == "conv1.weight") v = Tensor::empty({64, 3, 7, 7});
    if (name == "fc.weight") v = Tensor::empty({1000, 512});
    if (name == "fc.bias") v = Tensor::empty({1000});
    if (name == "conv1.weight" || name.compare(0, 3, "fc.") == 0) g.normal_(v, 0, 0.1);
    if (name.find("running_var") != std::string::npos) g.uniform_(v, 0.5, 2);
    if (name.find("running_mean") != std::string::npos) g.normal_(v, 0, 0.2);
    out.push_back({name, v});
  }
  return out;
}

Tensor find(Module& m, const std::string& key) {
  for (auto& [n, t] : m.state_dict())
    if (n == key) return t;
  FAIL("no key " << key);
  return {};
}

}  // namespace

TEST_CASE("import_resnet18: torchvision layout, conv1 summed, head replaced") {
  TempDir tmp;
  const std::vector<NamedTensor> tv = torchvision_resnet18(1);
  save_safetensors(tmp / "tv.safetensors", tv);
  const LoadedWeights w = load_weights(tmp / "tv.safetensors");
  auto net = nets::make_net("resnet18", {64, 2, false});
  auto pristine = nets::make_net("resnet18", {64, 2, false});
  const ImportReport r = import_resnet18(w.tensors, *net, Conv1Mode::sum, "tv.safetensors");
  CHECK(r.used.size() == 120);
  CHECK(r.initialised == std::vector<std::string>{"fc.weight", "fc.bias"});
  REQUIRE(r.skipped.size() == 2);
  CHECK(r.skipped[0].key == "fc.weight");
  CHECK(r.skipped[0].what == "[1000, 512]: 1000-class Linear head, replaced by the 1x1 conv head");
  CHECK(find(*net, "fc.weight").to_vector() == find(*pristine, "fc.weight").to_vector());
  CHECK(find(*net, "fc.bias").to_vector() == find(*pristine, "fc.bias").to_vector());
  for (const NamedTensor& t : tv)
    if (t.name != "conv1.weight" && t.name.compare(0, 3, "fc.") != 0)
      CHECK_MESSAGE(find(*net, t.name).to_vector() == t.tensor.to_vector(), t.name);
  // conv1: W'[o,0,p,q] = Σ_c W[o,c,p,q], summed in double and rounded once.
  const Tensor w3 = tv[0].tensor, w1 = find(*net, "conv1.weight");
  REQUIRE(w1.shape() == Shape{64, 1, 7, 7});
  for (int64_t o = 0; o < 64; o += 9)
    for (int64_t k = 0; k < 49; k += 5)
      CHECK(w1.at(o * 49 + k) == (double)(float)(w3.at((o * 3 + 0) * 49 + k) + w3.at((o * 3 + 1) * 49 + k) +
                                                  w3.at((o * 3 + 2) * 49 + k)));
  // The equivalence: conv(grey as 3 equal channels, W) = conv(grey, W').
  autograd::NoGradGuard ng;
  Generator g(7);
  Tensor grey = Tensor::empty({1, 1, 24, 20});
  g.normal_(grey, 0, 1);
  Tensor grey3 = Tensor::empty({1, 3, 24, 20});
  for (int64_t c = 0; c < 3; ++c)
    for (int64_t i = 0; i < 24 * 20; ++i) grey3.data<float>()[c * 480 + i] = grey.data<float>()[i];
  const ops::Conv2dParams p{2, 2, 3, 3};
  const std::vector<double> a = ops::conv2d(grey3, w3, Tensor(), p).to_vector();
  const std::vector<double> b = ops::conv2d(grey, w1, Tensor(), p).to_vector();
  REQUIRE(a.size() == b.size());
  double worst = 0;
  for (size_t i = 0; i < a.size(); ++i) worst = std::max(worst, std::abs(a[i] - b[i]) / (1 + std::abs(a[i])));
  CHECK(worst < 1e-5);
  // Ours imports as is: a ctgrad resnet18 state dict round-trips unchanged.
  auto again = nets::make_net("resnet18", {64, 9, false});
  const ImportReport r2 = import_resnet18(to_named(net->state_dict()), *again, Conv1Mode::sum, "ours");
  CHECK(r2.used.size() == 122);
  CHECK(r2.skipped.empty());
  CHECK(r2.initialised.empty());
  CHECK(find(*again, "conv1.weight").to_vector() == w1.to_vector());
  CHECK(find(*again, "fc.bias").to_vector() == find(*net, "fc.bias").to_vector());
}

TEST_CASE("import_resnet18: fresh conv1, DataParallel prefixes, old files without num_batches_tracked") {
  std::vector<NamedTensor> tv = torchvision_resnet18(3);
  auto net = nets::make_net("resnet18", {64, 4, false});
  auto pristine = nets::make_net("resnet18", {64, 4, false});
  const ImportReport r = import_resnet18(tv, *net, Conv1Mode::fresh, "tv");
  CHECK(r.initialised == std::vector<std::string>{"conv1.weight", "fc.weight", "fc.bias"});
  CHECK(r.skipped.back().key == "conv1.weight");
  CHECK(find(*net, "conv1.weight").to_vector() == find(*pristine, "conv1.weight").to_vector());
  std::vector<NamedTensor> old;
  for (NamedTensor t : tv)
    if (t.name.find("num_batches_tracked") == std::string::npos) t.name = "module." + t.name, old.push_back(t);
  auto net2 = nets::make_net("resnet18", {64, 4, false});
  const ImportReport r2 = import_resnet18(old, *net2, Conv1Mode::sum, "old");
  CHECK(r2.used.size() == 100);
  CHECK(r2.initialised.size() == 22);  // 20 num_batches_tracked + the head
  CHECK(find(*net2, "layer2.0.downsample.1.running_var").to_vector() ==
        find(*net, "layer2.0.downsample.1.running_var").to_vector());
}

TEST_CASE("import_resnet18: a state dict for another net is refused naming the key") {
  auto net = nets::make_net("resnet18", {64, 0, false});
  const std::vector<double> before = find(*net, "conv1.weight").to_vector();
  auto err = [&](std::vector<NamedTensor> sd) {
    return error_of([&] { import_resnet18(sd, *net, Conv1Mode::sum, "x.pth"); });
  };
  std::vector<NamedTensor> tv = torchvision_resnet18(5);
  std::vector<NamedTensor> extra = tv;  // resnet34 has a third block in layer1
  extra.push_back({"layer1.2.conv1.weight", Tensor::zeros({64, 64, 3, 3})});
  CHECK(err(extra) == "x.pth: 'layer1.2.conv1.weight': has no place in resnet18 (is this a resnet18 state dict?)");
  std::vector<NamedTensor> missing;
  for (auto& t : tv)
    if (t.name != "layer3.1.bn2.running_var") missing.push_back(t);
  CHECK(contains(err(missing), "x.pth: 'layer3.1.bn2.running_var': missing from the file"));
  std::vector<NamedTensor> shape = tv;
  for (auto& t : shape)
    if (t.name == "layer4.0.conv1.weight") t.tensor = Tensor::zeros({512, 256, 1, 1});
  CHECK(contains(err(shape), "'layer4.0.conv1.weight': has shape [512, 256, 1, 1] but resnet18 needs [512, 256, 3, 3]"));
  std::vector<NamedTensor> c1 = tv;
  c1[0].tensor = Tensor::zeros({64, 4, 7, 7});
  CHECK(contains(err(c1), "'conv1.weight': shape [64, 4, 7, 7] is neither"));
  std::vector<NamedTensor> head = tv;
  head.back().tensor = Tensor::zeros({7});  // fc.bias no longer matches fc.weight
  CHECK(contains(err(head), "'fc.weight': shape [1000, 512] with fc.bias [7]"));
  CHECK(contains(err(load_weights(weights_fixture("mnist.pt")).tensors), "x.pth: 'conv1.bias': has no place in resnet18"));
  CHECK(find(*net, "conv1.weight").to_vector() == before);  // untouched by the failures
}
