// add on the GPU — the CUDA twin of kernels/cpu/add.cpp (math in kernels/add.h).
//   forward:  y = a + b
//   backward: g += gy (once per operand that needs it; also the engine's
//             gradient-accumulation primitive)
#include "kernels/add.h"
#include "kernels/cuda/common.h"

namespace ctg::kernels {

CTG_GLOBAL void add_forward_kernel(const float* __restrict__ a, const float* __restrict__ b, float* __restrict__ y,
                                   int64_t n) {
  CTG_GRID_STRIDE_LOOP(i, n) y[i] = a[i] + b[i];
}

CTG_GLOBAL void add_backward_kernel(const float* __restrict__ gy, float* __restrict__ g, int64_t n) {
  CTG_GRID_STRIDE_LOOP(i, n) g[i] += gy[i];
}

void add_forward_cuda(const float* a, const float* b, float* y, int64_t n) {
  if (n == 0) return;
  CTG_LAUNCH(add_forward_kernel, dim3(cuda_detail::blocks_for(n, 256)), dim3(256), 0, cuda_detail::stream(), a, b, y,
             n);
}

void add_backward_cuda(const float* gy, float* g, int64_t n) {
  if (n == 0) return;
  CTG_LAUNCH(add_backward_kernel, dim3(cuda_detail::blocks_for(n, 256)), dim3(256), 0, cuda_detail::stream(), gy, g,
             n);
}

}  // namespace ctg::kernels
