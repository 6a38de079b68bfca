// CPU reference for maxpool2d: the window max of kernels/maxpool2d.h as a
// plain loop, the oracle the tuned forward (kernels/cpu/maxpool2d_tuned.cpp)
// and the CUDA kernel are tested against. Threads split the N·C planes, which
// never share an output (nor, in the backward, an input).
#include "kernels/maxpool2d.h"

#include <algorithm>
#include <limits>

#include "kernels/cpu_impl.h"

namespace ctg::kernels {

template <typename T>
void maxpool2d_forward_cpu_reference(const T* x, T* y, int32_t* argmax, const MaxPool2dGeometry& g) {
#pragma omp parallel for schedule(static) if (g.planes * g.OH * g.OW > 16384)
  for (int64_t plane = 0; plane < g.planes; ++plane) {
    const T* xp = x + plane * g.H * g.W;
    for (int64_t i = 0; i < g.OH; ++i)
      for (int64_t j = 0; j < g.OW; ++j) {
        // Padding is −∞ and never wins, so start from −∞ and skip it. The
        // index starts at the window's first real element, which is then the
        // winner when every real value is −∞ too.
        const int64_t h0 = i * g.stride_h - g.pad_h, w0 = j * g.stride_w - g.pad_w;
        T best = -std::numeric_limits<T>::infinity();
        int64_t arg = (h0 < 0 ? 0 : h0) * g.W + (w0 < 0 ? 0 : w0);
        for (int64_t p = 0; p < g.kernel_h; ++p)
          for (int64_t q = 0; q < g.kernel_w; ++q) {
            const int64_t h = h0 + p, w = w0 + q;
            if (h < 0 || h >= g.H || w < 0 || w >= g.W) continue;
            const T v = xp[h * g.W + w];
            // Strict >: the first maximum in row-major order wins; a NaN
            // always takes over (PyTorch propagates NaNs).
            if (v > best || v != v) best = v, arg = h * g.W + w;
          }
        y[(plane * g.OH + i) * g.OW + j] = best;
        argmax[(plane * g.OH + i) * g.OW + j] = (int32_t)arg;
      }
  }
}

// The backward has one implementation: the scatter is already the plain loop.
template <typename T>
void maxpool2d_backward_cpu(const int32_t* argmax, const T* gy, T* gx, const MaxPool2dGeometry& g,
                            bool gx_accumulate) {
  const int64_t HW = g.H * g.W, OHW = g.OH * g.OW;
  // gx[n,c, argmax[n,c,i,j]] += gy[n,c,i,j]; windows never cross planes, so
  // one thread per plane scatters race-free. A first write zeroes each plane
  // just before its scatter (while it is in cache) instead of the whole
  // tensor in a pass of its own; overlapping windows still add there.
#pragma omp parallel for schedule(static) if (g.planes * OHW > 16384)
  for (int64_t plane = 0; plane < g.planes; ++plane) {
    const int32_t* ap = argmax + plane * OHW;
    const T* gyp = gy + plane * OHW;
    T* gxp = gx + plane * HW;
    if (!gx_accumulate) std::fill(gxp, gxp + HW, T(0));
    for (int64_t o = 0; o < OHW; ++o) gxp[ap[o]] += gyp[o];
  }
}

// The engine's entry point: the variant kernels/cpu_impl.h selects.
template <typename T>
void maxpool2d_forward_cpu(const T* x, T* y, int32_t* argmax, const MaxPool2dGeometry& g) {
  if (cpu_impl() == CpuImpl::reference) return maxpool2d_forward_cpu_reference(x, y, argmax, g);
  maxpool2d_forward_cpu_tuned(x, y, argmax, g);
}

#define CTG_MAXPOOL2D_INSTANTIATE(T)                                                                   \
  template void maxpool2d_forward_cpu_reference<T>(const T*, T*, int32_t*, const MaxPool2dGeometry&); \
  template void maxpool2d_forward_cpu<T>(const T*, T*, int32_t*, const MaxPool2dGeometry&);           \
  template void maxpool2d_backward_cpu<T>(const int32_t*, const T*, T*, const MaxPool2dGeometry&, bool);
CTG_MAXPOOL2D_INSTANTIATE(float)
CTG_MAXPOOL2D_INSTANTIATE(double)
#undef CTG_MAXPOOL2D_INSTANTIATE

}  // namespace ctg::kernels
