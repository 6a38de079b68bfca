// relu on the GPU — the CUDA twin of kernels/cpu/relu.cpp (math in kernels/relu.h).
//   forward:  y = max(x, 0)
//   backward: gx = gy · [y > 0], or gx += it (accumulate)
// v1 is the CPU loop with the loop index replaced by a grid-stride index; it
// is memory-bound (8 bytes in/out per element forward), which is as good as
// an elementwise kernel gets without fusing it into its neighbours.
#include "kernels/cuda/common.h"
#include "kernels/relu.h"

namespace ctg::kernels {

CTG_GLOBAL void relu_forward_kernel(const float* __restrict__ x, float* __restrict__ y, int64_t n) {
  CTG_GRID_STRIDE_LOOP(i, n) y[i] = x[i] <= 0.f ? 0.f : x[i];  // NaN stays NaN, as torch.relu
}

CTG_GLOBAL void relu_backward_kernel(const float* __restrict__ y, const float* __restrict__ gy,
                                     float* __restrict__ gx, int64_t n, bool accumulate) {
  CTG_GRID_STRIDE_LOOP(i, n) {
    const float g = y[i] > 0.f ? gy[i] : 0.f;
    gx[i] = accumulate ? gx[i] + g : g;  // a first write never reads gx
  }
}

void relu_forward_cuda(const float* x, float* y, int64_t n) {
  if (n == 0) return;
  CTG_LAUNCH(relu_forward_kernel, dim3(cuda_detail::blocks_for(n, 256)), dim3(256), 0, cuda_detail::stream(), x, y,
             n);
}

void relu_backward_cuda(const float* y, const float* gy, float* gx, int64_t n, bool accumulate) {
  if (n == 0) return;
  CTG_LAUNCH(relu_backward_kernel, dim3(cuda_detail::blocks_for(n, 256)), dim3(256), 0, cuda_detail::stream(), y,
             gy, gx, n, accumulate);
}

}  // namespace ctg::kernels
