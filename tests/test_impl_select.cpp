// The run-time alternatives behind the CUDA entry points (kernels/cuda/impl.h):
// --gemm-impl native|cublas and --conv-impl native|cudnn.
//
// In the emulated test binary (ctgrad_tests) cuBLAS and cuDNN do not exist:
// the native kernels are the default and the only choice, and asking for an
// alternative fails with a message that says why. In the native twin
// (ctgrad_tests_gpu, on a GPU) the alternatives are selected and held against
// the CPU reference like our own kernels.
//
// Tolerance on the GPU: cuBLAS in FP32 sums the K products in another order
// than OpenBLAS, as ours does (atol = 1e-5·√K, rtol = 1e-4, see
// cuda_vs_cpu_gemm.cpp). cuDNN may pick a Winograd or FFT algorithm, whose
// transforms round differently from a direct sum: ten times looser.
#include <algorithm>
#include <cmath>
#include <functional>
#include <string>

#include "kernels/conv2d.h"
#include "kernels/cpu/gemm.h"
#include "kernels/cuda/gemm.h"
#include "kernels/cuda/impl.h"
#include "tests/cuda_check.h"
#include "tests/test_util.h"

using namespace ctg;
using kernels::ConvImpl;
using kernels::GemmImpl;

namespace {
using ctg::test::error_of;
using ctg::test::ptr;
bool gpu_with(bool available, const char* what) {
  if (!cuda::is_emulated() && available && cuda::available()) return true;
  MESSAGE(std::string(what) << " not run: it needs a native build on a GPU (" << kernels::cublas_status() << "; "
               << kernels::cudnn_status() << ")");
  return false;
}
}  // namespace

TEST_CASE("impl select: the native kernels are the default") {
  CHECK(kernels::gemm_impl() == GemmImpl::native);
  CHECK(kernels::conv_impl() == ConvImpl::native);
  CHECK(std::string(kernels::impl_name(kernels::gemm_impl())) == "native");
  CHECK(std::string(kernels::impl_name(kernels::conv_impl())) == "native");
}

TEST_CASE("impl select: flag values parse and unknown ones are rejected with the flag named") {
  CHECK(kernels::parse_gemm_impl("native") == GemmImpl::native);
  CHECK(kernels::parse_gemm_impl("cublas") == GemmImpl::cublas);
  CHECK(kernels::parse_conv_impl("native") == ConvImpl::native);
  CHECK(kernels::parse_conv_impl("cudnn") == ConvImpl::cudnn);
  for (const char* bad : {"", "cuBLAS", "cudnn", "native ", "auto"}) {
    CAPTURE(bad);
    const std::string e = error_of([&] { kernels::parse_gemm_impl(bad); });
    CHECK(e.find("--gemm-impl: expected native or cublas, got '") == 0);
  }
  for (const char* bad : {"", "cuDNN", "cublas", "im2col"}) {
    CAPTURE(bad);
    CHECK(error_of([&] { kernels::parse_conv_impl(bad); }).find("--conv-impl: expected native or cudnn") == 0);
  }
  CHECK(error_of([] { kernels::parse_gemm_impl("x", "--alt"); }).find("--alt: ") == 0);
}

TEST_CASE("impl select: the emulated build has no cuBLAS or cuDNN and says so") {
  if (!cuda::is_emulated()) return;  // the native twin checks the alternatives below instead
  CHECK_FALSE(kernels::cublas_available());
  CHECK_FALSE(kernels::cudnn_available());
  const std::string eb = error_of([] { kernels::set_gemm_impl(GemmImpl::cublas); });
  CHECK(eb.find("cuBLAS is only available in a native CUDA build (this binary runs the CUDA kernels on the CPU "
                "emulation)") != std::string::npos);
  CHECK(eb.find("--gemm-impl cublas") == 0);
  const std::string ec = error_of([] { kernels::set_conv_impl(ConvImpl::cudnn); });
  CHECK(ec.find("cuDNN is only available in a native CUDA build") != std::string::npos);
  CHECK(kernels::gemm_impl() == GemmImpl::native);  // a refused selection changes nothing
  CHECK(kernels::conv_impl() == ConvImpl::native);
  // The entry points cannot be reached through a selection, and refuse if called.
  CHECK(error_of([] { kernels::gemm_cublas(false, false, 1, 1, 1, 1.f, nullptr, 1, nullptr, 1, 0.f, nullptr, 1, {}); })
            .find("gemm_cublas: cuBLAS is only available") == 0);
  kernels::set_gemm_impl(GemmImpl::native);  // always accepted
  kernels::set_conv_impl(ConvImpl::native);
}

TEST_CASE("impl select: a scoped selection restores the previous one, also when it is refused") {
  {
    kernels::ScopedGemmImpl g(GemmImpl::native);
    kernels::ScopedConvImpl c(ConvImpl::native);
    CHECK(kernels::gemm_impl() == GemmImpl::native);
  }
  CHECK(kernels::gemm_impl() == GemmImpl::native);
  if (kernels::cublas_available()) {
    {
      kernels::ScopedGemmImpl g(GemmImpl::cublas);
      CHECK(kernels::gemm_impl() == GemmImpl::cublas);
      {
        kernels::ScopedGemmImpl inner(GemmImpl::native);
        CHECK(kernels::gemm_impl() == GemmImpl::native);
      }
      CHECK(kernels::gemm_impl() == GemmImpl::cublas);
    }
  } else {
    CHECK_THROWS_AS(kernels::ScopedGemmImpl{GemmImpl::cublas}, Error);
  }
  CHECK(kernels::gemm_impl() == GemmImpl::native);
  if (!kernels::cudnn_available()) CHECK_THROWS_AS(kernels::ScopedConvImpl{ConvImpl::cudnn}, Error);
  CHECK(kernels::conv_impl() == ConvImpl::native);
}

TEST_CASE("impl select: gemm_cuda through cuBLAS matches the CPU (transposes, batches, sum mode)") {
  if (!gpu_with(kernels::cublas_available(), "cuBLAS vs CPU")) return;
  std::mt19937_64 rng(41);
  const int64_t M = 37, N = 29, K = 53, count = 3, pad = 2;
  for (int mode = 0; mode < 3; ++mode)  // one product, a strided batch, the sum over a batch
    for (int t = 0; t < 4; ++t)
      for (float beta : {0.f, 1.f}) {
        const bool ta = t & 1, tb = t & 2, sum = mode == 2;
        const int64_t items = mode == 0 ? 1 : count, outs = sum ? 1 : items;
        const int64_t lda = (ta ? M : K) + pad, ldb = (tb ? K : N) + pad, ldc = N + pad;
        const int64_t sa = (ta ? K : M) * lda, sb = (tb ? N : K) * ldb, sc = M * ldc;
        CAPTURE(mode); CAPTURE(ta); CAPTURE(tb); CAPTURE(beta);
        Tensor A = test::rand_f32({items * sa}, rng), B = test::rand_f32({items * sb}, rng);
        Tensor C0 = test::rand_f32({outs * sc}, rng), want = C0.clone();
        for (int64_t z = 0; z < items; ++z)
          kernels::cpu::gemm(ta, tb, M, N, K, 0.5f, ptr(A) + z * sa, lda, ptr(B) + z * sb, ldb,
                             sum && z > 0 ? 1.f : beta, ptr(want) + (sum ? 0 : z * sc), ldc);
        Tensor Ad = A.to(Device::cuda), Bd = B.to(Device::cuda), Cd = C0.to(Device::cuda);
        {
          kernels::ScopedGemmImpl g(GemmImpl::cublas);
          kernels::gemm_cuda(ta, tb, M, N, K, 0.5f, ptr(Ad), lda, ptr(Bd), ldb, beta, ptr(Cd), ldc,
                             kernels::GemmBatch{items, sa, sb, sc, sum});
        }
        const int64_t k_total = sum ? K * items : K;
        test::check_close(Cd.to(Device::cpu), want, 1e-5 * std::sqrt((double)k_total), 1e-4, "cuBLAS gemm");
      }
}

TEST_CASE("impl select: conv2d through cuDNN and through cuBLAS matches the CPU (accumulating backward)") {
  if (!gpu_with(kernels::cudnn_available() || kernels::cublas_available(), "cuDNN/cuBLAS conv2d vs CPU")) return;
  std::mt19937_64 rng(42);
  struct Conf { int64_t N, C, H, W, O, K, S, P; bool bias; };
  const Conf confs[] = {{2, 3, 11, 13, 5, 3, 1, 1, false}, {2, 1, 17, 15, 6, 7, 2, 3, false},
                        {2, 4, 9, 9, 5, 1, 2, 0, false},   {3, 8, 5, 7, 1, 1, 1, 0, true}};
  for (const Conf& c : confs)
    for (int alt = 0; alt < 2; ++alt) {  // 0: cuDNN, 1: our im2col with cuBLAS GEMMs
      if (alt == 0 ? !kernels::cudnn_available() : !kernels::cublas_available()) continue;
      const kernels::Conv2dDims d = kernels::conv2d_dims(c.N, c.C, c.H, c.W, c.O, c.K, c.K, c.S, c.S, c.P, c.P);
      CAPTURE(c.C); CAPTURE(c.K); CAPTURE(c.S); CAPTURE(alt);
      const Tensor x = test::rand_f32({d.N, d.C, d.H, d.W}, rng), w = test::rand_f32({d.O, d.C, d.KH, d.KW}, rng);
      const Tensor b = c.bias ? test::rand_f32({d.O}, rng) : Tensor(), gy = test::rand_f32({d.N, d.O, d.OH, d.OW}, rng);
      const Tensor gx0 = test::rand_f32({d.N, d.C, d.H, d.W}, rng), gw0 = test::rand_f32({d.O, d.C, d.KH, d.KW}, rng);
      const Tensor gb0 = c.bias ? test::rand_f32({d.O}, rng) : Tensor();
      auto run = [&](Device dev) {
        auto on = [&](const Tensor& t) { return test::fresh_on(t, dev); };
        Tensor xd = on(x), wd = on(w), bd = on(b), gyd = on(gy), gx = on(gx0), gw = on(gw0), gb = on(gb0);
        const Shape ys{d.N, d.O, d.OH, d.OW};  // on the GPU y starts as NaN: it must never be read
        Tensor y = dev == Device::cpu ? Tensor::zeros(ys) : Tensor::full(ys, NAN).to(dev);
        if (dev == Device::cpu) {
          kernels::conv2d_forward_cpu<float>(ptr(xd), ptr(wd), ptr(bd), ptr(y), d);
          kernels::conv2d_backward_cpu<float>(ptr(xd), ptr(wd), ptr(gyd), ptr(gx), ptr(gw), ptr(gb), d);
        } else {
          kernels::ScopedConvImpl ci(alt == 0 ? ConvImpl::cudnn : ConvImpl::native);
          kernels::ScopedGemmImpl gi(alt == 1 ? GemmImpl::cublas : GemmImpl::native);
          kernels::conv2d_forward_cuda(ptr(xd), ptr(wd), ptr(bd), ptr(y), d);
          kernels::conv2d_backward_cuda(ptr(xd), ptr(wd), ptr(gyd), ptr(gx), ptr(gw), ptr(gb), d);
        }
        std::vector<Tensor> out;
        for (const Tensor& t : {y, gx, gw, gb}) out.push_back(t.defined() ? t.to(Device::cpu) : Tensor());
        return out;
      };
      const auto want = run(Device::cpu), got = run(Device::cuda);
      const double k = (double)std::max({d.C * d.KH * d.KW, d.O * d.KH * d.KW, d.N * d.OH * d.OW});
      const double atol = (alt == 0 ? 1e-4 : 1e-5) * std::sqrt(k), rtol = alt == 0 ? 1e-3 : 1e-4;
      const char* names[] = {"conv2d y", "conv2d gx", "conv2d gW", "conv2d gb"};
      for (int i = 0; i < 4; ++i)
        if (want[i].defined()) test::check_close(got[i], want[i], atol, rtol, names[i]);
    }
}
