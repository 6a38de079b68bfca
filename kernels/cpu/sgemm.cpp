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

#include <omp.h>

#include <algorithm>
#include <atomic>
#include <cstdlib>
#include <exception>
#include <string>
#include <vector>

#include "base/error.h"
#include "base/thread_scratch.h"
#include "kernels/cpu/sgemm_micro.h"
#include "kernels/cpu/sgemm_pack.h"

namespace ctg::kernels::cpu {

namespace {

using sgemm_detail::Avx2;
using sgemm_detail::Avx512;
using sgemm_detail::BView;
using sgemm_detail::pack_a;
using sgemm_detail::pack_b;

// The packing buffers: grow-only, per thread (base/thread_scratch.h), reused
// across calls, the 2 MiB B panel on huge pages.
struct PackBuffers;
float* thread_buffer(int which, int64_t n) {
  float* p = thread_scratch<PackBuffers, 3>(which, (size_t)n);
  if (!p) throw Error("sgemm: out of memory for packing buffers");
  return p;
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


CpuGemm gemm_from_env() {
  const char* v = std::getenv("CTGRAD_GEMM");
  return v && *v ? parse_cpu_gemm(v, "CTGRAD_GEMM") : best_cpu_gemm();
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

CpuGemm best_cpu_gemm() {
  if (cpu_gemm_available(CpuGemm::avx512)) return CpuGemm::avx512;
  if (cpu_gemm_available(CpuGemm::avx2)) return CpuGemm::avx2;
  return CpuGemm::openblas;
}

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
    g = best_cpu_gemm();
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
