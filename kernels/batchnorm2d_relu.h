// batchnorm2d_relu — BatchNorm2d followed by ReLU, as one op (kernels/batchnorm2d.h
// for the BatchNorm math):
//   y = max(γ·x̂ + β, 0),  x̂ = (x − μ)·invstd            (NaN stays NaN, as torch.relu)
//   backward: g = dL/dy · [y > 0] (ReLU's backward), then BatchNorm's backward with g.
// Saved for backward: x, the batch statistics (mean, invstd), γ and y itself
// (the mask) — the same memory as the two ops apart (BatchNorm saves x, ReLU
// its output), but the intermediate BatchNorm output and the intermediate
// gradient are never written: one pass less forward, two less backward.
// Results equal relu(batchnorm2d(x)) and its gradients exactly on the CPU.
// Implementations:
//   CPU reference: kernels/cpu/batchnorm2d.cpp (BatchNorm's per-channel loops with
//     the clamp applied as y is written and the mask applied as gy is read);
//   tuned CPU: kernels/cpu/batchnorm2d_tuned.cpp (BatchNorm's tuned loops, the same
//     clamp and a branch-free mask: fused equals unfused bitwise there too);
//   batchnorm2d_relu_{forward,backward}_cpu run one of the two, as
//     kernels/cpu_impl.h selects (default tuned);
//   CUDA: kernels/cuda/batchnorm2d_split.cu (training: the split-reduction kernels
//     with the ReLU fused; eval: BatchNorm's eval kernel, then ReLU in place).
#pragma once
#include <cstdint>

namespace ctg::kernels {

template <typename T>
void batchnorm2d_relu_forward_cpu(const T* x, const T* gamma, const T* beta, T* running_mean, T* running_var, T* y,
                                  T* mean, T* invstd, int64_t N, int64_t C, int64_t HW, bool training,
                                  double momentum, double eps);
template <typename T>
void batchnorm2d_relu_backward_cpu(const T* x, const T* gamma, const T* mean, const T* invstd, const T* y,
                                   const T* gy, T* gx, T* ggamma, T* gbeta, int64_t N, int64_t C, int64_t HW,
                                   bool training, bool gx_accumulate = true);

template <typename T>
void batchnorm2d_relu_forward_cpu_reference(const T* x, const T* gamma, const T* beta, T* running_mean,
                                            T* running_var, T* y, T* mean, T* invstd, int64_t N, int64_t C,
                                            int64_t HW, bool training, double momentum, double eps);
template <typename T>
void batchnorm2d_relu_backward_cpu_reference(const T* x, const T* gamma, const T* mean, const T* invstd,
                                             const T* y, const T* gy, T* gx, T* ggamma, T* gbeta, int64_t N,
                                             int64_t C, int64_t HW, bool training, bool gx_accumulate = true);
template <typename T>
void batchnorm2d_relu_forward_cpu_tuned(const T* x, const T* gamma, const T* beta, T* running_mean,
                                        T* running_var, T* y, T* mean, T* invstd, int64_t N, int64_t C,
                                        int64_t HW, bool training, double momentum, double eps);
template <typename T>
void batchnorm2d_relu_backward_cpu_tuned(const T* x, const T* gamma, const T* mean, const T* invstd,
                                         const T* y, const T* gy, T* gx, T* ggamma, T* gbeta, int64_t N,
                                         int64_t C, int64_t HW, bool training, bool gx_accumulate = true);

void batchnorm2d_relu_forward_cuda(const float* x, const float* gamma, const float* beta, float* running_mean,
                                   float* running_var, float* y, float* mean, float* invstd, int64_t N, int64_t C,
                                   int64_t HW, bool training, double momentum, double eps);
void batchnorm2d_relu_backward_cuda(const float* x, const float* gamma, const float* mean, const float* invstd,
                                    const float* y, const float* gy, float* gx, float* ggamma, float* gbeta,
                                    int64_t N, int64_t C, int64_t HW, bool training, bool gx_accumulate = true);

}  // namespace ctg::kernels
