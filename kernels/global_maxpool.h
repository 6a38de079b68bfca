// global_maxpool — adaptive max pooling to 1×1 (PyTorch's AdaptiveMaxPool2d(1)):
//   y[n,c,0,0] = max_{h,w} x[n,c,h,w]
//   argmax[n,c] = h·W + w of the winner: the first maximum in row-major order,
//   or the last NaN when the plane holds one (NaNs propagate, as in PyTorch).
// Backward: only the winner moves the max, so
//   gx[n,c, argmax[n,c]] += gy[n,c]
// Saved for backward: argmax only (int32 index into the H·W plane).
// Implementations: reference kernels/cpu/global_maxpool.cpp (OpenMP over the
// N·C planes; no tuned CPU variant); CUDA kernels/cuda/global_maxpool.cu
// (float32; one block per plane).
#pragma once
#include <cstdint>

namespace ctg::kernels {

// x [planes, HW] -> y [planes], argmax [planes]; planes = N·C.
template <typename T>
void global_maxpool_forward_cpu(const T* x, T* y, int32_t* argmax, int64_t planes, int64_t HW);

// gx [planes, HW] += gy [planes] scattered to argmax.
template <typename T>
void global_maxpool_backward_cpu(const int32_t* argmax, const T* gy, T* gx, int64_t planes, int64_t HW);

// CUDA (float32), same semantics; all pointers are device memory.
void global_maxpool_forward_cuda(const float* x, float* y, int32_t* argmax, int64_t planes, int64_t HW);
void global_maxpool_backward_cuda(const int32_t* argmax, const float* gy, float* gx, int64_t planes, int64_t HW);

}  // namespace ctg::kernels
