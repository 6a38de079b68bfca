// CPU reference for conv2d (see kernels/conv2d.h): im2col + OpenBLAS GEMM,
// col2im for the input gradient.
//
// Images go through in groups of G whose columns sit side by side in one
// scratch matrix cols [K, G·P] (image k in columns k·P .. k·P+P−1). Why groups:
//  - OpenMP (im2col/col2im) and OpenBLAS (GEMM) keep separate thread pools,
//    and each hand-over from one to the other costs milliseconds while the
//    idle pool's threads spin on the cores the other needs. One im2col region
//    per group, then all of the group's GEMMs back to back, keeps the number
//    of hand-overs at two per group instead of two per image.
//  - Deep layers have small P (16×16 = 256) and large K (512·9): a GEMM per
//    image is thin and re-reads all of dW per image. Below tune.wide_below columns
//    the group is one wide GEMM W[O,K]·cols[K,G·P] -> [O,G·P], scattered back
//    to NCHW afterwards (cheap next to the 2·K flops per output element).
// Both thresholds are in Conv2dCpuTuning (kernels/conv2d.h).
// GEMMs are never called inside an OpenMP region: OpenBLAS threads itself.
#include "kernels/conv2d.h"

#include <algorithm>
#include <vector>

#include "kernels/cpu/gemm.h"

namespace ctg::kernels {
namespace {

// One grow-only buffer per thread and type, reused across calls: allocating
// tens of MB per call would cost page faults on every training step.
template <typename T>
T* scratch(int64_t n) {
  thread_local std::vector<T> buf;
  if ((int64_t)buf.size() < n) {
    buf = std::vector<T>();  // free the old one first: keeps peak memory low
    buf.resize((size_t)n);
  }
  return buf.data();
}

inline int64_t floor_div(int64_t a, int64_t b) { return a >= 0 ? a / b : -((-a + b - 1) / b); }

// Output columns j whose input column j·S + q − pad lies in [0, W): [lo, hi).
// Computed once per kernel column q, so the inner loops carry no bounds test.
struct Range {
  int64_t lo, hi;
};
inline Range valid_range(int64_t q, int64_t S, int64_t pad, int64_t W, int64_t OW) {
  const int64_t lo = std::min(OW, std::max<int64_t>(0, floor_div(pad - q + S - 1, S)));
  const int64_t hi = std::min(OW, floor_div(W - 1 + pad - q, S) + 1);
  return {lo, std::max(lo, hi)};
}

bool is_pointwise(const Conv2dDims& d) {
  return d.KH == 1 && d.KW == 1 && d.SH == 1 && d.SW == 1 && d.PH == 0 && d.PW == 0;
}

struct Plan {
  int64_t K, P, G;  // rows of cols, columns per image, images per group
  bool wide;        // one GEMM over the group's G·P columns (+ scatter)
};
Plan make_plan(const Conv2dDims& d, const Conv2dCpuTuning& tune) {
  Plan pl{d.C * d.KH * d.KW, d.OH * d.OW, 1, false};
  pl.wide = pl.P < tune.wide_below;
  const int64_t per_image = (pl.K + (pl.wide ? d.O : 0)) * pl.P;
  const int64_t gmax = std::max<int64_t>(1, std::min(d.N, tune.max_scratch / per_image));
  const int64_t groups = std::max<int64_t>(1, (d.N + gmax - 1) / gmax);
  pl.G = std::max<int64_t>(1, (d.N + groups - 1) / groups);  // balanced groups
  return pl;
}

// cols[K, g·P] ← unfold of g images starting at x. An orphaned `omp for`:
// called inside a parallel region it shares the rows among the team.
template <typename T>
void im2col(const T* __restrict__ x, T* __restrict__ cols, int64_t g, const Conv2dDims& d) {
  const int64_t K = d.C * d.KH * d.KW, P = d.OH * d.OW, ld = g * P;
#pragma omp for collapse(2) schedule(static)
  for (int64_t r = 0; r < K; ++r)
    for (int64_t k = 0; k < g; ++k) {
      const int64_t c = r / (d.KH * d.KW), p = (r / d.KW) % d.KH, q = r % d.KW;
      const T* xc = x + (k * d.C + c) * d.H * d.W;
      T* dst = cols + r * ld + k * P;
      const Range jr = valid_range(q, d.SW, d.PW, d.W, d.OW);
      const int64_t n = jr.hi - jr.lo;
      for (int64_t i = 0; i < d.OH; ++i) {
        T* row = dst + i * d.OW;
        const int64_t h = i * d.SH + p - d.PH;
        if (h < 0 || h >= d.H || n == 0) {
          std::fill(row, row + d.OW, T(0));
          continue;
        }
        std::fill(row, row + jr.lo, T(0));
        const T* src = xc + h * d.W + (jr.lo * d.SW + q - d.PW);
        if (d.SW == 1) {
          std::copy(src, src + n, row + jr.lo);
        } else {
          for (int64_t j = 0; j < n; ++j) row[jr.lo + j] = src[j * d.SW];
        }
        std::fill(row + jr.hi, row + d.OW, T(0));
      }
    }
}

// gx (g images) += fold of gcols[K, g·P]. Parallel over input rows (k,c,h):
// each row gathers the (p, i) pairs with i·SH + p − PH = h, so no two threads
// write the same pixel, and C = 1 still splits across threads.
template <typename T>
void col2im_add(const T* __restrict__ gcols, T* __restrict__ gx, int64_t g, const Conv2dDims& d) {
  const int64_t P = d.OH * d.OW, ld = g * P;
#pragma omp parallel for collapse(3) schedule(static)
  for (int64_t k = 0; k < g; ++k)
    for (int64_t c = 0; c < d.C; ++c)
      for (int64_t h = 0; h < d.H; ++h) {
        T* __restrict__ gxrow = gx + ((k * d.C + c) * d.H + h) * d.W;
        for (int64_t p = 0; p < d.KH; ++p) {
          const int64_t t = h + d.PH - p;
          if (t < 0 || t % d.SH != 0 || t / d.SH >= d.OH) continue;
          const int64_t i = t / d.SH;
          for (int64_t q = 0; q < d.KW; ++q) {
            const Range jr = valid_range(q, d.SW, d.PW, d.W, d.OW);
            const T* __restrict__ src = gcols + ((c * d.KH + p) * d.KW + q) * ld + k * P + i * d.OW + jr.lo;
            T* __restrict__ dst = gxrow + (jr.lo * d.SW + q - d.PW);
            const int64_t n = jr.hi - jr.lo;
            if (d.SW == 1) {
              for (int64_t j = 0; j < n; ++j) dst[j] += src[j];
            } else {
              for (int64_t j = 0; j < n; ++j) dst[j * d.SW] += src[j];
            }
          }
        }
      }
}

}  // namespace

template <typename T>
void conv2d_forward_cpu(const T* x, const T* w, const T* b, T* y, const Conv2dDims& d,
                        const Conv2dCpuTuning& tune) {
  const Plan pl = make_plan(d, tune);
  const int64_t K = pl.K, P = pl.P, O = d.O;
  if (is_pointwise(d)) {
    // cols is the image [C,P] itself: y[n] = W·x[n] on top of the bias, no copy.
    for (int64_t n = 0; n < d.N; ++n) {
      T* yn = y + n * O * P;
      if (b)
        for (int64_t o = 0; o < O; ++o) std::fill(yn + o * P, yn + (o + 1) * P, b[o]);
      cpu::gemm(false, false, O, P, K, T(1), w, K, x + n * K * P, P, b ? T(1) : T(0), yn, P);
    }
    return;
  }
  T* cols = scratch<T>((K + (pl.wide ? O : 0)) * pl.G * P);
  for (int64_t n0 = 0; n0 < d.N; n0 += pl.G) {
    const int64_t g = std::min(pl.G, d.N - n0), ld = g * P;
    T* yn = y + n0 * O * P;
#pragma omp parallel
    {
      im2col(x + n0 * d.C * d.H * d.W, cols, g, d);
      if (b && !pl.wide) {  // per-image GEMMs add onto the bias (beta = 1)
#pragma omp for collapse(2) schedule(static)
        for (int64_t k = 0; k < g; ++k)
          for (int64_t o = 0; o < O; ++o) std::fill(yn + (k * O + o) * P, yn + (k * O + o + 1) * P, b[o]);
      }
    }
    if (!pl.wide) {
      // y[n] [O,P] = W · (image k's column block of cols, row stride g·P).
      for (int64_t k = 0; k < g; ++k)
        cpu::gemm(false, false, O, P, K, T(1), w, K, cols + k * P, ld, b ? T(1) : T(0), yn + k * O * P, P);
      continue;
    }
    T* out = cols + K * ld;  // [O, g·P]
    cpu::gemm(false, false, O, ld, K, T(1), w, K, cols, ld, T(0), out, ld);
#pragma omp parallel for collapse(2) schedule(static)
    for (int64_t k = 0; k < g; ++k)
      for (int64_t o = 0; o < O; ++o) {
        const T bias = b ? b[o] : T(0);
        const T* src = out + o * ld + k * P;
        T* dst = yn + (k * O + o) * P;
        for (int64_t j = 0; j < P; ++j) dst[j] = src[j] + bias;
      }
  }
}

template <typename T>
void conv2d_backward_cpu(const T* x, const T* w, const T* gy, T* gx, T* gw, T* gb,
                         const Conv2dDims& d, const Conv2dCpuTuning& tune) {
  const Plan pl = make_plan(d, tune);
  const int64_t K = pl.K, P = pl.P, O = d.O;
  if (gb) {
    // dL/db[o] = Σ_{n,i,j} gy[n,o,i,j]; the simd reduction lets the sum vectorise.
#pragma omp parallel for schedule(static)
    for (int64_t o = 0; o < O; ++o) {
      T s = 0;
      for (int64_t n = 0; n < d.N; ++n) {
        const T* row = gy + (n * O + o) * P;
#pragma omp simd reduction(+ : s)
        for (int64_t j = 0; j < P; ++j) s += row[j];
      }
      gb[o] += s;
    }
  }
  if (!gx && !gw) return;
  if (is_pointwise(d)) {
    // cols = x[n] and dcols = dx[n]: both GEMMs read and write the tensors in place.
    for (int64_t n = 0; n < d.N; ++n) {
      const T* gyn = gy + n * O * P;
      if (gw) cpu::gemm(false, true, O, K, P, T(1), gyn, P, x + n * K * P, P, T(1), gw, K);
      if (gx) cpu::gemm(true, false, K, P, O, T(1), w, K, gyn, P, T(1), gx + n * K * P, P);
    }
    return;
  }
  T* cols = scratch<T>((K + (pl.wide ? O : 0)) * pl.G * P);
  for (int64_t n0 = 0; n0 < d.N; n0 += pl.G) {
    const int64_t g = std::min(pl.G, d.N - n0), ld = g * P;
    const T* gyn = gy + n0 * O * P;
    T* gyw = pl.wide ? cols + K * ld : nullptr;  // the group's gy side by side, [O, g·P]
#pragma omp parallel
    {
      if (pl.wide) {
#pragma omp for collapse(2) schedule(static) nowait
        for (int64_t k = 0; k < g; ++k)
          for (int64_t o = 0; o < O; ++o)
            std::copy(gyn + (k * O + o) * P, gyn + (k * O + o + 1) * P, gyw + o * ld + k * P);
      }
      if (gw) im2col(x + n0 * d.C * d.H * d.W, cols, g, d);
    }
    // dW += gy · colsᵀ  (inner dimension: the group's pixels).
    if (gw && pl.wide) cpu::gemm(false, true, O, K, ld, T(1), gyw, ld, cols, ld, T(1), gw, K);
    if (gw && !pl.wide)
      for (int64_t k = 0; k < g; ++k)
        cpu::gemm(false, true, O, K, P, T(1), gyn + k * O * P, P, cols + k * P, ld, T(1), gw, K);
    if (!gx) continue;
    // cols is free again: dcols = Wᵀ · gy overwrites it, then folds into gx.
    if (pl.wide) cpu::gemm(true, false, K, ld, O, T(1), w, K, gyw, ld, T(0), cols, ld);
    if (!pl.wide)
      for (int64_t k = 0; k < g; ++k)
        cpu::gemm(true, false, K, P, O, T(1), w, K, gyn + k * O * P, P, T(0), cols + k * P, ld);
    col2im_add(cols, gx + n0 * d.C * d.H * d.W, g, d);
  }
}

#define CTG_CONV2D_INSTANTIATE(T)                                                              \
  template void conv2d_forward_cpu<T>(const T*, const T*, const T*, T*, const Conv2dDims&,     \
                                      const Conv2dCpuTuning&);                                 \
  template void conv2d_backward_cpu<T>(const T*, const T*, const T*, T*, T*, T*, const Conv2dDims&, \
                                       const Conv2dCpuTuning&);
CTG_CONV2D_INSTANTIATE(float)
CTG_CONV2D_INSTANTIATE(double)
#undef CTG_CONV2D_INSTANTIATE

}  // namespace ctg::kernels
