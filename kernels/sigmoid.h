// sigmoid — y = 1 / (1 + e^−x);  dL/dx = dL/dy · y·(1 − y)
// Saved for backward: the output y.
// Implementations: reference kernels/cpu/sigmoid.cpp (no tuned CPU variant);
// CUDA kernels/cuda/sigmoid.cu (float32).
#pragma once
#include <cstdint>

namespace ctg::kernels {
template <typename T> void sigmoid_forward_cpu(const T* x, T* y, int64_t n);
// gx += gy · y·(1 − y)
template <typename T> void sigmoid_backward_cpu(const T* y, const T* gy, T* gx, int64_t n);
void sigmoid_forward_cuda(const float* x, float* y, int64_t n);
void sigmoid_backward_cuda(const float* y, const float* gy, float* gx, int64_t n);
}  // namespace ctg::kernels
