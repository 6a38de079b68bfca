// dropout (inverted) — y = x · m / (1 − p),  m ~ Bernoulli(1 − p);  dL/dx = dL/dy · m / (1 − p)
// The keep decision for element i is a pure function of (seed, i): a
// counter-based hash (splitmix64), so CPU and GPU, any thread split, give the
// same mask. Saved for backward: nothing but (seed, p) — the mask is recomputed.
// Implementations: reference kernels/cpu/dropout.cpp (no tuned CPU variant);
// CUDA kernels/cuda/dropout.cu (float32).
#pragma once
#include <cstdint>

namespace ctg::kernels {

// Uniform in [0, 1) from (seed, counter); identical on host and device.
#if defined(__CUDACC__)
__host__ __device__
#endif
inline double dropout_uniform(uint64_t seed, uint64_t counter) {
  uint64_t z = seed * 0x9E3779B97F4A7C15ull + counter + 0x632BE59BD9B4E019ull;
  z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
  z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
  z ^= z >> 31;
  return (double)(z >> 11) * (1.0 / 9007199254740992.0);  // 53 random bits
}

template <typename T> void dropout_forward_cpu(const T* x, T* y, int64_t n, double p, uint64_t seed);
// gx += gy · m / (1 − p)
template <typename T> void dropout_backward_cpu(const T* gy, T* gx, int64_t n, double p, uint64_t seed);
void dropout_forward_cuda(const float* x, float* y, int64_t n, double p, uint64_t seed);
void dropout_backward_cuda(const float* gy, float* gx, int64_t n, double p, uint64_t seed);

}  // namespace ctg::kernels
