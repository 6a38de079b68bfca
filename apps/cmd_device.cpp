// ctgrad device [--check] [--emulate]: which CUDA backend this binary has,
// the device it sees, and (--check) a smoke test that runs a few kernels on
// the device — conv2d forward/backward, linear, relu — against the CPU
// reference on the same random inputs. The first stage of a GPU session
// (bench/gpu_check.sh): if this fails, nothing after it is worth the lease.
#include <chrono>
#include <cmath>
#include <cstdio>

#include "apps/commands.h"
#include "engine/autograd.h"
#include "engine/module.h"
#include "engine/ops.h"
#include "kernels/cuda/impl.h"
#include "kernels/cuda/runtime.h"

namespace ctg::apps {

namespace {
// max |a − b| / (1 + |b|) over all elements: a relative difference that does
// not blow up near zero.
double max_rel_diff(const Tensor& a, const Tensor& b) {
  std::vector<double> x = a.to_vector(), y = b.to_vector();
  double worst = 0;
  for (size_t i = 0; i < x.size(); ++i) {
    const double d = std::fabs(x[i] - y[i]) / (1 + std::fabs(y[i]));
    worst = std::isnan(d) ? INFINITY : std::max(worst, d);
  }
  return worst;
}

struct Result {
  Tensor y, gx, gw;
};
// conv2d (odd shape, stride 2, padding) → relu → flatten → linear → sum; its
// value and the gradients of input and conv weight, on one device.
Result smoke_net(const Tensor& x0, const Tensor& w0, const Tensor& fc0, Device dev) {
  Tensor x = x0.to(dev).clone().set_requires_grad(true);
  Tensor w = w0.to(dev).clone().set_requires_grad(true);
  Tensor fc = fc0.to(dev);
  Tensor h = ops::relu(ops::conv2d(x, w, Tensor(), {2, 2, 1, 1}));
  Tensor y = ops::linear(h.reshape({h.size(0), -1}), fc, Tensor());
  autograd::backward(y, Tensor::full(y.shape(), 1.0).to(dev));
  return {y.to(Device::cpu), x.grad().to(Device::cpu), w.grad().to(Device::cpu)};
}
}  // namespace

static Registrar reg([](CLI::App& app) {
  auto* cmd = app.add_subcommand("device", "Show the CUDA backend and device; --check runs a kernel smoke test "
                                           "against the CPU");
  auto check = std::make_shared<bool>(false);
  auto emulate = std::make_shared<bool>(false);
  cmd->add_flag("--check", *check, "run conv2d/relu/linear forward and backward on the device against the CPU");
  cmd->add_flag("--emulate", *emulate, "use the CPU emulation (emulated builds only; same as CTGRAD_CUDA_EMULATE=1)");
  cmd->callback([=]() {
    if (*emulate) {
      if (!cuda::is_emulated()) throw Error("device --emulate: this build runs CUDA natively (no emulation)");
      cuda::set_emulation(true);
    }
    std::printf("backend: %s\n", cuda::is_emulated() ? "emulated (kernels/cuda/emu)" : "native (nvcc)");
    std::printf("device: %s\n", cuda::device_description().c_str());
    if (!*check) return;
    cuda::require_device("device --check");
    const auto t0 = std::chrono::steady_clock::now();
    Generator gen(11);
    Tensor x = Tensor::empty({3, 5, 37, 29}), w = Tensor::empty({7, 5, 3, 3});
    gen.uniform_(x, -1, 1);
    gen.uniform_(w, -0.5, 0.5);
    const int64_t feat = 7 * 19 * 15;  // conv output 19×15 at stride 2, padding 1
    Tensor fc = Tensor::empty({4, feat});
    gen.uniform_(fc, -0.1, 0.1);
    const Result want = smoke_net(x, w, fc, Device::cpu), got = smoke_net(x, w, fc, Device::cuda);
    cuda::synchronize();
    const double dy = max_rel_diff(got.y, want.y), dgx = max_rel_diff(got.gx, want.gx),
                 dgw = max_rel_diff(got.gw, want.gw);
    // float32 sums of up to ~3·10³ products in another order: 1e-4. TF32
    // operands (the GPU's default for our GEMMs) keep 10 mantissa bits: on the
    // grad-weight sums of 855 products the emulation measures 5e-2, so 0.15;
    // a wrong kernel is off by O(1).
    const bool tf32 = kernels::precision() == kernels::Precision::tf32;
    const double tol = tf32 ? 0.15 : 1e-4;
    const double ms = std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count();
    std::printf("check: conv2d+relu+linear forward %.2e, grad input %.2e, grad weight %.2e (max relative "
                "difference to the CPU; %s, tolerance %.2g), %.0f ms\n", dy, dgx, dgw,
                kernels::precision_name(kernels::precision()), tol, ms);
    const AllocatorStats st = cuda::allocator_stats();
    std::printf("allocator: %zu raw allocations, %zu cache hits\n", st.raw_allocs, st.cache_hits);
    if (!(dy <= tol && dgx <= tol && dgw <= tol))
      throw Error("device --check: the device's results differ from the CPU's beyond " + std::to_string(tol));
    std::printf("check: ok\n");
  });
});

}  // namespace ctg::apps
