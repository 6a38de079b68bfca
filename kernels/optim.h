// Optimiser updates, one fused pass over a parameter tensor (PyTorch semantics).
//
// sgd_update:  g ← g + λ·p;  b ← μ·b + g (b = g on the first step);  p ← p − lr·b
// adam_update (L2 decay, torch.optim.Adam):
//   g ← g + λ·p;  m ← β1·m + (1−β1)·g;  v ← β2·v + (1−β2)·g²
//   p ← p − (lr / (1−β1ᵗ)) · m / (√v / √(1−β2ᵗ) + ε)
// adamw_update (decoupled decay): p ← p·(1 − lr·λ) first, then Adam without λ.
// Implementations: reference kernels/cpu/optim.cpp (no tuned CPU variant: one
// pass over p, g and the state); CUDA kernels/cuda/optim.cu (float32).
#pragma once
#include <cstdint>

namespace ctg::kernels {
template <typename T>
void sgd_update_cpu(T* p, const T* g, T* momentum_buf, int64_t n, double lr, double momentum,
                    double weight_decay, bool first_step);
template <typename T>
void adam_update_cpu(T* p, const T* g, T* m, T* v, int64_t n, double lr, double beta1, double beta2,
                     double eps, double weight_decay, bool decoupled, int64_t step);
void sgd_update_cuda(float* p, const float* g, float* momentum_buf, int64_t n, double lr, double momentum,
                     double weight_decay, bool first_step);
void adam_update_cuda(float* p, const float* g, float* m, float* v, int64_t n, double lr, double beta1, double beta2,
                      double eps, double weight_decay, bool decoupled, int64_t step);
}  // namespace ctg::kernels
