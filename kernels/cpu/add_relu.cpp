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

template <typename T>
void add_relu_backward_cpu(const T* y, const T* gy, T* ga, T* gb, int64_t n, bool acc_a, bool acc_b) {
  // ga and gb may be one buffer (add_relu(x, x)): ga's store or add comes
  // first, then gb adds (the glue asks for gb after ga, so acc_b is true).
#pragma omp parallel for simd schedule(static) if (n > 65536)
  for (int64_t i = 0; i < n; ++i) {
    const T g = y[i] > T(0) ? gy[i] : T(0);
    if (ga) ga[i] = acc_a ? ga[i] + g : g;
    if (gb) gb[i] = acc_b ? gb[i] + g : g;
  }
}

template void add_relu_forward_cpu<float>(const float*, const float*, float*, int64_t);
template void add_relu_forward_cpu<double>(const double*, const double*, double*, int64_t);
template void add_relu_backward_cpu<float>(const float*, const float*, float*, float*, int64_t, bool, bool);
template void add_relu_backward_cpu<double>(const double*, const double*, double*, double*, int64_t, bool, bool);

}  // namespace ctg::kernels
