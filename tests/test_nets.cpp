// The study's networks: Table 1's parameter counts and torchsummary figures,
// PyTorch state-dict names, training on a tiny batch, checkpoint round trip.
#include <doctest/doctest.h>

#include <cstdio>
#include <cstring>
#include <filesystem>
#include <set>

#include "engine/autograd.h"
#include "engine/checkpoint.h"
#include "engine/ops.h"
#include "engine/optim.h"
#include "nets/nets.h"
#include "nets/summary.h"

using namespace ctg;

TEST_CASE("every net has the parameter count of the study's Table 1 at 512x512") {
  const std::pair<const char*, int64_t> table[] = {
      {"dense20", 5242921}, {"dense50", 13107301}, {"dense100", 26214601}, {"dense100x100", 26224701},
      {"cnn1", 34166},      {"cnn2", 931411},      {"resnet18", 11170753}};
  for (auto& [name, count] : table) {
    CAPTURE(name);
    CHECK(nets::make_net(name, {512, 0, false})->num_parameters() == count);
  }
}

TEST_CASE("summary reproduces Table 1's params size and forward/backward pass size") {
  // (name, params MB, pass size in bytes); ResNet18 runs at 512 too: ~1 s.
  struct Row { const char* name; const char* params_mb; const char* pass_mb; double pass_bytes; };
  const Row rows[] = {{"dense20", "20.00", "0.00", 168},     {"dense50", "50.00", "0.00", 408},
                      {"dense100", "100.00", "0.00", 808},   {"dense100x100", "100.04", "0.00", 1608},
                      {"cnn1", "0.13", "2.42", -1},          {"cnn2", "3.55", "5.22", -1},
                      {"resnet18", "42.61", "328.00", -1}};
  for (auto& r : rows) {
    CAPTURE(r.name);
    auto net = nets::make_net(r.name, {512, 0, false});
    nets::Summary s = nets::summarize(*net, 512, false);
    std::string text = nets::format_summary(s);
    CHECK(text.find(std::string("Params size (MB): ") + r.params_mb + "\n") != std::string::npos);
    CHECK(text.find(std::string("Forward/backward pass size (MB): ") + r.pass_mb + "\n") != std::string::npos);
    CHECK(text.find("Total params: " + nets::with_commas(net->num_parameters()) + "\n") != std::string::npos);
    if (r.pass_bytes > 0) CHECK(s.pass_bytes() == r.pass_bytes);
  }
}

TEST_CASE("state dict names follow PyTorch/torchvision") {
  auto net = nets::make_net("resnet18", {64, 0, false});
  std::set<std::string> keys;
  for (auto& [n, t] : net->state_dict()) keys.insert(n);
  CHECK(keys.size() == 122);  // torchvision resnet18: 20 convs, 20 BNs × 5, our fc weight + bias
  for (const char* k : {"conv1.weight", "bn1.running_mean", "bn1.num_batches_tracked", "layer1.0.conv1.weight",
                        "layer2.0.downsample.0.weight", "layer2.0.downsample.1.running_var",
                        "layer4.1.bn2.bias", "fc.weight", "fc.bias"})
    CHECK_MESSAGE(keys.count(k) == 1, k);
  CHECK(net->state_dict().front().first == "conv1.weight");
  for (auto& [n, t] : net->state_dict())
    if (n == "fc.weight") CHECK(t.shape() == Shape{1, 512, 1, 1});
  auto cnn = nets::make_net("cnn1", {512, 0, false});
  std::vector<std::string> names;
  for (auto& [n, t] : cnn->named_parameters()) names.push_back(n);
  CHECK(names == std::vector<std::string>{"conv1.weight", "bn1.weight", "bn1.bias", "conv2.weight", "bn2.weight",
                                          "bn2.bias", "conv3.weight", "bn3.weight", "bn3.bias", "fc1.weight",
                                          "fc1.bias", "fc2.weight", "fc2.bias"});
}

TEST_CASE("unknown net and bad sizes are clear errors") {
  CHECK_THROWS_WITH_AS(nets::make_net("resnet50"), doctest::Contains("unknown net 'resnet50'"), Error);
  CHECK_THROWS_WITH_AS(nets::make_net("cnn1", {1, 0, false}), doctest::Contains("too small"), Error);
}

static Tensor tiny_batch(int64_t n, int64_t s, Tensor& labels) {
  Generator g(11);
  Tensor x = Tensor::empty({n, 1, s, s});
  g.uniform_(x, 0, 1);
  std::vector<double> y;
  for (int64_t i = 0; i < n; ++i) y.push_back((double)(i % 2));
  labels = Tensor::from_vector(y, {n, 1});
  return x;
}

TEST_CASE("a few Adam steps of CNN1 on a tiny random batch reduce the loss") {
  auto net = nets::make_net("cnn1", {64, 5, false});
  Tensor y;
  Tensor x = tiny_batch(6, 64, y);
  Adam opt(net->named_parameters(), 5e-3, 1e-4);
  double first = 0, last = 0;
  for (int i = 0; i < 8; ++i) {
    opt.zero_grad();
    Tensor loss = ops::bce_with_logits((*net)(x), y);
    if (i == 0) first = loss.item();
    last = loss.item();
    autograd::backward(loss);
    opt.step();
  }
  CAPTURE(first);
  CAPTURE(last);
  CHECK(last < 0.8 * first);
}

TEST_CASE("a state dict round-trips through safetensors bit for bit (training mutates BN buffers first)") {
  auto a = nets::make_net("resnet18", {64, 1, false});
  Tensor y;
  Tensor x = tiny_batch(2, 64, y);
  (*a)(x);  // training-mode forward: running stats and num_batches_tracked change
  std::string path = (std::filesystem::temp_directory_path() / "ctgrad_test_roundtrip.safetensors").string();
  save_module(path, *a, {{"net", "resnet18"}});
  auto b = nets::make_net("resnet18", {64, 2, false});
  load_module(path, *b);
  auto sa = a->state_dict(), sb = b->state_dict();
  REQUIRE(sa.size() == sb.size());
  for (size_t i = 0; i < sa.size(); ++i) {
    CAPTURE(sa[i].first);
    CHECK(sa[i].first == sb[i].first);
    CHECK(sa[i].second.dtype() == sb[i].second.dtype());
    CHECK(std::memcmp(sa[i].second.raw_data(), sb[i].second.raw_data(), sa[i].second.nbytes()) == 0);
  }
  // A checkpoint of another net is refused with the offending key named.
  auto c = nets::make_net("cnn1", {64, 0, false});
  CHECK_THROWS_WITH_AS(load_module(path, *c), doctest::Contains("ctgrad_test_roundtrip.safetensors"), Error);
  std::remove(path.c_str());
}
