// Tuned CPU batchnorm2d and batchnorm2d_relu (issue 16; the math is in
// kernels/batchnorm2d.h and kernels/batchnorm2d_relu.h, the plain loops these
// are tested against in kernels/cpu/batchnorm2d.cpp).
//
// The same passes as the reference: the forward reads x for the sums and
// again for y; the backward reads x, gy (and the ReLU mask y) for the sums and
// again for gx. Three things differ:
//
// 1. Vector sums. The reference's sums of the fused backward,
//    `rp[i] > 0 ? (double)gp[i] : 0` in an `omp simd` reduction, compile to
//    scalar code (vcvtss2sd / vaddsd / vfmadd231sd on xmm): GCC does not
//    if-convert the conditional load ("control flow in loop"). Here the mask is
//    a bitwise AND of gy with an all-ones/all-zeros word (the same value as the
//    select), so the same reduction in double vectorises (zmm: vcmpltps, a
//    zero-masked load, vcvtps2pd, vaddpd/vfmadd231pd; `-fopt-info-vec`). The sums
//    stay in double, as in the reference: float partial sums, tried first, put
//    gγ 3e-5 off the reference at M = 2146, past the op table's tolerance.
//    No callbacks in the hot loops: through a lambda, GCC turned the loads
//    into gathers (vgatherqps, 4x slower).
//
// 2. Work split. Channel c's M = N·HW values (N planes of HW, index m = n·HW + i)
//    are cut into chunks of kChunk values, a chunk's sums go to its own slot,
//    and a channel's chunk sums are added in chunk order: the result depends
//    on neither the scheduling nor the thread count. When whole channels keep
//    the threads busy (C = 64 or 10 on 2 threads) each thread takes whole
//    channels, as the reference, with no barrier; otherwise (C = 5 on 2
//    threads) the threads share the (channel, chunk) work items.
//
// 3. Cache reuse. In both schedules a channel's (or a group of channels')
//    elementwise pass follows its sums, over the same values on the same
//    thread, so the second read of x/gy/y comes from cache (L2 for small
//    channels, the shared L3 for one large channel: 2.4 MB a tensor at
//    [9,64,256,256]), not from memory.
//
// With relu = false and relu = true the loops are the same code but for the
// clamp (forward) and the select (backward), so the fused op gives exactly
// relu(batchnorm2d) and its gradients here too (tests/test_fused_ops.cpp).
#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <type_traits>
#include <vector>

#include <omp.h>

#include "kernels/batchnorm2d.h"
#include "kernels/batchnorm2d_relu.h"

namespace ctg::kernels {

namespace {

constexpr int64_t kChunk = 4096;    // values of one channel per work item
constexpr int64_t kGroup = 131072;  // values per group of channels (at least one channel)
constexpr int64_t kParallelMinElems = 65536;  // as the reference: below this, one thread

// Channel c's values m ∈ [m0, m1) as contiguous runs: f(offset into the
// tensor, length) for each piece of a plane.
template <typename F>
inline void for_runs(int64_t C, int64_t HW, int64_t c, int64_t m0, int64_t m1, F f) {
  int64_t n = m0 / HW, i = m0 % HW;
  for (int64_t m = m0; m < m1; ++n, i = 0) {
    const int64_t len = std::min(HW - i, m1 - m);
    f((n * C + c) * HW + i, len);
    m += len;
  }
}

// ReLU's backward, y > 0 ? gy : +0, as a bitwise AND of gy with an all-ones or
// all-zeros mask: the same value as the select (NaN and −0 in gy kept where
// y > 0), but with no branch and no conditional load, which keep GCC from
// vectorising the reference's `rp[i] > 0 ? gp[i] : 0` (it runs scalar there).
template <typename T>
inline T masked(T y, T gy) {
  using U = std::conditional_t<sizeof(T) == 4, uint32_t, uint64_t>;
  U bits;
  std::memcpy(&bits, &gy, sizeof(T));
  bits &= -(U)(y > T(0));
  T out;
  std::memcpy(&out, &bits, sizeof(T));
  return out;
}

// The sums over one contiguous run of `len` values, added to a and b, as
// `omp simd` reductions in double (the float data converted as it is read;
// GCC keeps 16 double lanes per sum and combines them in a fixed order). Plain
// pointers, no callbacks: through a lambda GCC turned the loads into gathers.
//   forward:   a += Σ d,  b += Σ d²       with d = x − shift (in double)
template <typename T>
inline void sums_shifted(const T* xp, int64_t len, double shift, double& a, double& b) {
  double sa = 0, sb = 0;
#pragma omp simd reduction(+ : sa, sb)
  for (int64_t i = 0; i < len; ++i) {
    const double d = (double)xp[i] - shift;
    sa += d;
    sb += d * d;
  }
  a += sa, b += sb;
}
//   backward:  a += Σ g,  b += Σ g·(x − μ)  with g = gy, or gy·[y > 0] (kRelu)
template <typename T, bool kRelu>
inline void sums_grad(const T* xp, const T* gp, const T* rp, T mu, int64_t len, double& a, double& b) {
  double sa = 0, sb = 0;
#pragma omp simd reduction(+ : sa, sb)
  for (int64_t i = 0; i < len; ++i) {
    const double g = (double)(kRelu ? masked(rp[i], gp[i]) : gp[i]);
    sa += g;
    sb += g * (double)(xp[i] - mu);  // the difference in T, as the reference
  }
  a += sa, b += sb;
}

// A channel's coefficients for the elementwise pass: y = a·x + b (forward);
// gx += a·g + b·(x − μ) + z (backward).
template <typename T>
struct Coef {
  T a = 0, b = 0, z = 0;
};

// The phases: sums(c, k) for every item k of channel c (when `with_sums`),
// then finish(c, owner, cf) per channel into coefficients cf (only the owner
// writes the op's outputs), then apply(c, k, cf) for every item. Item k covers
// m ∈ [k·kChunk, min(M, (k+1)·kChunk)). Two schedules, with the same results
// (each channel's partials are the same items added in the same order):
// - by channel, when whole channels keep the threads ≥ 90 % busy (C = 64 or
//   C = 10 on 2 threads): each thread runs all three phases for its channels,
//   no barrier at all (a barrier costs a wake-up under OMP_WAIT_POLICY=passive,
//   which ctgrad sets: ~30 µs here);
// - by item (C = 5 on 2 threads, C = 7 on 2 or 3): groups of channels as in
//   3. above, one barrier per group, after the sums (every partial written
//   before any is read). Every thread then runs finish for every channel of
//   the group into its own coefficients (the same arithmetic on the same
//   partials: the same values on every thread), and apply takes the items in
//   the sums' static split (a thread revisits the values it summed), with no
//   barrier after it: the next group's sums touch other slots.
template <typename T, typename Sums, typename Finish, typename Apply>
void run_groups(int64_t C, int64_t M, bool with_sums, bool parallel, Sums sums, Finish finish, Apply apply) {
  const int64_t chunks = (M + kChunk - 1) / kChunk;
  const int64_t per_group = std::max<int64_t>(1, kGroup / M);
#pragma omp parallel if (parallel)
  {
    const int me = omp_get_thread_num(), nt = omp_get_num_threads();
    if (10 * C >= 9 * nt * ((C + nt - 1) / nt)) {
#pragma omp for schedule(static) nowait
      for (int64_t c = 0; c < C; ++c) {
        Coef<T> cf;
        if (with_sums)
          for (int64_t k = 0; k < chunks; ++k) sums(c, k);
        finish(c, true, cf);
        for (int64_t k = 0; k < chunks; ++k) apply(c, k, cf);
      }
    } else {
      std::vector<Coef<T>> cf(std::min(per_group, C));
      for (int64_t c0 = 0; c0 < C; c0 += per_group) {
        const int64_t c1 = std::min(C, c0 + per_group), items = (c1 - c0) * chunks;
        if (with_sums) {
#pragma omp for schedule(static)
          for (int64_t t = 0; t < items; ++t) sums(c0 + t / chunks, t % chunks);
        }
        for (int64_t c = c0; c < c1; ++c) finish(c, (c - c0) % nt == me, cf[c - c0]);
#pragma omp for schedule(static) nowait
        for (int64_t t = 0; t < items; ++t) apply(c0 + t / chunks, t % chunks, cf[t / chunks]);
      }
    }
  }
}

template <typename T, bool kRelu>
void bn_forward_tuned(const T* x, const T* gamma, const T* beta, T* running_mean, T* running_var, T* y, T* mean,
                      T* invstd, int64_t N, int64_t C, int64_t HW, bool training, double momentum, double eps) {
  const int64_t M = N * HW, chunks = (M + kChunk - 1) / kChunk;
  std::vector<double> part(training ? 2 * C * chunks : 0);  // per item: Σd, Σd²
  // Σd and Σd² with d = x − shift, shift = the channel's first value (as the
  // reference: E[d²] − E[d]² does not cancel when |μ| ≫ σ).
  auto sums = [&](int64_t c, int64_t k) {
    const double shift = (double)x[c * HW];
    double* p = &part[2 * (c * chunks + k)];
    p[0] = p[1] = 0;
    for_runs(C, HW, c, k * kChunk, std::min(M, (k + 1) * kChunk),
             [&](int64_t off, int64_t len) { sums_shifted(x + off, len, shift, p[0], p[1]); });
  };
  auto finish = [&](int64_t c, bool owner, Coef<T>& cf) {
    double mu, inv;
    if (training) {
      double s = 0, ss = 0;
      for (int64_t k = 0; k < chunks; ++k) s += part[2 * (c * chunks + k)], ss += part[2 * (c * chunks + k) + 1];
      const double dmean = s / (double)M;
      const double var = std::fmax(ss / (double)M - dmean * dmean, 0.0);  // biased
      mu = (double)x[c * HW] + dmean;
      inv = 1.0 / std::sqrt(var + eps);
      if (owner && running_mean) running_mean[c] = (T)((1.0 - momentum) * (double)running_mean[c] + momentum * mu);
      if (owner && running_var)  // the running estimate uses the unbiased variance
        running_var[c] =
            (T)((1.0 - momentum) * (double)running_var[c] + momentum * var * (double)M / (double)(M - 1));
    } else {  // read only: no thread writes the running statistics in eval mode
      mu = (double)running_mean[c];
      inv = 1.0 / std::sqrt((double)running_var[c] + eps);
    }
    if (owner) mean[c] = (T)mu, invstd[c] = (T)inv;
    // y = γ·(x − μ)·invstd + β = x·scale + bias (formed as in the reference).
    const double g = gamma ? (double)gamma[c] : 1.0, b = beta ? (double)beta[c] : 0.0;
    cf.a = (T)(g * inv), cf.b = (T)(b - mu * g * inv);
  };
  auto apply = [&](int64_t c, int64_t k, const Coef<T>& cf) {
    const T sc = cf.a, bi = cf.b;
    for_runs(C, HW, c, k * kChunk, std::min(M, (k + 1) * kChunk), [&](int64_t off, int64_t len) {
      const T* xp = x + off;
      T* yp = y + off;
#pragma omp simd
      for (int64_t i = 0; i < len; ++i) {
        const T v = xp[i] * sc + bi;
        yp[i] = kRelu ? (v <= T(0) ? T(0) : v) : v;  // NaN stays NaN, as torch.relu
      }
    });
  };
  run_groups<T>(C, M, training, N * C * HW > kParallelMinElems, sums, finish, apply);
}

// relu_y: the fused forward's output when kRelu (the gradient reaching
// BatchNorm is then g = gy·[relu_y > 0]); unused otherwise.
// gx_accumulate = false: gx is stored (a first write, never read).
template <typename T, bool kRelu>
void bn_backward_tuned(const T* x, const T* gamma, const T* mean, const T* invstd, const T* relu_y, const T* gy,
                       T* gx, T* ggamma, T* gbeta, int64_t N, int64_t C, int64_t HW, bool training,
                       bool gx_accumulate) {
  const int64_t M = N * HW, chunks = (M + kChunk - 1) / kChunk;
  // Eval mode needs the sums only for gγ and gβ; training mode always does.
  const bool need_sums = training || ggamma || gbeta;
  if (!need_sums && !gx) return;
  std::vector<double> part(need_sums ? 2 * C * chunks : 0);  // per item: Σg, Σg·(x − μ)
  auto sums = [&](int64_t c, int64_t k) {
    const T mu = mean[c];
    double* p = &part[2 * (c * chunks + k)];
    p[0] = p[1] = 0;
    for_runs(C, HW, c, k * kChunk, std::min(M, (k + 1) * kChunk), [&](int64_t off, int64_t len) {
      sums_grad<T, kRelu>(x + off, gy + off, kRelu ? relu_y + off : nullptr, mu, len, p[0], p[1]);
    });
  };
  auto finish = [&](int64_t c, bool owner, Coef<T>& cf) {
    // sum_gy = Σ g,  sum_gyxc = Σ g·(x − μ)  (so Σ g·x̂ = invstd·sum_gyxc).
    double sum_gy = 0, sum_gyxc = 0;
    const double inv = (double)invstd[c], g = gamma ? (double)gamma[c] : 1.0;
    if (need_sums) {
      for (int64_t k = 0; k < chunks; ++k)
        sum_gy += part[2 * (c * chunks + k)], sum_gyxc += part[2 * (c * chunks + k) + 1];
      if (owner && ggamma) ggamma[c] += (T)(sum_gyxc * inv);
      if (owner && gbeta) gbeta[c] += (T)sum_gy;
    }
    // gx += γ·invstd/M·(M·g − Σg − x̂·Σ(g·x̂)) = k_gy·g + k_xc·(x − μ) + k_0
    // (eval mode: the k_gy term only), the coefficients as in the reference.
    cf.a = (T)(g * inv);
    cf.b = training ? (T)(-g * inv * inv * inv * sum_gyxc / (double)M) : T(0);
    cf.z = training ? (T)(-g * inv * sum_gy / (double)M) : T(0);
  };
  auto apply = [&](int64_t c, int64_t k, const Coef<T>& cf) {
    const T mu = mean[c], a = cf.a, b = cf.b, z = cf.z;
    for_runs(C, HW, c, k * kChunk, std::min(M, (k + 1) * kChunk), [&](int64_t off, int64_t len) {
      const T *xp = x + off, *gp = gy + off, *rp = kRelu ? relu_y + off : nullptr;
      T* gxp = gx + off;
      // Four loops, no test inside any: accumulate or store, training or eval.
      if (training && gx_accumulate) {
#pragma omp simd
        for (int64_t i = 0; i < len; ++i) {
          const T gi = kRelu ? masked(rp[i], gp[i]) : gp[i];
          gxp[i] += a * gi + b * (xp[i] - mu) + z;
        }
      } else if (training) {
#pragma omp simd
        for (int64_t i = 0; i < len; ++i) {
          const T gi = kRelu ? masked(rp[i], gp[i]) : gp[i];
          gxp[i] = a * gi + b * (xp[i] - mu) + z;
        }
      } else if (gx_accumulate) {
#pragma omp simd
        for (int64_t i = 0; i < len; ++i) gxp[i] += a * (kRelu ? masked(rp[i], gp[i]) : gp[i]);
      } else {
#pragma omp simd
        for (int64_t i = 0; i < len; ++i) gxp[i] = a * (kRelu ? masked(rp[i], gp[i]) : gp[i]);
      }
    });
  };
  auto no_apply = [](int64_t, int64_t, const Coef<T>&) {};
  const bool parallel = N * C * HW > kParallelMinElems;
  if (gx)
    run_groups<T>(C, M, need_sums, parallel, sums, finish, apply);
  else
    run_groups<T>(C, M, need_sums, parallel, sums, finish, no_apply);
}

}  // namespace

// M = 0 (no values per channel) is left to the reference, which defines it.
template <typename T>
void batchnorm2d_forward_cpu_tuned(const T* x, const T* gamma, const T* beta, T* running_mean, T* running_var, T* y,
                                   T* mean, T* invstd, int64_t N, int64_t C, int64_t HW, bool training,
                                   double momentum, double eps) {
  if (N * HW == 0)
    return batchnorm2d_forward_cpu_reference(x, gamma, beta, running_mean, running_var, y, mean, invstd, N, C, HW,
                                             training, momentum, eps);
  bn_forward_tuned<T, false>(x, gamma, beta, running_mean, running_var, y, mean, invstd, N, C, HW, training,
                             momentum, eps);
}
template <typename T>
void batchnorm2d_backward_cpu_tuned(const T* x, const T* gamma, const T* mean, const T* invstd, const T* gy, T* gx,
                                    T* ggamma, T* gbeta, int64_t N, int64_t C, int64_t HW, bool training,
                                    bool gx_accumulate) {
  if (N * HW == 0)
    return batchnorm2d_backward_cpu_reference(x, gamma, mean, invstd, gy, gx, ggamma, gbeta, N, C, HW, training,
                                              gx_accumulate);
  bn_backward_tuned<T, false>(x, gamma, mean, invstd, (const T*)nullptr, gy, gx, ggamma, gbeta, N, C, HW, training,
                              gx_accumulate);
}
template <typename T>
void batchnorm2d_relu_forward_cpu_tuned(const T* x, const T* gamma, const T* beta, T* running_mean, T* running_var,
                                        T* y, T* mean, T* invstd, int64_t N, int64_t C, int64_t HW, bool training,
                                        double momentum, double eps) {
  if (N * HW == 0)
    return batchnorm2d_relu_forward_cpu_reference(x, gamma, beta, running_mean, running_var, y, mean, invstd, N, C,
                                                  HW, training, momentum, eps);
  bn_forward_tuned<T, true>(x, gamma, beta, running_mean, running_var, y, mean, invstd, N, C, HW, training, momentum,
                            eps);
}
template <typename T>
void batchnorm2d_relu_backward_cpu_tuned(const T* x, const T* gamma, const T* mean, const T* invstd, const T* y,
                                         const T* gy, T* gx, T* ggamma, T* gbeta, int64_t N, int64_t C, int64_t HW,
                                         bool training, bool gx_accumulate) {
  if (N * HW == 0)
    return batchnorm2d_relu_backward_cpu_reference(x, gamma, mean, invstd, y, gy, gx, ggamma, gbeta, N, C, HW,
                                                   training, gx_accumulate);
  bn_backward_tuned<T, true>(x, gamma, mean, invstd, y, gy, gx, ggamma, gbeta, N, C, HW, training, gx_accumulate);
}

#define CTG_INSTANTIATE_BATCHNORM2D_TUNED(T)                                                                        \
  template void batchnorm2d_forward_cpu_tuned<T>(const T*, const T*, const T*, T*, T*, T*, T*, T*, int64_t,         \
                                                 int64_t, int64_t, bool, double, double);                         \
  template void batchnorm2d_backward_cpu_tuned<T>(const T*, const T*, const T*, const T*, const T*, T*, T*, T*,     \
                                                  int64_t, int64_t, int64_t, bool, bool);                         \
  template void batchnorm2d_relu_forward_cpu_tuned<T>(const T*, const T*, const T*, T*, T*, T*, T*, T*, int64_t,    \
                                                      int64_t, int64_t, bool, double, double);                    \
  template void batchnorm2d_relu_backward_cpu_tuned<T>(const T*, const T*, const T*, const T*, const T*, const T*,  \
                                                       T*, T*, T*, int64_t, int64_t, int64_t, bool, bool);
CTG_INSTANTIATE_BATCHNORM2D_TUNED(float)
CTG_INSTANTIATE_BATCHNORM2D_TUNED(double)
#undef CTG_INSTANTIATE_BATCHNORM2D_TUNED

}  // namespace ctg::kernels
