// CUDA kernels vs their CPU references: relu, sigmoid, add, dropout,
// bce_with_logits, and the fused Adam/SGD updates. Forward and backward go
// through the ops (the same autograd glue), on odd sizes that are not
// multiples of the 256-thread block. Tolerances: elementwise float32 math
// that differs only in the order of rounding — atol 1e-6, rtol 1e-5; exp-based
// kernels — rtol 1e-5 (expf on the GPU is within 2 ulp).
#include "engine/autograd.h"
#include "engine/ops.h"
#include "engine/optim.h"
#include "tests/cuda_check.h"

using namespace ctg;

namespace {
// y = op(x) and dL/dx for L = Σ c·y, on one device.
struct Result {
  Tensor y, gx;
};
Result run_unary(const std::function<Tensor(const Tensor&)>& op, const Tensor& x_cpu, const Tensor& c_cpu,
                 Device dev) {
  Tensor x = test::fresh_on(x_cpu, dev).set_requires_grad(true);
  Tensor y = op(x);
  autograd::backward(y, c_cpu.to(dev));
  return {y.to(Device::cpu), x.grad().to(Device::cpu)};
}
void check_unary(const char* name, const std::function<Tensor(const Tensor&)>& op, double lo, double hi,
                 double atol, double rtol) {
  std::mt19937_64 rng(42);
  for (Shape s : {Shape{1}, Shape{257}, Shape{3, 5, 7, 11}, Shape{2, 3, 37, 41}}) {
    Tensor x = test::rand_f32(s, rng, lo, hi), c = test::rand_f32(s, rng, 0.5, 1.5);
    Result want = run_unary(op, x, c, Device::cpu);
    test::for_each_schedule([&] {
      Result got = run_unary(op, x, c, Device::cuda);
      test::check_close(got.y, want.y, atol, rtol, std::string(name) + " forward");
      test::check_close(got.gx, want.gx, atol, rtol, std::string(name) + " backward");
    });
  }
}
}  // namespace

TEST_CASE("cuda vs cpu: relu forward and backward") {
  check_unary("relu", [](const Tensor& x) { return ops::relu(x); }, -1, 1, 0, 0);  // exact
}

TEST_CASE("cuda vs cpu: sigmoid forward and backward, including large |x|") {
  check_unary("sigmoid", [](const Tensor& x) { return ops::sigmoid(x); }, -30, 30, 1e-7, 1e-5);
}

TEST_CASE("cuda vs cpu: dropout gives the same mask on both devices") {
  check_unary("dropout", [](const Tensor& x) { return ops::dropout(x, 0.3, true, 1234); }, -1, 1, 1e-7, 1e-6);
}

TEST_CASE("cuda vs cpu: add, and a tensor added to itself") {
  std::mt19937_64 rng(7);
  Shape s{2, 3, 17, 19};
  Tensor a = test::rand_f32(s, rng), b = test::rand_f32(s, rng), c = test::rand_f32(s, rng, 0.5, 1.5);
  auto run = [&](Device dev) {
    Tensor ad = test::fresh_on(a, dev).set_requires_grad(true), bd = test::fresh_on(b, dev).set_requires_grad(true);
    Tensor y = ops::add(ops::add(ad, bd), ad);  // a used twice: its gradient is 2c
    autograd::backward(y, c.to(dev));
    return std::vector<Tensor>{y.to(Device::cpu), ad.grad().to(Device::cpu), bd.grad().to(Device::cpu)};
  };
  auto want = run(Device::cpu);
  test::for_each_schedule([&] {
    auto got = run(Device::cuda);
    test::check_close(got[0], want[0], 1e-6, 1e-6, "add forward");
    test::check_close(got[1], want[1], 1e-6, 1e-6, "add backward (a)");
    test::check_close(got[2], want[2], 1e-6, 1e-6, "add backward (b)");
  });
}

TEST_CASE("cuda vs cpu: bce_with_logits loss (a block reduction) and its gradient") {
  std::mt19937_64 rng(3);
  for (int64_t n : {1, 15, 300, 1000}) {  // 1000 > one pass of the 256-thread block
    Tensor z = test::rand_f32({n, 1}, rng, -40, 40);
    std::vector<double> yv;
    for (int64_t i = 0; i < n; ++i) yv.push_back((double)(rng() & 1));
    Tensor y = Tensor::from_vector(yv, {n, 1});
    auto run = [&](Device dev) {
      Tensor zd = test::fresh_on(z, dev).set_requires_grad(true);
      Tensor loss = ops::bce_with_logits(zd, y.to(dev));
      autograd::backward(loss);
      return std::make_pair(loss.to(Device::cpu), zd.grad().to(Device::cpu));
    };
    auto want = run(Device::cpu);
    CAPTURE(n);
    test::for_each_schedule([&] {
      auto got = run(Device::cuda);
      test::check_close(got.first, want.first, 1e-6, 1e-5, "bce_with_logits loss");
      test::check_close(got.second, want.second, 1e-9, 1e-5, "bce_with_logits gradient");
    });
  }
}

TEST_CASE("cuda vs cpu: fused Adam, AdamW and SGD updates over several steps") {
  std::mt19937_64 rng(9);
  Tensor p0 = test::rand_f32({1001}, rng), g0 = test::rand_f32({1001}, rng);
  auto run = [&](Device dev, int kind) {
    Tensor p = test::fresh_on(p0, dev).set_requires_grad(true);
    std::unique_ptr<Optimizer> opt;
    if (kind == 0) opt = std::make_unique<Adam>(NamedTensorList{{"p", p}}, 1e-2, 1e-4);
    if (kind == 1) opt = std::make_unique<Adam>(NamedTensorList{{"p", p}}, 1e-2, 1e-2, true);
    if (kind == 2) opt = std::make_unique<SGD>(NamedTensorList{{"p", p}}, 1e-2, 0.9, 1e-4);
    for (int step = 0; step < 3; ++step) {
      p.impl().grad = g0.to(dev).impl_ptr();
      opt->step();
    }
    return p.to(Device::cpu);
  };
  for (int kind = 0; kind < 3; ++kind) {
    CAPTURE(kind);
    Tensor want = run(Device::cpu, kind);
    test::for_each_schedule([&] { test::check_close(run(Device::cuda, kind), want, 1e-6, 1e-5, "optimizer update"); });
  }
}
