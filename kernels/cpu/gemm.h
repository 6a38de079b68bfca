// Row-major C = alpha·op(A)·op(B) + beta·C, for float and double: the CPU
// kernels' only matrix-product primitive. Float runs ctgrad's own SGEMM
// (kernels/cpu/sgemm.h: AVX-512 or AVX2, by CPUID) where the CPU has one of
// them, else — or with CTGRAD_GEMM=openblas — OpenBLAS; double always runs OpenBLAS.
#pragma once
#include <cblas.h>

#include <cstdint>

#include "kernels/cpu/sgemm.h"

namespace ctg::kernels::cpu {

// GEMM observer (for `ctgrad bench gemm`): when set, every float cpu::gemm
// calls it with the product's shape before running it, on the calling
// thread. A plain function pointer so that kernels/ needs nothing above it.
using GemmObserver = void (*)(bool ta, bool tb, int64_t M, int64_t N, int64_t K, bool beta_nonzero);
inline GemmObserver& gemm_observer() {
  static GemmObserver observer = nullptr;
  return observer;
}

// op(A) is M×K, op(B) is K×N, C is M×N; lda/ldb/ldc are the row strides as stored.
inline void gemm(bool ta, bool tb, int64_t M, int64_t N, int64_t K, float alpha, const float* A,
                 int64_t lda, const float* B, int64_t ldb, float beta, float* C, int64_t ldc) {
  if (GemmObserver obs = gemm_observer()) obs(ta, tb, M, N, K, beta != 0.f);
  if (const CpuGemm g = cpu_gemm(); g != CpuGemm::openblas)
    return sgemm(g, ta, tb, M, N, K, alpha, A, lda, B, ldb, beta, C, ldc);
  cblas_sgemm(CblasRowMajor, ta ? CblasTrans : CblasNoTrans, tb ? CblasTrans : CblasNoTrans, (int)M,
              (int)N, (int)K, alpha, A, (int)lda, B, (int)ldb, beta, C, (int)ldc);
}
// op(B) from a GemmBSource (kernels/cpu/sgemm.h): only ctgrad's own kernels
// take one, so callers check gemm_takes_source() and otherwise write B out.
inline bool gemm_takes_source() { return cpu_gemm() != CpuGemm::openblas; }
inline void gemm(bool ta, bool tb, int64_t M, int64_t N, int64_t K, float alpha, const float* A,
                 int64_t lda, const GemmBSource& B, float beta, float* C, int64_t ldc) {
  if (GemmObserver obs = gemm_observer()) obs(ta, tb, M, N, K, beta != 0.f);
  sgemm(cpu_gemm(), ta, tb, M, N, K, alpha, A, lda, B, beta, C, ldc);
}
inline void gemm(bool ta, bool tb, int64_t M, int64_t N, int64_t K, double alpha, const double* A,
                 int64_t lda, const double* B, int64_t ldb, double beta, double* C, int64_t ldc) {
  cblas_dgemm(CblasRowMajor, ta ? CblasTrans : CblasNoTrans, tb ? CblasTrans : CblasNoTrans, (int)M,
              (int)N, (int)K, alpha, A, (int)lda, B, (int)ldb, beta, C, (int)ldc);
}

}  // namespace ctg::kernels::cpu
