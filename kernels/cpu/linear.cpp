// CPU reference for linear: the sums of kernels/linear.h as plain loops, the
// oracle the tuned (OpenBLAS) kernel in kernels/cpu/linear_tuned.cpp and the
// CUDA kernel are tested against. Threads split rows whose outputs never
// overlap (forward and dx over n, dW and db over o).
#include "kernels/linear.h"

#include <algorithm>

#include "kernels/cpu_impl.h"

namespace ctg::kernels {

template <typename T>
void linear_forward_cpu_reference(const T* x, const T* w, const T* b, T* y, int64_t N, int64_t I, int64_t O) {
  // y[n,o] = b[o] + Σ_i x[n,i]·W[o,i]
#pragma omp parallel for schedule(static) if (N * I * O > 65536)
  for (int64_t n = 0; n < N; ++n)
    for (int64_t o = 0; o < O; ++o) {
      T sum = b ? b[o] : T(0);
      for (int64_t i = 0; i < I; ++i) sum += x[n * I + i] * w[o * I + i];
      y[n * O + o] = sum;
    }
}

template <typename T>
void linear_backward_cpu_reference(const T* x, const T* w, const T* gy, T* gx, T* gw, T* gb, int64_t N,
                                   int64_t I, int64_t O, bool gx_accumulate, bool gw_accumulate) {
  // A first write the plain way: zeros, then the same additions.
  if (gx && !gx_accumulate) std::fill(gx, gx + N * I, T(0));
  if (gx) {  // dL/dx[n,i] += Σ_o dL/dy[n,o]·W[o,i]
#pragma omp parallel for schedule(static) if (N * I * O > 65536)
    for (int64_t n = 0; n < N; ++n)
      for (int64_t i = 0; i < I; ++i) {
        T sum = 0;
        for (int64_t o = 0; o < O; ++o) sum += gy[n * O + o] * w[o * I + i];
        gx[n * I + i] += sum;
      }
  }
  if (gw && !gw_accumulate) std::fill(gw, gw + O * I, T(0));
  if (gw) {  // dL/dW[o,i] += Σ_n dL/dy[n,o]·x[n,i]
#pragma omp parallel for schedule(static) if (N * I * O > 65536)
    for (int64_t o = 0; o < O; ++o)
      for (int64_t i = 0; i < I; ++i) {
        T sum = 0;
        for (int64_t n = 0; n < N; ++n) sum += gy[n * O + o] * x[n * I + i];
        gw[o * I + i] += sum;
      }
  }
  if (gb)  // dL/db[o] += Σ_n dL/dy[n,o]
    for (int64_t o = 0; o < O; ++o) {
      T sum = 0;
      for (int64_t n = 0; n < N; ++n) sum += gy[n * O + o];
      gb[o] += sum;
    }
}

// The engine's entry points: the variant kernels/cpu_impl.h selects.
template <typename T>
void linear_forward_cpu(const T* x, const T* w, const T* b, T* y, int64_t N, int64_t I, int64_t O) {
  if (cpu_impl() == CpuImpl::reference) return linear_forward_cpu_reference(x, w, b, y, N, I, O);
  linear_forward_cpu_tuned(x, w, b, y, N, I, O);
}
template <typename T>
void linear_backward_cpu(const T* x, const T* w, const T* gy, T* gx, T* gw, T* gb, int64_t N, int64_t I,
                         int64_t O, bool gx_accumulate, bool gw_accumulate) {
  if (cpu_impl() == CpuImpl::reference)
    return linear_backward_cpu_reference(x, w, gy, gx, gw, gb, N, I, O, gx_accumulate, gw_accumulate);
  linear_backward_cpu_tuned(x, w, gy, gx, gw, gb, N, I, O, gx_accumulate, gw_accumulate);
}

#define CTG_LINEAR_INSTANTIATE(T)                                                                        \
  template void linear_forward_cpu_reference<T>(const T*, const T*, const T*, T*, int64_t, int64_t,     \
                                                int64_t);                                               \
  template void linear_backward_cpu_reference<T>(const T*, const T*, const T*, T*, T*, T*, int64_t,     \
                                                 int64_t, int64_t, bool, bool);                         \
  template void linear_forward_cpu<T>(const T*, const T*, const T*, T*, int64_t, int64_t, int64_t);      \
  template void linear_backward_cpu<T>(const T*, const T*, const T*, T*, T*, T*, int64_t, int64_t, int64_t, bool, \
                                       bool);
CTG_LINEAR_INSTANTIATE(float)
CTG_LINEAR_INSTANTIATE(double)
#undef CTG_LINEAR_INSTANTIATE

}  // namespace ctg::kernels
