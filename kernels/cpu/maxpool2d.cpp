// CPU reference for maxpool2d (see kernels/maxpool2d.h for the math).
//
// Each output row is split in three column ranges: the left and right edges,
// whose windows are clipped by the padding (a plain scalar window scan), and
// the interior, whose windows lie inside [0, W). The interior is computed
// "window element outer, column inner": for each (p, q) in row-major order,
// one vectorisable pass over the columns j keeps a running max and its index.
// Visiting (p, q) in row-major order with a strict > keeps the first maximum,
// exactly as the scalar scan does. Strides 1 and 2 are compile-time constants
// so the strided loads vectorise.
#include "kernels/maxpool2d.h"

#include <algorithm>

namespace ctg::kernels {

namespace {

// Running max update: a larger value or a NaN takes over (PyTorch's rule).
template <typename T>
inline bool takes_over(T v, T best) {
  return (v > best) | (v != v);
}

// Scalar scan of the window rows [p_lo, p_hi) × columns [q_lo, q_hi) at
// origin (h0, w0); padding rows/columns are already excluded by the ranges.
template <typename T>
void pool_window(const T* xp, int32_t W, int32_t h0, int32_t p_lo, int32_t p_hi, int32_t w0,
                 int32_t q_lo, int32_t q_hi, T* best_out, int32_t* arg_out) {
  int32_t arg = (h0 + p_lo) * W + w0 + q_lo;
  T best = xp[arg];
  for (int32_t p = p_lo; p < p_hi; ++p)
    for (int32_t q = q_lo; q < q_hi; ++q) {
      const int32_t idx = (h0 + p) * W + w0 + q;
      const bool take = takes_over(xp[idx], best);  // a select, not a branch
      best = take ? xp[idx] : best;
      arg = take ? idx : arg;
    }
  *best_out = best;
  *arg_out = arg;
}

// A block of kBlock interior columns j0 .. j0+kBlock−1 of one output row,
// whole windows in x; the running max and index live in the output row.
// The fixed trip count lets the loops compile to straight vector code with
// no alignment prologue or remainder loop: those scalar loops branch on the
// data and made random inputs 3-4× slower than sorted ones.
// SW > 0 fixes the column stride at compile time; SW == 0 reads it from sw.
constexpr int32_t kBlock = 16;  // one AVX-512 vector of float, two of double

template <typename T, int SW>
void pool_block_interior(const T* xp, T* yrow, int32_t* arow, int32_t W, int32_t h0, int32_t p_lo,
                         int32_t p_hi, int32_t kw, int32_t pw, int32_t sw_runtime, int32_t j0) {
  const int32_t sw = SW > 0 ? SW : sw_runtime;
  T* yb = yrow + j0;
  int32_t* ab = arow + j0;
  const int32_t first = (h0 + p_lo) * W - pw + j0 * sw;  // window element (p_lo, 0) of column j0
#pragma omp simd
  for (int32_t t = 0; t < kBlock; ++t) {
    yb[t] = xp[first + t * sw];
    ab[t] = first + t * sw;
  }
  for (int32_t p = p_lo; p < p_hi; ++p)
    for (int32_t q = (p == p_lo ? 1 : 0); q < kw; ++q) {
      const int32_t base = (h0 + p) * W + q - pw + j0 * sw;
#pragma omp simd
      for (int32_t t = 0; t < kBlock; ++t) {
        const int32_t idx = base + t * sw;
        const T v = xp[idx];
        const bool take = takes_over(v, yb[t]);
        yb[t] = take ? v : yb[t];
        ab[t] = take ? idx : ab[t];
      }
    }
}

// Interior columns [j_lo, j_hi) in blocks; the last block is shifted left to
// end at j_hi (a few columns computed twice, same values). Rows narrower
// than a block take the scalar path.
template <typename T, int SW>
void pool_row_interior(const T* xp, T* yrow, int32_t* arow, int32_t W, int32_t h0, int32_t p_lo,
                       int32_t p_hi, int32_t kw, int32_t pw, int32_t sw, int32_t j_lo, int32_t j_hi) {
  if (j_hi - j_lo < kBlock) {
    for (int32_t j = j_lo; j < j_hi; ++j)
      pool_window(xp, W, h0, p_lo, p_hi, j * sw - pw, 0, kw, &yrow[j], &arow[j]);
    return;
  }
  for (int32_t j = j_lo; j < j_hi; j += kBlock)
    pool_block_interior<T, SW>(xp, yrow, arow, W, h0, p_lo, p_hi, kw, pw, sw, std::min(j, j_hi - kBlock));
}

}  // namespace

template <typename T>
void maxpool2d_forward_cpu(const T* x, T* y, int32_t* argmax, const MaxPool2dGeometry& g) {
  // Plane sizes fit int32 (the op checks H·W < 2^31), so index math is 32-bit.
  const int32_t H = (int32_t)g.H, W = (int32_t)g.W, OH = (int32_t)g.OH, OW = (int32_t)g.OW;
  const int32_t kh = (int32_t)g.kernel_h, kw = (int32_t)g.kernel_w, sh = (int32_t)g.stride_h,
                sw = (int32_t)g.stride_w, ph = (int32_t)g.pad_h, pw = (int32_t)g.pad_w;
  // Interior columns: j·sw − pw ≥ 0 and j·sw − pw + kw ≤ W.
  const int32_t j_hi = W + pw - kw < 0 ? 0 : std::min(OW, (W + pw - kw) / sw + 1);
  const int32_t j_lo = std::min(j_hi, (pw + sw - 1) / sw);
#pragma omp parallel for schedule(static) if (g.planes * g.OH * g.OW > 16384)
  for (int64_t plane = 0; plane < g.planes; ++plane) {
    const T* xp = x + plane * g.H * g.W;
    T* yp = y + plane * g.OH * g.OW;
    int32_t* ap = argmax + plane * g.OH * g.OW;
    for (int32_t i = 0; i < OH; ++i) {
      const int32_t h0 = i * sh - ph;
      const int32_t p_lo = std::max(0, -h0), p_hi = std::min(kh, H - h0);
      T* yrow = yp + (int64_t)i * OW;
      int32_t* arow = ap + (int64_t)i * OW;
      auto edge = [&](int32_t j) {
        const int32_t w0 = j * sw - pw;
        pool_window(xp, W, h0, p_lo, p_hi, w0, std::max(0, -w0), std::min(kw, W - w0), &yrow[j],
                    &arow[j]);
      };
      for (int32_t j = 0; j < j_lo; ++j) edge(j);
      if (sw == 1)
        pool_row_interior<T, 1>(xp, yrow, arow, W, h0, p_lo, p_hi, kw, pw, sw, j_lo, j_hi);
      else if (sw == 2)
        pool_row_interior<T, 2>(xp, yrow, arow, W, h0, p_lo, p_hi, kw, pw, sw, j_lo, j_hi);
      else
        pool_row_interior<T, 0>(xp, yrow, arow, W, h0, p_lo, p_hi, kw, pw, sw, j_lo, j_hi);
      for (int32_t j = std::max(j_hi, j_lo); j < OW; ++j) edge(j);
    }
  }
}

template <typename T>
void maxpool2d_backward_cpu(const int32_t* argmax, const T* gy, T* gx, const MaxPool2dGeometry& g) {
  const int64_t HW = g.H * g.W, OHW = g.OH * g.OW;
  // Windows never cross planes, so one thread per plane scatters race-free.
#pragma omp parallel for schedule(static) if (g.planes * OHW > 16384)
  for (int64_t plane = 0; plane < g.planes; ++plane) {
    const int32_t* ap = argmax + plane * OHW;
    const T* gyp = gy + plane * OHW;
    T* gxp = gx + plane * HW;
    for (int64_t o = 0; o < OHW; ++o) gxp[ap[o]] += gyp[o];
  }
}

template void maxpool2d_forward_cpu<float>(const float*, float*, int32_t*, const MaxPool2dGeometry&);
template void maxpool2d_forward_cpu<double>(const double*, double*, int32_t*, const MaxPool2dGeometry&);
template void maxpool2d_backward_cpu<float>(const int32_t*, const float*, float*, const MaxPool2dGeometry&);
template void maxpool2d_backward_cpu<double>(const int32_t*, const double*, double*,
                                             const MaxPool2dGeometry&);

}  // namespace ctg::kernels
