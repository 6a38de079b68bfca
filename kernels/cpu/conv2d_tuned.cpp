// Tuned CPU conv2d (see kernels/conv2d.h; the plain loops it is tested against
// are kernels/cpu/conv2d.cpp): im2col + OpenBLAS GEMM, col2im for the input gradient.
//
// The work is cut into tiles; each tile unfolds into one scratch matrix
// cols [K, ld] and takes one GEMM per product:
//  - small images (16×16 .. 32×32 with K = C·9 large): a tile is a group of
//    whole images side by side (image k in columns k·P .. k·P+P−1). One image
//    alone makes a thin GEMM that runs below peak and re-reads all of dW per
//    image; the group's wide GEMM W[O,K]·cols[K,G·P] -> [O,G·P] is scattered
//    back to NCHW afterwards (cheap next to the 2·K flops per output element).
//  - large images (OH·OW ≥ tune.wide_below): a tile is one image, or a band of
//    its output rows when the image's columns exceed tune.max_scratch. Bands
//    only bound the memory: every tile costs two OpenMP regions and a few
//    GEMM calls, each a barrier, and on a loaded 2-core machine small
//    (cache-sized) bands measured up to 5× slower than whole images.
// The scratch is at most tune.max_scratch elements (64 MiB in float).
// im2col/col2im run on OpenMP; GEMMs are never called inside an OpenMP region
// (OpenBLAS threads itself, on the same OpenMP pool: CMakeLists.txt).
#include "kernels/conv2d.h"

#include <algorithm>
#include <cstdlib>
#include <string>
#include <type_traits>
#include <vector>

#include "base/error.h"
#include "kernels/cpu/gemm.h"
#include "kernels/cpu/im2col.h"

namespace ctg::kernels {
namespace {

using cpu_conv::im2col;
using cpu_conv::Range;
using cpu_conv::Tile;
using cpu_conv::valid_range;

// One grow-only buffer per thread and type, reused across calls: allocating
// megabytes per call would cost page faults on every training step.
// Tag: separate buffers for data that must be live at the same time.
template <typename T, int Tag = 0>
T* scratch(int64_t n) {
  thread_local std::vector<T> buf;
  if ((int64_t)buf.size() < n) {
    buf = std::vector<T>();  // free the old one first: keeps peak memory low
    buf.resize((size_t)n);
  }
  return buf.data();
}

// Below this many elements of work a loop runs on the calling thread: waking
// the team costs more than it saves (and gradchecks call tiny convs thousands of times).
constexpr int64_t kParallelMin = int64_t(1) << 15;


struct Plan {
  int64_t K, P;
  bool wide;           // tiles are groups of whole images
  int64_t step;        // images per group (wide) or output rows per tile
  int64_t scratch;     // elements: cols [K, ld] (+ the wide GEMM's output [O, ld])
};
Plan make_plan(const Conv2dDims& d, const Conv2dCpuTuning& tune) {
  Plan pl{d.C * d.KH * d.KW, d.OH * d.OW, false, 1, 0};
  pl.wide = pl.P < tune.wide_below;
  if (pl.wide) {
    const int64_t per_image = (pl.K + d.O) * pl.P;
    const int64_t gmax = std::max<int64_t>(1, std::min(d.N, tune.max_scratch / per_image));
    const int64_t groups = std::max<int64_t>(1, (d.N + gmax - 1) / gmax);
    pl.step = std::max<int64_t>(1, (d.N + groups - 1) / groups);  // balanced groups
    pl.scratch = per_image * pl.step;
  } else {
    // Balanced bands: as few as fit in max_scratch, of equal height.
    const int64_t rows_max = std::max<int64_t>(1, std::min(d.OH, tune.max_scratch / (pl.K * d.OW)));
    const int64_t bands = (d.OH + rows_max - 1) / rows_max;
    pl.step = (d.OH + bands - 1) / bands;
    pl.scratch = pl.K * pl.step * d.OW;
  }
  return pl;
}
template <typename F>
void for_each_tile(const Plan& pl, const Conv2dDims& d, F&& f) {
  if (pl.wide) {
    for (int64_t n0 = 0; n0 < d.N; n0 += pl.step) f(Tile{n0, std::min(pl.step, d.N - n0), 0, d.OH});
    return;
  }
  for (int64_t n = 0; n < d.N; ++n)
    for (int64_t i0 = 0; i0 < d.OH; i0 += pl.step) f(Tile{n, 1, i0, std::min(d.OH, i0 + pl.step)});
}

// gx += fold of the tile's gcols; gx points at image n0. Parallel over input
// rows (k,c,h): each gathers the (p, i) pairs with i·SH + p − PH = h, so no two
// threads write the same pixel, and C = 1 still splits across threads.
template <typename T>
void col2im_add(const T* __restrict__ gcols, T* __restrict__ gx, const Tile& t, const Conv2dDims& d) {
  const int64_t K = d.C * d.KH * d.KW, bp = (t.i1 - t.i0) * d.OW, ld = t.g * bp;
  // Input rows the tile's output rows read: [i0·SH − PH, (i1−1)·SH − PH + KH).
  const int64_t h0 = std::max<int64_t>(0, t.i0 * d.SH - d.PH);
  const int64_t h1 = std::min(d.H, (t.i1 - 1) * d.SH - d.PH + d.KH);
  if (h1 <= h0) return;  // the tile only reads padding
#pragma omp parallel for collapse(3) schedule(static) if (K * ld >= kParallelMin)
  for (int64_t k = 0; k < t.g; ++k)
    for (int64_t c = 0; c < d.C; ++c)
      for (int64_t h = h0; h < h1; ++h) {
        T* __restrict__ gxrow = gx + ((k * d.C + c) * d.H + h) * d.W;
        for (int64_t p = 0; p < d.KH; ++p) {
          const int64_t s = h + d.PH - p;
          if (s < 0 || s % d.SH != 0 || s / d.SH < t.i0 || s / d.SH >= t.i1) continue;
          const int64_t i = s / d.SH;
          for (int64_t q = 0; q < d.KW; ++q) {
            const Range jr = valid_range(q, d.SW, d.PW, d.W, d.OW);
            const T* __restrict__ src =
                gcols + ((c * d.KH + p) * d.KW + q) * ld + k * bp + (i - t.i0) * d.OW + jr.lo;
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

// gx[0, n) = 0: a first write's starting value for the fold.
template <typename T>
void zero_images(T* gx, int64_t n) {
  constexpr int64_t kChunk = int64_t(1) << 14;
  const int64_t chunks = (n + kChunk - 1) / kChunk;
#pragma omp parallel for schedule(static) if (n >= kParallelMin)
  for (int64_t k = 0; k < chunks; ++k) std::fill(gx + k * kChunk, gx + std::min(n, (k + 1) * kChunk), T(0));
}

// Whether the unfold is fused into the GEMM's packing: float on ctgrad's own
// SGEMM (OpenBLAS and double need the written matrix), as tune.fused_im2col
// or, by default, CTGRAD_IM2COL (fused unless "matrix") says.
bool fused_default() {
  static const bool fused = [] {
    const char* v = std::getenv("CTGRAD_IM2COL");
    const std::string s = v ? v : "";
    if (s.empty() || s == "fused") return true;
    if (s == "matrix") return false;
    throw Error("CTGRAD_IM2COL: expected fused or matrix, got '" + s + "'");
  }();
  return fused;
}
template <typename T>
bool use_fused(const Conv2dCpuTuning& tune) {
  if constexpr (!std::is_same_v<T, float>) {
    return false;
  } else {
    return cpu::gemm_takes_source() && (tune.fused_im2col < 0 ? fused_default() : tune.fused_im2col > 0);
  }
}

// C = op(A)·U + beta·C (tb = false) or op(A)·Uᵀ + beta·C (tb = true), U the
// tile's unfold [K, ld] of xt (image n0): read from the image while the SGEMM
// packs it (fused), or written to cols first.
template <typename T>
void gemm_unfold(bool fused, bool tb, int64_t M, int64_t N, int64_t K, const T* A, int64_t lda, const T* xt,
                 const Tile& t, const Conv2dDims& d, T* cols, T beta, T* C, int64_t ldc) {
  const int64_t ld = t.g * (t.i1 - t.i0) * d.OW;
  if constexpr (std::is_same_v<T, float>) {
    if (fused) {
      const cpu_conv::Im2colRows src{xt, t, d};
      return cpu::gemm(false, tb, M, N, K, 1.f, A, lda, src.source(), beta, C, ldc);
    }
  }
#pragma omp parallel if (d.C * d.KH * d.KW * ld >= kParallelMin)
  im2col(xt, cols, t, d);
  cpu::gemm(false, tb, M, N, K, T(1), A, lda, cols, ld, beta, C, ldc);
}

// y = b + conv(x, W), or with accumulate y += conv(x, W) (b must be nullptr):
// the forward below, and the input gradient of stride-1 convolutions.
template <typename T>
void forward_gemm(const T* x, const T* w, const T* b, T* y, const Conv2dDims& d, const Conv2dCpuTuning& tune,
                  bool accumulate) {
  if constexpr (std::is_same_v<T, float>) {
    if (const int m = conv2d_winograd_tile(d, tune)) return conv2d_forward_cpu_winograd(x, w, b, y, d, m, accumulate);
  }
  const Plan pl = make_plan(d, tune);
  const int64_t K = pl.K, P = pl.P, O = d.O;
  if (conv2d_is_pointwise(d)) {
    // cols is the image [C,P] itself: y[n] = W·x[n] on top of the bias, no copy.
    for (int64_t n = 0; n < d.N; ++n) {
      T* yn = y + n * O * P;
      if (b)
        for (int64_t o = 0; o < O; ++o) std::fill(yn + o * P, yn + (o + 1) * P, b[o]);
      cpu::gemm(false, false, O, P, K, T(1), w, K, x + n * K * P, P, b || accumulate ? T(1) : T(0), yn, P);
    }
    return;
  }
  const bool fused = use_fused<T>(tune);
  // Unfused: cols [K, ld] (+ the group's product [O, ld]); fused: the product only.
  T* buf = scratch<T>(fused ? (pl.wide ? O * pl.step * P : 0) : pl.scratch);
  for_each_tile(pl, d, [&](const Tile& t) {
    const int64_t bp = (t.i1 - t.i0) * d.OW, ld = t.g * bp;
    T* yt = y + t.n0 * O * P + t.i0 * d.OW;  // the tile's first output, row stride P
    const T* xt = x + t.n0 * d.C * d.H * d.W;
    if (t.g == 1) {
      if (b) {  // the GEMM adds onto the bias (beta = 1)
#pragma omp parallel for schedule(static) if (O * bp >= kParallelMin)
        for (int64_t o = 0; o < O; ++o) std::fill(yt + o * P, yt + o * P + bp, b[o]);
      }
      return gemm_unfold(fused, false, O, bp, K, w, K, xt, t, d, buf, b || accumulate ? T(1) : T(0), yt, P);
    }
    T* out = fused ? buf : buf + K * ld;  // [O, g·P], then scattered to y[n0+k, o]
    gemm_unfold(fused, false, O, ld, K, w, K, xt, t, d, buf, T(0), out, ld);
#pragma omp parallel for collapse(2) schedule(static) if (O * ld >= kParallelMin)
    for (int64_t k = 0; k < t.g; ++k)
      for (int64_t o = 0; o < O; ++o) {
        const T bias = b ? b[o] : T(0);
        const T* src = out + o * ld + k * P;
        T* dst = yt + (k * O + o) * P;
        if (accumulate) {
          for (int64_t j = 0; j < P; ++j) dst[j] += src[j];
        } else {
          for (int64_t j = 0; j < P; ++j) dst[j] = src[j] + bias;
        }
      }
  });
}

// The input gradient of a stride-1 convolution is itself a stride-1
// convolution: substituting p' = KH−1−p, q' = KW−1−q in
//   dx[n,c,h,w] = Σ_{o,p,q} W[o,c,p,q] · gy[n,o, h+PH−p, w+PW−q]
// gives a correlation of gy (O channels, OH×OW, padded by KH−1−PH, KW−1−PW)
// with the flipped, transposed kernel W'[c,o,p',q'] = W[o,c,KH−1−p',KW−1−q'],
// whose output is exactly H×W. Run through forward_gemm it is an im2col copy
// of gy and one GEMM onto gx (beta = 1), instead of a GEMM into K×P columns
// (zeroed first by the BLAS, beta = 0) and a scatter-add (col2im) of all K
// rows into gx: ResNet18's 3×3 layers at 512² spent ~6 % of a training step
// in col2im_add and ~2 % in the BLAS's beta pass. Needs PH ≤ KH−1, PW ≤ KW−1.
// A first write (accumulate false) is that convolution's plain forward, no
// bias: GEMM beta = 0, so gx is stored and never read.
bool grad_input_as_conv(const Conv2dDims& d) {
  return d.SH == 1 && d.SW == 1 && d.PH <= d.KH - 1 && d.PW <= d.KW - 1;
}
template <typename T>
void grad_input_conv(const T* w, const T* gy, T* gx, const Conv2dDims& d, const Conv2dCpuTuning& tune,
                     bool accumulate) {
  Conv2dDims t = d;
  t.C = d.O, t.H = d.OH, t.W = d.OW;  // input: gy
  t.O = d.C, t.OH = d.H, t.OW = d.W;  // output: gx
  t.PH = d.KH - 1 - d.PH, t.PW = d.KW - 1 - d.PW;
  const int64_t KK = d.KH * d.KW;
  T* wt = scratch<T, 1>(d.O * d.C * KK);
#pragma omp parallel for collapse(2) schedule(static) if (d.O * d.C * KK >= kParallelMin)
  for (int64_t c = 0; c < d.C; ++c)
    for (int64_t o = 0; o < d.O; ++o) {
      const T* src = w + (o * d.C + c) * KK;
      T* dst = wt + (c * d.O + o) * KK;
      for (int64_t k = 0; k < KK; ++k) dst[k] = src[KK - 1 - k];  // (p, q) → (KH−1−p, KW−1−q)
    }
  forward_gemm(gy, wt, (const T*)nullptr, gx, t, tune, accumulate);
}

}  // namespace

template <typename T>
void conv2d_forward_cpu_tuned(const T* x, const T* w, const T* b, T* y, const Conv2dDims& d,
                              const Conv2dCpuTuning& tune) {
  if (conv2d_use_direct(d, tune)) return conv2d_forward_cpu_direct(x, w, b, y, d);
  forward_gemm(x, w, b, y, d, tune, false);
}

template <typename T>
void conv2d_backward_cpu_tuned(const T* x, const T* w, const T* gy, T* gx, T* gw, T* gb,
                               const Conv2dDims& d, const Conv2dCpuTuning& tune, bool gx_accumulate) {
  if (conv2d_use_direct(d, tune)) return conv2d_backward_cpu_direct(x, w, gy, gx, gw, gb, d, gx_accumulate);
  const Plan pl = make_plan(d, tune);
  const int64_t K = pl.K, P = pl.P, O = d.O;
  if (gb) {
    // dL/db[o] = Σ_{n,i,j} gy[n,o,i,j]; the simd reduction lets the sum vectorise.
#pragma omp parallel for schedule(static) if (d.N * O * P >= kParallelMin)
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
  if constexpr (std::is_same_v<T, float>) {
    const int m = gw ? conv2d_winograd_tile(d, tune) : 0;
    if (m) {
      conv2d_backward_weight_cpu_winograd(x, gy, gw, d, m);
      gw = nullptr;  // done: the rest is dx
    }
  }
  if (!gx && !gw) return;
  if (conv2d_is_pointwise(d)) {
    // cols = x[n] and dcols = dx[n]: both GEMMs read and write the tensors in
    // place; a first write of dx is beta = 0.
    const T gx_beta = gx_accumulate ? T(1) : T(0);
    for (int64_t n = 0; n < d.N; ++n) {
      const T* gyn = gy + n * O * P;
      if (gw) cpu::gemm(false, true, O, K, P, T(1), gyn, P, x + n * K * P, P, T(1), gw, K);
      if (gx) cpu::gemm(true, false, K, P, O, T(1), w, K, gyn, P, gx_beta, gx + n * K * P, P);
    }
    return;
  }
  const bool gx_conv = gx && grad_input_as_conv(d);
  if (gx_conv && !gw) return grad_input_conv(w, gy, gx, d, tune, gx_accumulate);
  const bool fused = use_fused<T>(tune);
  const bool dcols = gx && !gx_conv;  // dcols = Wᵀ·gy into cols, folded by col2im
  // cols [K, ld] where it is written (unfused, or dcols), then the group's gathered gy [O, ld].
  const bool need_cols = !fused || dcols;
  T* buf = scratch<T>(need_cols ? pl.scratch : (pl.wide ? O * pl.step * P : 0));
  for_each_tile(pl, d, [&](const Tile& t) {
    const int64_t bp = (t.i1 - t.i0) * d.OW, ld = t.g * bp;
    T* cols = buf;
    // The tile's output gradient as a [O, ld] matrix: in place (row stride P)
    // for one image, gathered side by side for a group.
    const T* gyt = gy + t.n0 * O * P + t.i0 * d.OW;
    int64_t ldg = P;
    if (t.g > 1) {
      T* gathered = need_cols ? buf + K * ld : buf;
#pragma omp parallel for collapse(2) schedule(static) if (O * ld >= kParallelMin)
      for (int64_t k = 0; k < t.g; ++k)
        for (int64_t o = 0; o < O; ++o)
          std::copy(gyt + (k * O + o) * P, gyt + (k * O + o + 1) * P, gathered + o * ld + k * P);
      gyt = gathered, ldg = ld;
    }
    // dW += gy · colsᵀ  (inner dimension: the tile's output pixels).
    if (gw) gemm_unfold(fused, true, O, K, ld, gyt, ldg, x + t.n0 * d.C * d.H * d.W, t, d, cols, T(1), gw, K);
    if (!dcols) return;
    // cols is free again: dcols = Wᵀ · gy overwrites it, then folds into gx.
    cpu::gemm(true, false, K, ld, O, T(1), w, K, gyt, ldg, T(0), cols, ld);
    T* gxt = gx + t.n0 * d.C * d.H * d.W;
    // A first write zeroes the tile's images at their first tile (a group, or
    // an image's first band), just before the fold adds into them, while
    // they are about to be in cache anyway.
    if (!gx_accumulate && t.i0 == 0) zero_images(gxt, t.g * d.C * d.H * d.W);
    col2im_add(cols, gxt, t, d);
  });
  if (gx_conv) grad_input_conv(w, gy, gx, d, tune, gx_accumulate);
}

#define CTG_CONV2D_INSTANTIATE(T)                                                                        \
  template void conv2d_forward_cpu_tuned<T>(const T*, const T*, const T*, T*, const Conv2dDims&,         \
                                            const Conv2dCpuTuning&);                                     \
  template void conv2d_backward_cpu_tuned<T>(const T*, const T*, const T*, T*, T*, T*, const Conv2dDims&, \
                                             const Conv2dCpuTuning&, bool);
CTG_CONV2D_INSTANTIATE(float)
CTG_CONV2D_INSTANTIATE(double)
#undef CTG_CONV2D_INSTANTIATE

}  // namespace ctg::kernels
