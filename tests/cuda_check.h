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

#include "engine/tensor.h"
#include "kernels/cuda/emu/schedule.h"
#include "kernels/cuda/runtime.h"

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
inline Tensor fresh_on(const Tensor& t, Device dev) { return dev == Device::cpu ? t.clone() : t.to(dev); }

// Uniform float32 tensor on the CPU in [lo, hi) (never all zeros).
inline Tensor rand_f32(const Shape& s, std::mt19937_64& rng, double lo = -1, double hi = 1) {
  std::uniform_real_distribution<double> u(lo, hi);
  std::vector<double> v((size_t)shape_numel(s));
  for (double& x : v) x = u(rng);
  return Tensor::from_vector(v, s, DType::f32);
}

// |a − b| ≤ atol + rtol·|b| elementwise (b is the CPU reference); on failure
// prints the largest difference and the first mismatches.
inline void check_close(const Tensor& got, const Tensor& want, double atol, double rtol, const std::string& what) {
  REQUIRE_MESSAGE(got.defined(), what << ": no result");
  REQUIRE_MESSAGE(got.shape() == want.shape(), what << ": shape " << shape_str(got.shape()) << " vs "
                                                    << shape_str(want.shape()));
  std::vector<double> a = got.to_vector(), b = want.to_vector();
  double worst = 0;
  size_t worst_i = 0, bad = 0;
  std::ostringstream first;
  for (size_t i = 0; i < a.size(); ++i) {
    double d = std::fabs(a[i] - b[i]);
    if (std::isnan(d)) d = INFINITY;  // a NaN on either side is the worst difference
    if (!(d <= atol + rtol * std::fabs(b[i]))) {
      if (bad < 5) first << "  [" << i << "] cuda " << a[i] << " cpu " << b[i] << "\n";
      ++bad;
    }
    if (d > worst) worst = d, worst_i = i;
  }
  INFO(what << " " << shape_str(want.shape()) << ": " << bad << " mismatches (atol " << atol << ", rtol " << rtol
            << "), largest difference " << worst << " at " << worst_i << "\n"
            << first.str());
  CHECK(bad == 0);
}

}  // namespace ctg::test
