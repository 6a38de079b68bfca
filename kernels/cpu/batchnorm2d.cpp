// CPU reference for batchnorm2d and batchnorm2d_relu (see kernels/batchnorm2d.h
// and kernels/batchnorm2d_relu.h for the math): the oracle the tuned kernels in
// kernels/cpu/batchnorm2d_tuned.cpp are tested against, and the entry points
// that pick one of the two (kernels/cpu_impl.h).
//
// Layout: channel c is N planes of HW contiguous values, x + (n·C + c)·HW.
// One OpenMP thread handles whole channels, so the per-channel sums need no
// cross-thread reduction, and a channel's second pass usually finds its data
// still in cache from the first. Inner loops run over one contiguous plane
// with `omp simd` reductions in double. (Those of the fused backward, with the
// mask as a conditional load, compile to scalar code; the tuned variant,
// kernels/cpu/batchnorm2d_tuned.cpp, vectorises them.)
#include "kernels/batchnorm2d.h"
#include "kernels/batchnorm2d_relu.h"
#include "kernels/cpu_impl.h"

#include <algorithm>
#include <cmath>

namespace ctg::kernels {

namespace {
// Parallelise only when there is enough work to pay for waking the threads.
constexpr int64_t kParallelMinElems = 65536;

// relu = true: the ReLU that follows is applied as y is written,
// y = max(γ·x̂ + β, 0) (NaN stays NaN, as torch.relu): batchnorm2d_relu.
template <typename T>
void bn_forward(const T* x, const T* gamma, const T* beta, T* running_mean, T* running_var, T* y, T* mean,
                T* invstd, int64_t N, int64_t C, int64_t HW, bool training, double momentum, double eps, bool relu) {
  const int64_t M = N * HW;
#pragma omp parallel for schedule(static) if (N * C * HW > kParallelMinElems)
  for (int64_t c = 0; c < C; ++c) {
    double mu, inv;
    if (training) {
      // One pass for Σd and Σd² with d = x − shift. Shifting by a value of
      // the channel keeps E[d²] − E[d]² free of cancellation when |μ| ≫ σ.
      const double shift = (double)x[c * HW];
      double s = 0, ss = 0;
      for (int64_t n = 0; n < N; ++n) {
        const T* xp = x + (n * C + c) * HW;
#pragma omp simd reduction(+ : s, ss)
        for (int64_t i = 0; i < HW; ++i) {
          const double d = (double)xp[i] - shift;
          s += d;
          ss += d * d;
        }
      }
      const double dmean = s / (double)M;
      const double var = std::fmax(ss / (double)M - dmean * dmean, 0.0);  // biased
      mu = shift + dmean;
      inv = 1.0 / std::sqrt(var + eps);
      if (running_mean)
        running_mean[c] = (T)((1.0 - momentum) * (double)running_mean[c] + momentum * mu);
      if (running_var)  // the running estimate uses the unbiased variance
        running_var[c] = (T)((1.0 - momentum) * (double)running_var[c] +
                             momentum * var * (double)M / (double)(M - 1));
    } else {
      mu = (double)running_mean[c];
      inv = 1.0 / std::sqrt((double)running_var[c] + eps);
    }
    mean[c] = (T)mu;
    invstd[c] = (T)inv;
    // y = γ·(x − μ)·invstd + β = x·scale + bias: one multiply-add per value.
    const double g = gamma ? (double)gamma[c] : 1.0, b = beta ? (double)beta[c] : 0.0;
    const T scale = (T)(g * inv), bias = (T)(b - mu * g * inv);
    for (int64_t n = 0; n < N; ++n) {
      const T* xp = x + (n * C + c) * HW;
      T* yp = y + (n * C + c) * HW;
      if (relu) {
#pragma omp simd
        for (int64_t i = 0; i < HW; ++i) {
          const T v = xp[i] * scale + bias;
          yp[i] = v <= T(0) ? T(0) : v;
        }
      } else {
#pragma omp simd
        for (int64_t i = 0; i < HW; ++i) yp[i] = xp[i] * scale + bias;
      }
    }
  }
}

// relu_y (or nullptr): the fused forward's output; the incoming gradient is
// then gy·[relu_y > 0], the ReLU's backward, applied where gy is read.
template <typename T>
void bn_backward(const T* x, const T* gamma, const T* mean, const T* invstd, const T* relu_y, const T* gy, T* gx,
                 T* ggamma, T* gbeta, int64_t N, int64_t C, int64_t HW, bool training) {
  const int64_t M = N * HW;
  // Eval mode needs the sums only for gγ and gβ; training mode always does.
  const bool need_sums = training || ggamma || gbeta;
#pragma omp parallel for schedule(static) if (N * C * HW > kParallelMinElems)
  for (int64_t c = 0; c < C; ++c) {
    const T mu = mean[c];
    const double inv = (double)invstd[c], g = gamma ? (double)gamma[c] : 1.0;
    // sum_gy = Σ gy,  sum_gyxc = Σ gy·(x − μ)  (so Σ gy·x̂ = invstd·sum_gyxc).
    double sum_gy = 0, sum_gyxc = 0;
    if (need_sums) {
      for (int64_t n = 0; n < N; ++n) {
        const T* xp = x + (n * C + c) * HW;
        const T* gp = gy + (n * C + c) * HW;
        const T* rp = relu_y ? relu_y + (n * C + c) * HW : nullptr;
        if (rp) {
#pragma omp simd reduction(+ : sum_gy, sum_gyxc)
          for (int64_t i = 0; i < HW; ++i) {
            const double g = rp[i] > T(0) ? (double)gp[i] : 0.0;
            sum_gy += g;
            sum_gyxc += g * (double)(xp[i] - mu);
          }
        } else {
#pragma omp simd reduction(+ : sum_gy, sum_gyxc)
          for (int64_t i = 0; i < HW; ++i) {
            sum_gy += (double)gp[i];
            sum_gyxc += (double)gp[i] * (double)(xp[i] - mu);
          }
        }
      }
      if (ggamma) ggamma[c] += (T)(sum_gyxc * inv);
      if (gbeta) gbeta[c] += (T)sum_gy;
    }
    if (!gx) continue;
    // gx += γ·invstd/M·(M·gy − Σgy − x̂·Σ(gy·x̂)) expanded per value as
    //   k_gy·gy + k_xc·(x − μ) + k_0; in eval mode only the k_gy term.
    const T k_gy = (T)(g * inv);
    const T k_xc = training ? (T)(-g * inv * inv * inv * sum_gyxc / (double)M) : T(0);
    const T k_0 = training ? (T)(-g * inv * sum_gy / (double)M) : T(0);
    for (int64_t n = 0; n < N; ++n) {
      const T* xp = x + (n * C + c) * HW;
      const T* gp = gy + (n * C + c) * HW;
      T* gxp = gx + (n * C + c) * HW;
      const T* rp = relu_y ? relu_y + (n * C + c) * HW : nullptr;
      if (rp && training) {
#pragma omp simd
        for (int64_t i = 0; i < HW; ++i) gxp[i] += k_gy * (rp[i] > T(0) ? gp[i] : T(0)) + k_xc * (xp[i] - mu) + k_0;
      } else if (rp) {
#pragma omp simd
        for (int64_t i = 0; i < HW; ++i) gxp[i] += k_gy * (rp[i] > T(0) ? gp[i] : T(0));
      } else if (training) {
#pragma omp simd
        for (int64_t i = 0; i < HW; ++i) gxp[i] += k_gy * gp[i] + k_xc * (xp[i] - mu) + k_0;
      } else {
#pragma omp simd
        for (int64_t i = 0; i < HW; ++i) gxp[i] += k_gy * gp[i];
      }
    }
  }
}

}  // namespace

template <typename T>
void batchnorm2d_forward_cpu_reference(const T* x, const T* gamma, const T* beta, T* running_mean, T* running_var,
                                       T* y, T* mean, T* invstd, int64_t N, int64_t C, int64_t HW, bool training,
                                       double momentum, double eps) {
  bn_forward(x, gamma, beta, running_mean, running_var, y, mean, invstd, N, C, HW, training, momentum, eps, false);
}
template <typename T>
void batchnorm2d_backward_cpu_reference(const T* x, const T* gamma, const T* mean, const T* invstd, const T* gy,
                                        T* gx, T* ggamma, T* gbeta, int64_t N, int64_t C, int64_t HW, bool training,
                                        bool gx_accumulate) {
  // A first write here is the plain way: zeros, then the same additions.
  if (gx && !gx_accumulate) std::fill(gx, gx + N * C * HW, T(0));
  bn_backward(x, gamma, mean, invstd, (const T*)nullptr, gy, gx, ggamma, gbeta, N, C, HW, training);
}
template <typename T>
void batchnorm2d_relu_forward_cpu_reference(const T* x, const T* gamma, const T* beta, T* running_mean,
                                            T* running_var, T* y, T* mean, T* invstd, int64_t N, int64_t C,
                                            int64_t HW, bool training, double momentum, double eps) {
  bn_forward(x, gamma, beta, running_mean, running_var, y, mean, invstd, N, C, HW, training, momentum, eps, true);
}
template <typename T>
void batchnorm2d_relu_backward_cpu_reference(const T* x, const T* gamma, const T* mean, const T* invstd, const T* y,
                                             const T* gy, T* gx, T* ggamma, T* gbeta, int64_t N, int64_t C,
                                             int64_t HW, bool training, bool gx_accumulate) {
  if (gx && !gx_accumulate) std::fill(gx, gx + N * C * HW, T(0));
  bn_backward(x, gamma, mean, invstd, y, gy, gx, ggamma, gbeta, N, C, HW, training);
}

// The engine's entry points: the variant kernels/cpu_impl.h selects.
template <typename T>
void batchnorm2d_forward_cpu(const T* x, const T* gamma, const T* beta, T* running_mean, T* running_var, T* y,
                             T* mean, T* invstd, int64_t N, int64_t C, int64_t HW, bool training, double momentum,
                             double eps) {
  if (cpu_impl() == CpuImpl::reference)
    return batchnorm2d_forward_cpu_reference(x, gamma, beta, running_mean, running_var, y, mean, invstd, N, C, HW,
                                             training, momentum, eps);
  batchnorm2d_forward_cpu_tuned(x, gamma, beta, running_mean, running_var, y, mean, invstd, N, C, HW, training,
                                momentum, eps);
}
template <typename T>
void batchnorm2d_backward_cpu(const T* x, const T* gamma, const T* mean, const T* invstd, const T* gy, T* gx,
                              T* ggamma, T* gbeta, int64_t N, int64_t C, int64_t HW, bool training,
                              bool gx_accumulate) {
  if (cpu_impl() == CpuImpl::reference)
    return batchnorm2d_backward_cpu_reference(x, gamma, mean, invstd, gy, gx, ggamma, gbeta, N, C, HW, training,
                                              gx_accumulate);
  batchnorm2d_backward_cpu_tuned(x, gamma, mean, invstd, gy, gx, ggamma, gbeta, N, C, HW, training, gx_accumulate);
}
template <typename T>
void batchnorm2d_relu_forward_cpu(const T* x, const T* gamma, const T* beta, T* running_mean, T* running_var, T* y,
                                  T* mean, T* invstd, int64_t N, int64_t C, int64_t HW, bool training,
                                  double momentum, double eps) {
  if (cpu_impl() == CpuImpl::reference)
    return batchnorm2d_relu_forward_cpu_reference(x, gamma, beta, running_mean, running_var, y, mean, invstd, N, C,
                                                  HW, training, momentum, eps);
  batchnorm2d_relu_forward_cpu_tuned(x, gamma, beta, running_mean, running_var, y, mean, invstd, N, C, HW, training,
                                     momentum, eps);
}
template <typename T>
void batchnorm2d_relu_backward_cpu(const T* x, const T* gamma, const T* mean, const T* invstd, const T* y,
                                   const T* gy, T* gx, T* ggamma, T* gbeta, int64_t N, int64_t C, int64_t HW,
                                   bool training, bool gx_accumulate) {
  if (cpu_impl() == CpuImpl::reference)
    return batchnorm2d_relu_backward_cpu_reference(x, gamma, mean, invstd, y, gy, gx, ggamma, gbeta, N, C, HW,
                                                   training, gx_accumulate);
  batchnorm2d_relu_backward_cpu_tuned(x, gamma, mean, invstd, y, gy, gx, ggamma, gbeta, N, C, HW, training,
                                      gx_accumulate);
}

// SUFFIX: the entry points (empty) and the reference variants (_reference).
#define CTG_INSTANTIATE_BATCHNORM2D_AS(T, SUFFIX)                                                                   \
  template void batchnorm2d_forward_cpu##SUFFIX<T>(const T*, const T*, const T*, T*, T*, T*, T*, T*, int64_t,       \
                                                   int64_t, int64_t, bool, double, double);                       \
  template void batchnorm2d_backward_cpu##SUFFIX<T>(const T*, const T*, const T*, const T*, const T*, T*, T*, T*,   \
                                                    int64_t, int64_t, int64_t, bool, bool);                       \
  template void batchnorm2d_relu_forward_cpu##SUFFIX<T>(const T*, const T*, const T*, T*, T*, T*, T*, T*, int64_t,  \
                                                        int64_t, int64_t, bool, double, double);                  \
  template void batchnorm2d_relu_backward_cpu##SUFFIX<T>(const T*, const T*, const T*, const T*, const T*,          \
                                                         const T*, T*, T*, T*, int64_t, int64_t, int64_t, bool,   \
                                                         bool);
#define CTG_INSTANTIATE_BATCHNORM2D(T)    \
  CTG_INSTANTIATE_BATCHNORM2D_AS(T, )     \
  CTG_INSTANTIATE_BATCHNORM2D_AS(T, _reference)
CTG_INSTANTIATE_BATCHNORM2D(float)
CTG_INSTANTIATE_BATCHNORM2D(double)
#undef CTG_INSTANTIATE_BATCHNORM2D
#undef CTG_INSTANTIATE_BATCHNORM2D_AS

}  // namespace ctg::kernels
