// autograd's grad-ready hook and the bucketed gradient all-reduce that uses it
// (engine/autograd.h set_grad_ready_hook, train/distributed.h GradientReducer).
#include <doctest/doctest.h>

#include <map>
#include <random>

#include "engine/autograd.h"
#include "engine/ops.h"
#include "nets/nets.h"
#include "tests/gradcheck.h"
#include "tests/test_util.h"
#include "train/distributed.h"

using namespace ctg;

TEST_CASE("grad-ready hook: each leaf once, when its gradient is final, in backward's order") {
  std::mt19937_64 rng(1);
  // y = relu(W2·relu(W1·x + b1)) + W1-shared path: W1 is read by two nodes,
  // so it is ready only after the second of them.
  Tensor x = test::rand_tensor({3, 4}, rng), w1 = test::rand_tensor({4, 4}, rng), b1 = test::rand_tensor({4}, rng),
         w2 = test::rand_tensor({2, 4}, rng);
  for (Tensor* t : {&w1, &b1, &w2}) t->set_requires_grad(true);
  auto forward = [&] {
    Tensor h = ops::relu(ops::linear(x, w1, b1));
    Tensor h2 = ops::linear(h, w1, Tensor());  // W1 again
    return ops::bce_with_logits(ops::linear(h2, w2, Tensor()), Tensor::from_vector({1, 0, 1, 0, 1, 0}, {3, 2},
                                                                                    DType::f64));
  };
  // The final gradients, from a plain backward.
  autograd::backward(forward());
  std::map<const TensorImpl*, std::vector<double>> final_grad;
  for (Tensor* t : {&w1, &b1, &w2}) final_grad[t->impl_ptr().get()] = t->grad().to_vector(), t->zero_grad();

  std::vector<const TensorImpl*> order;
  std::map<const TensorImpl*, std::vector<double>> at_hook;
  autograd::GradReadyHook prev = autograd::set_grad_ready_hook([&](const Tensor& leaf) {
    order.push_back(leaf.impl_ptr().get());
    at_hook[leaf.impl_ptr().get()] = leaf.grad().to_vector();
  });
  autograd::backward(forward());
  autograd::set_grad_ready_hook(prev);

  REQUIRE(order.size() == 3);  // x does not require grad: never reported
  CHECK(order[0] == w2.impl_ptr().get());  // the last layer finishes first
  // W1, read twice, must wait for its second reader (the first layer): its
  // gradient at the hook is the complete sum of both uses.
  for (const auto& [leaf, g] : at_hook) test::check_close(g, final_grad[leaf], 0, 0, "gradient at the hook");
}

namespace {
// Two identical ranks, simulated: every "all-reduce" doubles the buffer (the
// sum of two equal contributions) and records whether backward was running.
class TwinCommunicator : public dist::Communicator {
 public:
  TwinCommunicator() { size_ = 2; }
  std::string backend() const override { return "twin"; }
  void allreduce_sum(double* p, int64_t n) override {
    for (int64_t i = 0; i < n; ++i) p[i] *= 2;
  }
  void allreduce_sum(float* p, int64_t n) override {
    for (int64_t i = 0; i < n; ++i) p[i] *= 2;
  }
  void broadcast(void*, size_t, int) override {}
  void barrier() override {}
  [[noreturn]] void abort(const std::string& m) override { throw Error(m); }
  int started = 0;
  std::unique_ptr<Pending> start_allreduce_sum(Tensor& t) override {
    ++started;
    return Communicator::start_allreduce_sum(t);
  }
};
}  // namespace

TEST_CASE("GradientReducer: buckets start during backward and every gradient ends summed over the ranks") {
  nets::NetOptions o;
  o.size = 32, o.seed = 3;
  auto net = nets::make_net("cnn1", o);
  std::mt19937_64 rng(2);
  const Tensor x = test::rand_tensor({2, 1, 32, 32}, rng, 0, 1, DType::f32);
  const Tensor y = Tensor::from_vector({1.0, 0.0}, {2, 1});
  autograd::backward(ops::bce_with_logits((*net)(x), y));
  std::vector<std::vector<double>> plain;
  for (auto [n, p] : net->named_parameters()) plain.push_back(p.grad().to_vector()), p.zero_grad();

  TwinCommunicator twin;
  // Small buckets (4 KiB): several of them, started while backward runs.
  dist::GradientReducer reducer(twin, net->named_parameters(), 4 << 10);
  CHECK(reducer.buckets() > 2);
  Tensor loss = ops::bce_with_logits((*net)(x), y);
  reducer.backward(loss, Tensor());
  CHECK(twin.started == (int)reducer.buckets());
  CHECK(reducer.started_during_backward() == reducer.buckets());  // every parameter is reached by backward
  size_t k = 0;
  for (const auto& [n, p] : net->named_parameters()) {
    std::vector<double> want = plain[k++];
    for (double& v : want) v *= 2;  // two equal ranks
    test::check_close(p.grad().to_vector(), want, 0, 0, n);
  }
}
