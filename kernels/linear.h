// linear — y = x·Wᵀ + b,  x [N,I], W [O,I], b [O]
//   y[n,o] = b[o] + Σ_i x[n,i]·W[o,i]
//   dL/dx = dL/dy · W          [N,O]·[O,I]   dL/dx[n,i] = Σ_o dL/dy[n,o]·W[o,i]
//   dL/dW = dL/dyᵀ · x         [O,N]·[N,I]   dL/dW[o,i] = Σ_n dL/dy[n,o]·x[n,i]
//   dL/db = Σ_n dL/dy[n,:]
// Saved for backward: x and W. Backward accumulates (+=) into gx, gw, gb;
// any of them may be nullptr when that gradient is not needed. gx_accumulate /
// gw_accumulate = false: that gradient is a first write (engine/autograd.h
// input_grad_out), stored without reading its old contents (GEMM beta = 0).
// Implementations (the first is the one to read; the others are tested against it):
//   reference  kernels/cpu/linear.cpp        the plain loops over the sums above
//   tuned CPU  kernels/cpu/linear_tuned.cpp  three OpenBLAS GEMMs
//   CUDA       kernels/cuda/linear.cu        our SGEMM (kernels/cuda/gemm.h)
// linear_forward_cpu / linear_backward_cpu run the reference or the tuned CPU
// kernel, as kernels/cpu_impl.h selects (default tuned).
#pragma once
#include <cstdint>

namespace ctg::kernels {
// The entry points the engine calls.
template <typename T>
void linear_forward_cpu(const T* x, const T* w, const T* b, T* y, int64_t N, int64_t I, int64_t O);
template <typename T>
void linear_backward_cpu(const T* x, const T* w, const T* gy, T* gx, T* gw, T* gb, int64_t N,
                         int64_t I, int64_t O, bool gx_accumulate = true, bool gw_accumulate = true);
// 1. Reference (kernels/cpu/linear.cpp).
template <typename T>
void linear_forward_cpu_reference(const T* x, const T* w, const T* b, T* y, int64_t N, int64_t I, int64_t O);
template <typename T>
void linear_backward_cpu_reference(const T* x, const T* w, const T* gy, T* gx, T* gw, T* gb, int64_t N,
                                   int64_t I, int64_t O, bool gx_accumulate = true, bool gw_accumulate = true);
// 2. Tuned CPU (kernels/cpu/linear_tuned.cpp).
template <typename T>
void linear_forward_cpu_tuned(const T* x, const T* w, const T* b, T* y, int64_t N, int64_t I, int64_t O);
template <typename T>
void linear_backward_cpu_tuned(const T* x, const T* w, const T* gy, T* gx, T* gw, T* gb, int64_t N,
                               int64_t I, int64_t O, bool gx_accumulate = true, bool gw_accumulate = true);
// 3. CUDA (float32): the same three products on our own SGEMM (kernels/cuda/gemm.h).
void linear_forward_cuda(const float* x, const float* w, const float* b, float* y, int64_t N, int64_t I,
                         int64_t O);
void linear_backward_cuda(const float* x, const float* w, const float* gy, float* gx, float* gw, float* gb,
                          int64_t N, int64_t I, int64_t O, bool gx_accumulate = true, bool gw_accumulate = true);
}  // namespace ctg::kernels
