// Helpers for the CUDA-vs-CPU tests (tests/cuda_vs_cpu_*.cpp).
//
// Every CUDA kernel is checked against its CPU reference in float32 on fresh
// random inputs and odd shapes. In the emulated build (no GPU) each check runs
// under several thread orders (in order, reversed, shuffled) and all must
// agree with the CPU, so a missing __syncthreads fails a test; on a GPU the
// same tests run natively (the schedules are then irrelevant).
#pragma once
#include <doctest/doctest.h>

#include <cmath>
#include <functional>
#include <random>
#include <sstream>
#include <vector>

#include "engine/op_table.h"
#include "engine/tensor.h"
#include "kernels/cuda/emu/schedule.h"
#include "kernels/cuda/runtime.h"
#include "tests/test_util.h"

namespace ctg::test {

// Runs `body` once per schedule (emulation) or once (native GPU).
inline void for_each_schedule(const std::function<void()>& body) {
  cuda::set_emulation(true);
  REQUIRE_MESSAGE(cuda::available(), cuda::device_description());
  if (!cuda::is_emulated()) {
    body();
    return;
  }
  for (const auto& s : cuda::emu::test_schedules(/*seed*/ 5)) {
    cuda::emu::ScopedSchedule scope(s);
    CAPTURE(s.name());
    body();
  }
}

// A fresh copy of `t` on `dev` (Tensor::to returns the same tensor when it is
// already there, and the tests must not share leaves between runs).
// An undefined tensor stays undefined (an optional operand such as a bias).
inline Tensor fresh_on(const Tensor& t, Device dev) {
  if (!t.defined()) return Tensor();
  return dev == Device::cpu ? t.clone() : t.to(dev);
}

// The float32 elements of `t` for the kernel of its device (nullptr when undefined):
// what a test passes to a kernel entry point directly.
inline float* ptr(const Tensor& t) {
  return !t.defined() ? nullptr : t.device() == Device::cuda ? t.device_data<float>() : t.data<float>();
}

// Uniform float32 tensor on the CPU in [lo, hi) (never all zeros).
inline Tensor rand_f32(const Shape& s, std::mt19937_64& rng, double lo = -1, double hi = 1) {
  return op_table::uniform(s, rng, lo, hi, DType::f32);
}

// check_close (|a − b| ≤ atol + rtol·|b|, b the CPU reference) is in tests/test_util.h.

// The study's conv layer types at a small odd size (x 2x3x11x13 -> 5 channels):
// 3×3 same, the CNN's 5×5 stride 3, ResNet's 7×7 stride 2 stem on one channel,
// its 1×1 stride 2 downsample. The kernel-level CUDA tests start from these.
inline std::vector<ConvConf> study_conv_layers() {
  return {{2, 3, 11, 13, 5, 3, 3, 1, 1, 1, 1, false, "k3 s1 p1"},
          {2, 3, 11, 13, 5, 5, 5, 3, 3, 3, 3, false, "k5 s3 p3 (the study's CNN)"},
          {2, 1, 11, 13, 5, 7, 7, 2, 2, 3, 3, false, "k7 s2 p3 C=1 (ResNet stem)"},
          {2, 3, 11, 13, 5, 1, 1, 2, 2, 0, 0, false, "k1 s2 p0 (downsample)"}};
}

}  // namespace ctg::test
