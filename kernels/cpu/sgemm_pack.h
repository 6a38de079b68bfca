// The packing step of ctgrad's SGEMM (kernels/cpu/sgemm.cpp runs the loop
// nest; kernels/cpu/sgemm.h has the contract): op(A) blocks into MR-row
// slivers and op(B) panels into NR-column slivers, k-major, zero-padded past
// the matrix, so that the micro-kernels (kernels/cpu/sgemm_micro.h) read both
// operands as unit-stride streams. op(B) is read through a BView: memory, or
// a GemmBSource that produces its rows on demand (the convolutions' fused
// unfold, kernels/cpu/im2col.h). Private to sgemm.cpp.
#pragma once
#include <immintrin.h>

#include <algorithm>
#include <cstdint>

#include "kernels/cpu/sgemm.h"

namespace ctg::kernels::cpu::sgemm_detail {

// The stored B as pack_b reads it: memory (p, ld) or a GemmBSource, offset
// by (r0, c0) (split-K hands each thread its own range of K).
struct BView {
  const float* p;  // memory, or nullptr: src
  int64_t ld;
  const GemmBSource* src;
  int64_t r0 = 0, c0 = 0;
  bool dense() const { return p != nullptr; }
  // Stored row r, columns [c, c + n): in place, or produced into tmp.
  const float* seg(int64_t r, int64_t c, int64_t n, float* tmp) const {
    if (p) return p + (r0 + r) * ld + c0 + c;
    src->rows(src->ctx, r0 + r, c0 + c, n, tmp);
    return tmp;
  }
  BView shifted(int64_t dr, int64_t dc) const {
    BView v = *this;
    if (p) v.p += dr * ld + dc;
    else v.r0 += dr, v.c0 += dc;
    return v;
  }
};

// dst[i·ds + c] = rows[c][i] for i, c < 8: an 8×8 transpose, eight rows
// read along cache lines and eight 8-float vectors stored — the packing's
// inner step for A slivers of 8 rows and for Bᵀ slivers, which scalar moves
// made a quarter of a ResNet18 layer-1 weight gradient (perf). AVX (the
// build's ISA: -march=native or x86-64-v3) unpack/shuffle/permute network;
// scalar elsewhere.
inline void transpose8(const float* const* rows, float* dst, int64_t ds) {
#if defined(__AVX__)
  __m256 r[8], t[8], u[8];
  for (int c = 0; c < 8; ++c) r[c] = _mm256_loadu_ps(rows[c]);
  for (int c = 0; c < 8; c += 2) {  // pairs of rows interleaved: (c, c+1) lanes 0,1 | 4,5 and 2,3 | 6,7
    t[c] = _mm256_unpacklo_ps(r[c], r[c + 1]);
    t[c + 1] = _mm256_unpackhi_ps(r[c], r[c + 1]);
  }
  for (int c = 0; c < 8; c += 4) {  // quads: each 128-bit half now holds one i for 4 rows
    u[c] = _mm256_shuffle_ps(t[c], t[c + 2], 0x44);
    u[c + 1] = _mm256_shuffle_ps(t[c], t[c + 2], 0xEE);
    u[c + 2] = _mm256_shuffle_ps(t[c + 1], t[c + 3], 0x44);
    u[c + 3] = _mm256_shuffle_ps(t[c + 1], t[c + 3], 0xEE);
  }
  for (int i = 0; i < 4; ++i) {  // rows 0-3 from u[i], rows 4-7 from u[4+i]: low halves give i, high halves i+4
    _mm256_storeu_ps(dst + i * ds, _mm256_permute2f128_ps(u[i], u[4 + i], 0x20));
    _mm256_storeu_ps(dst + (i + 4) * ds, _mm256_permute2f128_ps(u[i], u[4 + i], 0x31));
  }
#else
  for (int i = 0; i < 8; ++i)
    for (int c = 0; c < 8; ++c) dst[i * ds + c] = rows[c][i];
#endif
}
alignas(64) constexpr float kZeros[8] = {};  // a row of zeros past the matrix's edge

// op(A)'s rows i0 .. i0+mc−1, columns k0 .. k0+kc−1, into MR-row slivers:
// sliver s holds, for each k, the MR values op(A)[i0+s·MR+r, k] (zero past M).
template <int64_t MR>
void pack_a(bool ta, const float* A, int64_t lda, int64_t M, int64_t i0, int64_t mc, int64_t k0, int64_t kc,
            float* pa) {
  for (int64_t s = 0; s < mc; s += MR, pa += MR * kc) {
    const int64_t rows = std::min(MR, M - (i0 + s));
    if (ta) {  // op(A)[i, k] = A[k, i]: each k is MR contiguous values of a row of A
      for (int64_t k = 0; k < kc; ++k) {
        const float* src = A + (k0 + k) * lda + i0 + s;
        float* dst = pa + k * MR;
        for (int64_t r = 0; r < rows; ++r) dst[r] = src[r];
        for (int64_t r = rows; r < MR; ++r) dst[r] = 0.f;
      }
      continue;
    }
    int64_t kv = 0;  // k covered by 8×8 transposes
    if constexpr (MR <= 8) {
      const float* src[8];
      for (int64_t r = 0; r < 8; ++r) src[r] = kZeros;  // rows MR .. 7 (MR < 8) are never stored
      for (; kv + 8 <= kc; kv += 8) {
        for (int64_t r = 0; r < MR; ++r) src[r] = r < rows ? A + (i0 + s + r) * lda + k0 + kv : kZeros;
        if constexpr (MR == 8) {
          transpose8(src, pa + kv * MR, MR);
        } else {  // through a tile: the first MR of each transposed row
          alignas(32) float tile[8 * 8];
          transpose8(src, tile, 8);
          for (int64_t k = 0; k < 8; ++k)
            for (int64_t r = 0; r < MR; ++r) pa[(kv + k) * MR + r] = tile[k * 8 + r];
        }
      }
    }
    for (int64_t r = 0; r < MR; ++r) {
      if (r >= rows) {
        for (int64_t k = kv; k < kc; ++k) pa[k * MR + r] = 0.f;
        continue;
      }
      const float* src = A + (i0 + s + r) * lda + k0;
      for (int64_t k = kv; k < kc; ++k) pa[k * MR + r] = src[k];
    }
  }
}

// op(B)'s rows k0 .. k0+kc−1, columns j0 .. j0+nc−1, into NR-column slivers:
// sliver s holds, for each k, the NR values op(B)[k, j0+s·NR+c] (zero past N).
// op(B) = B: each row of B is read once, left to right, and dealt out to the
// slivers in fixed NR-wide copies (vector moves; the last sliver is padded).
// op(B) = Bᵀ: columns of op(B) are rows of B; 8×8 tiles are transposed through
// a small buffer so that both reads and writes run along cache lines.
template <int64_t NR, int64_t KC>
void pack_b(bool tb, const BView& B, int64_t N, int64_t j0, int64_t nc, int64_t k0, int64_t kc, float* pb,
            float* tmp) {
  static_assert(NR % 8 == 0, "slivers are whole 8-column tiles");
  const int64_t real = std::max<int64_t>(0, std::min(nc, N - j0));  // columns that exist
  const int64_t full = real / NR;                                   // slivers with NR real columns
  const int64_t slivers = (nc + NR - 1) / NR;
  if (!tb) {
    for (int64_t k = 0; k < kc; ++k) {
      const float* src = B.seg(k0 + k, j0, real, tmp);
      for (int64_t s = 0; s < full; ++s) {
        float* dst = pb + s * NR * kc + k * NR;
        for (int64_t c = 0; c < NR; ++c) dst[c] = src[s * NR + c];
      }
      for (int64_t s = full; s < slivers; ++s) {
        float* dst = pb + s * NR * kc + k * NR;
        const int64_t cols = std::min(NR, N - (j0 + s * NR));
        for (int64_t c = 0; c < NR; ++c) dst[c] = c < cols ? src[s * NR + c] : 0.f;
      }
    }
    return;
  }
  for (int64_t s = 0; s < slivers; ++s, pb += NR * kc) {
    const int64_t cols = std::min(NR, N - (j0 + s * NR));
    for (int64_t c0 = 0; c0 < NR; c0 += 8) {
      const float* row[8];  // stored rows j0+s·NR+c0+c, columns k0 .. k0+kc−1
      for (int64_t c = 0; c < 8; ++c)
        row[c] = c0 + c < cols ? B.seg(j0 + s * NR + c0 + c, k0, kc, tmp + c * KC) : nullptr;
      int64_t kb = 0;
      for (const float* src[8]; kb + 8 <= kc; kb += 8) {
        for (int64_t c = 0; c < 8; ++c) src[c] = row[c] ? row[c] + kb : kZeros;
        transpose8(src, pb + kb * NR + c0, NR);
      }
      for (; kb < kc; kb += 8) {  // the last kc % 8
        const int64_t kn = std::min<int64_t>(8, kc - kb);
        float tile[8][8];  // tile[k][c] = op(B)[k0+kb+k, j0+s·NR+c0+c]
        for (int64_t c = 0; c < 8; ++c) {
          if (row[c]) {
            for (int64_t k = 0; k < kn; ++k) tile[k][c] = row[c][kb + k];
          } else {
            for (int64_t k = 0; k < kn; ++k) tile[k][c] = 0.f;
          }
        }
        for (int64_t k = 0; k < kn; ++k)
          for (int64_t c = 0; c < 8; ++c) pb[(kb + k) * NR + c0 + c] = tile[k][c];
      }
    }
  }
}

}  // namespace ctg::kernels::cpu::sgemm_detail
