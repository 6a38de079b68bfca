// The emulation is strict where a GPU is unforgiving (kernels/cuda/runtime_emu.cpp,
// kernels/cuda/emu/streams.h): each test plants the mistake a GPU would
// punish and shows that CI sees it too.
//   - host access of device memory is an error, in both builds;
//   - device memory nothing wrote reads as NaN (fresh or reused from the cache);
//   - work on a created stream runs only when waited for, so a missing wait
//     reads the poison, and a pinned source overwritten before the wait
//     corrupts the copy, as DMA from page-locked memory does.
// The stream and poison checks are about the emulation's model; on a real
// GPU (the native twin) they are skipped: there the same mistakes race.
#include <doctest/doctest.h>

#include <algorithm>
#include <cmath>
#include <cstring>

#include "engine/autograd.h"
#include "engine/ops.h"
#include "kernels/cuda/dialect.h"
#include "kernels/cuda/runtime.h"
#include "tests/test_util.h"

using namespace ctg;
using ctg::test::error_of;

namespace {
bool all_nan(const Tensor& t) {
  for (double v : t.to_vector())
    if (!std::isnan(v)) return false;
  return true;
}
Tensor ramp(int64_t n, double start) {
  std::vector<double> v((size_t)n);
  for (int64_t i = 0; i < n; ++i) v[(size_t)i] = start + (double)i;
  return Tensor::from_vector(v, {n});
}

// A planted kernel for the emulated stream tests: y[i] = 2·x[i].
CTG_GLOBAL void twice_kernel(const float* x, float* y, int n) {
  const int i = (int)(blockIdx.x * blockDim.x + threadIdx.x);
  if (i < n) y[i] = 2.f * x[i];
}
}  // namespace

TEST_CASE("cuda strict: host access of a cuda tensor is an error naming the tensor, in every build") {
  cuda::set_emulation(true);
  Tensor d = Tensor::zeros({3, 5}, DType::f32, Device::cuda);
  const std::string e1 = error_of([&] { (void)d.data<float>(); });
  CHECK(e1.find("host access to a cuda tensor ([3, 5] float32)") != std::string::npos);
  CHECK(e1.find(".to(Device::cpu)") != std::string::npos);
  CHECK(error_of([&] { (void)d.raw_data(); }).find("host access to a cuda tensor") != std::string::npos);
  // The other way round: a kernel handed host memory.
  Tensor h = Tensor::zeros({4});
  CHECK(error_of([&] { (void)h.device_data<float>(); }).find("device_data() of a cpu tensor ([4] float32)") !=
        std::string::npos);
  // What is allowed: copies, item(), to_vector(), the device pointer.
  CHECK(d.device_data<float>() != nullptr);
  CHECK(d.to(Device::cpu).data<float>()[14] == 0.f);
  CHECK(d.to_vector().size() == 15);
}

TEST_CASE("cuda strict: device memory that nothing wrote reads as NaN, fresh or reused") {
  cuda::set_emulation(true);
  if (!cuda::is_emulated()) return;  // a GPU poisons only with CTGRAD_CUDA_POISON=1
  Tensor fresh = Tensor::empty({257}, DType::f32, Device::cuda);
  CHECK(all_nan(fresh));
  {
    Tensor used = Tensor::full({257}, 3.0).to(Device::cuda);
    CHECK(used.to_vector()[100] == 3.0);
  }  // back to the caching allocator ...
  Tensor again = Tensor::empty({257}, DType::f32, Device::cuda);  // ... and handed out again
  CHECK(all_nan(again));
  CHECK(Tensor::zeros({9}, DType::f32, Device::cuda).to_vector()[8] == 0.0);  // zeros() still zeroes
  // The planted mistake: an op run on an input nobody wrote gives NaN, not
  // the stale values of a previous tensor, so a comparison with the CPU fails.
  // (relu propagates NaN as torch.relu does, on both devices.)
  CHECK(all_nan(ops::relu(Tensor::empty({33}, DType::f32, Device::cuda))));
  CHECK(all_nan(ops::relu(Tensor::full({5}, std::nan("")))));
}

TEST_CASE("cuda strict: fill_ on a device tensor is a kernel that writes every element") {
  cuda::set_emulation(true);
  // 70001 elements: more than one grid-stride pass of the capped grid, not a
  // multiple of the block; the emulation starts them NaN, so a missed one shows.
  for (int64_t n : {1, 255, 70001}) {
    Tensor t = Tensor::empty({n}, DType::f32, Device::cuda);
    t.fill_(1.5);
    const std::vector<double> v = t.to_vector();
    CHECK(std::count(v.begin(), v.end(), 1.5) == n);
  }
  // backward()'s implicit seed is filled on the device the same way.
  Tensor x = Tensor::full({3}, 2.0).to(Device::cuda);
  x.set_requires_grad(true);
  Tensor y = ops::bce_with_logits(x, Tensor::zeros({3}, DType::f32, Device::cuda));
  autograd::backward(y);
  for (double g : x.grad().to_vector()) CHECK(g == doctest::Approx(1.0 / (1.0 + std::exp(-2.0)) / 3.0));
}

TEST_CASE("cuda strict: an async copy on a created stream lands only once something waits for it") {
  cuda::set_emulation(true);
  if (!cuda::is_emulated()) return;
  const int64_t n = 1000;
  float* pinned = static_cast<float*>(cuda::pinned_alloc(n * sizeof(float)));
  const Tensor src = ramp(n, 1);
  std::memcpy(pinned, src.data<float>(), n * sizeof(float));
  cuda::Stream copy = cuda::create_stream();
  cuda::Event done = cuda::create_event();

  // The mistake: a kernel on the compute stream reads the copy's destination
  // without waiting on the copy's event — it sees the poison.
  Tensor dst = Tensor::empty({n}, DType::f32, Device::cuda);
  cuda::copy_h2d_async(dst.device_data<float>(), pinned, n * sizeof(float), copy);
  cuda::record_event(done, copy);
  CHECK(all_nan(ops::relu(dst)));
  // The fix: the compute stream waits, then reads the data.
  cuda::stream_wait_event(cuda::compute_stream(), done);
  CHECK(ops::relu(dst).to_vector()[999] == 1000.0);

  // A pinned source is read when the copy runs: overwriting it before the
  // wait changes what arrives (as DMA from page-locked memory does).
  Tensor dst2 = Tensor::empty({n}, DType::f32, Device::cuda);
  cuda::copy_h2d_async(dst2.device_data<float>(), pinned, n * sizeof(float), copy);
  cuda::record_event(done, copy);
  pinned[5] = -7.f;
  cuda::event_synchronize(done);
  CHECK(dst2.to_vector()[5] == -7.0);
  // A pageable source is staged at issue time, as the CUDA runtime does.
  std::vector<float> pageable(src.data<float>(), src.data<float>() + n);
  Tensor dst3 = Tensor::empty({n}, DType::f32, Device::cuda);
  cuda::copy_h2d_async(dst3.device_data<float>(), pageable.data(), n * sizeof(float), copy);
  pageable[5] = -7.f;
  cuda::synchronize();
  CHECK(dst3.to_vector()[5] == 6.0);

  cuda::destroy_event(done);
  cuda::destroy_stream(copy);
  cuda::pinned_free(pinned);
}

TEST_CASE("cuda strict: a kernel launched on a created stream runs when the stream is waited for") {
  cuda::set_emulation(true);
  if (!cuda::is_emulated()) return;  // the planted kernel is an emulated one
  const int n = 300;
  Tensor x = ramp(n, 0).to(Device::cuda), y = Tensor::empty({n}, DType::f32, Device::cuda);
  cuda::Stream side = cuda::create_stream();
  cuda::Event done = cuda::create_event();
  cuda::launch("twice_kernel", twice_kernel, dim3((n + 127) / 128), dim3(128), 0,
               static_cast<cudaStream_t>(side), x.device_data<float>(), y.device_data<float>(), n);
  cuda::record_event(done, side);
  CHECK(all_nan(y));  // not waited for: the kernel has not run
  cuda::event_synchronize(done);
  CHECK(y.to_vector()[299] == 598.0);
  cuda::destroy_event(done);
  cuda::destroy_stream(side);
}
