// The dense tensor-core GEMM: gemm_cuda's products under --precision tf32
// (kernels/cuda/impl.h), on the core of kernels/cuda/gemm_tc.h.
//   op(A)[m,k] = ta ? A[k·lda + m] : A[m·lda + k]
//   op(B)[k,n] = tb ? B[n·ldb + k] : B[k·ldb + n]
// Batches and sum mode as gemm_cuda (GemmBatch, kernels/cuda/gemm.h).
#include "kernels/cuda/gemm.h"
#include "kernels/cuda/gemm_tc.h"

namespace ctg::kernels {

namespace {
template <bool TA, bool TB>
struct DenseSource {
  const float* A;
  int64_t lda, stride_a;
  const float* B;
  int64_t ldb, stride_b;
  static constexpr bool a_k_contiguous = !TA;
  static constexpr bool b_k_contiguous = TB;
  CTG_DEVICE const float* a(int64_t z, int64_t m, int64_t k) const {
    return A + z * stride_a + (TA ? k * lda + m : m * lda + k);
  }
  CTG_DEVICE const float* b(int64_t z, int64_t k, int64_t n) const {
    return B + z * stride_b + (TB ? n * ldb + k : k * ldb + n);
  }
};

template <bool TA, bool TB>
void run(int64_t M, int64_t N, int64_t K, float alpha, const float* A, int64_t lda, const float* B, int64_t ldb,
         float beta, float* C, int64_t ldc, const GemmBatch& batch) {
  tc_detail::run_gemm_tc(DenseSource<TA, TB>{A, lda, batch.stride_a, B, ldb, batch.stride_b},
                         tc_detail::TcShape{M, N, K, batch.count, batch.sum,
                                            !TA && tc_detail::aligned4(A, lda, batch.stride_a),
                                            TB && tc_detail::aligned4(B, ldb, batch.stride_b)},
                         tc_detail::TcOut{C, ldc, batch.stride_c, alpha, beta});
}
}  // namespace

void gemm_tf32_cuda(bool ta, bool tb, int64_t M, int64_t N, int64_t K, float alpha, const float* A, int64_t lda,
                    const float* B, int64_t ldb, float beta, float* C, int64_t ldc, const GemmBatch& batch) {
  if (M <= 0 || N <= 0 || batch.count <= 0) return;
  if (ta)
    tb ? run<true, true>(M, N, K, alpha, A, lda, B, ldb, beta, C, ldc, batch)
       : run<true, false>(M, N, K, alpha, A, lda, B, ldb, beta, C, ldc, batch);
  else
    tb ? run<false, true>(M, N, K, alpha, A, lda, B, ldb, beta, C, ldc, batch)
       : run<false, false>(M, N, K, alpha, A, lda, B, ldb, beta, C, ldc, batch);
}

}  // namespace ctg::kernels
