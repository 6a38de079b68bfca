// CUDA batchnorm2d (kernels/cuda/batchnorm2d.cu) vs the CPU reference, float32:
// the saved mean and invstd, which the op keeps to itself, through the kernel
// entry points. Both devices sum in double and round once to float, so they
// differ by at most an ulp or so: atol 1e-7, rtol 1e-6. The op's own cases
// (y, running statistics, gx, gγ, gβ in training and eval mode, with and
// without affine parameters or running statistics) are in the op table
// (engine/op_table/norm_pool.cpp, run by tests/op_table_cuda.cpp).
#include "kernels/batchnorm2d.h"
#include "tests/cuda_check.h"

using namespace ctg;

namespace {
constexpr double kMomentum = 0.1, kEps = 1e-5;
}  // namespace

TEST_CASE("cuda vs cpu: batchnorm2d saved mean and invstd") {
  // The op keeps these to itself; the entry points are called directly.
  std::mt19937_64 rng(34);
  const Shape s{2, 3, 37, 29};
  const int64_t N = s[0], C = s[1], HW = s[2] * s[3];
  for (bool training : {true, false}) {
    CAPTURE(training);
    const Tensor x0 = test::rand_f32(s, rng, -3, 5), rm0 = test::rand_f32({C}, rng),
                 rv0 = test::rand_f32({C}, rng, 0.5, 2.0);
    auto stats = [&](Device dev) {
      Tensor x = test::fresh_on(x0, dev), rm = test::fresh_on(rm0, dev), rv = test::fresh_on(rv0, dev);
      Tensor y = Tensor::empty(s, DType::f32, dev), mean = Tensor::empty({C}, DType::f32, dev),
             invstd = Tensor::empty({C}, DType::f32, dev);
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
