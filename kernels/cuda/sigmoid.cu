// sigmoid on the GPU — the CUDA twin of kernels/cpu/sigmoid.cpp (math in kernels/sigmoid.h).
//   forward:  y = 1/(1+e^−x), computed as e^x/(1+e^x) for x < 0 so exp never overflows
//   backward: gx += gy · y(1 − y)
#include "kernels/cuda/common.h"
#include "kernels/sigmoid.h"

namespace ctg::kernels {

CTG_GLOBAL void sigmoid_forward_kernel(const float* __restrict__ x, float* __restrict__ y, int64_t n) {
  CTG_GRID_STRIDE_LOOP(i, n) {
    const float v = x[i];
    if (v >= 0.f) {
      y[i] = 1.f / (1.f + expf(-v));
    } else {
      const float e = expf(v);
      y[i] = e / (1.f + e);
    }
  }
}

CTG_GLOBAL void sigmoid_backward_kernel(const float* __restrict__ y, const float* __restrict__ gy,
                                        float* __restrict__ gx, int64_t n) {
  CTG_GRID_STRIDE_LOOP(i, n) gx[i] += gy[i] * y[i] * (1.f - y[i]);
}

void sigmoid_forward_cuda(const float* x, float* y, int64_t n) {
  if (n == 0) return;
  CTG_LAUNCH(sigmoid_forward_kernel, dim3(cuda_detail::blocks_for(n, 256)), dim3(256), 0, cuda_detail::stream(), x,
             y, n);
}

void sigmoid_backward_cuda(const float* y, const float* gy, float* gx, int64_t n) {
  if (n == 0) return;
  CTG_LAUNCH(sigmoid_backward_kernel, dim3(cuda_detail::blocks_for(n, 256)), dim3(256), 0, cuda_detail::stream(), y,
             gy, gx, n);
}

}  // namespace ctg::kernels
