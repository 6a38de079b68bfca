// Tuned CPU conv2d, direct variant: the backward entry point, dW and db (dx is
// in conv2d_direct.cpp, beside the forward whose micro-kernel it shares).
//
// dW[o,c,p,q] += Σ_{n,i,j} gy[n,o,i,j] · run(c, i·SH+p, q)[j]  (conv2d_direct.h, Band)
// as register-blocked dot products: B output channels × KB taps at a time,
// each B·KB sum a vector over j kept in a register for a whole band; per band
// B gy vectors and KB input vectors are loaded for B·KB FMAs. No columns are
// materialised: the band's input rows are phase-split once, as in the forward.
//
// Fixed summation order, whatever the threads: the rows (n, i) are cut into
// kGroups fixed groups; each group's sums (per band: vector lanes, then bands
// in order) are its own partial, and the partials are added in group order.
#include "kernels/cpu/conv2d_direct.h"

namespace ctg::kernels {

using namespace direct;

template <typename T>
void conv2d_grad_input_direct(const T* w, const T* gy, T* gx, const Conv2dDims& d);

namespace {

constexpr int64_t kGroups = 8;
constexpr int64_t kDirectDwMaxOut = 20;  // more output channels: dW by im2col (see below)  // fixed partials of dW (balanced on 1, 2, 4, 8 threads)

// part[b·ldp + kb] += Σ_{r < rows, jv < nvec} lanes of g[b][r, jv] · x[r·rs + off[kb] + jv·lanes]:
// the B·KB vector sums stay in registers for the whole band, then each is
// reduced over its lanes (lane_sum) and added into the group's partial.
template <typename T, int B, int KB>
void dw_micro(const T* g, int64_t ldg, int64_t ldr, const T* x, int64_t rs, const int64_t* off, int64_t rows,
              int64_t nvec, T* part, int64_t ldp) {
  constexpr int64_t VL = kLanes<T>;
  Vec<T> acc[B][KB];
  for (int b = 0; b < B; ++b)
    for (int k = 0; k < KB; ++k) acc[b][k] = Vec<T>{};
  int64_t o[KB];
  for (int k = 0; k < KB; ++k) o[k] = off[k];
  for (int64_t r = 0; r < rows; ++r)
    for (int64_t jv = 0; jv < nvec; ++jv) {
      const T* gp = g + r * ldr + jv * VL;
      const T* xp = x + r * rs + jv * VL;
      Vec<T> gv[B];
      for (int b = 0; b < B; ++b) gv[b] = vload(gp + b * ldg);
      for (int k = 0; k < KB; ++k) {
        const Vec<T> xv = vload(xp + o[k]);
        for (int b = 0; b < B; ++b) acc[b][k] += gv[b] * xv;
      }
    }
  for (int b = 0; b < B; ++b)
    for (int k = 0; k < KB; ++k) part[b * ldp + k] += lane_sum<T>(acc[b][k]);
}

template <typename T>
using DwFn = void (*)(const T*, int64_t, int64_t, const T*, int64_t, const int64_t*, int64_t, int64_t, T*, int64_t);

// Channels per pass ≤ 6, taps per pass so that B·KB ≤ 25 accumulators.
struct DwBlocking {
  int B, KB;
  int64_t OP, KP;  // O and K rounded up to B and KB
};
DwBlocking dw_blocking_of(int64_t O, int64_t K) {
  const int64_t passes = ceil_div(O, 6);
  const int B = (int)ceil_div(O, passes);
  const int KB = B <= 3 ? 8 : B == 4 ? 6 : B == 5 ? 5 : 4;
  return {B, KB, passes * B, ceil_div(K, KB) * KB};
}
template <typename T>
DwFn<T> dw_pick(int b) {
  switch (b) {
    case 1: return dw_micro<T, 1, 8>;
    case 2: return dw_micro<T, 2, 8>;
    case 3: return dw_micro<T, 3, 8>;
    case 4: return dw_micro<T, 4, 6>;
    case 5: return dw_micro<T, 5, 5>;
    default: return dw_micro<T, 6, 4>;
  }
}

// Output rows per dW band: as many as keep the phase-split band within
// kBandBudget elements (≥ kBandRows), so the per-band lane sums are few
// against the band's FMAs; a function of the shape only.
constexpr int64_t kBandBudget = int64_t(1) << 16;

template <typename T>
void grad_weight_direct(const T* x, const T* gy, T* gw, const Conv2dDims& d) {
  const Band g1 = band_of<T>(d, 1);
  const int64_t per_row = d.C * d.SH * g1.S * g1.L;
  const int64_t BR = std::max(kBandRows, std::min(d.OH, (kBandBudget / per_row)));
  const Band g = band_of<T>(d, BR);
  const int64_t K = d.C * d.KH * d.KW;
  const DwBlocking bk = dw_blocking_of(d.O, K);
  // Tap offsets into the band, padded with copies of the last (results dropped).
  std::vector<int64_t> off((size_t)bk.KP);
  for (int64_t c = 0, k = 0; c < d.C; ++c)
    for (int64_t p = 0; p < d.KH; ++p)
      for (int64_t q = 0; q < d.KW; ++q, ++k) off[(size_t)k] = band_tap(d, g, c, p, q);
  for (int64_t k = K; k < bk.KP; ++k) off[(size_t)k] = off[(size_t)(K - 1)];
  const int64_t F = d.N * d.OH, groups = std::min(kGroups, F), NP = bk.OP * bk.KP;
  std::vector<T> gpart((size_t)(groups * NP), T(0));  // [group][OP][KP]
  const DwFn<T> fn = dw_pick<T>(bk.B);
  const int64_t work = d.N * d.O * d.OH * d.OW * K;
#pragma omp parallel for schedule(static) if (work >= kParallelMin)
  for (int64_t gi = 0; gi < groups; ++gi) {
    T* buf = thread_scratch<T>(0, (size_t)(d.C * g.R * g.S * g.L));
    T* gb = thread_scratch<T>(1, (size_t)(bk.OP * BR * g.OWp));
    T* part = gpart.data() + gi * NP;
    // Rows [f0, f1) of the flattened (n, i), in bands that stay inside one image.
    const int64_t f1 = F * (gi + 1) / groups;
    for (int64_t f = F * gi / groups; f < f1;) {
      const int64_t n = f / d.OH, i0 = f % d.OH, rows = std::min({BR, d.OH - i0, f1 - f});
      fill_band(x + n * d.C * d.H * d.W, buf, d, g, i0 * d.SH, rows);
      // gy rows of the band, zero past OW and for o ≥ O: gb[(o·BR + r)·OWp + j].
      for (int64_t o = 0; o < bk.OP; ++o)
        for (int64_t r = 0; r < rows; ++r) {
          T* dst = gb + (o * BR + r) * g.OWp;
          std::fill(dst, dst + g.OWp, T(0));
          if (o < d.O) std::memcpy(dst, gy + ((n * d.O + o) * d.OH + i0 + r) * d.OW, sizeof(T) * (size_t)d.OW);
        }
      for (int64_t o0 = 0; o0 < bk.OP; o0 += bk.B)
        for (int64_t k0 = 0; k0 < bk.KP; k0 += bk.KB)
          fn(gb + o0 * BR * g.OWp, BR * g.OWp, g.OWp, buf, g.rs, off.data() + k0, rows, g.nvec,
             part + o0 * bk.KP + k0, bk.KP);
      f += rows;
    }
  }
  for (int64_t gi = 0; gi < groups; ++gi)
    for (int64_t o = 0; o < d.O; ++o)
      for (int64_t k = 0; k < K; ++k) gw[o * K + k] += gpart[(size_t)(gi * NP + o * bk.KP + k)];
}

}  // namespace

template <typename T>
void conv2d_backward_cpu_direct(const T* x, const T* w, const T* gy, T* gx, T* gw, T* gb, const Conv2dDims& d,
                                bool gx_accumulate) {
  const int64_t P = d.OH * d.OW;
  if (gb) {
    // dL/db[o] = Σ_{n,i,j} gy[n,o,i,j], one thread per channel, images in order.
#pragma omp parallel for schedule(static) if (d.N * d.O * P >= kParallelMin)
    for (int64_t o = 0; o < d.O; ++o) {
      T s = 0;
      for (int64_t n = 0; n < d.N; ++n) {
        const T* row = gy + (n * d.O + o) * P;
        T sn = 0;
#pragma omp simd reduction(+ : sn)
        for (int64_t j = 0; j < P; ++j) sn += row[j];
        s += sn;
      }
      gb[o] += s;
    }
  }
  if (gw) {
    if (d.O > kDirectDwMaxOut) {
      // Many output channels: dW = gy·colsᵀ is a GEMM wide enough for
      // OpenBLAS, and the register blocks here run many short passes with a
      // lane sum each (measured, C=20 O=50 → 12² N9: 0.9–1.5 ms im2col vs
      // 2.9–4.0 direct), so dW alone goes through the im2col kernel.
      Conv2dCpuTuning im2col;
      im2col.direct_max_out = 0;
      conv2d_backward_cpu_tuned<T>(x, w, gy, nullptr, gw, nullptr, d, im2col);
    } else {
      grad_weight_direct(x, gy, gw, d);
    }
  }
  if (!gx) return;
  // conv2d_grad_input_direct folds (adds) its phase-split rows into gx, so a
  // first write starts from zeros: one pass over gx, per image in parallel.
  if (!gx_accumulate) {
    const int64_t img = d.C * d.H * d.W;
#pragma omp parallel for schedule(static) if (d.N * img >= kParallelMin)
    for (int64_t n = 0; n < d.N; ++n) std::fill(gx + n * img, gx + (n + 1) * img, T(0));
  }
  conv2d_grad_input_direct(w, gy, gx, d);
}

#define CTG_CONV2D_DIRECT_BACKWARD_INSTANTIATE(T) \
  template void conv2d_backward_cpu_direct<T>(const T*, const T*, const T*, T*, T*, T*, const Conv2dDims&, bool);
CTG_CONV2D_DIRECT_BACKWARD_INSTANTIATE(float)
CTG_CONV2D_DIRECT_BACKWARD_INSTANTIATE(double)
#undef CTG_CONV2D_DIRECT_BACKWARD_INSTANTIATE

}  // namespace ctg::kernels
