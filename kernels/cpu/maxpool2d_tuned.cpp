// Tuned CPU maxpool2d forward (see kernels/maxpool2d.h for the math; the plain
// loop it is tested against is kernels/cpu/maxpool2d.cpp).
//
// For each output row i, the kh input rows its windows cover are first copied
// into a small per-thread buffer with the padding written out as −∞ (rows
// above/below the input, columns left/right of it) and split by column phase
// c mod sw, so that window element (p, q) of output columns j = 0, 1, … is
// one contiguous run of the buffer. Every window is then whole, and one
// unit-stride vector loop over the columns handles the row with no border
// cases. The column count is rounded up to a multiple of kColBlock (extra
// columns are computed into a scratch row and dropped), so the scalar
// remainder loop the compiler adds never runs. Scalar border code and
// scalar remainders branch on the data: with them, random inputs ran about
// 2× slower than sorted ones at ResNet sizes; now the time does not depend
// on the values.
//
// The loop runs "window element outer, column inner": for each (p, q) in
// row-major order, one pass over j keeps a running max and its index. A
// strict > in row-major order keeps the first maximum; padding (−∞) never
// beats the initial −∞, whose index is the window's first real element, so
// the winner is always a real input (the first real maximum).
#include "kernels/maxpool2d.h"

#include <algorithm>
#include <limits>
#include <vector>

namespace ctg::kernels {

namespace {

constexpr int32_t kColBlock = 16;  // a whole number of vectors of float or double

// Running max update: a larger value or a NaN takes over (PyTorch's rule).
template <typename T>
inline bool takes_over(T v, T best) {
  return (v > best) | (v != v);
}

// One output row's view of the input. The buffer holds, for window row p and
// phase ph = c mod sw, the padded row's columns c = m·sw + ph at
// buf[(p·sw + ph)·buf_len + m]; padded column c is input column c − pw.
struct RowGeom {
  int32_t W, OW, cols;  // cols: OW rounded up to a multiple of kColBlock
  int32_t h0, kh, kw, sw, pw, buf_len;
};

// Fill buf for one output row: buf[(p·sw + ph)·buf_len + m] = padded column
// c = m·sw + ph of input row h0 + p, i.e. x[h0 + p, c − pw], or −∞ outside x.
template <typename T>
[[gnu::noinline]] void fill_row_buffer(const T* xp, T* buf, const RowGeom& r, int32_t H) {
  const T neg_inf = -std::numeric_limits<T>::infinity();
  const int32_t W = r.W, pw = r.pw, sw = r.sw, n = r.buf_len;
  for (int32_t p = 0; p < r.kh; ++p) {
    const int32_t h = r.h0 + p;
    T* b = buf + (int64_t)p * sw * n;
    if (h < 0 || h >= H) {
      std::fill(b, b + (int64_t)sw * n, neg_inf);
      continue;
    }
    const T* src = xp + (int64_t)h * W;
    auto col = [&](int32_t c) { return c >= pw && c < pw + W ? src[c - pw] : neg_inf; };
    if (sw == 1) {
      // Real columns pw ≤ m < pw + W: one copy between two −∞ runs.
      const int32_t lo = std::min(n, pw), hi = std::min(n, pw + W);
      std::fill(b, b + lo, neg_inf);
      std::copy(src, src + (hi - lo), b + lo);
      std::fill(b + hi, b + n, neg_inf);
    } else if (sw == 2) {
      // Both phases in one loop (an access pattern without gaps vectorises
      // into loads and shuffles); m in [lo, hi) has both columns real.
      const int32_t lo = std::min(n, (pw + 1) / 2);
      const int32_t hi = W + pw < 2 ? lo : std::max(lo, std::min(n, (W + pw - 2) / 2 + 1));
      for (int32_t m = 0; m < lo; ++m) b[m] = col(2 * m), b[n + m] = col(2 * m + 1);
      const T* s2 = src - pw;
#pragma omp simd
      for (int32_t m = lo; m < hi; ++m) {
        b[m] = s2[2 * m];
        b[n + m] = s2[2 * m + 1];
      }
      for (int32_t m = hi; m < n; ++m) b[m] = col(2 * m), b[n + m] = col(2 * m + 1);
    } else {
      for (int32_t ph = 0; ph < sw; ++ph)
        for (int32_t m = 0; m < n; ++m) b[ph * n + m] = col(m * sw + ph);
    }
  }
}

// The row functions are kept out of line ([[gnu::noinline]]): inlined into
// the OpenMP region, GCC 12 ran a scalar, branching version of their column
// loops, 10× slower.
template <typename T>
[[gnu::noinline]] void pool_row(const T* buf, T* ybuf, int32_t* abuf, const RowGeom& r) {
  // Local copies: stores through abuf could otherwise alias the int32 fields
  // of r, which keeps the compiler from vectorising the loops.
  const int32_t cols = r.cols, sw = r.sw, pw = r.pw, W = r.W, h0 = r.h0, buf_len = r.buf_len;
  // Start each column at −∞ with the index of its window's first real element,
  // so that even an all −∞ window names a real input.
  const int32_t first_row = std::max(h0, 0) * W;
#pragma omp simd
  for (int32_t j = 0; j < cols; ++j) {
    ybuf[j] = -std::numeric_limits<T>::infinity();
    abuf[j] = first_row + std::max(j * sw - pw, 0);
  }
  // Window elements (p, q) in row-major order, one vector pass over j each.
  for (int32_t p = 0; p < r.kh; ++p)
    for (int32_t q = 0; q < r.kw; ++q) {
      const T* b = buf + (int64_t)(p * sw + q % sw) * buf_len + q / sw;
      const int32_t idx0 = (h0 + p) * W + q - pw;  // input index for column j = 0
#pragma omp simd
      for (int32_t j = 0; j < cols; ++j) {
        const T v = b[j];
        const bool take = takes_over(v, ybuf[j]);
        ybuf[j] = take ? v : ybuf[j];
        abuf[j] = take ? idx0 + j * sw : abuf[j];
      }
    }
}

// Kernel 3×3, stride 2 in w (ResNet's stem pooling): the nine window values
// of a column stay in registers instead of going through ybuf each time.
template <typename T>
[[gnu::noinline]] void pool_row_3x3_s2(const T* buf, T* ybuf, int32_t* abuf, const RowGeom& r) {
  const int32_t cols = r.cols, pw = r.pw, W = r.W, h0 = r.h0, buf_len = r.buf_len;
  const int32_t first_row = std::max(h0, 0) * W;
#pragma omp simd
  for (int32_t j = 0; j < cols; ++j) {
    T best = -std::numeric_limits<T>::infinity();
    int32_t arg = first_row + std::max(2 * j - pw, 0);
    for (int32_t p = 0; p < 3; ++p)
      for (int32_t q = 0; q < 3; ++q) {
        const T v = buf[(p * 2 + q % 2) * buf_len + q / 2 + j];
        const bool take = takes_over(v, best);
        best = take ? v : best;
        arg = take ? (h0 + p) * W + 2 * j + q - pw : arg;
      }
    ybuf[j] = best;
    abuf[j] = arg;
  }
}

}  // namespace

template <typename T>
void maxpool2d_forward_cpu_tuned(const T* x, T* y, int32_t* argmax, const MaxPool2dGeometry& g) {
  // Plane sizes fit int32 (the op checks H·W < 2^31), so index math is 32-bit.
  RowGeom base{};
  base.W = (int32_t)g.W;
  base.OW = (int32_t)g.OW;
  base.cols = (base.OW + kColBlock - 1) / kColBlock * kColBlock;
  base.kh = (int32_t)g.kernel_h;
  base.kw = (int32_t)g.kernel_w;
  base.sw = (int32_t)g.stride_w;
  base.pw = (int32_t)g.pad_w;
  base.buf_len = base.cols + (base.kw - 1) / base.sw;  // j < cols plus the largest q / sw
#pragma omp parallel if (g.planes * g.OH * g.OW > 16384)
  {
    // Per thread: the padded, phase-split rows and one output row.
    std::vector<T> buf((size_t)base.kh * base.sw * base.buf_len), ybuf(base.cols);
    std::vector<int32_t> abuf(base.cols);
#pragma omp for schedule(static)
    for (int64_t plane = 0; plane < g.planes; ++plane) {
      for (int64_t i = 0; i < g.OH; ++i) {
        RowGeom r = base;
        r.h0 = (int32_t)(i * g.stride_h - g.pad_h);
        fill_row_buffer(x + plane * g.H * g.W, buf.data(), r, (int32_t)g.H);
        // Write straight into y when no columns were added by the rounding.
        T* yrow = y + (plane * g.OH + i) * g.OW;
        int32_t* arow = argmax + (plane * g.OH + i) * g.OW;
        const bool direct = r.cols == r.OW;
        T* yb = direct ? yrow : ybuf.data();
        int32_t* ab = direct ? arow : abuf.data();
        if (r.kh == 3 && r.kw == 3 && r.sw == 2)
          pool_row_3x3_s2(buf.data(), yb, ab, r);
        else
          pool_row(buf.data(), yb, ab, r);
        if (!direct) {
          std::copy(ybuf.begin(), ybuf.begin() + r.OW, yrow);
          std::copy(abuf.begin(), abuf.begin() + r.OW, arow);
        }
      }
    }
  }
}

template void maxpool2d_forward_cpu_tuned<float>(const float*, float*, int32_t*, const MaxPool2dGeometry&);
template void maxpool2d_forward_cpu_tuned<double>(const double*, double*, int32_t*, const MaxPool2dGeometry&);

}  // namespace ctg::kernels
