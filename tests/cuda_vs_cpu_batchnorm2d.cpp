// CUDA batchnorm2d (kernels/cuda/batchnorm2d.cu) vs the CPU reference, float32,
// in training and eval mode: y, the running statistics after the call, the
// saved mean/invstd, and gx, gγ, gβ accumulated into non-zero gradients.
// Tolerances:
// - mean, invstd, running stats: both devices sum in double and round once to
//   float, so they differ by at most an ulp or so: atol 1e-7, rtol 1e-6.
// - y: x·scale + bias with scale/bias formed in float on the GPU (in double on
//   the CPU) from the float invstd, a few ulp of |x·scale| ≤ ~30: atol 2e-5, rtol 1e-5.
// - gx: γ·invstd·(gy − mean terms), float terms that largely cancel, a few
//   ulp of the largest term: atol 2e-5, rtol 1e-5.
// - gγ, gβ: sums over M = N·H·W values in double on both sides, rounded once,
//   then added to the old gradient in float: atol 1e-5, rtol 1e-5.
// Shapes: M = 286 and 459 (fewer values than two strides of the 256-thread
// block), and 2·37·29 = 2146 values per channel (the block-stride loop runs 8–9 times).
#include "engine/autograd.h"
#include "engine/ops.h"
#include "kernels/batchnorm2d.h"
#include "tests/cuda_check.h"

using namespace ctg;

namespace {

constexpr double kMomentum = 0.1, kEps = 1e-5;

// One call's inputs (on the CPU); gamma/beta/running stats may be undefined,
// and a *_grad0 is the gradient present before backward (accumulation).
struct Case {
  Tensor x, gamma, beta, running_mean, running_var, c;
  Tensor x_grad0, gamma_grad0, beta_grad0;
  bool training = true;
  bool x_needs_grad = true, params_need_grad = true;
};

Case make_case(const Shape& s, bool training, std::mt19937_64& rng, double lo = -1, double hi = 1) {
  Case k;
  const Shape cs{s[1]};
  k.x = test::rand_f32(s, rng, lo, hi);
  k.gamma = test::rand_f32(cs, rng, 0.5, 2.0);
  k.beta = test::rand_f32(cs, rng);
  k.running_mean = test::rand_f32(cs, rng);
  k.running_var = test::rand_f32(cs, rng, 0.5, 2.0);
  k.c = test::rand_f32(s, rng, -1.5, 1.5);
  k.x_grad0 = test::rand_f32(s, rng);
  k.gamma_grad0 = test::rand_f32(cs, rng);
  k.beta_grad0 = test::rand_f32(cs, rng);
  k.training = training;
  return k;
}

// A leaf on `dev` holding a copy of t, with a copy of grad0 as its gradient.
Tensor leaf(const Tensor& t, const Tensor& grad0, bool requires_grad, Device dev) {
  if (!t.defined()) return Tensor();
  Tensor d = test::fresh_on(t, dev);
  if (requires_grad) {
    d.set_requires_grad(true);
    d.impl().grad = test::fresh_on(grad0, dev).impl_ptr();
  }
  return d;
}

struct Result {
  Tensor y, gx, ggamma, gbeta, running_mean, running_var;
};
Result run(const Case& k, Device dev) {
  Tensor x = leaf(k.x, k.x_grad0, k.x_needs_grad, dev);
  Tensor gamma = leaf(k.gamma, k.gamma_grad0, k.params_need_grad, dev);
  Tensor beta = leaf(k.beta, k.beta_grad0, k.params_need_grad, dev);
  Tensor rm = leaf(k.running_mean, Tensor(), false, dev), rv = leaf(k.running_var, Tensor(), false, dev);
  Tensor y = ops::batchnorm2d(x, gamma, beta, rm, rv, k.training, kMomentum, kEps);
  autograd::backward(y, k.c.to(dev));
  auto host = [](const Tensor& t, bool wanted) { return wanted && t.defined() ? t.to(Device::cpu) : Tensor(); };
  return {y.to(Device::cpu),
          host(x.grad(), k.x_needs_grad),
          host(gamma.defined() ? gamma.grad() : Tensor(), k.params_need_grad),
          host(beta.defined() ? beta.grad() : Tensor(), k.params_need_grad),
          host(rm, true),
          host(rv, true)};
}

void check_case(const Case& k) {
  const Result want = run(k, Device::cpu);
  test::for_each_schedule([&] {
    const Result got = run(k, Device::cuda);
    test::check_close(got.y, want.y, 2e-5, 1e-5, "batchnorm2d forward");
    if (want.running_mean.defined()) {
      test::check_close(got.running_mean, want.running_mean, 1e-7, 1e-6, "running_mean after the call");
      test::check_close(got.running_var, want.running_var, 1e-7, 1e-6, "running_var after the call");
    }
    if (want.gx.defined()) test::check_close(got.gx, want.gx, 2e-5, 1e-5, "batchnorm2d gx (accumulated)");
    if (want.ggamma.defined()) test::check_close(got.ggamma, want.ggamma, 1e-5, 1e-5, "gamma gradient");
    if (want.gbeta.defined()) test::check_close(got.gbeta, want.gbeta, 1e-5, 1e-5, "beta gradient");
  });
}

const std::vector<Shape> kShapes = {{2, 3, 13, 11}, {3, 5, 17, 9}, {2, 3, 37, 29}};

}  // namespace

TEST_CASE("cuda vs cpu: batchnorm2d training: y, running stats, gx, gamma and beta gradients") {
  std::mt19937_64 rng(31);
  for (const Shape& s : kShapes) {
    CAPTURE(shape_str(s));
    check_case(make_case(s, true, rng));
  }
  // |μ| ≫ σ: the shifted sums must not cancel on either device.
  CAPTURE("offset input");
  check_case(make_case({2, 3, 13, 11}, true, rng, 10, 12));
}

TEST_CASE("cuda vs cpu: batchnorm2d eval uses and keeps the running stats") {
  std::mt19937_64 rng(32);
  for (const Shape& s : kShapes) {
    CAPTURE(shape_str(s));
    Case k = make_case(s, false, rng);
    check_case(k);  // the running stats are compared after the call: unchanged on both
    k.params_need_grad = false;  // gx only: the elementwise eval backward, no reduction
    check_case(k);
  }
}

TEST_CASE("cuda vs cpu: batchnorm2d without affine, without running stats, or without gx") {
  std::mt19937_64 rng(33);
  const Shape s{3, 5, 17, 9};
  Case k = make_case(s, true, rng);
  k.gamma = k.beta = Tensor();  // affine=False: γ = 1, β = 0
  check_case(k);
  k = make_case(s, true, rng);
  k.running_mean = k.running_var = Tensor();  // track_running_stats=False
  check_case(k);
  k = make_case(s, true, rng);
  k.x_needs_grad = false;  // gγ and gβ only (the first layer's input needs no gradient)
  check_case(k);
}

TEST_CASE("cuda vs cpu: batchnorm2d saved mean and invstd") {
  // The op keeps these to itself; the entry points are called directly.
  std::mt19937_64 rng(34);
  const Shape s{2, 3, 37, 29};
  const int64_t N = s[0], C = s[1], HW = s[2] * s[3];
  for (bool training : {true, false}) {
    CAPTURE(training);
    const Case k = make_case(s, training, rng, -3, 5);
    auto stats = [&](Device dev) {
      Tensor x = test::fresh_on(k.x, dev), rm = test::fresh_on(k.running_mean, dev),
             rv = test::fresh_on(k.running_var, dev), y = Tensor::empty(s, DType::f32, dev),
             mean = Tensor::empty({C}, DType::f32, dev), invstd = Tensor::empty({C}, DType::f32, dev);
      if (dev == Device::cuda)
        kernels::batchnorm2d_forward_cuda(x.device_data<float>(), nullptr, nullptr, rm.device_data<float>(), rv.device_data<float>(),
                                          y.device_data<float>(), mean.device_data<float>(), invstd.device_data<float>(), N, C, HW,
                                          training, kMomentum, kEps);
      else
        kernels::batchnorm2d_forward_cpu(x.data<float>(), (const float*)nullptr, (const float*)nullptr,
                                         rm.data<float>(), rv.data<float>(), y.data<float>(), mean.data<float>(),
                                         invstd.data<float>(), N, C, HW, training, kMomentum, kEps);
      return std::make_pair(mean.to(Device::cpu), invstd.to(Device::cpu));
    };
    const auto want = stats(Device::cpu);
    test::for_each_schedule([&] {
      const auto got = stats(Device::cuda);
      test::check_close(got.first, want.first, 1e-7, 1e-6, "saved mean");
      test::check_close(got.second, want.second, 1e-7, 1e-6, "saved invstd");
    });
  }
}
