// --cuda-graph (train/graph_step.h): K steps through a captured and replayed
// CUDA graph give the same losses, weights, BatchNorm buffers and optimiser
// state, bit for bit, as K eager steps — with the lr changed between steps
// (the schedule), Adam's bias correction depending on t, SGD's momentum, and
// a partial batch in between (run eagerly, then the graph again). The
// emulation is deterministic, so equality is exact; on a GPU the same holds
// for our kernels (no atomics in a step's float sums).
#include <doctest/doctest.h>

#include <cstring>
#include <random>

#include "engine/autograd.h"
#include "engine/ops.h"
#include "engine/optim.h"
#include "nets/nets.h"
#include "tests/test_util.h"
#include "train/graph_step.h"

using namespace ctg;
using ctg::test::error_of;

namespace {
struct Batch {
  Tensor images, labels;
};
std::vector<Batch> batches(const std::vector<int64_t>& sizes, int64_t side, uint32_t seed) {
  std::mt19937 rng(seed);
  std::uniform_real_distribution<double> u(0, 1);
  std::vector<Batch> out;
  for (int64_t n : sizes) {
    std::vector<double> x((size_t)(n * side * side)), y((size_t)n);
    for (auto& v : x) v = u(rng);
    for (auto& v : y) v = u(rng) < 0.5 ? 0 : 1;
    out.push_back({Tensor::from_vector(x, {n, 1, side, side}).to(Device::cuda),
                   Tensor::from_vector(y, {n, 1}).to(Device::cuda)});
  }
  return out;
}
std::unique_ptr<Optimizer> make_opt(Module& net, const std::string& kind) {
  if (kind == "adam") return std::make_unique<Adam>(net.named_parameters(), 5e-3, 1e-4);
  if (kind == "adamw") return std::make_unique<Adam>(net.named_parameters(), 5e-3, 1e-2, true);
  return std::make_unique<SGD>(net.named_parameters(), 5e-2, 0.9, 1e-4);
}
bool same_bits(const Tensor& a, const Tensor& b) {
  const std::vector<double> x = a.to_vector(), y = b.to_vector();
  return x.size() == y.size() && std::memcmp(x.data(), y.data(), x.size() * sizeof(double)) == 0;
}
// The lr the schedule gives before step i (a change every two steps).
double lr_at(int i, double base) { return base * (i >= 4 ? 0.5 : 1.0) * (i >= 6 ? 0.5 : 1.0); }

void check_graph_equals_eager(const std::string& net_name, const std::string& opt_kind) {
  CAPTURE(net_name);
  CAPTURE(opt_kind);
  cuda::set_emulation(true);
  const int64_t side = 32;
  // Full batches of 3, an epoch's last batch of 2 at step 4, then full again.
  const auto data = batches({3, 3, 3, 3, 2, 3, 3, 3}, side, 11);
  auto eager_net = nets::make_net(net_name, {side, 7, false}), graph_net = nets::make_net(net_name, {side, 7, false});
  eager_net->to(Device::cuda);
  graph_net->to(Device::cuda);
  eager_net->train();
  graph_net->train();
  auto eager_opt = make_opt(*eager_net, opt_kind), graph_opt = make_opt(*graph_net, opt_kind);
  const double base = eager_opt->lr();
  train::GraphStep graph(*graph_net, *graph_opt);
  for (int i = 0; i < (int)data.size(); ++i) {
    CAPTURE(i);
    eager_opt->set_lr(lr_at(i, base));
    graph_opt->set_lr(lr_at(i, base));
    eager_opt->zero_grad();
    Tensor loss = ops::bce_with_logits((*eager_net)(data[i].images), data[i].labels);
    autograd::backward(loss);
    eager_opt->step();
    Tensor graph_loss = graph.step(data[i].images, data[i].labels);
    CHECK(same_bits(loss, graph_loss));
  }
  CHECK(graph.captured());
  CHECK(graph.eager_steps() == 2);  // the warm-up and the partial batch
  CHECK(graph.replays() == 6);
  const auto se = eager_net->state_dict(), sg = graph_net->state_dict();  // weights and BatchNorm buffers
  REQUIRE(se.size() == sg.size());
  for (size_t k = 0; k < se.size(); ++k) {
    CAPTURE(se[k].first);
    CHECK(same_bits(se[k].second, sg[k].second));
  }
  const auto oe = eager_opt->state_dict(), og = graph_opt->state_dict();
  REQUIRE(oe.size() == og.size());
  for (size_t k = 0; k < oe.size(); ++k) {
    CAPTURE(oe[k].first);
    CHECK(same_bits(oe[k].second, og[k].second));
  }
}
}  // namespace

TEST_CASE("cuda graph step: Dense(20) replayed equals eager bit for bit (Adam with an lr schedule)") {
  check_graph_equals_eager("dense20", "adam");
}

TEST_CASE("cuda graph step: CNN1 replayed equals eager bit for bit (Adam and SGD with momentum)") {
  check_graph_equals_eager("cnn1", "adam");
  check_graph_equals_eager("cnn1", "sgd");
}

TEST_CASE("cuda graph step: AdamW replayed equals eager bit for bit") { check_graph_equals_eager("dense20", "adamw"); }

TEST_CASE("cuda graph step: refuses a net with dropout and a net on the CPU, in one line") {
  cuda::set_emulation(true);
  auto dropout_net = nets::make_net("resnet18", {32, 1, true});
  dropout_net->to(Device::cuda);
  auto opt = make_opt(*dropout_net, "adam");
  const std::string e = error_of([&] { train::GraphStep g(*dropout_net, *opt); });
  CHECK(e.find("--cuda-graph: the net has dropout") != std::string::npos);
  CHECK(e.find("--dropout off") != std::string::npos);
  auto cpu_net = nets::make_net("dense20", {32, 1, false});
  auto cpu_opt = make_opt(*cpu_net, "adam");
  CHECK(error_of([&] { train::GraphStep g(*cpu_net, *cpu_opt); }).find("--cuda-graph: needs the net on the GPU") !=
        std::string::npos);
}
