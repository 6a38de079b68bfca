// dropout on the GPU — the CUDA twin of kernels/cpu/dropout.cpp (math in kernels/dropout.h).
// The keep decision for element i is dropout_uniform(seed, i) ≥ p, the same
// counter-based hash the CPU uses: the mask is identical on both devices and
// for any grid shape.
#include "kernels/cuda/common.h"
#include "kernels/dropout.h"

namespace ctg::kernels {

CTG_GLOBAL void dropout_forward_kernel(const float* __restrict__ x, float* __restrict__ y, int64_t n, double p,
                                       uint64_t seed) {
  const float scale = (float)(1.0 / (1.0 - p));
  CTG_GRID_STRIDE_LOOP(i, n) y[i] = dropout_uniform(seed, (uint64_t)i) >= p ? x[i] * scale : 0.f;
}

CTG_GLOBAL void dropout_backward_kernel(const float* __restrict__ gy, float* __restrict__ gx, int64_t n, double p,
                                        uint64_t seed) {
  const float scale = (float)(1.0 / (1.0 - p));
  CTG_GRID_STRIDE_LOOP(i, n) if (dropout_uniform(seed, (uint64_t)i) >= p) gx[i] += gy[i] * scale;
}

void dropout_forward_cuda(const float* x, float* y, int64_t n, double p, uint64_t seed) {
  if (n == 0) return;
  CTG_LAUNCH(dropout_forward_kernel, dim3(cuda_detail::blocks_for(n, 256)), dim3(256), 0, cuda_detail::stream(), x,
             y, n, p, seed);
}

void dropout_backward_cuda(const float* gy, float* gx, int64_t n, double p, uint64_t seed) {
  if (n == 0) return;
  CTG_LAUNCH(dropout_backward_kernel, dim3(cuda_detail::blocks_for(n, 256)), dim3(256), 0, cuda_detail::stream(), gy,
             gx, n, p, seed);
}

}  // namespace ctg::kernels
