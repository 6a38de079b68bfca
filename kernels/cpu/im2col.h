// The unfold (im2col) of the tuned CPU convolution (kernels/cpu/conv2d_tuned.cpp),
// in two forms over the same column space:
//  - im2col: the whole [K, ld] matrix written to scratch (K = C·KH·KW rows,
//    one column per output pixel of the tile), for OpenBLAS and for double;
//  - Im2colRows: one row segment at a time, as a GemmBSource — ctgrad's SGEMM
//    calls it while packing B, so the unfolded matrix is never written out:
//    at ResNet18's 128² layers it is 38 MB per image, more than the L3, and was
//    written to memory by im2col and read back by the GEMM's packing.
// Row r = (c, p, q) = (r / (KH·KW), (r / KW) % KH, r % KW), column (tile pixel)
// (k, i, j) for image n0+k, output row i, output column j:
//   cols[r, (k, i, j)] = x[n0+k, c, i·SH + p − PH, j·SW + q − PW]   (0 outside the image)
// Both forms write the same values (tests/test_conv2d_fused.cpp holds the fused
// convolutions bitwise equal to the unfused ones).
#pragma once
#include <algorithm>
#include <cstdint>
#include <type_traits>

#include "kernels/conv2d.h"
#include "kernels/cpu/sgemm.h"

namespace ctg::kernels::cpu_conv {

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

// A tile: images n0 .. n0+g−1, output rows i0 .. i1−1 of each (g > 1 only
// with whole images). Its columns: image k, row i, column j at k·(i1−i0)·OW + (i−i0)·OW + j.
struct Tile {
  int64_t n0, g, i0, i1;
};

// cols[K, ld] ← unfold of the tile; x points at image n0. An orphaned
// `omp for`: called inside a parallel region it shares the rows among the team.
template <typename T>
void im2col(const T* __restrict__ x, T* __restrict__ cols, const Tile& t, const Conv2dDims& d) {
  const int64_t K = d.C * d.KH * d.KW, bp = (t.i1 - t.i0) * d.OW, ld = t.g * bp;
#pragma omp for collapse(2) schedule(static)
  for (int64_t r = 0; r < K; ++r)
    for (int64_t k = 0; k < t.g; ++k) {
      const int64_t c = r / (d.KH * d.KW), p = (r / d.KW) % d.KH, q = r % d.KW;
      const T* xc = x + (k * d.C + c) * d.H * d.W;
      const Range jr = valid_range(q, d.SW, d.PW, d.W, d.OW);
      const int64_t n = jr.hi - jr.lo;
      for (int64_t i = t.i0; i < t.i1; ++i) {
        T* row = cols + r * ld + k * bp + (i - t.i0) * d.OW;
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


// dst[u] = src[2u] for u < n (a stride-2 row: the stem, the downsampling
// convs): 8 at a time from two 8-float loads and one shuffle of the even
// lanes (the build's vector ISA), except the last 8, which would load one
// float past src[2(n−1)] — past the image at its last row — and go one by one.
template <typename T>
inline void gather_even(const T* __restrict__ src, int64_t n, T* __restrict__ dst) {
  int64_t u = 0;
  if constexpr (std::is_same_v<T, float>) {
    typedef float V8 __attribute__((vector_size(32)));
    typedef int I8 __attribute__((vector_size(32)));
    for (; u + 8 < n; u += 8) {
      V8 lo, hi;
      __builtin_memcpy(&lo, src + 2 * u, sizeof lo);
      __builtin_memcpy(&hi, src + 2 * u + 8, sizeof hi);
      const V8 even = __builtin_shuffle(lo, hi, I8{0, 2, 4, 6, 8, 10, 12, 14});
      __builtin_memcpy(dst + u, &even, sizeof even);
    }
  }
  for (; u < n; ++u) dst[u] = src[2 * u];
}

// The row form. dst[0 .. n) ← cols[r, c0 .. c0+n): walked as runs along one
// output row (each a zero-padded copy, or a strided gather for SW > 1), one
// division to find the first run and none after.
template <typename T>
void im2col_row(const T* __restrict__ x, const Tile& t, const Conv2dDims& d, int64_t r, int64_t c0, int64_t n,
                T* __restrict__ dst) {
  const int64_t c = r / (d.KH * d.KW), p = (r / d.KW) % d.KH, q = r % d.KW;
  const int64_t bp = (t.i1 - t.i0) * d.OW;
  const Range jr = valid_range(q, d.SW, d.PW, d.W, d.OW);
  int64_t k = c0 / bp, i = t.i0 + (c0 % bp) / d.OW, j = c0 % d.OW;
  for (int64_t left = n; left > 0;) {
    const int64_t run = std::min(d.OW - j, left);
    const int64_t h = i * d.SH + p - d.PH;
    if (h < 0 || h >= d.H) {
      std::fill(dst, dst + run, T(0));
    } else {
      // Columns j .. j+run−1: zeros left of jr.lo, the image in [a, b), zeros from jr.hi.
      const int64_t a = std::clamp(jr.lo, j, j + run), b = std::clamp(jr.hi, a, j + run);
      std::fill(dst, dst + (a - j), T(0));
      if (b > a) {
        const T* src = x + ((k * d.C + c) * d.H + h) * d.W + (a * d.SW + q - d.PW);
        if (d.SW == 1) {
          std::copy(src, src + (b - a), dst + (a - j));
        } else if (d.SW == 2) {
          gather_even(src, b - a, dst + (a - j));
        } else {
          for (int64_t u = 0; u < b - a; ++u) dst[a - j + u] = src[u * d.SW];
        }
      }
      std::fill(dst + (b - j), dst + run, T(0));
    }
    dst += run, left -= run, j += run;
    if (j == d.OW) {
      j = 0;
      if (++i == t.i1) i = t.i0, ++k;
    }
  }
}

// The tile's unfolded matrix as op(B)'s source for the SGEMM (stored rows:
// cols' rows; pass tb = true for colsᵀ). x points at image n0; the struct
// must outlive the GEMM call.
struct Im2colRows {
  const float* x;
  Tile t;
  Conv2dDims d;
  static void rows(const void* ctx, int64_t r, int64_t c0, int64_t n, float* dst) {
    const auto* s = static_cast<const Im2colRows*>(ctx);
    im2col_row(s->x, s->t, s->d, r, c0, n, dst);
  }
  cpu::GemmBSource source() const { return {&Im2colRows::rows, this}; }
};

}  // namespace ctg::kernels::cpu_conv
