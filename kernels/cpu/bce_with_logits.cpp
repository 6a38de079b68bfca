// CPU reference for bce_with_logits (see kernels/bce_with_logits.h).
#include "kernels/bce_with_logits.h"

#include <cmath>

namespace ctg::kernels {

template <typename T>
T bce_with_logits_forward_cpu(const T* z, const T* y, int64_t n) {
  double sum = 0;  // accumulate in double: N is small, exactness is cheap
  for (int64_t i = 0; i < n; ++i) {
    double zi = z[i];
    sum += std::max(zi, 0.0) - zi * (double)y[i] + std::log1p(std::exp(-std::fabs(zi)));
  }
  return T(sum / (double)n);
}

template <typename T>
void bce_with_logits_backward_cpu(const T* z, const T* y, T g, T* gz, int64_t n) {
  for (int64_t i = 0; i < n; ++i) {
    T s = z[i] >= T(0) ? T(1) / (T(1) + std::exp(-z[i])) : std::exp(z[i]) / (T(1) + std::exp(z[i]));
    gz[i] += g * (s - y[i]) / T(n);
  }
}

template float bce_with_logits_forward_cpu<float>(const float*, const float*, int64_t);
template double bce_with_logits_forward_cpu<double>(const double*, const double*, int64_t);
template void bce_with_logits_backward_cpu<float>(const float*, const float*, float, float*, int64_t);
template void bce_with_logits_backward_cpu<double>(const double*, const double*, double, double*, int64_t);

}  // namespace ctg::kernels
