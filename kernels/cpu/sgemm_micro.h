// The register-blocked micro-kernels of ctgrad's SGEMM (kernels/cpu/sgemm.cpp
// runs the loop nest around them; kernels/cpu/sgemm.h has the contract).
//
// Each computes one MR×NR block of C from a packed A sliver (for each k, MR
// values of a column of op(A)) and a packed B sliver (for each k, NR values of
// a row of op(B)):
//
//   acc[r][c] = Σ_k a[k·MR + r] · b[k·NR + c]          (k = 0 … kc−1)
//   C[r, c]   = alpha·acc[r][c] + beta·C[r, c]         (r < m, c < n; beta = 0: C not read)
//
// with all MR×NR sums in vector registers; `next` is the C block of the next
// call, prefetched (see prefetch_next). Both are compiled for their
// instruction set by a target attribute, whatever the rest of the build is
// compiled for, and chosen at run time by CPUID (sgemm.cpp): a build for an
// AVX2 machine still runs the AVX-512 kernel on an AVX-512 CPU, and the AVX2
// kernel can be tested on any CPU that has AVX2.
//
// Block sizes (per kernel): KC keeps a B sliver (KC·NR floats) in L1/L2, an A
// block (MC·KC) in L2, a B panel (KC·NC) in L3. MC and NC are whole slivers.
#pragma once
#include <immintrin.h>

#include <cstdint>

namespace ctg::kernels::cpu::sgemm_detail {

// The C block the next call will update (nullptr: none), into L2 while this
// block's k loop runs: where K is small the C update is a large share of the
// time and its misses would otherwise wait on memory (prefetches never fault,
// so rows past the end of C are harmless).
template <int64_t MR, int LINES>
inline void prefetch_next(const float* next, int64_t ldc) {
  if (!next) return;
  for (int64_t r = 0; r < MR; ++r)
    for (int v = 0; v < LINES; ++v) _mm_prefetch((const char*)(next + r * ldc + 16 * v), _MM_HINT_T1);
}

// Blocked dot products for products whose operands both run along k in
// memory (op(A) = A, op(B) = Bᵀ: a linear layer's x·Wᵀ, with C too small to
// share and K long):
//   out[i·ldo + j] += alpha · Σ_{k<len} a[i·lda + k] · b[j·ldb + k]    (i < ni ≤ BI, j < nj ≤ BJ)
// BI·BJ vector accumulators (one per pair), so each loaded vector of a feeds
// BJ FMAs and each of b BI — FMA-bound, where one dot at a time waits on the
// FMA latency. Rows past ni / nj repeat row 0 (computed, not stored). Vec is a
// GCC vector of W floats; inlined into the caller's target.
template <typename Vec, int W, int BI, int BJ>
__attribute__((always_inline)) inline void dot_block(const float* a, int64_t lda, int64_t ni, const float* b,
                                                     int64_t ldb, int64_t nj, int64_t len, float alpha, float* out,
                                                     int64_t ldo) {
  // Every loop over i and j fully unrolled, so that the accumulators live in
  // registers: left to GCC, the AVX2 build (x86-64-v3) kept them on the stack
  // and ran the stem's weight gradient at 21 GFLOP/s instead of 50.
  const float* ar[BI];
  const float* br[BJ];
#pragma GCC unroll 4
  for (int i = 0; i < BI; ++i) ar[i] = a + (i < ni ? i : 0) * lda;
#pragma GCC unroll 4
  for (int j = 0; j < BJ; ++j) br[j] = b + (j < nj ? j : 0) * ldb;
  Vec acc[BI][BJ];
#pragma GCC unroll 4
  for (int i = 0; i < BI; ++i)
#pragma GCC unroll 4
    for (int j = 0; j < BJ; ++j) acc[i][j] = Vec{};
  int64_t k = 0;
  for (; k + W <= len; k += W) {
    Vec av[BI], bv[BJ];
#pragma GCC unroll 4
    for (int i = 0; i < BI; ++i) __builtin_memcpy(&av[i], ar[i] + k, sizeof(Vec));
#pragma GCC unroll 4
    for (int j = 0; j < BJ; ++j) __builtin_memcpy(&bv[j], br[j] + k, sizeof(Vec));
#pragma GCC unroll 4
    for (int i = 0; i < BI; ++i)
#pragma GCC unroll 4
      for (int j = 0; j < BJ; ++j) acc[i][j] += av[i] * bv[j];
  }
  for (int i = 0; i < ni; ++i)
    for (int j = 0; j < nj; ++j) {
      float d = 0.f;
      for (int l = 0; l < W; ++l) d += acc[i][j][l];
      for (int64_t t = k; t < len; ++t) d += ar[i][t] * br[j][t];  // the last len % W terms
      out[i * ldo + j] += alpha * d;
    }
}

// AVX-512 (zmm, 32 registers): an 8×48 block in 24 accumulators (8 rows × 3
// vectors of 16 floats); per k, 3 loads of B, 8 broadcasts of A, 24 FMAs —
// FMA-bound with registers to spare. 8 rows divide every channel count of
// the study's nets (64 … 512; a 12-row block wasted 11 % at M = 64).
struct Avx512 {
  static constexpr int64_t MR = 8, NR = 48, KC = 256, MC = 96, NC = 2064;
  static constexpr const char* name = "ctgrad AVX-512 SGEMM (8x48 micro-kernel)";
  // The block's right edge (n ≤ 32 of its 48 columns) runs only the vectors
  // that hold columns: a 49-column C (the stem's weight gradient, 48 + 1) or
  // 64 (48 + 16) would otherwise spend a whole 8×48 block on 1 or 16 columns.
  // Each sum is the same k-ordered chain either way (bitwise equal results).
  static void micro(int64_t kc, const float* a, const float* b, float* C, int64_t ldc, int64_t m, int64_t n,
                    float alpha, float beta, const float* next) {
    if (n > 32) return micro_v<3>(kc, a, b, C, ldc, m, n, alpha, beta, next);
    if (n > 16) return micro_v<2>(kc, a, b, C, ldc, m, n, alpha, beta, next);
    micro_v<1>(kc, a, b, C, ldc, m, n, alpha, beta, next);
  }
  // V of the 3 vectors of each row (the packed B sliver is NR wide whatever V is).
  template <int V>
  __attribute__((target("avx512f,fma"))) static void micro_v(int64_t kc, const float* __restrict a,
                                                             const float* __restrict b, float* C, int64_t ldc,
                                                             int64_t m, int64_t n, float alpha, float beta,
                                                             const float* next) {
    __m512 acc[MR][V];
#pragma GCC unroll 8
    for (int r = 0; r < MR; ++r)
#pragma GCC unroll 3
      for (int v = 0; v < V; ++v) acc[r][v] = _mm512_setzero_ps();
    // Prefetch the C rows this block will update (read or written after the
    // k loop, so their misses overlap the FMAs) and the A sliver a few steps
    // ahead (it streams from L2). Measured: +10–90 % on the study's shapes,
    // most where K is small (the C update is then a large share).
#pragma GCC unroll 8
    for (int r = 0; r < MR; ++r)
      if (r < m)
#pragma GCC unroll 3
        for (int v = 0; v < V; ++v) _mm_prefetch((const char*)(C + r * ldc + 16 * v), _MM_HINT_T0);
    prefetch_next<MR, V>(next, ldc);
    for (int64_t k = 0; k < kc; ++k, a += MR, b += NR) {
      _mm_prefetch((const char*)(a + 64), _MM_HINT_T0);
      __m512 bv[V];
#pragma GCC unroll 3
      for (int v = 0; v < V; ++v) bv[v] = _mm512_loadu_ps(b + 16 * v);
#pragma GCC unroll 8
      for (int r = 0; r < MR; ++r) {
        const __m512 ar = _mm512_set1_ps(a[r]);
#pragma GCC unroll 3
        for (int v = 0; v < V; ++v) acc[r][v] = _mm512_fmadd_ps(ar, bv[v], acc[r][v]);
      }
    }
    const __m512 va = _mm512_set1_ps(alpha), vb = _mm512_set1_ps(beta);
    __mmask16 mask[V];  // the columns that exist (n < NR at the right edge of C)
#pragma GCC unroll 3
    for (int v = 0; v < V; ++v) {
      const int64_t left = n - 16 * v;
      mask[v] = left >= 16 ? (__mmask16)0xFFFF : left <= 0 ? (__mmask16)0 : (__mmask16)((1u << left) - 1);
    }
#pragma GCC unroll 8
    for (int r = 0; r < MR; ++r) {
      if (r >= m) break;
      float* c = C + r * ldc;
#pragma GCC unroll 3
      for (int v = 0; v < V; ++v) {
        __m512 out = _mm512_mul_ps(va, acc[r][v]);
        if (beta != 0.f) out = _mm512_fmadd_ps(vb, _mm512_maskz_loadu_ps(mask[v], c + 16 * v), out);
        _mm512_mask_storeu_ps(c + 16 * v, mask[v], out);
      }
    }
  }
  // Blocked dots (dot_block): 3×4 pairs, 12 accumulators and 7 loads per step.
  static constexpr int DI = 3, DJ = 4;
  typedef float Vec __attribute__((vector_size(64)));
  __attribute__((target("avx512f,fma"))) static void dots(const float* a, int64_t lda, int64_t ni, const float* b,
                                                          int64_t ldb, int64_t nj, int64_t len, float alpha,
                                                          float* out, int64_t ldo) {
    dot_block<Vec, 16, DI, DJ>(a, lda, ni, b, ldb, nj, len, alpha, out, ldo);
  }
};

// AVX2 (ymm, 16 registers): a 6×16 block in 12 accumulators (6 rows × 2
// vectors of 8 floats), 2 registers for the B row and 1 for the broadcast A
// value — 15 of 16 (the shape BLIS and OpenBLAS use on Haswell-class cores);
// per k, 2 loads, 6 broadcasts, 12 FMAs: two FMA pipes stay busy with the
// loads in the shadow. AVX2 has no mask registers: the right edge of C
// (n < 16) goes through vmaskmov with lane masks.
struct Avx2 {
  static constexpr int64_t MR = 6, NR = 16, KC = 256, MC = 72, NC = 2064;
  static constexpr const char* name = "ctgrad AVX2 SGEMM (6x16 micro-kernel)";
  __attribute__((target("avx2,fma"))) static void micro(int64_t kc, const float* __restrict a,
                                                        const float* __restrict b, float* C, int64_t ldc,
                                                        int64_t m, int64_t n, float alpha, float beta,
                                                        const float* next) {
    __m256 acc[MR][2];
#pragma GCC unroll 6
    for (int r = 0; r < MR; ++r) acc[r][0] = acc[r][1] = _mm256_setzero_ps();
#pragma GCC unroll 6
    for (int r = 0; r < MR; ++r)
      if (r < m) {
        _mm_prefetch((const char*)(C + r * ldc), _MM_HINT_T0);
        _mm_prefetch((const char*)(C + r * ldc + 15), _MM_HINT_T0);
      }
    prefetch_next<MR, 1>(next, ldc);
    for (int64_t k = 0; k < kc; ++k, a += MR, b += NR) {
      _mm_prefetch((const char*)(a + 48), _MM_HINT_T0);
      const __m256 b0 = _mm256_loadu_ps(b), b1 = _mm256_loadu_ps(b + 8);
#pragma GCC unroll 6
      for (int r = 0; r < MR; ++r) {
        const __m256 ar = _mm256_broadcast_ss(a + r);
        acc[r][0] = _mm256_fmadd_ps(ar, b0, acc[r][0]);
        acc[r][1] = _mm256_fmadd_ps(ar, b1, acc[r][1]);
      }
    }
    const __m256 va = _mm256_set1_ps(alpha), vb = _mm256_set1_ps(beta);
    // Lane j of vector v exists when 8·v + j < n.
    const __m256i lane = _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7);
    const __m256i mask0 = _mm256_cmpgt_epi32(_mm256_set1_epi32((int)n), lane);
    const __m256i mask1 = _mm256_cmpgt_epi32(_mm256_set1_epi32((int)n - 8), lane);
    const bool full = n >= NR;
#pragma GCC unroll 6
    for (int r = 0; r < MR; ++r) {
      if (r >= m) break;
      float* c = C + r * ldc;
      __m256 o0 = _mm256_mul_ps(va, acc[r][0]), o1 = _mm256_mul_ps(va, acc[r][1]);
      if (full) {
        if (beta != 0.f) {
          o0 = _mm256_fmadd_ps(vb, _mm256_loadu_ps(c), o0);
          o1 = _mm256_fmadd_ps(vb, _mm256_loadu_ps(c + 8), o1);
        }
        _mm256_storeu_ps(c, o0);
        _mm256_storeu_ps(c + 8, o1);
      } else {
        if (beta != 0.f) {
          o0 = _mm256_fmadd_ps(vb, _mm256_maskload_ps(c, mask0), o0);
          o1 = _mm256_fmadd_ps(vb, _mm256_maskload_ps(c + 8, mask1), o1);
        }
        _mm256_maskstore_ps(c, mask0, o0);
        _mm256_maskstore_ps(c + 8, mask1, o1);
      }
    }
  }
  // Blocked dots (dot_block): 2×4 pairs, 8 accumulators and 6 loads per step
  // (14 of 16 registers).
  static constexpr int DI = 2, DJ = 4;
  typedef float Vec __attribute__((vector_size(32)));
  __attribute__((target("avx2,fma"))) static void dots(const float* a, int64_t lda, int64_t ni, const float* b,
                                                       int64_t ldb, int64_t nj, int64_t len, float alpha,
                                                       float* out, int64_t ldo) {
    dot_block<Vec, 8, DI, DJ>(a, lda, ni, b, ldb, nj, len, alpha, out, ldo);
  }
};

}  // namespace ctg::kernels::cpu::sgemm_detail
