// CPU reference for conv2d (see kernels/conv2d.h): im2col + one GEMM per group
// of images, col2im for the input gradient.
//
// Images are processed in groups of G: the group's columns sit side by side in
// one scratch matrix cols [K, G·P] (image g in columns g·P .. g·P+P−1), so each
// GEMM is W[O,K]·cols[K,G·P]. Deep layers have a small P (16×16 = 256) and a
// large K (512·9); one image alone makes a thin GEMM that OpenBLAS runs far
// below peak, and the weight gradient would re-read and re-write all of dW per
// image. A group is only worth it when P is small; for G > 1 the output comes
// out as [O, G·P] and is scattered back to NCHW (cheap next to the 2·K flops
// per output element).
//
// Threading: im2col/col2im use OpenMP; the GEMMs are left to OpenBLAS's own
// threads and are never called from inside an OpenMP region.
#include "kernels/conv2d.h"

#include <algorithm>
#include <vector>

#include "kernels/cpu/gemm.h"

namespace ctg::kernels {
namespace {

// Group of images is grown until it has about this many columns...
constexpr int64_t kGroupCols = 2048;
// ...while the scratch (cols + gathered gy) stays under this many elements.
constexpr int64_t kMaxScratch = int64_t(1) << 25;

// One grow-only buffer per thread and type, reused across calls: a fresh
// allocation of tens of MB per call would cost page faults on every step.
template <typename T>
T* scratch(int64_t n) {
  thread_local std::vector<T> buf;
  if ((int64_t)buf.size() < n) {
    buf = std::vector<T>();  // free the old one first, keep peak memory low
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
  int64_t lo = std::max<int64_t>(0, floor_div(pad - q + S - 1, S));
  int64_t hi = std::min<int64_t>(OW, floor_div(W - 1 + pad - q, S) + 1);
  return {std::min(lo, OW), std::max(hi, std::min(lo, OW))};
}

bool is_pointwise(const Conv2dDims& d) {
  return d.KH == 1 && d.KW == 1 && d.SH == 1 && d.SW == 1 && d.PH == 0 && d.PW == 0;
}

int64_t group_size(const Conv2dDims& d) {
  const int64_t K = d.C * d.KH * d.KW, P = d.OH * d.OW;
  if (is_pointwise(d)) return 1;  // cols is the image itself, read in place
  int64_t g = std::min<int64_t>(d.N, std::max<int64_t>(1, (kGroupCols + P - 1) / P));
  while (g > 1 && (K + d.O) * g * P > kMaxScratch) --g;
  return g;
}

// cols[K, G·P] ← unfold of G images starting at x (see kernels/conv2d.h).
template <typename T>
void im2col(const T* __restrict__ x, T* __restrict__ cols, int64_t G, const Conv2dDims& d) {
  const int64_t K = d.C * d.KH * d.KW, P = d.OH * d.OW, ld = G * P;
#pragma omp parallel for collapse(2) schedule(static)
  for (int64_t r = 0; r < K; ++r)
    for (int64_t g = 0; g < G; ++g) {
      const int64_t c = r / (d.KH * d.KW), p = (r / d.KW) % d.KH, q = r % d.KW;
      const T* xc = x + (g * d.C + c) * d.H * d.W;
      T* dst = cols + r * ld + g * P;
      const Range jr = valid_range(q, d.SW, d.PW, d.W, d.OW);
      for (int64_t i = 0; i < d.OH; ++i) {
        T* row = dst + i * d.OW;
        const int64_t h = i * d.SH + p - d.PH;
        if (h < 0 || h >= d.H || jr.lo == jr.hi) {
          std::fill(row, row + d.OW, T(0));
          continue;
        }
        std::fill(row, row + jr.lo, T(0));
        const T* src = xc + h * d.W + (jr.lo * d.SW + q - d.PW);
        T* out = row + jr.lo;
        const int64_t n = jr.hi - jr.lo;
        if (d.SW == 1) {
          std::copy(src, src + n, out);
        } else {
          for (int64_t j = 0; j < n; ++j) out[j] = src[j * d.SW];
        }
        std::fill(row + jr.hi, row + d.OW, T(0));
      }
    }
}

// gx (G images) += fold of gcols[K, G·P]. Parallel over input rows (g,c,h):
// each row gathers the (p, i) pairs with i·SH + p − PH = h, so no two threads
// write the same pixel and C = 1 still splits across threads.
template <typename T>
void col2im_add(const T* __restrict__ gcols, T* __restrict__ gx, int64_t G, const Conv2dDims& d) {
  const int64_t P = d.OH * d.OW, ld = G * P;
#pragma omp parallel for collapse(3) schedule(static)
  for (int64_t g = 0; g < G; ++g)
    for (int64_t c = 0; c < d.C; ++c)
      for (int64_t h = 0; h < d.H; ++h) {
        T* __restrict__ gxrow = gx + ((g * d.C + c) * d.H + h) * d.W;
        for (int64_t p = 0; p < d.KH; ++p) {
          const int64_t t = h + d.PH - p;
          if (t < 0 || t % d.SH != 0 || t / d.SH >= d.OH) continue;
          const int64_t i = t / d.SH;
          for (int64_t q = 0; q < d.KW; ++q) {
            const Range jr = valid_range(q, d.SW, d.PW, d.W, d.OW);
            const T* __restrict__ src =
                gcols + ((c * d.KH + p) * d.KW + q) * ld + g * P + i * d.OW + jr.lo;
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
void conv2d_forward_cpu(const T* x, const T* w, const T* b, T* y, const Conv2dDims& d) {
  const int64_t K = d.C * d.KH * d.KW, P = d.OH * d.OW, G = group_size(d);
  const bool pointwise = is_pointwise(d);
  T* cols = pointwise ? nullptr : scratch<T>(K * G * P + (G > 1 ? d.O * G * P : 0));
  for (int64_t n0 = 0; n0 < d.N; n0 += G) {
    const int64_t g = std::min(G, d.N - n0);
    const T* xn = x + n0 * d.C * d.H * d.W;
    T* yn = y + n0 * d.O * P;
    if (g == 1) {
      // One image: GEMM straight into y[n] = [O,P] on top of the bias (beta = 1).
      for (int64_t o = 0; o < d.O; ++o) std::fill(yn + o * P, yn + (o + 1) * P, b ? b[o] : T(0));
      if (!pointwise) im2col(xn, cols, 1, d);
      const T* B = pointwise ? xn : cols;  // pointwise: the image [C,P] is its own cols
      cpu::gemm(false, false, d.O, P, K, T(1), w, K, B, P, T(1), yn, P);
      continue;
    }
    // A group: out[O, g·P] = W·cols, then scatter each image's block (+ bias) to NCHW.
    im2col(xn, cols, g, d);
    T* out = cols + K * G * P;
    cpu::gemm(false, false, d.O, g * P, K, T(1), w, K, cols, g * P, T(0), out, g * P);
#pragma omp parallel for collapse(2) schedule(static)
    for (int64_t k = 0; k < g; ++k)
      for (int64_t o = 0; o < d.O; ++o) {
        const T bias = b ? b[o] : T(0);
        const T* src = out + o * g * P + k * P;
        T* dst = yn + (k * d.O + o) * P;
        for (int64_t j = 0; j < P; ++j) dst[j] = src[j] + bias;
      }
  }
}

template <typename T>
void conv2d_backward_cpu(const T* x, const T* w, const T* gy, T* gx, T* gw, T* gb,
                         const Conv2dDims& d) {
  const int64_t K = d.C * d.KH * d.KW, P = d.OH * d.OW;
  if (gb) {
    // dL/db[o] = Σ_{n,p} gy[n,o,p]; the simd reduction lets the sum vectorise.
#pragma omp parallel for schedule(static)
    for (int64_t o = 0; o < d.O; ++o) {
      T s = 0;
      for (int64_t n = 0; n < d.N; ++n) {
        const T* row = gy + (n * d.O + o) * P;
#pragma omp simd reduction(+ : s)
        for (int64_t j = 0; j < P; ++j) s += row[j];
      }
      gb[o] += s;
    }
  }
  if (!gx && !gw) return;
  const int64_t G = group_size(d);
  if (is_pointwise(d)) {
    // cols = x[n] and dcols = dx[n]: both GEMMs read and write the tensors in place.
    for (int64_t n = 0; n < d.N; ++n) {
      const T* gyn = gy + n * d.O * P;
      if (gw) cpu::gemm(false, true, d.O, K, P, T(1), gyn, P, x + n * K * P, P, T(1), gw, K);
      if (gx) cpu::gemm(true, false, K, P, d.O, T(1), w, K, gyn, P, T(1), gx + n * K * P, P);
    }
    return;
  }
  T* cols = scratch<T>(K * G * P + (G > 1 ? d.O * G * P : 0));
  for (int64_t n0 = 0; n0 < d.N; n0 += G) {
    const int64_t g = std::min(G, d.N - n0), ld = g * P;
    const T* xn = x + n0 * d.C * d.H * d.W;
    // gyg [O, g·P]: the group's output gradient side by side (gathered when g > 1).
    const T* gyg = gy + n0 * d.O * P;
    if (g > 1) {
      T* buf = cols + K * G * P;
#pragma omp parallel for collapse(2) schedule(static)
      for (int64_t k = 0; k < g; ++k)
        for (int64_t o = 0; o < d.O; ++o)
          std::copy(gyg + (k * d.O + o) * P, gyg + (k * d.O + o + 1) * P, buf + o * ld + k * P);
      gyg = buf;
    }
    if (gw) {
      im2col(xn, cols, g, d);
      cpu::gemm(false, true, d.O, K, ld, T(1), gyg, ld, cols, ld, T(1), gw, K);
    }
    if (gx) {
      // cols is free again: reuse it for dcols = Wᵀ·gy, then fold into gx.
      cpu::gemm(true, false, K, ld, d.O, T(1), w, K, gyg, ld, T(0), cols, ld);
      col2im_add(cols, gx + n0 * d.C * d.H * d.W, g, d);
    }
  }
}

template void conv2d_forward_cpu<float>(const float*, const float*, const float*, float*, const Conv2dDims&);
template void conv2d_forward_cpu<double>(const double*, const double*, const double*, double*, const Conv2dDims&);
template void conv2d_backward_cpu<float>(const float*, const float*, const float*, float*, float*, float*, const Conv2dDims&);
template void conv2d_backward_cpu<double>(const double*, const double*, const double*, double*, double*, double*, const Conv2dDims&);

}  // namespace ctg::kernels
