// Optimisers against hand-computed updates (PyTorch's formulas).
#include <doctest/doctest.h>

#include <cmath>

#include "engine/optim.h"

using namespace ctg;

namespace {
// A one-parameter "model": p with a gradient we set by hand.
Tensor param(std::vector<double> v) {
  Tensor p = Tensor::from_vector(v, {(int64_t)v.size()}, DType::f64);
  p.set_requires_grad(true);
  return p;
}
void set_grad(Tensor& p, std::vector<double> g) {
  p.impl().grad = Tensor::from_vector(g, p.shape(), DType::f64).impl_ptr();
}
}  // namespace

TEST_CASE("SGD with momentum and weight decay: two steps by hand") {
  Tensor p = param({1.0, -2.0});
  SGD opt({{"p", p}}, /*lr*/ 0.1, /*momentum*/ 0.9, /*wd*/ 0.01);
  set_grad(p, {0.5, 0.25});
  opt.step();
  // d = g + λp = (0.51, 0.23); b = d; p = p − 0.1·b
  CHECK(p.at(0) == doctest::Approx(1.0 - 0.1 * 0.51).epsilon(1e-14));
  CHECK(p.at(1) == doctest::Approx(-2.0 - 0.1 * 0.23).epsilon(1e-14));
  double p0 = p.at(0), b0 = 0.51;
  set_grad(p, {0.5, 0.25});
  opt.step();
  double d = 0.5 + 0.01 * p0, b = 0.9 * b0 + d;
  CHECK(p.at(0) == doctest::Approx(p0 - 0.1 * b).epsilon(1e-14));
}

TEST_CASE("Adam: first step moves by lr·g/(|g|+eps) - second step by the bias-corrected formula") {
  Tensor p = param({1.0, -1.0, 0.5});
  Adam opt({{"p", p}}, /*lr*/ 0.01, /*wd*/ 0.0);
  set_grad(p, {0.2, -3.0, 1e-3});
  opt.step();
  CHECK(p.at(0) == doctest::Approx(1.0 - 0.01 * 0.2 / (0.2 + 1e-8)).epsilon(1e-12));
  CHECK(p.at(1) == doctest::Approx(-1.0 + 0.01 * 3.0 / (3.0 + 1e-8)).epsilon(1e-12));
  double before = p.at(0);
  set_grad(p, {0.1, 0, 0});
  opt.step();
  double m = 0.9 * 0.1 * 0.2 + 0.1 * 0.1, v = 0.999 * 0.001 * 0.04 + 0.001 * 0.01;
  double mhat = m / (1 - 0.81), vhat = v / (1 - 0.999 * 0.999);
  CHECK(p.at(0) == doctest::Approx(before - 0.01 * mhat / (std::sqrt(vhat) + 1e-8)).epsilon(1e-10));
  CHECK(opt.steps() == 2);
}

TEST_CASE("Adam L2 decay adds λp to the gradient - AdamW shrinks the weight instead") {
  Tensor a = param({2.0}), b = param({2.0});
  Adam adam({{"a", a}}, 0.1, 0.5, false), adamw({{"b", b}}, 0.1, 0.5, true);
  set_grad(a, {0.0});
  set_grad(b, {0.0});
  adam.step();
  adamw.step();
  // Adam: g' = 0 + 0.5·2 = 1 → moves by lr·1/(1+eps). AdamW: p·(1 − 0.1·0.5), then no move (g = 0).
  CHECK(a.at(0) == doctest::Approx(2.0 - 0.1 / (1 + 1e-8)).epsilon(1e-12));
  CHECK(b.at(0) == doctest::Approx(2.0 * 0.95).epsilon(1e-12));
}

TEST_CASE("parameters without a gradient are left alone") {
  Tensor p = param({3.0});
  Adam opt({{"p", p}}, 0.1, 0.1);
  opt.step();
  CHECK(p.at(0) == 3.0);
}

TEST_CASE("ExponentialLR multiplies the learning rate by gamma each epoch") {
  Tensor p = param({1.0});
  SGD opt({{"p", p}}, 5e-3);
  ExponentialLR sched(opt, 0.95);
  for (int e = 0; e < 3; ++e) sched.step();
  CHECK(opt.lr() == doctest::Approx(5e-3 * 0.95 * 0.95 * 0.95).epsilon(1e-15));
  CHECK(sched.epoch() == 3);
}

TEST_CASE("optimizer state dict: a restored Adam continues exactly like the original") {
  Tensor p1 = param({1.0, 2.0}), p2 = param({1.0, 2.0});
  Adam a1({{"w", p1}}, 0.05, 1e-3);
  set_grad(p1, {0.3, -0.7});
  a1.step();
  // Copy parameters and optimiser state into a fresh optimiser.
  p2.copy_(p1);
  Adam a2({{"w", p2}}, 0.999, 1e-3);  // wrong lr on purpose: the state dict restores it
  a2.load_state_dict(a1.state_dict());
  CHECK(a2.lr() == a1.lr());
  for (int i = 0; i < 3; ++i) {
    set_grad(p1, {0.1 * i, 0.2});
    set_grad(p2, {0.1 * i, 0.2});
    a1.step();
    a2.step();
  }
  CHECK(p1.to_vector() == p2.to_vector());
  CHECK_THROWS_AS(a2.load_state_dict({}), Error);
}
