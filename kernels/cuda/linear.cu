// linear on the GPU — the CUDA twin of kernels/cpu/linear.cpp (math in kernels/linear.h).
//   forward:  y = x·Wᵀ + b               x [N,I], W [O,I], b [O], y [N,O]
//   backward: gx += gy·W                 [N,O]·[O,I]
//             gW += gyᵀ·x                [O,N]·[N,I]
//             gb += Σ_n gy[n,:]
// The three products are our own SGEMM (kernels/cuda/gemm.cu), exactly the
// calls the CPU makes to cblas_sgemm: the bias is written into y first and the
// GEMM adds x·Wᵀ on top (beta = 1). When the product has few output tiles and a
// long K — the study's Dense net: N = 9, O = 20, I = 512·512 — gemm_cuda splits K
// across blocks by itself.
// v1 of the bias gradient is the CPU's column sum: one thread per output
// feature o walks the N rows in order (deterministic; threads of a warp read
// consecutive o, so each row is read coalesced).
#include "kernels/cuda/common.h"
#include "kernels/cuda/gemm.h"
#include "kernels/linear.h"

namespace ctg::kernels {

// y[n,o] = b[o]: the starting value the forward GEMM adds onto.
CTG_GLOBAL void linear_fill_bias_kernel(const float* __restrict__ b, float* __restrict__ y, int64_t N, int64_t O) {
  CTG_GRID_STRIDE_LOOP(i, N * O) y[i] = b[i % O];
}

// gb[o] += Σ_n gy[n,o]
CTG_GLOBAL void linear_backward_bias_kernel(const float* __restrict__ gy, float* __restrict__ gb, int64_t N,
                                            int64_t O) {
  CTG_GRID_STRIDE_LOOP(o, O) {
    float s = 0.f;
    for (int64_t n = 0; n < N; ++n) s += gy[n * O + o];
    gb[o] += s;
  }
}

void linear_forward_cuda(const float* x, const float* w, const float* b, float* y, int64_t N, int64_t I,
                         int64_t O) {
  if (N <= 0 || O <= 0) return;
  if (b)
    CTG_LAUNCH(linear_fill_bias_kernel, dim3(cuda_detail::blocks_for(N * O, 256)), dim3(256), 0,
               cuda_detail::stream(), b, y, N, O);
  // y [N,O] (+)= x [N,I] · Wᵀ [I,O]; beta = 0 without a bias, so y need not be zeroed.
  gemm_cuda(false, true, N, O, I, 1.f, x, I, w, I, b ? 1.f : 0.f, y, O);
}

void linear_backward_cuda(const float* x, const float* w, const float* gy, float* gx, float* gw, float* gb,
                          int64_t N, int64_t I, int64_t O, bool gx_accumulate, bool gw_accumulate) {
  // beta = 0 for a first write (the GEMM never reads the poisoned buffer).
  if (gx) gemm_cuda(false, false, N, I, O, 1.f, gy, O, w, I, gx_accumulate ? 1.f : 0.f, gx, I);  // [N,O]·[O,I]
  if (gw) gemm_cuda(true, false, O, I, N, 1.f, gy, O, x, I, gw_accumulate ? 1.f : 0.f, gw, I);   // [O,N]·[N,I]
  if (gb && O > 0)
    CTG_LAUNCH(linear_backward_bias_kernel, dim3(cuda_detail::blocks_for(O, 256)), dim3(256), 0,
               cuda_detail::stream(), gy, gb, N, O);
}

}  // namespace ctg::kernels
