// CPU reference for add_relu (see kernels/add_relu.h).
#include "kernels/add_relu.h"

namespace ctg::kernels {

template <typename T>
void add_relu_forward_cpu(const T* a, const T* b, T* y, int64_t n) {
#pragma omp parallel for simd schedule(static) if (n > 65536)
  for (int64_t i = 0; i < n; ++i) {
    const T v = a[i] + b[i];
    y[i] = v <= T(0) ? T(0) : v;  // NaN stays NaN, as torch.relu
  }
}

namespace {
// One pass over the elements for each (ga?, acc_a, gb?, acc_b): the choices
// are template arguments, so every variant is a branch-free vector loop (a
// run-time test inside the loop kept GCC from vectorising it: 8x slower).
template <typename T, bool HasA, bool AccA, bool HasB, bool AccB>
void add_relu_backward_loop(const T* y, const T* gy, T* ga, T* gb, int64_t n) {
#pragma omp parallel for simd schedule(static) if (n > 65536)
  for (int64_t i = 0; i < n; ++i) {
    const T g = y[i] > T(0) ? gy[i] : T(0);
    if (HasA) ga[i] = AccA ? ga[i] + g : g;
    if (HasB) gb[i] = AccB ? gb[i] + g : g;
  }
}
template <typename T, bool HasA, bool AccA>
void add_relu_backward_b(const T* y, const T* gy, T* ga, T* gb, int64_t n, bool acc_b) {
  if (!gb) return add_relu_backward_loop<T, HasA, AccA, false, false>(y, gy, ga, gb, n);
  if (acc_b) return add_relu_backward_loop<T, HasA, AccA, true, true>(y, gy, ga, gb, n);
  add_relu_backward_loop<T, HasA, AccA, true, false>(y, gy, ga, gb, n);
}
}  // namespace

template <typename T>
void add_relu_backward_cpu(const T* y, const T* gy, T* ga, T* gb, int64_t n, bool acc_a, bool acc_b) {
  // ga and gb may be one buffer (add_relu(x, x)): per element ga's store or
  // add comes first, then gb's (the glue asks for gb after ga, so acc_b is true).
  if (!ga) return add_relu_backward_b<T, false, false>(y, gy, ga, gb, n, acc_b);
  if (acc_a) return add_relu_backward_b<T, true, true>(y, gy, ga, gb, n, acc_b);
  add_relu_backward_b<T, true, false>(y, gy, ga, gb, n, acc_b);
}

template void add_relu_forward_cpu<float>(const float*, const float*, float*, int64_t);
template void add_relu_forward_cpu<double>(const double*, const double*, double*, int64_t);
template void add_relu_backward_cpu<float>(const float*, const float*, float*, float*, int64_t, bool, bool);
template void add_relu_backward_cpu<double>(const double*, const double*, double*, double*, int64_t, bool, bool);

}  // namespace ctg::kernels
