// relu — y = max(x, 0) (NaN propagates, as torch.relu);  dL/dx = dL/dy · [y > 0]
// Backward stores gx = gy·[y > 0] (accumulate = false: a first write, the old
// contents are never read) or adds it (accumulate = true).
// Saved for backward: the output y (the mask is y > 0; x itself can be freed).
// Implementations: reference kernels/cpu/relu.cpp (no tuned CPU variant);
// CUDA kernels/cuda/relu.cu (float32).
#pragma once
#include <cstdint>

namespace ctg::kernels {
template <typename T> void relu_forward_cpu(const T* x, T* y, int64_t n);
// gx = gy · [y > 0], or gx += it with accumulate
template <typename T> void relu_backward_cpu(const T* y, const T* gy, T* gx, int64_t n, bool accumulate);
void relu_forward_cuda(const float* x, float* y, int64_t n);
void relu_backward_cuda(const float* y, const float* gy, float* gx, int64_t n, bool accumulate);
}  // namespace ctg::kernels
