// linear — y = x·Wᵀ + b,  x [N,I], W [O,I], b [O]
//   dL/dx = dL/dy · W          [N,O]·[O,I]
//   dL/dW = dL/dyᵀ · x         [O,N]·[N,I]
//   dL/db = Σ_n dL/dy[n,:]
// Saved for backward: x and W. Backward accumulates (+=) into gx, gw, gb;
// any of them may be nullptr when that gradient is not needed.
// CPU reference: kernels/cpu/linear.cpp (OpenBLAS GEMM).  CUDA: kernels/cuda/linear.cu.
#pragma once
#include <cstdint>

namespace ctg::kernels {
template <typename T>
void linear_forward_cpu(const T* x, const T* w, const T* b, T* y, int64_t N, int64_t I, int64_t O);
template <typename T>
void linear_backward_cpu(const T* x, const T* w, const T* gy, T* gx, T* gw, T* gb, int64_t N,
                         int64_t I, int64_t O);
// CUDA (float32): the same three products on our own SGEMM (kernels/cuda/gemm.h).
void linear_forward_cuda(const float* x, const float* w, const float* b, float* y, int64_t N, int64_t I,
                         int64_t O);
void linear_backward_cuda(const float* x, const float* w, const float* gy, float* gx, float* gw, float* gb,
                          int64_t N, int64_t I, int64_t O);
}  // namespace ctg::kernels
