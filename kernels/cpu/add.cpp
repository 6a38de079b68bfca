// CPU reference for add (see kernels/add.h).
#include "kernels/add.h"

namespace ctg::kernels {

template <typename T>
void add_forward_cpu(const T* a, const T* b, T* y, int64_t n) {
#pragma omp parallel for simd schedule(static) if (n > 65536)
  for (int64_t i = 0; i < n; ++i) y[i] = a[i] + b[i];
}

template <typename T>
void add_backward_cpu(const T* gy, T* g, int64_t n) {
#pragma omp parallel for simd schedule(static) if (n > 65536)
  for (int64_t i = 0; i < n; ++i) g[i] += gy[i];
}

template void add_forward_cpu<float>(const float*, const float*, float*, int64_t);
template void add_forward_cpu<double>(const double*, const double*, double*, int64_t);
template void add_backward_cpu<float>(const float*, float*, int64_t);
template void add_backward_cpu<double>(const double*, double*, int64_t);

}  // namespace ctg::kernels
