// CPU reference for conv2d: the sums of kernels/conv2d.h written out as loops,
// one multiply-add per term. This is the version to read first, and the oracle
// the tuned kernel (kernels/cpu/conv2d_tuned.cpp) and the CUDA kernels are
// tested against; it is slow (no tiling, no BLAS) but obviously right.
//
// Threads only split work whose outputs never overlap: forward over (n, o)
// (each owns one output plane), dW over o, db over o, dx over n (each image's
// gradient is written by one thread). Within a thread the sums run in the
// order written, so the result does not depend on the thread count.
#include "kernels/conv2d.h"

#include <algorithm>

#include "kernels/cpu/conv2d_observer.h"
#include "kernels/cpu_impl.h"

namespace ctg::kernels {

namespace {
// x[n,c,h,w] with zero padding: positions outside the image read as 0.
template <typename T>
inline T x_at(const T* x, const Conv2dDims& d, int64_t n, int64_t c, int64_t h, int64_t w) {
  if (h < 0 || h >= d.H || w < 0 || w >= d.W) return T(0);
  return x[((n * d.C + c) * d.H + h) * d.W + w];
}
}  // namespace

template <typename T>
void conv2d_forward_cpu_reference(const T* x, const T* w, const T* b, T* y, const Conv2dDims& d) {
  // y[n,o,i,j] = b[o] + Σ_{c,p,q} W[o,c,p,q] · x[n,c, i·SH+p−PH, j·SW+q−PW]
#pragma omp parallel for collapse(2) schedule(static)
  for (int64_t n = 0; n < d.N; ++n)
    for (int64_t o = 0; o < d.O; ++o)
      for (int64_t i = 0; i < d.OH; ++i)
        for (int64_t j = 0; j < d.OW; ++j) {
          T sum = b ? b[o] : T(0);
          for (int64_t c = 0; c < d.C; ++c)
            for (int64_t p = 0; p < d.KH; ++p)
              for (int64_t q = 0; q < d.KW; ++q)
                sum += w[((o * d.C + c) * d.KH + p) * d.KW + q] *
                       x_at(x, d, n, c, i * d.SH + p - d.PH, j * d.SW + q - d.PW);
          y[((n * d.O + o) * d.OH + i) * d.OW + j] = sum;
        }
}

template <typename T>
void conv2d_backward_cpu_reference(const T* x, const T* w, const T* gy, T* gx, T* gw, T* gb,
                                   const Conv2dDims& d, bool gx_accumulate) {
  auto gy_at = [&](int64_t n, int64_t o, int64_t i, int64_t j) {
    return gy[((n * d.O + o) * d.OH + i) * d.OW + j];
  };
  if (gb) {
    // dL/db[o] += Σ_{n,i,j} dL/dy[n,o,i,j]
#pragma omp parallel for schedule(static)
    for (int64_t o = 0; o < d.O; ++o) {
      T sum = 0;
      for (int64_t n = 0; n < d.N; ++n)
        for (int64_t i = 0; i < d.OH; ++i)
          for (int64_t j = 0; j < d.OW; ++j) sum += gy_at(n, o, i, j);
      gb[o] += sum;
    }
  }
  if (gw) {
    // dL/dW[o,c,p,q] += Σ_{n,i,j} dL/dy[n,o,i,j] · x[n,c, i·SH+p−PH, j·SW+q−PW]
#pragma omp parallel for schedule(static)
    for (int64_t o = 0; o < d.O; ++o)
      for (int64_t c = 0; c < d.C; ++c)
        for (int64_t p = 0; p < d.KH; ++p)
          for (int64_t q = 0; q < d.KW; ++q) {
            T sum = 0;
            for (int64_t n = 0; n < d.N; ++n)
              for (int64_t i = 0; i < d.OH; ++i)
                for (int64_t j = 0; j < d.OW; ++j)
                  sum += gy_at(n, o, i, j) * x_at(x, d, n, c, i * d.SH + p - d.PH, j * d.SW + q - d.PW);
            gw[((o * d.C + c) * d.KH + p) * d.KW + q] += sum;
          }
  }
  if (gx) {
    // Every product W[o,c,p,q]·x[n,c,h,w] of the forward sends dL/dy[n,o,i,j]
    // back to x: dL/dx[n,c,h,w] += W[o,c,p,q]·dL/dy[n,o,i,j] with
    // h = i·SH+p−PH, w = j·SW+q−PW (padding positions are not inputs).
    // A first write starts each image's gradient from 0, then adds the same way.
#pragma omp parallel for schedule(static)
    for (int64_t n = 0; n < d.N; ++n) {
      if (!gx_accumulate) std::fill(gx + n * d.C * d.H * d.W, gx + (n + 1) * d.C * d.H * d.W, T(0));
      for (int64_t o = 0; o < d.O; ++o)
        for (int64_t i = 0; i < d.OH; ++i)
          for (int64_t j = 0; j < d.OW; ++j)
            for (int64_t c = 0; c < d.C; ++c)
              for (int64_t p = 0; p < d.KH; ++p)
                for (int64_t q = 0; q < d.KW; ++q) {
                  const int64_t h = i * d.SH + p - d.PH, ww = j * d.SW + q - d.PW;
                  if (h < 0 || h >= d.H || ww < 0 || ww >= d.W) continue;
                  gx[((n * d.C + c) * d.H + h) * d.W + ww] +=
                      w[((o * d.C + c) * d.KH + p) * d.KW + q] * gy_at(n, o, i, j);
                }
    }
  }
}

// The engine's entry points: the variant kernels/cpu_impl.h selects, after
// telling the observer (kernels/cpu/conv2d_observer.h, `ctgrad bench conv`).
template <typename T>
void conv2d_forward_cpu(const T* x, const T* w, const T* b, T* y, const Conv2dDims& d,
                        const Conv2dCpuTuning& tune) {
  if (Conv2dObserver obs = conv2d_observer()) obs(d, false);
  if (cpu_impl() == CpuImpl::reference) return conv2d_forward_cpu_reference(x, w, b, y, d);
  conv2d_forward_cpu_tuned(x, w, b, y, d, tune);
}
template <typename T>
void conv2d_backward_cpu(const T* x, const T* w, const T* gy, T* gx, T* gw, T* gb, const Conv2dDims& d,
                         const Conv2dCpuTuning& tune, bool gx_accumulate) {
  if (Conv2dObserver obs = conv2d_observer()) obs(d, true);
  if (cpu_impl() == CpuImpl::reference)
    return conv2d_backward_cpu_reference(x, w, gy, gx, gw, gb, d, gx_accumulate);
  conv2d_backward_cpu_tuned(x, w, gy, gx, gw, gb, d, tune, gx_accumulate);
}

#define CTG_CONV2D_INSTANTIATE(T)                                                                      \
  template void conv2d_forward_cpu_reference<T>(const T*, const T*, const T*, T*, const Conv2dDims&);  \
  template void conv2d_backward_cpu_reference<T>(const T*, const T*, const T*, T*, T*, T*,             \
                                                 const Conv2dDims&, bool);                             \
  template void conv2d_forward_cpu<T>(const T*, const T*, const T*, T*, const Conv2dDims&,             \
                                      const Conv2dCpuTuning&);                                         \
  template void conv2d_backward_cpu<T>(const T*, const T*, const T*, T*, T*, T*, const Conv2dDims&,    \
                                       const Conv2dCpuTuning&, bool);
CTG_CONV2D_INSTANTIATE(float)
CTG_CONV2D_INSTANTIATE(double)
#undef CTG_CONV2D_INSTANTIATE

}  // namespace ctg::kernels
