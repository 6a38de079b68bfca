// linear: CUDA (kernels/cuda/linear.cu, on our SGEMM) vs the CPU reference
// (kernels/cpu/linear.cpp, OpenBLAS) in float32, forward and backward, with and
// without bias, through the kernel entry points (gradients pre-filled with
// random values: backward must add to them) and through ops::linear (the
// autograd glue and its device dispatch).
//
// Tolerance: every output is a sum of K products of values in [-1, 1) — K = I
// for y, O for gx, N for gW and gb — rounded in a different order on the two
// sides; the error grows like √K·u·|partial sums| (u = 6e-8), so atol =
// 1e-5·√K and rtol = 1e-4 hold it with a wide margin while a missing or doubled
// term (≈ 0.25) is far outside. See tests/cuda_vs_cpu_gemm.cpp.
#include <algorithm>
#include <cmath>

#include "engine/autograd.h"
#include "engine/ops.h"
#include "kernels/linear.h"
#include "tests/cuda_check.h"

using namespace ctg;

namespace {

struct Shape3 {
  int64_t N, I, O;
};

double atol_for(const Shape3& s) { return 1e-5 * std::sqrt((double)std::max({s.N, s.I, s.O})); }

// The tensor's elements for the kernel of its device (nullptr when undefined).
float* ptr(const Tensor& t) {
  return !t.defined() ? nullptr : t.device() == Device::cuda ? t.device_data<float>() : t.data<float>();
}

// Outputs of one forward and one backward on `dev`: y, gx, gW, gb (gradients
// start from the given values, undefined ones are not requested).
std::vector<Tensor> run_kernels(const Shape3& s, const Tensor& x, const Tensor& w, const Tensor& b, const Tensor& gy,
                                const Tensor& gx0, const Tensor& gw0, const Tensor& gb0, Device dev) {
  auto on = [&](const Tensor& t) { return t.defined() ? test::fresh_on(t, dev) : Tensor(); };
  Tensor xd = on(x), wd = on(w), bd = on(b), gyd = on(gy), gx = on(gx0), gw = on(gw0), gb = on(gb0);
  Tensor y = Tensor::empty({s.N, s.O}, DType::f32, dev);
  if (dev == Device::cuda) {
    kernels::linear_forward_cuda(ptr(xd), ptr(wd), ptr(bd), ptr(y), s.N, s.I, s.O);
    kernels::linear_backward_cuda(ptr(xd), ptr(wd), ptr(gyd), ptr(gx), ptr(gw), ptr(gb), s.N, s.I, s.O);
  } else {
    kernels::linear_forward_cpu<float>(ptr(xd), ptr(wd), ptr(bd), ptr(y), s.N, s.I, s.O);
    kernels::linear_backward_cpu<float>(ptr(xd), ptr(wd), ptr(gyd), ptr(gx), ptr(gw), ptr(gb), s.N, s.I, s.O);
  }
  std::vector<Tensor> out;
  for (const Tensor& t : {y, gx, gw, gb}) out.push_back(t.defined() ? t.to(Device::cpu) : Tensor());
  return out;
}

}  // namespace

TEST_CASE("cuda vs cpu: linear kernels forward and backward (accumulating), with and without bias") {
  std::mt19937_64 rng(21);
  // (2, 1000, 3): one small output tile and a long K — the forward GEMM splits K
  // across blocks by itself (the study's Dense net in miniature).
  for (Shape3 s : {Shape3{3, 70, 5}, Shape3{1, 1, 1}, Shape3{2, 1000, 3}, Shape3{67, 9, 66}})
    for (int variant = 0; variant < 3; ++variant) {
      const bool bias = variant != 1, all_grads = variant != 2;  // variant 2: only gW and gb
      Tensor x = test::rand_f32({s.N, s.I}, rng), w = test::rand_f32({s.O, s.I}, rng);
      Tensor b = bias ? test::rand_f32({s.O}, rng) : Tensor(), gy = test::rand_f32({s.N, s.O}, rng);
      Tensor gx0 = all_grads ? test::rand_f32({s.N, s.I}, rng) : Tensor(), gw0 = test::rand_f32({s.O, s.I}, rng);
      Tensor gb0 = bias ? test::rand_f32({s.O}, rng) : Tensor();
      auto want = run_kernels(s, x, w, b, gy, gx0, gw0, gb0, Device::cpu);
      CAPTURE(s.N); CAPTURE(s.I); CAPTURE(s.O); CAPTURE(bias); CAPTURE(all_grads);
      test::for_each_schedule([&] {
        auto got = run_kernels(s, x, w, b, gy, gx0, gw0, gb0, Device::cuda);
        const char* names[] = {"linear forward y", "linear backward gx", "linear backward gW", "linear backward gb"};
        for (int i = 0; i < 4; ++i)
          if (want[i].defined()) test::check_close(got[i], want[i], atol_for(s), 1e-4, names[i]);
      });
    }
}

TEST_CASE("cuda vs cpu: ops::linear dispatches forward and backward to the CUDA kernels") {
  std::mt19937_64 rng(22);
  const Shape3 s{3, 70, 5};
  for (bool bias : {true, false}) {
    Tensor x = test::rand_f32({s.N, s.I}, rng), w = test::rand_f32({s.O, s.I}, rng);
    Tensor b = test::rand_f32({s.O}, rng), c = test::rand_f32({s.N, s.O}, rng, 0.5, 1.5);
    auto run = [&](Device dev) {
      Tensor xd = test::fresh_on(x, dev).set_requires_grad(true), wd = test::fresh_on(w, dev).set_requires_grad(true);
      Tensor bd = bias ? test::fresh_on(b, dev).set_requires_grad(true) : Tensor();
      Tensor y = ops::linear(xd, wd, bd);
      CHECK(y.device() == dev);
      autograd::backward(y, c.to(dev));  // L = Σ c·y
      std::vector<Tensor> out{y.to(Device::cpu), xd.grad().to(Device::cpu), wd.grad().to(Device::cpu)};
      if (bias) out.push_back(bd.grad().to(Device::cpu));
      return out;
    };
    auto want = run(Device::cpu);
    CAPTURE(bias);
    test::for_each_schedule([&] {
      auto got = run(Device::cuda);
      const char* names[] = {"ops::linear y", "ops::linear dL/dx", "ops::linear dL/dW", "ops::linear dL/db"};
      for (size_t i = 0; i < want.size(); ++i) test::check_close(got[i], want[i], atol_for(s), 1e-4, names[i]);
    });
  }
}
