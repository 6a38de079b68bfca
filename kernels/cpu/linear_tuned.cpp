// Tuned CPU linear (see kernels/linear.h; the plain loops it is tested against
// are kernels/cpu/linear.cpp): three OpenBLAS GEMMs and a column sum.
#include "kernels/linear.h"

#include "kernels/cpu/gemm.h"

namespace ctg::kernels {

template <typename T>
void linear_forward_cpu_tuned(const T* x, const T* w, const T* b, T* y, int64_t N, int64_t I, int64_t O) {
  // Start y from the bias (or zero) and let GEMM add x·Wᵀ on top (beta = 1).
  for (int64_t n = 0; n < N; ++n)
    for (int64_t o = 0; o < O; ++o) y[n * O + o] = b ? b[o] : T(0);
  cpu::gemm(false, true, N, O, I, T(1), x, I, w, I, T(1), y, O);
}

template <typename T>
void linear_backward_cpu_tuned(const T* x, const T* w, const T* gy, T* gx, T* gw, T* gb, int64_t N,
                               int64_t I, int64_t O, bool gx_accumulate, bool gw_accumulate) {
  // beta = 0 for a first write: the GEMM stores and never reads the buffer.
  if (gx) cpu::gemm(false, false, N, I, O, T(1), gy, O, w, I, gx_accumulate ? T(1) : T(0), gx, I);
  if (gw) cpu::gemm(true, false, O, I, N, T(1), gy, O, x, I, gw_accumulate ? T(1) : T(0), gw, I);
  if (gb)
    for (int64_t n = 0; n < N; ++n)
      for (int64_t o = 0; o < O; ++o) gb[o] += gy[n * O + o];
}

template void linear_forward_cpu_tuned<float>(const float*, const float*, const float*, float*, int64_t, int64_t, int64_t);
template void linear_forward_cpu_tuned<double>(const double*, const double*, const double*, double*, int64_t, int64_t, int64_t);
template void linear_backward_cpu_tuned<float>(const float*, const float*, const float*, float*, float*, float*, int64_t, int64_t, int64_t, bool, bool);
template void linear_backward_cpu_tuned<double>(const double*, const double*, const double*, double*, double*, double*, int64_t, int64_t, int64_t, bool, bool);

}  // namespace ctg::kernels
