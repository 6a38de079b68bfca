// Optimiser updates, one fused pass over a parameter tensor (PyTorch semantics).
//
// sgd_update:  g ← g + λ·p;  b ← μ·b + g (b = g on the first step);  p ← p − lr·b
// adam_update (L2 decay, torch.optim.Adam):
//   g ← g + λ·p;  m ← β1·m + (1−β1)·g;  v ← β2·v + (1−β2)·g²
//   p ← p − (lr / (1−β1ᵗ)) · m / (√v / √(1−β2ᵗ) + ε)
// adamw_update (decoupled decay): p ← p·(1 − lr·λ) first, then Adam without λ.
// Implementations: reference kernels/cpu/optim.cpp (no tuned CPU variant: one
// pass over p, g and the state); CUDA kernels/cuda/optim.cu (float32).
//
// The CUDA updates read the step's scalars (lr, Adam's bias corrections)
// from device memory, written before each step by optim_scalars_cuda (a
// one-thread launch whose arguments travel by value: no host buffer has to
// outlive it, no synchronisation). A CUDA graph that captured the update
// launches (--cuda-graph) replays them with the scalars of each new step;
// passed by value they would stay those of the captured step.
#pragma once
#include <cmath>
#include <cstdint>

namespace ctg::kernels {
template <typename T>
void sgd_update_cpu(T* p, const T* g, T* momentum_buf, int64_t n, double lr, double momentum,
                    double weight_decay, bool first_step);
template <typename T>
void adam_update_cpu(T* p, const T* g, T* m, T* v, int64_t n, double lr, double beta1, double beta2,
                     double eps, double weight_decay, bool decoupled, int64_t step);

// The per-step scalars of the CUDA updates, in the order the kernels read them.
struct OptimScalars {
  float v[4] = {0, 0, 0, 0};
};
// SGD: {lr}. Adam: {lr / (1−β1ᵗ), 1 / √(1−β2ᵗ), decay, l2} with decay = 1 − lr·λ
// and l2 = 0 for AdamW, decay = 1 and l2 = λ for Adam; computed in double as
// the CPU reference does.
inline OptimScalars sgd_scalars(double lr) {
  OptimScalars s;
  s.v[0] = (float)lr;
  return s;
}
inline OptimScalars adam_scalars(double lr, double b1, double b2, double wd, bool decoupled, int64_t step) {
  const double bc1 = 1.0 - std::pow(b1, (double)step), bc2 = 1.0 - std::pow(b2, (double)step);
  OptimScalars s;
  s.v[0] = (float)(lr / bc1);
  s.v[1] = (float)(1.0 / std::sqrt(bc2));
  s.v[2] = decoupled ? (float)(1.0 - lr * wd) : 1.f;
  s.v[3] = decoupled ? 0.f : (float)wd;
  return s;
}
void optim_scalars_cuda(float* dst, OptimScalars s);  // dst: 4 floats of device memory
void sgd_update_cuda(float* p, const float* g, float* momentum_buf, int64_t n, const float* scalars,
                     double momentum, double weight_decay, bool first_step);
void adam_update_cuda(float* p, const float* g, float* m, float* v, int64_t n, const float* scalars, double beta1,
                      double beta2, double eps);
}  // namespace ctg::kernels
