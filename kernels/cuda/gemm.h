// SGEMM on the GPU, written by hand (no cuBLAS): the matrix product under the
// CUDA kernels of linear and conv2d.
//   C = alpha·op(A)·op(B) + beta·C      row-major, op(X) = X or Xᵀ
//   op(A) is M×K, op(B) is K×N, C is M×N; lda, ldb, ldc are row strides as stored.
// Same argument order as the CPU twin, kernels/cpu/gemm.h (cblas_sgemm).
// As in BLAS, beta = 0 never reads C (it may hold garbage or NaN).
// Kernels: kernels/cuda/gemm.cu (v1 naive, v2 tiled shared-memory).
#pragma once
#include <cstdint>

namespace ctg::kernels {

// v1: one thread per element of C, a direct port of the triple loop.
// v2: 64×64 tiles of C staged through shared memory, 8×8 outputs per thread.
// tf32: the tensor-core kernel (kernels/cuda/gemm_tc.cu); `tiled` becomes it
//       under --precision tf32 (kernels/cuda/impl.h).
enum class GemmKernel { naive, tiled, tf32 };

// A strided batch of products: operand X of item z is X + z·stride_x (stride 0
// shares one operand between all items, e.g. conv2d's weight).
//   sum = false: C_z = alpha·op(A_z)·op(B_z) + beta·C_z, for z in [0, count)
//   sum = true:  C  = alpha·Σ_z op(A_z)·op(B_z) + beta·C — one output; the sum
//                runs in a fixed order, so the result is deterministic
//                (conv2d's weight gradient summed over a batch of images).
struct GemmBatch {
  int64_t count = 1;
  int64_t stride_a = 0, stride_b = 0, stride_c = 0;
  bool sum = false;
};

// How the tiled kernel divides the work; 0 lets gemm_cuda choose from the shape.
// A product with few 64×64 output tiles but a long K (linear's forward at the
// study's 512×512 input: 9×20 outputs, K = 262144; conv2d's weight gradient:
// O×C·KH·KW outputs, K = the pixels) would leave most of the GPU idle, so the
// reduction is cut into "slots", each computed by its own blocks into a private
// partial matrix, and a second kernel adds the partials in a fixed order.
//   k_splits:       slices of K per batch item (split-K)
//   items_per_slot: sum mode, batch items one slot adds up (ignored when k_splits > 1)
struct GemmOptions {
  GemmKernel kernel = GemmKernel::tiled;
  int64_t k_splits = 0;
  int64_t items_per_slot = 0;
};

// Launches on the compute stream. Scratch for partials comes from the caching
// device allocator (ctg::cuda::device_alloc), never cudaMalloc per call.
void gemm_cuda(bool ta, bool tb, int64_t M, int64_t N, int64_t K, float alpha, const float* A,
               int64_t lda, const float* B, int64_t ldb, float beta, float* C, int64_t ldc,
               const GemmBatch& batch = {}, const GemmOptions& opt = {});

// The second pass of a GEMM whose outputs have several contributors (split-K,
// or batch items summed into one C): C_b = alpha·Σ_{s<per_out} P[b·per_out + s]
// + beta·C_b for b < outs, each partial a dense M×N matrix, summed in s order
// (deterministic); C_b = C + b·stride_c, rows ldc apart. Shared by the SIMT and
// the tensor-core GEMMs; on the compute stream.
void gemm_reduce_slots_cuda(const float* P, int64_t per_out, int64_t outs, int64_t M, int64_t N, float alpha,
                            float beta, float* C, int64_t ldc, int64_t stride_c);

// The tensor-core GEMM (TF32 operands rounded as cvt.rna, FP32 accumulate;
// kernels/cuda/gemm_tc.h): what gemm_cuda runs for GemmKernel::tf32, or for
// the default kernel under --precision tf32.
void gemm_tf32_cuda(bool ta, bool tb, int64_t M, int64_t N, int64_t K, float alpha, const float* A, int64_t lda,
                    const float* B, int64_t ldb, float beta, float* C, int64_t ldc, const GemmBatch& batch = {});

}  // namespace ctg::kernels
