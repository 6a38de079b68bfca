// CPU reference for global_maxpool (see kernels/global_maxpool.h).
#include "kernels/global_maxpool.h"

namespace ctg::kernels {

template <typename T>
void global_maxpool_forward_cpu(const T* x, T* y, int32_t* argmax, int64_t planes, int64_t HW) {
#pragma omp parallel for schedule(static) if (planes * HW > 65536)
  for (int64_t plane = 0; plane < planes; ++plane) {
    const T* xp = x + plane * HW;
    // Row-major scan with a strict >: the first maximum wins; a NaN always
    // takes over, so the result is NaN whenever the plane holds one.
    T best = xp[0];
    int64_t arg = 0;
    for (int64_t i = 1; i < HW; ++i)
      if (xp[i] > best || xp[i] != xp[i]) best = xp[i], arg = i;
    y[plane] = best;
    argmax[plane] = (int32_t)arg;
  }
}

template <typename T>
void global_maxpool_backward_cpu(const int32_t* argmax, const T* gy, T* gx, int64_t planes, int64_t HW) {
  // One winner per plane: the scatters never collide, so the loop is parallel.
#pragma omp parallel for schedule(static) if (planes > 4096)
  for (int64_t plane = 0; plane < planes; ++plane) gx[plane * HW + argmax[plane]] += gy[plane];
}

template void global_maxpool_forward_cpu<float>(const float*, float*, int32_t*, int64_t, int64_t);
template void global_maxpool_forward_cpu<double>(const double*, double*, int32_t*, int64_t, int64_t);
template void global_maxpool_backward_cpu<float>(const int32_t*, const float*, float*, int64_t, int64_t);
template void global_maxpool_backward_cpu<double>(const int32_t*, const double*, double*, int64_t, int64_t);

}  // namespace ctg::kernels
