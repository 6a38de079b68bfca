// CPU reference for the optimiser updates (see kernels/optim.h).
#include "kernels/optim.h"

#include <cmath>

namespace ctg::kernels {

template <typename T>
void sgd_update_cpu(T* p, const T* g, T* buf, int64_t n, double lr, double momentum, double wd,
                    bool first_step) {
#pragma omp parallel for schedule(static) if (n > 65536)
  for (int64_t i = 0; i < n; ++i) {
    T d = g[i] + T(wd) * p[i];
    if (buf) {
      buf[i] = first_step ? d : T(momentum) * buf[i] + d;
      d = buf[i];
    }
    p[i] -= T(lr) * d;
  }
}

template <typename T>
void adam_update_cpu(T* p, const T* g, T* m, T* v, int64_t n, double lr, double b1, double b2, double eps,
                     double wd, bool decoupled, int64_t step) {
  const double bc1 = 1.0 - std::pow(b1, (double)step), bc2 = 1.0 - std::pow(b2, (double)step);
  const T step_size = T(lr / bc1), inv_sqrt_bc2 = T(1.0 / std::sqrt(bc2));
  const T decay = decoupled ? T(1.0 - lr * wd) : T(1), l2 = decoupled ? T(0) : T(wd);
#pragma omp parallel for schedule(static) if (n > 65536)
  for (int64_t i = 0; i < n; ++i) {
    p[i] *= decay;
    T gi = g[i] + l2 * p[i];
    m[i] = T(b1) * m[i] + T(1 - b1) * gi;
    v[i] = T(b2) * v[i] + T(1 - b2) * gi * gi;
    p[i] -= step_size * m[i] / (std::sqrt(v[i]) * inv_sqrt_bc2 + T(eps));
  }
}

template void sgd_update_cpu<float>(float*, const float*, float*, int64_t, double, double, double, bool);
template void sgd_update_cpu<double>(double*, const double*, double*, int64_t, double, double, double, bool);
template void adam_update_cpu<float>(float*, const float*, float*, float*, int64_t, double, double, double,
                                     double, double, bool, int64_t);
template void adam_update_cpu<double>(double*, const double*, double*, double*, int64_t, double, double, double,
                                      double, double, bool, int64_t);

}  // namespace ctg::kernels
