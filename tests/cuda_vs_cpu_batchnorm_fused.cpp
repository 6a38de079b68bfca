// The memory-bound kernels of issue 15 (kernels/cuda/batchnorm2d_split.cu,
// kernels/cuda/add_relu.cu):
//  - batchnorm2d with each channel split over several blocks vs the CPU
//    reference (forward statistics, running statistics, y; backward gx, gγ, gβ)
//    for several split counts, and vs the one-block CUDA kernels;
//  - each fused kernel vs its unfused twin on the same device: BN+ReLU forward
//    vs split BN then relu.cu; ReLU-backward+BN-backward vs relu.cu's backward
//    into a zeroed buffer then split BN backward; add+ReLU vs add.cu then relu.cu.
//    The twins do the same float operations, so they must agree exactly.
// Tolerance against the CPU: sums are in double on both sides and differ only
// in order; the float results then differ by a few float ulps: atol 1e-5, rtol 1e-4.
#include <limits>

#include "kernels/add.h"
#include "kernels/batchnorm2d.h"
#include "kernels/relu.h"
#include "tests/cuda_check.h"

using namespace ctg;

namespace {

using test::ptr;
Tensor on_cuda(const Tensor& t) { return test::fresh_on(t, Device::cuda); }
Tensor zeros_cuda(const Shape& s) {
  Tensor t = Tensor::empty(s, DType::f32, Device::cuda);  // NaN-poisoned until filled
  t.fill_(0.0);
  return t;
}
void check_equal(const Tensor& a, const Tensor& b, const std::string& what) {
  test::check_close(a.to(Device::cpu), b.to(Device::cpu), 0, 0, what);
}

}  // namespace

TEST_CASE("cuda vs cpu: batchnorm2d split over blocks per channel, forward and backward, fused with relu") {
  const int64_t N = 3, C = 5, H = 7, W = 9, HW = H * W;
  std::mt19937_64 rng(51);
  Tensor x = test::rand_f32({N, C, H, W}, rng, 2, 5);  // |μ| ≫ σ: the shift matters
  Tensor gamma = test::rand_f32({C}, rng, 0.5, 1.5), beta = test::rand_f32({C}, rng);
  Tensor rm0 = test::rand_f32({C}, rng), rv0 = test::rand_f32({C}, rng, 0.5, 2);
  Tensor gy = test::rand_f32({N, C, H, W}, rng), gx0 = test::rand_f32({N, C, H, W}, rng);
  Tensor gg0 = test::rand_f32({C}, rng), gb0 = test::rand_f32({C}, rng);
  const double momentum = 0.1, eps = 1e-5;

  // CPU reference.
  Tensor y = Tensor::empty({N, C, H, W}, DType::f32, Device::cpu), mean = Tensor::empty({C}, DType::f32, Device::cpu),
         invstd = Tensor::empty({C}, DType::f32, Device::cpu);
  Tensor rm = rm0.clone(), rv = rv0.clone(), gx = gx0.clone(), gg = gg0.clone(), gb = gb0.clone();
  kernels::batchnorm2d_forward_cpu<float>(ptr(x), ptr(gamma), ptr(beta), ptr(rm), ptr(rv), ptr(y), ptr(mean),
                                          ptr(invstd), N, C, HW, true, momentum, eps);
  kernels::batchnorm2d_backward_cpu<float>(ptr(x), ptr(gamma), ptr(mean), ptr(invstd), ptr(gy), ptr(gx), ptr(gg),
                                           ptr(gb), N, C, HW, true);

  for (int64_t splits : {int64_t(1), int64_t(4), int64_t(7), int64_t(0)}) {
    CAPTURE(splits);
    test::for_each_schedule([&] {
      Tensor xd = on_cuda(x), gd = on_cuda(gamma), bd = on_cuda(beta), rmd = on_cuda(rm0), rvd = on_cuda(rv0);
      Tensor yd = Tensor::empty({N, C, H, W}, DType::f32, Device::cuda), md = Tensor::empty({C}, DType::f32, Device::cuda),
             id = Tensor::empty({C}, DType::f32, Device::cuda);
      kernels::batchnorm2d_forward_split_cuda(ptr(xd), ptr(gd), ptr(bd), ptr(rmd), ptr(rvd), ptr(yd), ptr(md), ptr(id),
                                              N, C, HW, momentum, eps, false, splits);
      test::check_close(yd.to(Device::cpu), y, 1e-5, 1e-4, "split bn y");
      test::check_close(md.to(Device::cpu), mean, 1e-5, 1e-4, "split bn mean");
      test::check_close(id.to(Device::cpu), invstd, 1e-5, 1e-4, "split bn invstd");
      test::check_close(rmd.to(Device::cpu), rm, 1e-5, 1e-4, "split bn running_mean");
      test::check_close(rvd.to(Device::cpu), rv, 1e-5, 1e-4, "split bn running_var");
      Tensor gyd = on_cuda(gy), gxd = on_cuda(gx0), ggd = on_cuda(gg0), gbd = on_cuda(gb0);
      kernels::batchnorm2d_backward_split_cuda(ptr(xd), ptr(gd), ptr(md), ptr(id), ptr(gyd), nullptr, ptr(gxd),
                                               ptr(ggd), ptr(gbd), N, C, HW, true, splits);
      test::check_close(gxd.to(Device::cpu), gx, 1e-5, 1e-4, "split bn gx");
      test::check_close(ggd.to(Device::cpu), gg, 1e-5, 1e-4, "split bn ggamma");
      test::check_close(gbd.to(Device::cpu), gb, 1e-5, 1e-4, "split bn gbeta");

      // The same split against the one-block kernels (same device, same stats formula).
      Tensor y1 = Tensor::empty({N, C, H, W}, DType::f32, Device::cuda), m1 = Tensor::empty({C}, DType::f32, Device::cuda),
             i1 = Tensor::empty({C}, DType::f32, Device::cuda);
      kernels::batchnorm2d_forward_cuda(ptr(xd), ptr(gd), ptr(bd), nullptr, nullptr, ptr(y1), ptr(m1), ptr(i1), N, C,
                                        HW, true, momentum, eps);
      test::check_close(y1.to(Device::cpu), yd.to(Device::cpu), 1e-6, 1e-5, "split vs one-block bn y");

      // Fused BN+ReLU forward == split BN then relu.cu (exactly: the same float ops).
      Tensor yr = Tensor::empty({N, C, H, W}, DType::f32, Device::cuda), yf = Tensor::empty({N, C, H, W}, DType::f32, Device::cuda);
      Tensor mf = Tensor::empty({C}, DType::f32, Device::cuda), inf = Tensor::empty({C}, DType::f32, Device::cuda);
      kernels::relu_forward_cuda(ptr(yd), ptr(yr), N * C * HW);
      kernels::batchnorm2d_forward_split_cuda(ptr(xd), ptr(gd), ptr(bd), nullptr, nullptr, ptr(yf), ptr(mf), ptr(inf), N,
                                              C, HW, momentum, eps, true, splits);
      check_equal(yf, yr, "fused bn+relu forward vs bn, relu");
      // Fused ReLU-backward+BN-backward == relu backward into zeros, then BN backward.
      Tensor g_relu = zeros_cuda({N, C, H, W});
      kernels::relu_backward_cuda(ptr(yr), ptr(gyd), ptr(g_relu), N * C * HW, true);
      Tensor gx_u = on_cuda(gx0), gg_u = on_cuda(gg0), gb_u = on_cuda(gb0);
      kernels::batchnorm2d_backward_split_cuda(ptr(xd), ptr(gd), ptr(md), ptr(id), ptr(g_relu), nullptr, ptr(gx_u),
                                               ptr(gg_u), ptr(gb_u), N, C, HW, true, splits);
      Tensor gx_f = on_cuda(gx0), gg_f = on_cuda(gg0), gb_f = on_cuda(gb0);
      kernels::batchnorm2d_backward_split_cuda(ptr(xd), ptr(gd), ptr(md), ptr(id), ptr(gyd), ptr(yr), ptr(gx_f),
                                               ptr(gg_f), ptr(gb_f), N, C, HW, true, splits);
      check_equal(gx_f, gx_u, "fused relu+bn backward gx vs unfused");
      check_equal(gg_f, gg_u, "fused relu+bn backward ggamma vs unfused");
      check_equal(gb_f, gb_u, "fused relu+bn backward gbeta vs unfused");
    });
  }
}

TEST_CASE("cuda vs cuda: add+relu fused equals add then relu, forward and backward") {
  const int64_t n = 1237;
  std::mt19937_64 rng(52);
  Tensor a = test::rand_f32({n}, rng), b = test::rand_f32({n}, rng), gy = test::rand_f32({n}, rng);
  Tensor ga0 = test::rand_f32({n}, rng), gb0 = test::rand_f32({n}, rng);
  test::for_each_schedule([&] {
    Tensor ad = on_cuda(a), bd = on_cuda(b), gyd = on_cuda(gy);
    Tensor s = Tensor::empty({n}, DType::f32, Device::cuda), yu = Tensor::empty({n}, DType::f32, Device::cuda),
           yf = Tensor::empty({n}, DType::f32, Device::cuda);
    kernels::add_forward_cuda(ptr(ad), ptr(bd), ptr(s), n);
    kernels::relu_forward_cuda(ptr(s), ptr(yu), n);
    kernels::add_relu_forward_cuda(ptr(ad), ptr(bd), ptr(yf), n);
    check_equal(yf, yu, "add+relu forward");
    // Unfused backward: relu backward into zeros, then add's backward into each input.
    Tensor g = zeros_cuda({n}), ga_u = on_cuda(ga0), gb_u = on_cuda(gb0), ga_f = on_cuda(ga0), gb_f = on_cuda(gb0);
    kernels::relu_backward_cuda(ptr(yu), ptr(gyd), ptr(g), n, true);
    kernels::add_backward_cuda(ptr(g), ptr(ga_u), n);
    kernels::add_backward_cuda(ptr(g), ptr(gb_u), n);
    kernels::add_relu_backward_cuda(ptr(yf), ptr(gyd), ptr(ga_f), ptr(gb_f), n, true, true);
    check_equal(ga_f, ga_u, "add+relu backward ga");
    check_equal(gb_f, gb_u, "add+relu backward gb");
    // First writes into fresh (NaN-poisoned) device buffers store g itself,
    // as relu's first write does: nothing of the poison may survive.
    Tensor g1 = Tensor::empty({n}, DType::f32, Device::cuda), ga1 = Tensor::empty({n}, DType::f32, Device::cuda),
           gb1 = Tensor::empty({n}, DType::f32, Device::cuda);
    kernels::relu_backward_cuda(ptr(yu), ptr(gyd), ptr(g1), n, false);
    kernels::add_relu_backward_cuda(ptr(yf), ptr(gyd), ptr(ga1), ptr(gb1), n, false, false);
    Tensor gz = zeros_cuda({n});
    kernels::relu_backward_cuda(ptr(yu), ptr(gyd), ptr(gz), n, true);
    check_equal(g1, gz, "relu first-write backward vs accumulate into zeros");
    check_equal(ga1, g1, "add+relu first-write backward ga");
    check_equal(gb1, g1, "add+relu first-write backward gb");
    // One buffer for both inputs (add_relu(x, x)): store then add, 2g.
    Tensor gab = Tensor::empty({n}, DType::f32, Device::cuda), g2 = zeros_cuda({n});
    kernels::add_relu_backward_cuda(ptr(yf), ptr(gyd), ptr(gab), ptr(gab), n, false, true);
    kernels::add_backward_cuda(ptr(g1), ptr(g2), n);
    kernels::add_backward_cuda(ptr(g1), ptr(g2), n);
    check_equal(gab, g2, "add+relu first-write backward into one buffer for both inputs");
    // And against the definition on the CPU: ga = ga0 + gy·[a + b > 0].
    std::vector<double> av = a.to_vector(), bv = b.to_vector(), gv = gy.to_vector(), g0 = ga0.to_vector(), want(n);
    for (int64_t i = 0; i < n; ++i) want[i] = g0[i] + ((float)av[i] + (float)bv[i] > 0.f ? gv[i] : 0.0);
    test::check_close(ga_f.to(Device::cpu), Tensor::from_vector(want, {n}), 1e-6, 1e-6, "add+relu backward vs definition");
  });
}

TEST_CASE("cuda vs cpu: batchnorm2d's entry points split channels of >= 65536 values") {
  const int64_t N = 2, C = 2, H = 128, W = 257, HW = H * W;  // M = 65792 per channel
  std::mt19937_64 rng(53);
  Tensor x = test::rand_f32({N, C, H, W}, rng, -1, 3), gy = test::rand_f32({N, C, H, W}, rng);
  Tensor gamma = test::rand_f32({C}, rng, 0.5, 1.5), beta = test::rand_f32({C}, rng);
  Tensor y = Tensor::empty({N, C, H, W}, DType::f32, Device::cpu), mean = Tensor::empty({C}, DType::f32, Device::cpu),
         invstd = Tensor::empty({C}, DType::f32, Device::cpu), gx = Tensor::zeros({N, C, H, W});
  kernels::batchnorm2d_forward_cpu<float>(ptr(x), ptr(gamma), ptr(beta), nullptr, nullptr, ptr(y), ptr(mean),
                                          ptr(invstd), N, C, HW, true, 0.1, 1e-5);
  kernels::batchnorm2d_backward_cpu<float>(ptr(x), ptr(gamma), ptr(mean), ptr(invstd), ptr(gy), ptr(gx), nullptr,
                                           nullptr, N, C, HW, true);
  test::for_each_schedule([&] {
  Tensor xd = on_cuda(x), gd = on_cuda(gamma), bd = on_cuda(beta), gyd = on_cuda(gy), gxd = zeros_cuda({N, C, H, W});
  Tensor yd = Tensor::empty({N, C, H, W}, DType::f32, Device::cuda), md = Tensor::empty({C}, DType::f32, Device::cuda),
         id = Tensor::empty({C}, DType::f32, Device::cuda);
  CHECK(kernels::batchnorm2d_splits(N, C, HW) > 1);
  kernels::batchnorm2d_forward_cuda(ptr(xd), ptr(gd), ptr(bd), nullptr, nullptr, ptr(yd), ptr(md), ptr(id), N, C, HW,
                                    true, 0.1, 1e-5);
  kernels::batchnorm2d_backward_cuda(ptr(xd), ptr(gd), ptr(md), ptr(id), ptr(gyd), ptr(gxd), nullptr, nullptr, N, C,
                                     HW, true);
  test::check_close(yd.to(Device::cpu), y, 1e-5, 1e-4, "bn y (split dispatch)");
  test::check_close(gxd.to(Device::cpu), gx, 1e-5, 1e-4, "bn gx (split dispatch)");
  });
}
