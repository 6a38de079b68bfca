// CPU reference for dropout (see kernels/dropout.h).
#include "kernels/dropout.h"

namespace ctg::kernels {

template <typename T>
void dropout_forward_cpu(const T* x, T* y, int64_t n, double p, uint64_t seed) {
  const T scale = T(1.0 / (1.0 - p));
#pragma omp parallel for schedule(static) if (n > 65536)
  for (int64_t i = 0; i < n; ++i) y[i] = dropout_uniform(seed, (uint64_t)i) >= p ? x[i] * scale : T(0);
}

template <typename T>
void dropout_backward_cpu(const T* gy, T* gx, int64_t n, double p, uint64_t seed) {
  const T scale = T(1.0 / (1.0 - p));
#pragma omp parallel for schedule(static) if (n > 65536)
  for (int64_t i = 0; i < n; ++i)
    if (dropout_uniform(seed, (uint64_t)i) >= p) gx[i] += gy[i] * scale;
}

template void dropout_forward_cpu<float>(const float*, float*, int64_t, double, uint64_t);
template void dropout_forward_cpu<double>(const double*, double*, int64_t, double, uint64_t);
template void dropout_backward_cpu<float>(const float*, float*, int64_t, double, uint64_t);
template void dropout_backward_cpu<double>(const double*, double*, int64_t, double, uint64_t);

}  // namespace ctg::kernels
