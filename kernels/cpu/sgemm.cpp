// ctgrad's SGEMM loop nest (see kernels/cpu/sgemm.h for the contract and the
// method), one template over the micro-kernel (kernels/cpu/sgemm_micro.h:
// AVX-512 8×48, AVX2 6×16), chosen at run time. Tested against a plain
// triple loop in tests/test_sgemm.cpp, every kernel this CPU can run.
//
// Measured (2-core AMD EPYC, family 26, AVX-512; bench/RESULTS.md): the
// AVX-512 kernel 155–338 GFLOP/s on the study's conv shapes, OpenBLAS
// 0.3.21's Haswell kernels 149–194 and its Cooperlake (AVX-512) kernels
// ~200–324 on the same shapes.
#include "kernels/cpu/sgemm.h"

#include <immintrin.h>
#include <omp.h>

#include <algorithm>
#include <atomic>
#include <cstdlib>
#include <exception>
#include <string>
#include <vector>

#include "base/error.h"
#include "base/host_alloc.h"
#include "kernels/cpu/sgemm_micro.h"

namespace ctg::kernels::cpu {

namespace {

using sgemm_detail::Avx2;
using sgemm_detail::Avx512;

// Grow-only, 64-byte aligned, one per thread: packing buffers are reused
// across calls (no allocation or page faults per GEMM), freed when the thread ends.
struct PackBuffers {
  float* buf[3] = {nullptr, nullptr, nullptr};
  int64_t cap[3] = {0, 0, 0};
  ~PackBuffers() { std::free(buf[0]), std::free(buf[1]), std::free(buf[2]); }
};
float* thread_buffer(int which, int64_t n) {
  thread_local PackBuffers b;
  if (b.cap[which] < n) {
    std::free(b.buf[which]);
    b.buf[which] = static_cast<float*>(host_alloc((size_t)n * 4));  // the 2 MiB B panel on huge pages
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

// The whole loop nest on C's rows [i_begin, i_end) × columns [j_begin, j_end).
template <class Kern>
void gemm_region(bool ta, bool tb, int64_t M, int64_t N, int64_t K, float alpha, const float* A, int64_t lda,
                 const BView& B, float beta, float* C, int64_t ldc, int64_t i_begin, int64_t i_end,
                 int64_t j_begin, int64_t j_end) {
  constexpr int64_t MR = Kern::MR, NR = Kern::NR, KC = Kern::KC, MC = Kern::MC, NC = Kern::NC;
  static_assert(MC % MR == 0 && NC % NR == 0, "blocks are whole slivers");
  float* pb = thread_buffer(0, KC * NC);
  float* pa = thread_buffer(1, KC * MC);
  // Rows a GemmBSource produces: one row of nc (op(B) = B) or 8 of kc (Bᵀ).
  float* tmp = B.dense() ? nullptr : thread_buffer(2, std::max(NC, 8 * KC));
  for (int64_t jc = j_begin; jc < j_end; jc += NC) {
    const int64_t nc = std::min(NC, j_end - jc);
    for (int64_t pc = 0; pc < K; pc += KC) {
      const int64_t kc = std::min(KC, K - pc);
      const float b_pc = pc == 0 ? beta : 1.f;  // later K slices add onto the first
      pack_b<NR, KC>(tb, B, std::min(N, j_end), jc, nc, pc, kc, pb, tmp);
      for (int64_t ic = i_begin; ic < i_end; ic += MC) {
        const int64_t mc = std::min(MC, i_end - ic);
        pack_a<MR>(ta, A, lda, std::min(M, i_end), ic, mc, pc, kc, pa);
        for (int64_t jr = 0; jr < nc; jr += NR)
          for (int64_t ir = 0; ir < mc; ir += MR) {
            // The block after this one: below it, else the top of the next column of blocks.
            const float* next = ir + MR < mc ? C + (ic + ir + MR) * ldc + jc + jr
                                : jr + NR < nc ? C + ic * ldc + jc + jr + NR
                                               : nullptr;
            Kern::micro(kc, pa + ir * kc, pb + jr * kc, C + (ic + ir) * ldc + jc + jr, ldc,
                        std::min(MR, mc - ir), std::min(NR, nc - jr), alpha, b_pc, next);
          }
      }
    }
  }
}

// C too small to share (Dense(20)'s forward: M = 9, N = 20, K = 512² — one
// sliver) but K long: each thread takes a contiguous range of K into its own
// M×N partial (beta = 0), and the partials are added onto beta·C in thread
// order — deterministic for a thread count (not across counts, as OpenBLAS).
template <class Kern>
void sgemm_split_k(bool ta, bool tb, int64_t M, int64_t N, int64_t K, float alpha, const float* A, int64_t lda,
                   const BView& B, float beta, float* C, int64_t ldc, int threads) {
  std::vector<float> part((size_t)(threads * M * N));
  RegionError err;
#pragma omp parallel num_threads(threads)
  {
    const int t = omp_get_thread_num(), nt = omp_get_num_threads();
    try {
      const int64_t k0 = K * t / nt, k1 = K * (t + 1) / nt;
      // op(A)[:, k0:k1] and op(B)[k0:k1, :] are the same matrices offset by k0.
      const float* At = ta ? A + k0 * lda : A + k0;
      const BView Bt = tb ? B.shifted(0, k0) : B.shifted(k0, 0);
      float* Pt = part.data() + (size_t)(t * M * N);
      if (!ta && tb && M * N <= 1024) {
        // Both operands run along k in memory and C is tiny (a linear layer's
        // x·Wᵀ: Dense's forward, M = batch, N ≤ 100): M·N dot products, K in
        // blocks whose rows stay in L1/L2 while every pair is summed — each
        // operand is read from memory once, nothing is packed. Larger C (the
        // stem's 64×49 dW) runs faster packed: 33 against 49 ms on 2 Zen 4
        // cores. A GemmBSource's rows are produced DJ at a time into a buffer.
        std::fill(Pt, Pt + M * N, 0.f);
        constexpr int64_t KB = 1024;
        float* rows = Bt.dense() ? nullptr : thread_buffer(2, Kern::DJ * KB);
        for (int64_t kb = 0; kb < k1 - k0; kb += KB) {
          const int64_t len = std::min<int64_t>(KB, k1 - k0 - kb);
          for (int64_t j = 0; j < N; j += Kern::DJ) {
            const int64_t nj = std::min<int64_t>(Kern::DJ, N - j);
            const float* bj = Bt.p ? Bt.p + j * Bt.ld + kb : rows;
            for (int64_t u = 0; u < nj && rows; ++u) Bt.seg(j + u, kb, len, rows + u * KB);
            for (int64_t i = 0; i < M; i += Kern::DI)
              Kern::dots(At + i * lda + kb, lda, std::min<int64_t>(Kern::DI, M - i), bj, Bt.p ? Bt.ld : KB, nj,
                         len, alpha, Pt + i * N + j, N);
          }
        }
      } else if (k1 > k0) {
        gemm_region<Kern>(ta, tb, M, N, k1 - k0, alpha, At, lda, Bt, 0.f, Pt, N, 0, M, 0, N);
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

template <class Kern>
void sgemm_with(bool ta, bool tb, int64_t M, int64_t N, int64_t K, float alpha, const float* A, int64_t lda,
                const BView& B, float beta, float* C, int64_t ldc) {
  constexpr int64_t MR = Kern::MR, NR = Kern::NR, KC = Kern::KC;
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
  // C small enough for a partial per thread (≤ 4096 elements: 16 KiB each)
  // and K long: split K instead. Where C has too few slivers to share this is
  // the only way to use the threads; where it has enough (the stem's weight
  // gradient, 64×49 with K = 256²) splitting C would make every thread pack
  // the whole of the other operand, and packing is most of the time at such
  // shapes: split K, each thread packs half of both.
  if (threads > 1 && K >= 2 * KC * threads && M * N <= 4096)
    return sgemm_split_k<Kern>(ta, tb, M, N, K, alpha, A, lda, B, beta, C, ldc, threads);
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
        if (split_n) gemm_region<Kern>(ta, tb, M, N, K, alpha, A, lda, B, beta, C, ldc, 0, M, lo, hi);
        else gemm_region<Kern>(ta, tb, M, N, K, alpha, A, lda, B, beta, C, ldc, lo, hi, 0, N);
      }
    } catch (...) {
      err.keep();
    }
  }
  err.rethrow();
}

// The default: the widest kernel of ours this CPU runs, else OpenBLAS.
CpuGemm best_gemm() {
  if (cpu_gemm_available(CpuGemm::avx512)) return CpuGemm::avx512;
  if (cpu_gemm_available(CpuGemm::avx2)) return CpuGemm::avx2;
  return CpuGemm::openblas;
}

CpuGemm gemm_from_env() {
  const char* v = std::getenv("CTGRAD_GEMM");
  return v && *v ? parse_cpu_gemm(v, "CTGRAD_GEMM") : best_gemm();
}
std::atomic<int>& gemm_flag() {
  static std::atomic<int> v{(int)gemm_from_env()};
  return v;
}

}  // namespace

bool cpu_gemm_available(CpuGemm g) {
  static const bool fma = __builtin_cpu_supports("fma");
  static const bool avx512 = fma && __builtin_cpu_supports("avx512f");
  static const bool avx2 = fma && __builtin_cpu_supports("avx2");
  switch (g) {
    case CpuGemm::avx512: return avx512;
    case CpuGemm::avx2: return avx2;
    case CpuGemm::openblas: break;
  }
  return true;
}

namespace {
void sgemm_view(CpuGemm kernel, bool ta, bool tb, int64_t M, int64_t N, int64_t K, float alpha, const float* A,
                int64_t lda, const BView& B, float beta, float* C, int64_t ldc) {
  switch (kernel) {
    case CpuGemm::avx512: return sgemm_with<Avx512>(ta, tb, M, N, K, alpha, A, lda, B, beta, C, ldc);
    case CpuGemm::avx2: return sgemm_with<Avx2>(ta, tb, M, N, K, alpha, A, lda, B, beta, C, ldc);
    case CpuGemm::openblas: break;
  }
  throw Error("sgemm: OpenBLAS is not one of ctgrad's kernels (call cpu::gemm)");
}
}  // namespace

void sgemm(CpuGemm kernel, bool ta, bool tb, int64_t M, int64_t N, int64_t K, float alpha, const float* A,
           int64_t lda, const float* B, int64_t ldb, float beta, float* C, int64_t ldc) {
  sgemm_view(kernel, ta, tb, M, N, K, alpha, A, lda, BView{B, ldb, nullptr}, beta, C, ldc);
}
void sgemm(CpuGemm kernel, bool ta, bool tb, int64_t M, int64_t N, int64_t K, float alpha, const float* A,
           int64_t lda, const GemmBSource& B, float beta, float* C, int64_t ldc) {
  if (!B.rows) throw Error("sgemm: GemmBSource without a rows function");
  sgemm_view(kernel, ta, tb, M, N, K, alpha, A, lda, BView{nullptr, 0, &B}, beta, C, ldc);
}

const char* cpu_gemm_name(CpuGemm g) {
  switch (g) {
    case CpuGemm::avx512: return "avx512";
    case CpuGemm::avx2: return "avx2";
    case CpuGemm::openblas: break;
  }
  return "openblas";
}

CpuGemm parse_cpu_gemm(const std::string& value, const std::string& what) {
  CpuGemm g;
  if (value == "own") {
    g = best_gemm();
    if (g == CpuGemm::openblas) throw Error(what + "=own: this CPU has neither AVX-512 nor AVX2 with FMA");
    return g;
  } else if (value == "avx512") {
    g = CpuGemm::avx512;
  } else if (value == "avx2") {
    g = CpuGemm::avx2;
  } else if (value == "openblas") {
    g = CpuGemm::openblas;
  } else {
    throw Error(what + ": expected own, avx512, avx2 or openblas, got '" + value + "'");
  }
  if (!cpu_gemm_available(g)) throw Error(what + "=" + value + ": this CPU lacks the instructions (" + value + ", fma)");
  return g;
}

CpuGemm cpu_gemm() { return (CpuGemm)gemm_flag().load(std::memory_order_relaxed); }
void set_cpu_gemm(CpuGemm g) {
  if (!cpu_gemm_available(g))
    throw Error(std::string("gemm: ctgrad's ") + cpu_gemm_name(g) + " SGEMM needs " + cpu_gemm_name(g) +
                " and fma, which this CPU lacks");
  gemm_flag().store((int)g, std::memory_order_relaxed);
}
const char* cpu_gemm_description() {
  switch (cpu_gemm()) {
    case CpuGemm::avx512: return Avx512::name;
    case CpuGemm::avx2: return Avx2::name;
    case CpuGemm::openblas: break;
  }
  return "OpenBLAS";
}

}  // namespace ctg::kernels::cpu
