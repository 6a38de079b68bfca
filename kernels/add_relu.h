// add_relu — the residual add and the ReLU after it, as one op:
//   y = max(a + b, 0)                        (NaN stays NaN, as torch.relu)
//   backward: g = dL/dy · [y > 0];  dL/da += g,  dL/db += g   (either may be nullptr);
//   acc_a/acc_b false: a first write, ga = g (gb = g), the old contents never read.
// Saved for backward: y only (the mask). Equals relu(add(a, b)) exactly.
// Implementations: CPU reference kernels/cpu/add_relu.cpp (one pass, no tuned
// variant: it is memory-bound); CUDA kernels/cuda/add_relu.cu (float32).
#pragma once
#include <cstdint>

namespace ctg::kernels {
template <typename T> void add_relu_forward_cpu(const T* a, const T* b, T* y, int64_t n);
template <typename T>
void add_relu_backward_cpu(const T* y, const T* gy, T* ga, T* gb, int64_t n, bool acc_a, bool acc_b);
void add_relu_forward_cuda(const float* a, const float* b, float* y, int64_t n);
void add_relu_backward_cuda(const float* y, const float* gy, float* ga, float* gb, int64_t n, bool acc_a, bool acc_b);
}  // namespace ctg::kernels
