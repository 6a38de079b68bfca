// ctgrad's own single-precision GEMM for the CPU (kernels/cpu/sgemm.cpp), the
// default behind cpu::gemm(float) on CPUs with AVX-512 or AVX2 (issue 16):
// one loop nest, two register-blocked micro-kernels (kernels/cpu/sgemm_micro.h),
// the widest this CPU runs chosen at run time by CPUID. OpenBLAS stays beside
// it as the comparison (CTGRAD_GEMM=openblas) and for double.
//
//   C[M,N] = alpha · op(A)[M,K] · op(B)[K,N] + beta · C     (row-major)
//   op(X) = X or Xᵀ as ta / tb say; lda/ldb/ldc are the stored row strides.
//   beta = 0 never reads C (BLAS semantics: NaN in C does not survive).
//
// Why our own: the study's convolutions are GEMMs of a few fixed shapes, and
// the GEMM's speed decides a ResNet18 step. OpenBLAS picks its kernels by the
// CPU it recognises, and machines pin it (OPENBLAS_CORETYPE) to older kernels
// on processors that old OpenBLAS builds misjudge — on a 2-core AVX-512 EPYC
// that halves the GEMM speed (engine/parallel.h prints which one runs).
//
// The method is the classic Goto/BLIS loop nest: C is cut into NC-wide
// column panels, K into KC-deep slices; each slice of op(B) is packed into
// NR-wide slivers (k-major), each MC-high block of op(A) into MR-high slivers,
// and a register-blocked MR×NR micro-kernel multiplies one sliver pair with
// all MR×NR sums in vector registers. Each thread owns a rectangle of C and
// runs the whole nest on it with its own packing buffers: no barriers, and
// every element of C is the same sum in the same order whatever the thread
// count (results are bitwise independent of threading) — except where C is
// small (≤ 4096 elements) and K is long (≥ 2·256 per thread): there K is split and the per-thread partials are added in thread
// order (deterministic for a thread count, not across counts, as OpenBLAS).
#pragma once
#include <cstdint>
#include <string>

namespace ctg::kernels::cpu {

// What cpu::gemm(float) runs: one of our kernels or OpenBLAS.
enum class CpuGemm { avx512, avx2, openblas };

// True when this CPU has the instructions (CPUID, checked once): avx512 needs
// avx512f and fma, avx2 needs avx2 and fma; openblas is always available.
bool cpu_gemm_available(CpuGemm g);

// The GEMM above with one of our kernels (avx512 or avx2); the kernel must be
// available; openblas here is a ctg::Error (call cpu::gemm).
void sgemm(CpuGemm kernel, bool ta, bool tb, int64_t M, int64_t N, int64_t K, float alpha, const float* A,
           int64_t lda, const float* B, int64_t ldb, float beta, float* C, int64_t ldc);

// op(B) produced on demand instead of read from memory: the stored matrix B
// (what `B` would point at, before op) is read only through `rows`, which
// writes stored row r, columns [c0, c0 + n) into dst (n ≤ 2064). The GEMM
// calls it while packing, each element once per use of its packed panel, from
// whichever thread packs it (so it must be safe to call concurrently). This is
// how the convolutions fuse im2col into packing (kernels/cpu/conv2d_tuned.cpp):
// the unfolded [C·KH·KW, pixels] matrix is never written out.
struct GemmBSource {
  void (*rows)(const void* ctx, int64_t r, int64_t c0, int64_t n, float* dst);
  const void* ctx;
};
void sgemm(CpuGemm kernel, bool ta, bool tb, int64_t M, int64_t N, int64_t K, float alpha, const float* A,
           int64_t lda, const GemmBSource& B, float beta, float* C, int64_t ldc);

// The widest of our kernels this CPU runs (avx512, else avx2), else openblas:
// the selection's default.
CpuGemm best_cpu_gemm();

// The selection. Default: avx512 where available, else avx2, else openblas.
// CTGRAD_GEMM=own|avx512|avx2|openblas sets the start value (read once; own =
// the default among ours; a value this CPU cannot run, or any other value, is a
// ctg::Error naming the variable); tests and benchmarks set it.
CpuGemm cpu_gemm();
void set_cpu_gemm(CpuGemm g);  // a kernel this CPU cannot run: ctg::Error
const char* cpu_gemm_description();
const char* cpu_gemm_name(CpuGemm g);  // avx512, avx2, openblas
// "own" (the default among ours), "avx512", "avx2" or "openblas"; anything else,
// or a kernel this CPU cannot run, is a ctg::Error naming `what` (a flag or variable).
CpuGemm parse_cpu_gemm(const std::string& value, const std::string& what);  // e.g. "ctgrad AVX-512 SGEMM (8x48 micro-kernel)" or "OpenBLAS"

}  // namespace ctg::kernels::cpu
