// CPU reference for relu (see kernels/relu.h).
#include "kernels/relu.h"

namespace ctg::kernels {

template <typename T>
void relu_forward_cpu(const T* x, T* y, int64_t n) {
#pragma omp parallel for simd schedule(static) if (n > 65536)
  for (int64_t i = 0; i < n; ++i) y[i] = x[i] <= T(0) ? T(0) : x[i];  // NaN stays NaN, as torch.relu
}

template <typename T>
void relu_backward_cpu(const T* y, const T* gy, T* gx, int64_t n, bool accumulate) {
  if (accumulate) {
#pragma omp parallel for simd schedule(static) if (n > 65536)
    for (int64_t i = 0; i < n; ++i) gx[i] += y[i] > T(0) ? gy[i] : T(0);
  } else {
#pragma omp parallel for simd schedule(static) if (n > 65536)
    for (int64_t i = 0; i < n; ++i) gx[i] = y[i] > T(0) ? gy[i] : T(0);
  }
}

template void relu_forward_cpu<float>(const float*, float*, int64_t);
template void relu_forward_cpu<double>(const double*, double*, int64_t);
template void relu_backward_cpu<float>(const float*, const float*, float*, int64_t, bool);
template void relu_backward_cpu<double>(const double*, const double*, double*, int64_t, bool);

}  // namespace ctg::kernels
