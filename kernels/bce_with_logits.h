// bce_with_logits — binary cross-entropy on logits z with targets y, mean over N:
//   L = (1/N) Σ_i [ max(z_i, 0) − z_i·y_i + log(1 + e^−|z_i|) ]
// which equals −[y log σ(z) + (1−y) log(1−σ(z))] without overflow for large |z|.
//   dL/dz_i = (σ(z_i) − y_i) / N
// Saved for backward: z and y. Targets get no gradient.
// Implementations: reference kernels/cpu/bce_with_logits.cpp (no tuned CPU
// variant: N is the batch size); CUDA kernels/cuda/bce_with_logits.cu.
#pragma once
#include <cstdint>

namespace ctg::kernels {
template <typename T> T bce_with_logits_forward_cpu(const T* z, const T* y, int64_t n);
// gz += g · (σ(z) − y) / N   (g = dL/dloss, a scalar)
template <typename T>
void bce_with_logits_backward_cpu(const T* z, const T* y, T g, T* gz, int64_t n);
// CUDA (float32): the loss and g = dL/dloss stay in device memory (one float each).
void bce_with_logits_forward_cuda(const float* z, const float* y, float* loss, int64_t n);
void bce_with_logits_backward_cuda(const float* z, const float* y, const float* g, float* gz, int64_t n);
}  // namespace ctg::kernels
