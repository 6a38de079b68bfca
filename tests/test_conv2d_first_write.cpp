// conv2d backward with gx as a first write (gx_accumulate = false, kernels/conv2d.h;
// the engine asks for it through autograd::input_grad_out on x's first
// contribution): gx starts as NaN, so a kernel that reads it, or skips an
// element, leaves NaN behind.
//   CPU: every path of the tuned kernel (wide groups and their scatter, bands,
//        one tile per image, the stride-1 input gradient as a convolution, the
//        stride-2 fold, the 1×1 GEMM, the direct kernel, fused and written
//        unfold) and the reference must give exactly the accumulating
//        backward's result on a zeroed gx: the first write only drops "+ 0".
//   CUDA: the SIMT path with one image per im2col group (the op table runs the
//        default grouping through ops::conv2d), the tf32 implicit GEMM and,
//        on a native build with a GPU, cuDNN (beta 0), on fresh device memory
//        (NaN in the emulation), vs the CPU's first write.
// dW and db are not part of the first write (they still accumulate): passed
// as nullptr here, the engine's tests cover them.
#include <cmath>
#include <limits>

#include "kernels/conv2d.h"
#include "kernels/cuda/impl.h"
#include "tests/cuda_check.h"
#include "tests/test_util.h"

using namespace ctg;

namespace {

using Conf = test::ConvConf;
using test::ptr;

// Shapes that reach every path: stride 1 (dx as a convolution), stride 2 and
// 3 (GEMM into columns, then the fold), 1×1, border rows that read only
// padding, padding past KH−1 (the fold even at stride 1), and large enough
// that the fold and the zeroing run on several threads.
const Conf kConfs[] = {{5, 2, 13, 12, 3, 3, 2, 2, 1, 1, 2},  {4, 3, 10, 9, 2, 3, 3, 1, 1, 1, 1},
                       {3, 1, 17, 13, 4, 7, 7, 2, 2, 3, 3},  {3, 2, 11, 10, 2, 5, 5, 3, 3, 3, 3},
                       {3, 4, 9, 8, 3, 1, 1, 1, 1, 0, 0},    {2, 2, 4, 5, 3, 2, 2, 1, 1, 3, 3},
                       {2, 16, 40, 40, 3, 3, 3, 1, 1, 1, 1}, {2, 16, 41, 40, 3, 3, 3, 2, 2, 1, 1}};

// Every cut of the tuned kernel on these shapes (as tests/gradcheck_conv2d.cpp),
// the direct kernel forced, and for float the unfold written and fused.
std::vector<kernels::Conv2dCpuTuning> tunings(const Conf& c) {
  const kernels::Conv2dDims d = c.dims();
  const int64_t K = c.C * c.KH * c.KW, P = d.OH * d.OW, huge = int64_t(1) << 40;
  std::vector<kernels::Conv2dCpuTuning> v = {{},
                                             {0, 1, 0},
                                             {0, 3 * K * d.OW, 0},
                                             {0, huge, 0},
                                             {huge, 1, 0},
                                             {huge, 2 * (K + c.O) * P, 0},
                                             {2048, int64_t(1) << 24, huge}};  // the direct kernel
  for (int fused : {0, 1})
    for (auto t : {kernels::Conv2dCpuTuning{0, 1, 0}, kernels::Conv2dCpuTuning{huge, 2 * (K + c.O) * P, 0}}) {
      t.fused_im2col = fused;
      v.push_back(t);
    }
  return v;
}

using test::uniform_vec;

// Equal element for element (== : +0 and −0 agree); NaN fails.
template <typename T>
void check_same(const std::vector<T>& got, const std::vector<T>& want, const std::string& what) {
  size_t bad = 0, first = 0;
  for (size_t i = 0; i < got.size(); ++i)
    if (!(got[i] == want[i]) && bad++ == 0) first = i;
  CHECK_MESSAGE(bad == 0, what << ": " << bad << " of " << got.size() << " elements differ, first [" << first
                               << "] " << (bad ? got[first] : T(0)) << " vs " << (bad ? want[first] : T(0)));
}

template <typename T>
void check_cpu_first_write() {
  std::mt19937_64 rng(71);
  const T nan = std::numeric_limits<T>::quiet_NaN();
  for (const Conf& c : kConfs) {
    const kernels::Conv2dDims d = c.dims();
    const size_t nx = (size_t)(d.N * d.C * d.H * d.W);
    const std::vector<T> x = uniform_vec<T>(nx, rng), w = uniform_vec<T>((size_t)(d.O * d.C * d.KH * d.KW), rng),
                         gy = uniform_vec<T>((size_t)(d.N * d.O * d.OH * d.OW), rng);
    CAPTURE(c.N); CAPTURE(c.C); CAPTURE(c.H); CAPTURE(c.W); CAPTURE(c.O);
    CAPTURE(c.KH); CAPTURE(c.KW); CAPTURE(c.SH); CAPTURE(c.SW); CAPTURE(c.PH); CAPTURE(c.PW);
    {
      std::vector<T> want(nx, T(0)), got(nx, nan);
      kernels::conv2d_backward_cpu_reference<T>(x.data(), w.data(), gy.data(), want.data(), nullptr, nullptr, d);
      kernels::conv2d_backward_cpu_reference<T>(x.data(), w.data(), gy.data(), got.data(), nullptr, nullptr, d, false);
      check_same(got, want, "reference first write");
    }
    for (const kernels::Conv2dCpuTuning& t : tunings(c)) {
      INFO("tuning {" << t.wide_below << ", " << t.max_scratch << ", " << t.direct_max_out << ", " << t.fused_im2col
                      << "}");
      std::vector<T> want(nx, T(0)), got(nx, nan), gw((size_t)(d.O * d.C * d.KH * d.KW), T(0));
      kernels::conv2d_backward_cpu_tuned<T>(x.data(), w.data(), gy.data(), want.data(), nullptr, nullptr, d, t);
      kernels::conv2d_backward_cpu_tuned<T>(x.data(), w.data(), gy.data(), got.data(), nullptr, nullptr, d, t, false);
      check_same(got, want, "tuned first write, dx alone");
      // With dW as well the input gradient takes the other branch (after the
      // loop over tiles for stride 1; inside it, after dW, for the fold).
      std::fill(got.begin(), got.end(), nan);
      kernels::conv2d_backward_cpu_tuned<T>(x.data(), w.data(), gy.data(), got.data(), gw.data(), nullptr, d, t, false);
      check_same(got, want, "tuned first write, with dW");
    }
  }
}

double atol_for(const kernels::Conv2dDims& d) { return 1e-5 * std::sqrt((double)(d.O * d.KH * d.KW)); }

}  // namespace

TEST_CASE("conv2d first write of gx: NaN-filled gx, every CPU path equals the accumulation onto zeros") {
  check_cpu_first_write<double>();
  check_cpu_first_write<float>();
}

TEST_CASE("cuda vs cpu: conv2d first write of gx on NaN-poisoned device memory, one image per group, tf32, cuDNN") {
  std::vector<Conf> confs = test::study_conv_layers();
  confs.push_back({2, 3, 11, 13, 5, 1, 1, 1, 1, 0, 0, false, "k1 s1 p0 (pointwise)"});
  confs.push_back({2, 3, 11, 13, 5, 3, 2, 2, 1, 1, 0, false, "k(3,2) s(2,1) p(1,0)"});
  std::mt19937_64 rng(73);
  for (const Conf& c : confs) {
    const kernels::Conv2dDims d = c.dims();
    CAPTURE(c.name);
    Tensor x = test::rand_f32({d.N, d.C, d.H, d.W}, rng), w = test::rand_f32({d.O, d.C, d.KH, d.KW}, rng),
           gy = test::rand_f32({d.N, d.O, d.OH, d.OW}, rng);
    Tensor want = Tensor::empty({d.N, d.C, d.H, d.W}, DType::f32, Device::cpu);  // poisoned too
    kernels::conv2d_backward_cpu<float>(ptr(x), ptr(w), ptr(gy), ptr(want), nullptr, nullptr, d, {}, false);
    test::for_each_schedule([&] {
      Tensor xd = x.to(Device::cuda), wd = w.to(Device::cuda), gyd = gy.to(Device::cuda);
      enum Leg { fp32, tf32, cudnn };
      for (Leg leg : {fp32, tf32, cudnn}) {
        if (leg == cudnn && !kernels::cudnn_available()) continue;  // native builds on a GPU only
        Tensor gx = Tensor::empty({d.N, d.C, d.H, d.W}, DType::f32, Device::cuda);  // NaN-poisoned
        {
          kernels::ScopedPrecision p(leg == tf32 ? kernels::Precision::tf32 : kernels::Precision::fp32);
          kernels::ScopedConvImpl ci(leg == cudnn ? kernels::ConvImpl::cudnn : kernels::ConvImpl::native);
          kernels::conv2d_backward_cuda(ptr(xd), ptr(wd), ptr(gyd), ptr(gx), nullptr, nullptr, d,
                                        kernels::Conv2dCudaTuning{1}, false);
        }
        // tf32: operands rounded to 10 mantissa bits (tests/cuda_vs_cpu_tf32.cpp's
        // bound); cuDNN: its own algorithms (tests/test_impl_select.cpp's bound).
        const double k = (double)(d.O * d.KH * d.KW);
        const double atol = leg == tf32 ? 1e-3 * std::sqrt(k) : leg == cudnn ? 1e-4 * std::sqrt(k) : atol_for(d);
        const double rtol = leg == tf32 ? 2e-3 : leg == cudnn ? 1e-3 : 1e-4;
        const char* names[] = {"conv2d gx first write", "conv2d tf32 gx first write", "conv2d cudnn gx first write"};
        test::check_close(gx, want, atol, rtol, names[leg]);
      }
    });
  }
}
