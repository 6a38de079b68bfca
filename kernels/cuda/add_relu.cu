// The residual add + ReLU fused (math in kernels/add.h): ResNet's block output
// relu(branch + shortcut) in one pass instead of add.cu then relu.cu — 12
// bytes per element forward instead of 20, and one backward pass that feeds
// both inputs. Unfused twin: add_forward_cuda + relu_forward_cuda
// (tests/cuda_vs_cpu_batchnorm_fused.cpp holds one against the other).
#include "kernels/add_relu.h"
#include "kernels/cuda/common.h"

namespace ctg::kernels {

CTG_GLOBAL void add_relu_forward_kernel(const float* __restrict__ a, const float* __restrict__ b,
                                        float* __restrict__ y, int64_t n) {
  CTG_GRID_STRIDE_LOOP(i, n) {
    const float v = a[i] + b[i];
    y[i] = v <= 0.f ? 0.f : v;  // NaN stays NaN, as relu.cu
  }
}

CTG_GLOBAL void add_relu_backward_kernel(const float* __restrict__ y, const float* __restrict__ gy,
                                         float* ga, float* gb, int64_t n, bool acc_a, bool acc_b) {
  // No __restrict__ on ga/gb: they may be one buffer (add_relu(x, x)).
  CTG_GRID_STRIDE_LOOP(i, n) {
    const float g = y[i] > 0.f ? gy[i] : 0.f;
    if (ga) ga[i] = acc_a ? ga[i] + g : g;  // a first write never reads the old value
    if (gb) gb[i] = acc_b ? gb[i] + g : g;
  }
}

void add_relu_forward_cuda(const float* a, const float* b, float* y, int64_t n) {
  if (n <= 0) return;
  CTG_LAUNCH(add_relu_forward_kernel, dim3(cuda_detail::blocks_for(n, 256)), dim3(256), 0, cuda_detail::stream(), a,
             b, y, n);
}

void add_relu_backward_cuda(const float* y, const float* gy, float* ga, float* gb, int64_t n, bool acc_a, bool acc_b) {
  if (n <= 0 || (!ga && !gb)) return;
  CTG_LAUNCH(add_relu_backward_kernel, dim3(cuda_detail::blocks_for(n, 256)), dim3(256), 0, cuda_detail::stream(), y,
             gy, ga, gb, n, acc_a, acc_b);
}

}  // namespace ctg::kernels
