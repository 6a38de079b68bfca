// batchnorm2d — per-channel normalisation of x [N,C,H,W] over the M = N·H·W
// values of each channel c (PyTorch's BatchNorm2d).
//
// Forward, training mode (batch statistics, biased variance):
//   μ_c   = (1/M) Σ x               σ²_c = (1/M) Σ (x − μ_c)²
//   invstd_c = 1 / sqrt(σ²_c + eps)   x̂ = (x − μ_c)·invstd_c
//   y = γ_c·x̂ + β_c
//   running_mean ← (1−m)·running_mean + m·μ_c
//   running_var  ← (1−m)·running_var  + m·σ²_c·M/(M−1)   (unbiased, as PyTorch)
// Forward, eval mode: the same affine map with μ = running_mean,
//   invstd = 1/sqrt(running_var + eps); the running statistics are untouched.
//
// Backward (gy = dL/dy). In eval mode μ and invstd are constants:
//   gx += γ·invstd·gy
// In training mode μ and σ² depend on x, and the chain rule through them gives
//   gx += γ·invstd/M · (M·gy − Σgy − x̂·Σ(gy·x̂))
// In both modes
//   gγ += Σ gy·x̂            gβ += Σ gy        (sums over n, h, w)
//
// Saved for backward: x, γ, and the per-channel mean and invstd that the
// forward used (batch statistics in training, running statistics in eval),
// written by the forward into the caller's `mean`/`invstd` buffers [C].
// gamma/beta may be nullptr (affine=False: γ = 1, β = 0); running_mean/var may
// be nullptr in training mode (track_running_stats=False: no update).
// Backward accumulates (+=) into gx, ggamma, gbeta; nullptr = not needed.
// gx_accumulate = false: gx is a first write (engine/autograd.h input_grad_out):
// it is stored, its old contents never read; gγ and gβ always accumulate.
//
// Implementations:
//   reference  kernels/cpu/batchnorm2d.cpp        plain per-channel loops (OpenMP over
//              channels), sums in double, one pass for Σx and Σx² shifted by the
//              channel's first value against cancellation: the forward reads x
//              twice, the backward x and gy twice
//   tuned CPU  kernels/cpu/batchnorm2d_tuned.cpp  the same passes and sums in double,
//              vectorised (a branch-free ReLU mask: the reference's fused backward
//              runs scalar), chunks of a channel summed separately and added in
//              chunk order (deterministic, independent of the thread count),
//              threads over whole channels or (channel × chunk) items when C is
//              small (C = 5 on 2 threads)
//   CUDA       kernels/cuda/batchnorm2d.cu (float32; one block per channel for
//              the sums) and batchnorm2d_split.cu (below).
// batchnorm2d_{forward,backward}_cpu run the reference or the tuned CPU kernel,
// as kernels/cpu_impl.h selects (default tuned).
#pragma once
#include <cstdint>

namespace ctg::kernels {

// The entry points (the variant kernels/cpu_impl.h selects); then 1. the
// reference, 2. the tuned variant, with the same arguments.
template <typename T>
void batchnorm2d_forward_cpu(const T* x, const T* gamma, const T* beta, T* running_mean,
                             T* running_var, T* y, T* mean, T* invstd, int64_t N, int64_t C,
                             int64_t HW, bool training, double momentum, double eps);

template <typename T>
void batchnorm2d_backward_cpu(const T* x, const T* gamma, const T* mean, const T* invstd,
                              const T* gy, T* gx, T* ggamma, T* gbeta, int64_t N, int64_t C,
                              int64_t HW, bool training, bool gx_accumulate = true);

template <typename T>
void batchnorm2d_forward_cpu_reference(const T* x, const T* gamma, const T* beta, T* running_mean, T* running_var,
                                       T* y, T* mean, T* invstd, int64_t N, int64_t C, int64_t HW, bool training,
                                       double momentum, double eps);
template <typename T>
void batchnorm2d_backward_cpu_reference(const T* x, const T* gamma, const T* mean, const T* invstd, const T* gy,
                                        T* gx, T* ggamma, T* gbeta, int64_t N, int64_t C, int64_t HW, bool training,
                                        bool gx_accumulate = true);
template <typename T>
void batchnorm2d_forward_cpu_tuned(const T* x, const T* gamma, const T* beta, T* running_mean, T* running_var,
                                   T* y, T* mean, T* invstd, int64_t N, int64_t C, int64_t HW, bool training,
                                   double momentum, double eps);
template <typename T>
void batchnorm2d_backward_cpu_tuned(const T* x, const T* gamma, const T* mean, const T* invstd, const T* gy,
                                    T* gx, T* ggamma, T* gbeta, int64_t N, int64_t C, int64_t HW, bool training,
                                    bool gx_accumulate = true);

// CUDA (float32), same arguments and semantics; all pointers are device memory.
void batchnorm2d_forward_cuda(const float* x, const float* gamma, const float* beta, float* running_mean,
                              float* running_var, float* y, float* mean, float* invstd, int64_t N, int64_t C,
                              int64_t HW, bool training, double momentum, double eps);
void batchnorm2d_backward_cuda(const float* x, const float* gamma, const float* mean, const float* invstd,
                               const float* gy, float* gx, float* ggamma, float* gbeta, int64_t N, int64_t C,
                               int64_t HW, bool training, bool gx_accumulate = true);


// CUDA, each channel's reduction split over many blocks (kernels/cuda/batchnorm2d_split.cu):
// deterministic (partials per chunk in double, added in a fixed order), for the
// large tensors where one block per channel leaves most SMs idle.
//   forward (training mode only): as batchnorm2d_forward_cuda; relu = true fuses
//     the ReLU that follows: y = max(γ·x̂ + β, 0).
//   backward: as batchnorm2d_backward_cuda; relu_y = the fused forward's output
//     (nullptr: no ReLU) makes it ReLU-backward + BN-backward in one: gy is
//     masked by relu_y > 0 where it is read.
//   splits: blocks per channel, 0 = chosen from the shape (batchnorm2d_splits).
void batchnorm2d_forward_split_cuda(const float* x, const float* gamma, const float* beta, float* running_mean,
                                    float* running_var, float* y, float* mean, float* invstd, int64_t N, int64_t C,
                                    int64_t HW, double momentum, double eps, bool relu, int64_t splits = 0);
void batchnorm2d_backward_split_cuda(const float* x, const float* gamma, const float* mean, const float* invstd,
                                     const float* gy, const float* relu_y, float* gx, float* ggamma, float* gbeta,
                                     int64_t N, int64_t C, int64_t HW, bool training, int64_t splits = 0,
                                     bool gx_accumulate = true);
int64_t batchnorm2d_splits(int64_t N, int64_t C, int64_t HW);

}  // namespace ctg::kernels
