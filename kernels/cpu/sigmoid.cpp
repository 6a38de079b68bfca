// CPU reference for sigmoid (see kernels/sigmoid.h).
#include "kernels/sigmoid.h"

#include <cmath>

namespace ctg::kernels {

template <typename T>
void sigmoid_forward_cpu(const T* x, T* y, int64_t n) {
  // Two branches so that exp() never overflows: for x < 0 use e^x / (1 + e^x).
#pragma omp parallel for schedule(static) if (n > 65536)
  for (int64_t i = 0; i < n; ++i) {
    if (x[i] >= T(0)) {
      y[i] = T(1) / (T(1) + std::exp(-x[i]));
    } else {
      T e = std::exp(x[i]);
      y[i] = e / (T(1) + e);
    }
  }
}

template <typename T>
void sigmoid_backward_cpu(const T* y, const T* gy, T* gx, int64_t n) {
#pragma omp parallel for simd schedule(static) if (n > 65536)
  for (int64_t i = 0; i < n; ++i) gx[i] += gy[i] * y[i] * (T(1) - y[i]);
}

template void sigmoid_forward_cpu<float>(const float*, float*, int64_t);
template void sigmoid_forward_cpu<double>(const double*, double*, int64_t);
template void sigmoid_backward_cpu<float>(const float*, const float*, float*, int64_t);
template void sigmoid_backward_cpu<double>(const double*, const double*, double*, int64_t);

}  // namespace ctg::kernels
