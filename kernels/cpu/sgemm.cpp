// ctgrad's AVX-512 SGEMM (see kernels/cpu/sgemm.h for the contract and the
// method). Tested against a plain triple loop in tests/test_sgemm.cpp.
//
// Sizes: the micro-kernel holds an 8×48 block of C in 24 zmm registers
// (8 rows × 3 vectors of 16 floats); per step of k it loads one 48-float row
// of the B sliver (3 vectors), broadcasts 8 values of the A sliver and issues
// 24 FMAs — FMA-bound, with registers to spare. 8 rows divide every channel
// count of the study's nets (64 … 512; a 12-row block wasted 11 % at M = 64).
// KC = 256 keeps a B sliver (256×48 floats, 48 KiB) near L1 and an A block
// (MC×KC = 96×256, 96 KiB) in L2; an NC = 2064 B panel (2 MiB) streams from L3.
// Measured (2-core AMD EPYC, family 26, AVX-512; bench/RESULTS.md): 155–338
// GFLOP/s on the study's conv shapes, OpenBLAS 0.3.21's Haswell kernels
// 149–194 and its Cooperlake (AVX-512) kernels ~200–324 on the same shapes.
#include "kernels/cpu/sgemm.h"

#include <immintrin.h>
#include <omp.h>

#include <algorithm>
#include <atomic>
#include <cstdlib>
#include <cstring>
#include <exception>
#include <string>
#include <vector>

#include "base/error.h"

namespace ctg::kernels::cpu {

namespace {

constexpr int64_t MR = 8, NR = 48, KC = 256, MC = 96, NC = 2064;
static_assert(MC % MR == 0 && NC % NR == 0, "blocks are whole slivers");

// Grow-only, 64-byte aligned, one per thread: packing buffers are reused
// across calls (no allocation or page faults per GEMM), freed when the thread ends.
struct PackBuffers {
  float* buf[2] = {nullptr, nullptr};
  int64_t cap[2] = {0, 0};
  ~PackBuffers() { std::free(buf[0]), std::free(buf[1]); }
};
float* thread_buffer(int which, int64_t n) {
  thread_local PackBuffers b;
  if (b.cap[which] < n) {
    std::free(b.buf[which]);
    b.buf[which] = static_cast<float*>(std::aligned_alloc(64, (size_t)((n * 4 + 63) / 64 * 64)));
    b.cap[which] = b.buf[which] ? n : 0;
    if (!b.buf[which]) throw Error("sgemm: out of memory for packing buffers");
  }
  return b.buf[which];
}

// An exception must not leave an OpenMP region (it would end the program):
// the region's threads keep the first one here and it is rethrown after.
struct RegionError {
  std::exception_ptr first;
  void keep() {
#pragma omp critical(ctg_sgemm_error)
    if (!first) first = std::current_exception();
  }
  void rethrow() const {
    if (first) std::rethrow_exception(first);
  }
};

// op(A)'s rows i0 .. i0+mc−1, columns k0 .. k0+kc−1, into MR-row slivers:
// sliver s holds, for each k, the MR values op(A)[i0+s·MR+r, k] (zero past M).
void pack_a(bool ta, const float* A, int64_t lda, int64_t M, int64_t i0, int64_t mc, int64_t k0, int64_t kc,
            float* pa) {
  for (int64_t s = 0; s < mc; s += MR, pa += MR * kc) {
    const int64_t rows = std::min(MR, M - (i0 + s));
    for (int64_t r = 0; r < MR; ++r) {
      if (r >= rows) {
        for (int64_t k = 0; k < kc; ++k) pa[k * MR + r] = 0.f;
        continue;
      }
      const int64_t i = i0 + s + r;
      if (ta) {
        for (int64_t k = 0; k < kc; ++k) pa[k * MR + r] = A[(k0 + k) * lda + i];
      } else {
        const float* src = A + i * lda + k0;
        for (int64_t k = 0; k < kc; ++k) pa[k * MR + r] = src[k];
      }
    }
  }
}

// op(B)'s rows k0 .. k0+kc−1, columns j0 .. j0+nc−1, into NR-column slivers:
// sliver s holds, for each k, the NR values op(B)[k, j0+s·NR+c] (zero past N).
void pack_b(bool tb, const float* B, int64_t ldb, int64_t N, int64_t j0, int64_t nc, int64_t k0, int64_t kc,
            float* pb) {
  for (int64_t s = 0; s < nc; s += NR, pb += NR * kc) {
    const int64_t cols = std::min(NR, N - (j0 + s));
    if (!tb) {
      for (int64_t k = 0; k < kc; ++k) {
        const float* src = B + (k0 + k) * ldb + j0 + s;
        float* dst = pb + k * NR;
        std::memcpy(dst, src, (size_t)cols * 4);
        for (int64_t c = cols; c < NR; ++c) dst[c] = 0.f;
      }
    } else {
      for (int64_t c = 0; c < NR; ++c) {
        if (c >= cols) {
          for (int64_t k = 0; k < kc; ++k) pb[k * NR + c] = 0.f;
          continue;
        }
        const float* src = B + (j0 + s + c) * ldb + k0;
        for (int64_t k = 0; k < kc; ++k) pb[k * NR + c] = src[k];
      }
    }
  }
}

// acc = Σ_k a[k·MR + r] · b[k·NR + c] over kc steps, then
// C[r, c] = alpha·acc + beta·C[r, c] (beta = 0: C is not read) for r < m, c < n.
__attribute__((target("avx512f,fma"))) void micro_kernel(int64_t kc, const float* __restrict a,
                                                          const float* __restrict b, float* C, int64_t ldc,
                                                          int64_t m, int64_t n, float alpha, float beta) {
  constexpr int V = NR / 16;  // vectors per row of the block
  __m512 acc[MR][V];
#pragma GCC unroll 8
  for (int r = 0; r < MR; ++r)
#pragma GCC unroll 3
    for (int v = 0; v < V; ++v) acc[r][v] = _mm512_setzero_ps();
  // Prefetch the C rows this block will update (they are read or written
  // after the k loop, so their misses overlap the FMAs), and the A sliver a
  // few steps ahead (it streams from L2). Measured: +10–90 % on the study's
  // shapes, most where K is small (the C update is then a large share).
#pragma GCC unroll 8
  for (int r = 0; r < MR; ++r)
    if (r < m)
#pragma GCC unroll 3
      for (int v = 0; v < V; ++v) _mm_prefetch((const char*)(C + r * ldc + 16 * v), _MM_HINT_T0);
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
  // Masks for the columns that exist (n < NR at the right edge of C).
  __mmask16 mask[V];
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

// The whole loop nest on C's rows [i_begin, i_end) × columns [j_begin, j_end).
void gemm_region(bool ta, bool tb, int64_t M, int64_t N, int64_t K, float alpha, const float* A, int64_t lda,
                 const float* B, int64_t ldb, float beta, float* C, int64_t ldc, int64_t i_begin, int64_t i_end,
                 int64_t j_begin, int64_t j_end) {
  float* pb = thread_buffer(0, KC * NC);
  float* pa = thread_buffer(1, KC * MC);
  for (int64_t jc = j_begin; jc < j_end; jc += NC) {
    const int64_t nc = std::min(NC, j_end - jc);
    for (int64_t pc = 0; pc < K; pc += KC) {
      const int64_t kc = std::min(KC, K - pc);
      const float b_pc = pc == 0 ? beta : 1.f;  // later K slices add onto the first
      pack_b(tb, B, ldb, std::min(N, j_end), jc, nc, pc, kc, pb);
      for (int64_t ic = i_begin; ic < i_end; ic += MC) {
        const int64_t mc = std::min(MC, i_end - ic);
        pack_a(ta, A, lda, std::min(M, i_end), ic, mc, pc, kc, pa);
        for (int64_t jr = 0; jr < nc; jr += NR)
          for (int64_t ir = 0; ir < mc; ir += MR)
            micro_kernel(kc, pa + ir * kc, pb + jr * kc, C + (ic + ir) * ldc + jc + jr, ldc,
                         std::min(MR, mc - ir), std::min(NR, nc - jr), alpha, b_pc);
      }
    }
  }
}

// C too small to share (Dense(20)'s forward: M = 9, N = 20, K = 512² — one
// sliver) but K long: each thread takes a contiguous range of K into its own
// M×N partial (beta = 0), and the partials are added onto beta·C in thread
// order — deterministic for a thread count (not across counts, as OpenBLAS).
void sgemm_split_k(bool ta, bool tb, int64_t M, int64_t N, int64_t K, float alpha, const float* A, int64_t lda,
                   const float* B, int64_t ldb, float beta, float* C, int64_t ldc, int threads) {
  std::vector<float> part((size_t)(threads * M * N));
  RegionError err;
#pragma omp parallel num_threads(threads)
  {
    const int t = omp_get_thread_num(), nt = omp_get_num_threads();
    try {
      const int64_t k0 = K * t / nt, k1 = K * (t + 1) / nt;
      // op(A)[:, k0:k1] and op(B)[k0:k1, :] are the same matrices offset by k0.
      const float* At = ta ? A + k0 * lda : A + k0;
      const float* Bt = tb ? B + k0 : B + k0 * ldb;
      float* Pt = part.data() + (size_t)(t * M * N);
      if (!ta && tb) {
        // Both operands run along k in memory (a linear layer's x·Wᵀ): M·N dot
        // products, K in blocks whose rows stay in L1/L2 while every pair is
        // summed — each operand is read from memory once, nothing is packed.
        std::fill(Pt, Pt + M * N, 0.f);
        for (int64_t kb = 0; kb < k1 - k0; kb += 1024) {
          const int64_t len = std::min<int64_t>(1024, k1 - k0 - kb);
          for (int64_t i = 0; i < M; ++i)
            for (int64_t j = 0; j < N; ++j) {
              const float* a = At + i * lda + kb;
              const float* b = Bt + j * ldb + kb;
              float d = 0.f;
#pragma omp simd reduction(+ : d)
              for (int64_t k = 0; k < len; ++k) d += a[k] * b[k];
              Pt[i * N + j] += alpha * d;
            }
        }
      } else if (k1 > k0) {
        gemm_region(ta, tb, M, N, k1 - k0, alpha, At, lda, Bt, ldb, 0.f, Pt, N, 0, M, 0, N);
      } else {
        std::fill(Pt, Pt + M * N, 0.f);
      }
    } catch (...) {
      err.keep();  // every thread still reaches the barrier
    }
#pragma omp barrier
#pragma omp for schedule(static)
    for (int64_t i = 0; i < M; ++i)
      for (int64_t j = 0; j < N; ++j) {
        float v = beta == 0.f ? 0.f : beta * C[i * ldc + j];
        for (int u = 0; u < nt; ++u) v += part[(size_t)((u * M + i) * N + j)];
        C[i * ldc + j] = v;
      }
  }
  err.rethrow();
}

// C *= beta (beta = 0: zeros, C unread): the K = 0 or alpha = 0 case.
void scale_c(int64_t M, int64_t N, float beta, float* C, int64_t ldc) {
  for (int64_t i = 0; i < M; ++i)
    for (int64_t j = 0; j < N; ++j) C[i * ldc + j] = beta == 0.f ? 0.f : beta * C[i * ldc + j];
}

CpuGemm gemm_from_env() {
  const char* v = std::getenv("CTGRAD_GEMM");
  if (!v || !*v) return sgemm_available() ? CpuGemm::own : CpuGemm::openblas;
  const std::string s = v;
  if (s == "openblas") return CpuGemm::openblas;
  if (s == "own") {
    if (!sgemm_available()) throw Error("CTGRAD_GEMM=own: this CPU has no AVX-512 (the kernel needs avx512f)");
    return CpuGemm::own;
  }
  throw Error("CTGRAD_GEMM: expected own or openblas, got '" + s + "'");
}
std::atomic<int>& gemm_flag() {
  static std::atomic<int> v{(int)gemm_from_env()};
  return v;
}

}  // namespace

bool sgemm_available() {
  static const bool ok = __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("fma");
  return ok;
}

void sgemm(bool ta, bool tb, int64_t M, int64_t N, int64_t K, float alpha, const float* A, int64_t lda,
           const float* B, int64_t ldb, float beta, float* C, int64_t ldc) {
  if (M <= 0 || N <= 0) return;
  if (K <= 0 || alpha == 0.f) return scale_c(M, N, beta, C, ldc);
  // Threads split C into rectangles along its longer side (whole slivers),
  // each computed start to finish by one thread; small products stay on the
  // calling thread (waking a team costs more than it saves).
  const int64_t work = M * N * K;
  const int threads = work < (int64_t(1) << 21) ? 1 : omp_get_max_threads();
  const bool split_n = N >= M;
  const int64_t extent = split_n ? N : M, unit = split_n ? NR : MR;
  const int64_t units = (extent + unit - 1) / unit;
  const int parts = (int)std::max<int64_t>(1, std::min<int64_t>(threads, units));
  // C too small to share and small enough for a partial per thread, K long:
  // split K instead (C ≤ 4096 elements keeps the partials at 16 KiB each).
  if (parts < threads && K >= 2 * KC * threads && M * N <= 4096)
    return sgemm_split_k(ta, tb, M, N, K, alpha, A, lda, B, ldb, beta, C, ldc, threads);
  RegionError err;
#pragma omp parallel num_threads(parts) if (parts > 1)
  {
    // The team may be smaller than asked (called inside another parallel
    // region, nesting off: a team of one): split by the team that exists.
    const int t = omp_get_thread_num(), nt = omp_get_num_threads();
    const int64_t u0 = units * t / nt, u1 = units * (t + 1) / nt;
    const int64_t lo = std::min(extent, u0 * unit), hi = std::min(extent, u1 * unit);
    try {
      if (lo < hi) {
        if (split_n) gemm_region(ta, tb, M, N, K, alpha, A, lda, B, ldb, beta, C, ldc, 0, M, lo, hi);
        else gemm_region(ta, tb, M, N, K, alpha, A, lda, B, ldb, beta, C, ldc, lo, hi, 0, N);
      }
    } catch (...) {
      err.keep();
    }
  }
  err.rethrow();
}

CpuGemm cpu_gemm() { return (CpuGemm)gemm_flag().load(std::memory_order_relaxed); }
void set_cpu_gemm(CpuGemm g) {
  if (g == CpuGemm::own && !sgemm_available())
    throw Error("gemm: ctgrad's own SGEMM needs AVX-512 (avx512f), which this CPU lacks");
  gemm_flag().store((int)g, std::memory_order_relaxed);
}
const char* cpu_gemm_description() {
  return cpu_gemm() == CpuGemm::own ? "ctgrad AVX-512 SGEMM (8x48 micro-kernel)" : "OpenBLAS";
}

}  // namespace ctg::kernels::cpu
