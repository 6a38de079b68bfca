// bce_with_logits on the GPU — the CUDA twin of kernels/cpu/bce_with_logits.cpp
// (math in kernels/bce_with_logits.h).
//   forward:  L = (1/N) Σ [max(z,0) − z·y + log(1 + e^−|z|)]
//   backward: gz += g · (σ(z) − y) / N, with g = dL/dloss read from device memory
// The forward is a reduction: one block walks the N terms with a block-stride
// loop, accumulates in double per thread, then halves a shared array with a
// barrier between rounds (a tree reduction, the classic CUDA pattern). One
// block keeps the sum's order fixed, so the loss is deterministic; N is the
// batch size here, so one block is plenty.
#include "kernels/bce_with_logits.h"
#include "kernels/cuda/common.h"

namespace ctg::kernels {

constexpr int kBceThreads = 256;

CTG_GLOBAL void bce_with_logits_forward_kernel(const float* __restrict__ z, const float* __restrict__ y,
                                               float* __restrict__ loss, int64_t n) {
  CTG_SHARED(double, partial, [kBceThreads]);
  double s = 0;
  for (int64_t i = threadIdx.x; i < n; i += blockDim.x) {
    const double zi = z[i];
    s += fmax(zi, 0.0) - zi * (double)y[i] + log1p(exp(-fabs(zi)));
  }
  partial[threadIdx.x] = s;
  __syncthreads();
  for (unsigned int half = blockDim.x / 2; half > 0; half /= 2) {
    if (threadIdx.x < half) partial[threadIdx.x] += partial[threadIdx.x + half];
    __syncthreads();
  }
  if (threadIdx.x == 0) loss[0] = (float)(partial[0] / (double)n);
}

CTG_GLOBAL void bce_with_logits_backward_kernel(const float* __restrict__ z, const float* __restrict__ y,
                                                const float* __restrict__ g, float* __restrict__ gz, int64_t n) {
  const float scale = g[0] / (float)n;
  CTG_GRID_STRIDE_LOOP(i, n) {
    const float zi = z[i];
    const float s = zi >= 0.f ? 1.f / (1.f + expf(-zi)) : expf(zi) / (1.f + expf(zi));
    gz[i] += scale * (s - y[i]);
  }
}

void bce_with_logits_forward_cuda(const float* z, const float* y, float* loss, int64_t n) {
  CTG_LAUNCH(bce_with_logits_forward_kernel, dim3(1), dim3(kBceThreads), 0, cuda_detail::stream(), z, y, loss, n);
}

void bce_with_logits_backward_cuda(const float* z, const float* y, const float* g, float* gz, int64_t n) {
  CTG_LAUNCH(bce_with_logits_backward_kernel, dim3(cuda_detail::blocks_for(n, 256)), dim3(256), 0,
             cuda_detail::stream(), z, y, g, gz, n);
}

}  // namespace ctg::kernels
