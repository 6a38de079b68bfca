// maxpool2d on the GPU — the CUDA twin of kernels/cpu/maxpool2d.cpp (math in
// kernels/maxpool2d.h):
//   y[n,c,i,j]      = max_{0≤p<kh, 0≤q<kw} x[n,c, i·sh + p − ph, j·sw + q − pw]
//   argmax[n,c,i,j] = h·W + w of the winner within its input plane (int32)
//   gx[n,c, argmax[n,c,i,j]] += gy[n,c,i,j]
//
// Forward, v1 a direct port: one thread per output value (grid-stride) walks
// its window in row-major order (p, then q) with the CPU's rule — a strictly
// larger value or a NaN takes over — starting from −∞ with the index of the
// window's first real element. Padding is −∞ and never takes over, so the
// thread simply skips the padded rows and columns. The same rule in the same
// order gives the same value and the same argmax as the CPU, bit for bit.
//
// Backward is a gather, not a scatter: one thread per input value visits the
// output windows that contain it (at most ⌈kh/sh⌉·⌈kw/sw⌉ of them) and adds
// the gy of those whose argmax names it. Why a gather:
// - no atomics, so the result does not depend on timing (deterministic);
// - the windows are visited in increasing output index, the order in which
//   the CPU's scatter loop adds into the same value, and the sum starts from
//   the old gx exactly as the CPU's += does, so the float roundings are the
//   same and the result equals the CPU's bit for bit;
// - the extra reads are of int32 argmax entries (1 per input for k2 s2, up to
//   4 for ResNet's k3 s2), cheap next to an atomic scatter whose collisions
//   (stride < kernel) serialise.
#include <math.h>

#include "kernels/cuda/common.h"
#include "kernels/maxpool2d.h"

namespace ctg::kernels {

CTG_GLOBAL void maxpool2d_forward_kernel(const float* __restrict__ x, float* __restrict__ y,
                                         int32_t* __restrict__ argmax, MaxPool2dGeometry g) {
  // Plane sizes fit int32 (the op checks), so in-plane index math is 32-bit.
  const int32_t H = (int32_t)g.H, W = (int32_t)g.W, OH = (int32_t)g.OH, OW = (int32_t)g.OW;
  const int32_t kh = (int32_t)g.kernel_h, kw = (int32_t)g.kernel_w;
  const int64_t ohw = (int64_t)OH * OW;
  CTG_GRID_STRIDE_LOOP(o, g.planes * ohw) {
    const int64_t plane = o / ohw;
    const int32_t r = (int32_t)(o - plane * ohw), i = r / OW, j = r - i * OW;
    const float* xp = x + plane * g.H * g.W;
    const int32_t h0 = i * (int32_t)g.stride_h - (int32_t)g.pad_h;  // window's top-left, padded coordinates
    const int32_t w0 = j * (int32_t)g.stride_w - (int32_t)g.pad_w;
    // The real part of the window: rows [p_lo, p_hi), columns [q_lo, q_hi).
    const int32_t p_lo = h0 < 0 ? -h0 : 0, p_hi = H - h0 < kh ? H - h0 : kh;
    const int32_t q_lo = w0 < 0 ? -w0 : 0, q_hi = W - w0 < kw ? W - w0 : kw;
    float best = -INFINITY;
    int32_t arg = (h0 + p_lo) * W + (w0 + q_lo);  // the first real element, as on the CPU
    for (int32_t p = p_lo; p < p_hi; ++p)
      for (int32_t q = q_lo; q < q_hi; ++q) {
        const int32_t idx = (h0 + p) * W + (w0 + q);
        const float v = xp[idx];
        if (v > best || v != v) {  // strictly larger (first max wins) or NaN (NaN propagates)
          best = v;
          arg = idx;
        }
      }
    y[o] = best;
    argmax[o] = arg;
  }
}

// First output index i whose window [i·s − pad, i·s − pad + k) contains h, and
// the last one, clipped to [0, n).
CTG_DEVICE int32_t first_window(int32_t h, int32_t k, int32_t s, int32_t pad) {
  const int32_t num = h + pad - k + 1;  // i·s ≥ num
  return num <= 0 ? 0 : (num + s - 1) / s;
}
CTG_DEVICE int32_t last_window(int32_t h, int32_t s, int32_t pad, int32_t n) {
  const int32_t i = (h + pad) / s;  // i·s ≤ h + pad, and h + pad ≥ 0
  return i < n - 1 ? i : n - 1;
}

CTG_GLOBAL void maxpool2d_backward_kernel(const int32_t* __restrict__ argmax, const float* __restrict__ gy,
                                          float* __restrict__ gx, MaxPool2dGeometry g, bool accumulate) {
  const int32_t H = (int32_t)g.H, W = (int32_t)g.W, OH = (int32_t)g.OH, OW = (int32_t)g.OW;
  const int32_t kh = (int32_t)g.kernel_h, kw = (int32_t)g.kernel_w;
  const int32_t sh = (int32_t)g.stride_h, sw = (int32_t)g.stride_w;
  const int32_t ph = (int32_t)g.pad_h, pw = (int32_t)g.pad_w;
  const int64_t hw = (int64_t)H * W, ohw = (int64_t)OH * OW;
  CTG_GRID_STRIDE_LOOP(e, g.planes * hw) {
    const int64_t plane = e / hw;
    const int32_t idx = (int32_t)(e - plane * hw), h = idx / W, w = idx - h * W;
    const int32_t i_lo = first_window(h, kh, sh, ph), i_hi = last_window(h, sh, ph, OH);
    const int32_t j_lo = first_window(w, kw, sw, pw), j_hi = last_window(w, sw, pw, OW);
    const int32_t* ap = argmax + plane * ohw;
    const float* gyp = gy + plane * ohw;
    // Accumulating, acc starts from gx at the first hit, so the additions
    // happen in the CPU's order, and an input that won no window is left
    // untouched. A first write (accumulate false) starts from 0, as the CPU's
    // zeroed plane, never reads gx and stores every element.
    float acc = 0.f;
    bool hit = false;
    for (int32_t i = i_lo; i <= i_hi; ++i)
      for (int32_t j = j_lo; j <= j_hi; ++j) {
        const int32_t o = i * OW + j;
        if (ap[o] != idx) continue;
        if (!hit && accumulate) acc = gx[e];
        hit = true;
        acc += gyp[o];
      }
    if (hit || !accumulate) gx[e] = acc;
  }
}

void maxpool2d_forward_cuda(const float* x, float* y, int32_t* argmax, const MaxPool2dGeometry& g) {
  const int64_t n = g.planes * g.OH * g.OW;
  if (n == 0) return;
  CTG_LAUNCH(maxpool2d_forward_kernel, dim3(cuda_detail::blocks_for(n, 256)), dim3(256), 0, cuda_detail::stream(),
             x, y, argmax, g);
}

void maxpool2d_backward_cuda(const int32_t* argmax, const float* gy, float* gx, const MaxPool2dGeometry& g,
                             bool gx_accumulate) {
  const int64_t n = g.planes * g.H * g.W;
  if (n == 0) return;
  CTG_LAUNCH(maxpool2d_backward_kernel, dim3(cuda_detail::blocks_for(n, 256)), dim3(256), 0, cuda_detail::stream(),
             argmax, gy, gx, g, gx_accumulate);
}

}  // namespace ctg::kernels
