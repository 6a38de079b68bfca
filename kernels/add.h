// add — y = a + b (same shape);  dL/da = dL/db = dL/dy
// Nothing is saved for backward. add_backward_cpu is also the engine's
// "accumulate a gradient" primitive (g += gy).
// Implementations: reference kernels/cpu/add.cpp (no tuned CPU variant: one
// vectorised pass is already memory-bound); CUDA kernels/cuda/add.cu (float32).
#pragma once
#include <cstdint>

#include "kernels/add_relu.h"  // the residual add fused with the ReLU after it

namespace ctg::kernels {
template <typename T> void add_forward_cpu(const T* a, const T* b, T* y, int64_t n);
// g += gy  (called once per input that needs a gradient)
template <typename T> void add_backward_cpu(const T* gy, T* g, int64_t n);
void add_forward_cuda(const float* a, const float* b, float* y, int64_t n);
void add_backward_cuda(const float* gy, float* g, int64_t n);
}  // namespace ctg::kernels
