// The fused ops batchnorm2d_relu and add_relu (kernels/batchnorm2d_relu.h,
// kernels/add_relu.h) and the nets that use them while training.
//
// On the CPU a fused op must give exactly relu(op(...)) and exactly its
// gradients (the same float operations in the same order, only without the
// intermediate tensors), so these checks use tolerance 0. The gradient checks
// in double and CUDA (emulated) against the CPU are the op table's entries
// batchnorm2d_relu and add_relu (engine/op_table/, tests/op_table_*.cpp).
#include <doctest/doctest.h>

#include <random>

#include "engine/autograd.h"
#include "engine/layers.h"
#include "engine/ops.h"
#include "engine/optim.h"
#include "nets/nets.h"
#include "tests/gradcheck.h"
#include "tests/test_util.h"

using namespace ctg;

namespace {

struct BnInputs {
  Tensor x, gamma, beta, rm, rv;
};

BnInputs bn_inputs(const Shape& s, DType dt, uint64_t seed) {
  std::mt19937_64 rng(seed);
  const Shape c{s[1]};
  BnInputs in{test::rand_tensor(s, rng, -2, 3, dt), test::rand_tensor(c, rng, 0.5, 1.5, dt),
              test::rand_tensor(c, rng, -0.5, 0.5, dt), test::rand_tensor(c, rng, -0.2, 0.2, dt),
              test::rand_tensor(c, rng, 0.5, 2.0, dt)};
  in.x.set_requires_grad(true);
  in.gamma.set_requires_grad(true);
  in.beta.set_requires_grad(true);
  return in;
}

// y, running statistics and every gradient of `f` (the fused op or relu∘op)
// for the weights c of L = Σ c·y.
std::vector<Tensor> bn_run(bool fused, const BnInputs& base, bool training, const Tensor& c) {
  Tensor x = base.x.detach().clone(), g = base.gamma.detach().clone(), b = base.beta.detach().clone();
  Tensor rm = base.rm.clone(), rv = base.rv.clone();
  x.set_requires_grad(true), g.set_requires_grad(true), b.set_requires_grad(true);
  Tensor y = fused ? ops::batchnorm2d_relu(x, g, b, rm, rv, training)
                   : ops::relu(ops::batchnorm2d(x, g, b, rm, rv, training));
  autograd::backward(y, c);
  return {y.detach(), rm, rv, x.grad(), g.grad(), b.grad()};
}

void check_equal(const std::vector<Tensor>& got, const std::vector<Tensor>& want, const char* what) {
  const char* names[] = {"y", "running_mean", "running_var", "dx", "dgamma", "dbeta"};
  REQUIRE(got.size() == want.size());
  for (size_t i = 0; i < got.size(); ++i) test::check_close(got[i], want[i], 0, 0, std::string(what) + " " + names[i]);
}

}  // namespace

TEST_CASE("batchnorm2d_relu is exactly relu(batchnorm2d) on the CPU with the same gradients") {
  for (DType dt : {DType::f32, DType::f64})
    for (bool training : {true, false}) {
      CAPTURE(dtype_name(dt));
      CAPTURE(training);
      const BnInputs in = bn_inputs({3, 5, 7, 9}, dt, 11);
      std::mt19937_64 rng(12);
      const Tensor c = test::rand_tensor({3, 5, 7, 9}, rng, 0.5, 1.5, dt);
      const std::vector<Tensor> fused = bn_run(true, in, training, c), plain = bn_run(false, in, training, c);
      check_equal(fused, plain, "batchnorm2d_relu");
      // The ReLU did something: some outputs are clamped, some are not.
      const std::vector<double> y = fused[0].to_vector();
      CHECK(std::count(y.begin(), y.end(), 0.0) > 10);
      CHECK(std::count_if(y.begin(), y.end(), [](double v) { return v > 0; }) > 10);
    }
}

TEST_CASE("add_relu is exactly relu(add) on the CPU with the same gradients") {
  for (DType dt : {DType::f32, DType::f64}) {
    std::mt19937_64 rng(3);
    const Tensor a0 = test::rand_tensor({2, 3, 5, 7}, rng, -1, 1, dt), b0 = test::rand_tensor({2, 3, 5, 7}, rng, -1, 1, dt);
    const Tensor c = test::rand_tensor({2, 3, 5, 7}, rng, 0.5, 1.5, dt);
    std::vector<Tensor> r[2];
    for (int fused = 0; fused < 2; ++fused) {
      Tensor a = a0.clone(), b = b0.clone();
      a.set_requires_grad(true), b.set_requires_grad(true);
      Tensor y = fused ? ops::add_relu(a, b) : ops::relu(ops::add(a, b));
      autograd::backward(y, c);
      r[fused] = {y.detach(), a.grad(), b.grad()};
    }
    for (size_t i = 0; i < 3; ++i) test::check_close(r[1][i], r[0][i], 0, 0, std::string("add_relu ") + dtype_name(dt));
  }
}

TEST_CASE("nets train identically with and without the fused BatchNorm+ReLU") {
  // The same CNN1 and ResNet18 training steps, once as built (fuse_relu on
  // every BatchNorm followed by a ReLU) and once with fusion switched off:
  // on the CPU every weight after two Adam steps is bitwise the same.
  for (const char* name : {"cnn1", "resnet18"}) {
    CAPTURE(name);
    std::vector<std::vector<double>> weights[2];
    for (int fuse = 0; fuse < 2; ++fuse) {
      nets::NetOptions o;
      o.size = 32, o.seed = 4;
      auto net = nets::make_net(name, o);
      int fused_layers = 0;
      std::function<void(Module&)> visit = [&](Module& m) {
        if (auto* bn = dynamic_cast<BatchNorm2d*>(&m)) {
          fused_layers += bn->fuse_relu;
          if (!fuse) bn->fuse_relu = false;
        }
        for (auto& [n, child] : m.children()) visit(*child);
      };
      visit(*net);
      CHECK(fused_layers > 0);
      Adam opt(net->named_parameters(), 1e-3);
      std::mt19937_64 rng(9);
      const Tensor x = test::rand_tensor({3, 1, 32, 32}, rng, 0, 1, DType::f32);
      const Tensor y = Tensor::from_vector({1.0, 0.0, 1.0}, {3, 1});
      for (int step = 0; step < 2; ++step) {
        opt.zero_grad();
        autograd::backward(ops::bce_with_logits((*net)(x), y));
        opt.step();
      }
      for (const auto& [n, p] : net->state_dict()) weights[fuse].push_back(p.to_vector());
    }
    REQUIRE(weights[0].size() == weights[1].size());
    for (size_t i = 0; i < weights[0].size(); ++i) test::check_close(weights[1][i], weights[0][i], 0, 0, "weights");
  }
}
