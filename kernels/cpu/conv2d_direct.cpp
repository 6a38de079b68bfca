// Tuned CPU conv2d, direct variant (issue 16): for convolutions with few
// channels on large images (CNN1/CNN2: O = 5..20, the C = 1 stems on 512²),
// where im2col + GEMM spends its time writing and re-reading the K× larger
// column matrix and the GEMM is too thin to run near peak. The tuned entry
// points (conv2d_*_cpu_tuned) call it where conv2d_use_direct says so; tested
// against the plain loops of kernels/cpu/conv2d.cpp (tests/test_conv2d_direct.cpp,
// tests/test_cpu_reference.cpp). This file: the rule, the forward and dx;
// conv2d_direct_backward.cpp: dW, db and the backward entry point.
//
// Forward, per band of kBandRows output rows of one image: the input rows it
// reads are phase-split once (conv2d_direct.h, Band), then
//   y[n,o,i,j..j+lanes) = b[o] + Σ_{c,p,q} W[o,c,p,q] · run(c, i·SH+p, q)[j..]
// B output channels × V output vectors at a time (micro(): each loaded input
// vector feeds B FMAs, the B·V sums stay in registers for the whole Σ).
//
// dx (gather form, one writer per gx element): padded input column
// wp = m·S + ph is read by (j, q) with j·S + q = wp, i.e. q = ph + S·t and
// j = m − t; padded row hp by (i, p) with i·SH + p = hp, p = ρ + SH·u with
// ρ = hp mod SH, i = ⌊hp/SH⌋ − u. So
//   dxpad[c,hp, m·S+ph] = Σ_{u,o,t} W[o,c,ρ+SH·u, ph+S·t] · gy[o, ⌊hp/SH⌋−u, m−t]
// — again micro(), now over C-blocks, with taps (u,o,t) into zero-bordered
// copies of the gy rows (out-of-range i and j read zeros), and the result
// folded from phase-split rows back into gx.
//
// Every output element is one fixed-order sum, computed by one thread: the
// results do not depend on the schedule or the thread count.
#include "kernels/cpu/conv2d_direct.h"

namespace ctg::kernels {

using namespace direct;

// Where the direct kernel beats im2col + OpenBLAS. tune.direct_max_out < 0
// (the default): the measured rule below; 0: never; > 0: whenever O ≤ it (tests).
//
// Measured (issue 16) on the shared 2-core AMD EPYC (Zen, AVX-512, KVM), load
// 4–5 from other agents, float, 2 threads: one layer's forward + backward (dW,
// and dx except for the stems), median of 13 calls, two interleaved passes,
// im2col + OpenBLAS vs direct, ms (pass 1 / pass 2):
//   C=1  O=5  k5 s3 → 172² N9 (CNN1 conv1)  18.1/19.5 vs 3.9/3.9    4.7×/5.1×
//   C=1  O=10 k5 s3 → 172² N9 (CNN2 conv1)  40.9/22.7 vs 6.0/6.8    6.8×/3.3×
//   C=5  O=5  k5 s2 →  44² N9 (CNN1 conv2)   5.6/8.7  vs 1.6/2.0    3.5×/4.3×
//   C=10 O=20 k5 s2 →  44² N9 (CNN2 conv2)  27.6/25.8 vs 6.4/8.0    4.3×/3.2×
//   C=5  O=5  k5 s2 →  12² N9 (CNN1 conv3)  0.42/0.82 vs 0.21/0.28  2.1×/3.0×
//   C=20 O=20 k5 s2 →  12² N9               2.5/3.8  vs 1.7/2.2     1.5×/1.7×
//   C=20 O=20 k5 s2 →  12² N1               0.43/0.50 vs 0.38/0.70  1.1×/0.7×
//   C=20 O=50 k5 s2 →  12² N9 (CNN2 conv3)  4.0/4.8  vs 4.8/5.9     0.8×/0.8× all direct;
//     split: fwd 0.6–0.8 vs 1.7–3.1, dx 0.65–0.8 vs 0.9–1.5, dW 2.9–4.0 vs 0.9–3.9,
//     so for O > 20 the backward takes dW from im2col (conv2d_direct_backward.cpp):
//     3 runs, load ~3.4: 3.4–3.7 im2col vs 2.3–2.5 hybrid   1.41×–1.47×
//   C=10 O=50 k5 s2 →  12² N9, hybrid            1.8–2.4 vs 1.2–1.7  1.41×–1.45×
//   C=3  O=5  k3 s1 → 11×13 N2 (N·P = 286)  0.023/0.035 vs 0.013/0.020  1.7×/1.8×
//   C=3  O=5  k5 s3 → 4×5 N2 (N·P = 40)     0.017/0.026 vs 0.027/0.039  0.7×/0.7×
//   C=5  O=5  1×1 → 86² N9                  0.52/0.54 vs 0.55/0.56  1.0×/1.0×
//   C=512 O=1 1×1 → 16² N9 (ResNet18's fc)  0.82/0.89 vs 1.1/2.5    0.8×/0.4×
// So: few channels both ways (C ≤ 20, O ≤ 50, with dW from im2col above
// O = 20, where the dW register blocks run many short passes and im2col's dW
// GEMM is no longer thin), a real spatial kernel (1×1 ties: im2col's in-place
// GEMM), and at least 256 output positions in the batch (below, the
// backward's set-up dominates). ResNet18 (O ≥ 64, or its fc with C = 512)
// stays on im2col. In the step (ctgrad bench step, batch 9, 512², 2 threads,
// 20 steps after 3 warm-up, interleaved runs, load 3.4–5) this routes every
// conv of CNN1 and CNN2 to direct; best / median of 5, ms:
//   CNN1  rule off 20.3 / 28.1   O ≤ 20: 7.1 / 9.2
//   CNN2  rule off 58.6 / 63.9   O ≤ 20: 27.3 / 33.5   O ≤ 50 (this rule): 27.6 / 30.1
bool conv2d_use_direct(const Conv2dDims& d, const Conv2dCpuTuning& tune) {
  if (tune.direct_max_out >= 0) return d.O <= tune.direct_max_out;
  return d.O <= 50 && d.C <= 20 && d.KH * d.KW > 1 && d.N * d.OH * d.OW >= 256;
}

template <typename T>
void conv2d_forward_cpu_direct(const T* x, const T* w, const T* b, T* y, const Conv2dDims& d) {
  constexpr int64_t VL = kLanes<T>;
  const Band g = band_of<T>(d);
  const Blocking bk = blocking_of(d.O);
  const int64_t K = d.C * d.KH * d.KW, OP = bk.padded;
  // Weights tap-major, channels contiguous (zeros for o ≥ O): wp[k·OP + o].
  std::vector<T> wp((size_t)(K * OP), T(0));
  std::vector<int64_t> off((size_t)K), woff((size_t)K);
  for (int64_t c = 0, k = 0; c < d.C; ++c)
    for (int64_t p = 0; p < d.KH; ++p)
      for (int64_t q = 0; q < d.KW; ++q, ++k) {
        for (int64_t o = 0; o < d.O; ++o) wp[(size_t)(k * OP + o)] = w[o * K + k];
        off[(size_t)k] = band_tap(d, g, c, p, q);
        woff[(size_t)k] = k * OP;
      }
  const int64_t bands = ceil_div(d.OH, kBandRows), work = d.N * d.O * d.OH * d.OW * K;
#pragma omp parallel for schedule(static) if (work >= kParallelMin)
  for (int64_t it = 0; it < d.N * bands; ++it) {
    const int64_t n = it / bands, i0 = it % bands * kBandRows, rows = std::min(kBandRows, d.OH - i0);
    T* buf = thread_scratch<T>(0, (size_t)(d.C * g.R * g.S * g.L));
    T* res = thread_scratch<T>(1, (size_t)(kMaxBlock * kMaxVecs * VL));
    fill_band(x + n * d.C * d.H * d.W, buf, d, g, i0 * d.SH, rows);
    // The band's output vectors (row, column block), V at a time.
    const int64_t nv = rows * g.nvec;
    for (int64_t v0 = 0; v0 < nv; v0 += bk.V) {
      const int V = (int)std::min<int64_t>(bk.V, nv - v0);
      const T* src[kMaxVecs];
      int64_t vi[kMaxVecs], vj[kMaxVecs];
      for (int v = 0; v < V; ++v) {
        vi[v] = i0 + (v0 + v) / g.nvec;
        vj[v] = (v0 + v) % g.nvec * VL;
        src[v] = buf + (vi[v] - i0) * g.rs + vj[v];
      }
      const MicroFn<T> fn = micro_pick<T>(bk.B, V);
      for (int64_t o0 = 0; o0 < OP; o0 += bk.B) {
        fn(src, off.data(), woff.data(), K, wp.data() + o0, res);
        for (int64_t o = o0; o < std::min(d.O, o0 + bk.B); ++o) {
          const T bias = b ? b[o] : T(0);
          for (int v = 0; v < V; ++v) {
            const T* r = res + ((o - o0) * V + v) * VL;
            T* dst = y + ((n * d.O + o) * d.OH + vi[v]) * d.OW + vj[v];
            if (vj[v] + VL <= d.OW) {
              vstore(dst, vload(r) + bias);
            } else {
              for (int64_t t = 0; t < d.OW - vj[v]; ++t) dst[t] = r[t] + bias;
            }
          }
        }
      }
    }
  }
}

// dx, declared in conv2d_direct_backward.cpp's entry point.
template <typename T>
void conv2d_grad_input_direct(const T* w, const T* gy, T* gx, const Conv2dDims& d) {
  constexpr int64_t VL = kLanes<T>;
  const int64_t S = d.SW, SH = d.SH, O = d.O;
  const Blocking bk = blocking_of(d.C);
  const int64_t CP = bk.padded;
  const int64_t Tpad = (d.KW - 1) / S;                 // most columns a tap reaches back
  const int64_t Mx = (d.W - 1 + d.PW) / S + 1;          // phase entries that can be real columns
  const int64_t Mvec = ceil_div(Mx, VL), MW = Mvec * VL;
  const int64_t Lg = Tpad + std::max(MW, d.OW);         // one zero-bordered gy row
  // Weights wx[((p·KW + q)·O + o)·CP + c] = W[o,c,p,q], zeros for c ≥ C.
  std::vector<T> wx((size_t)(d.KH * d.KW * O * CP), T(0));
  for (int64_t o = 0; o < O; ++o)
    for (int64_t c = 0; c < d.C; ++c)
      for (int64_t p = 0; p < d.KH; ++p)
        for (int64_t q = 0; q < d.KW; ++q)
          wx[(size_t)(((p * d.KW + q) * O + o) * CP + c)] = w[((o * d.C + c) * d.KH + p) * d.KW + q];
  // Taps per (ρ, ph): offsets relative to row ⌊hp/SH⌋'s gy rows, in (u, o, t) order.
  std::vector<std::vector<int64_t>> toff((size_t)(SH * S)), twoff((size_t)(SH * S));
  for (int64_t rho = 0; rho < SH; ++rho)
    for (int64_t ph = 0; ph < S; ++ph) {
      auto& of = toff[(size_t)(rho * S + ph)];
      auto& wf = twoff[(size_t)(rho * S + ph)];
      for (int64_t p = rho, u = 0; p < d.KH; p += SH, ++u)
        for (int64_t o = 0; o < O; ++o)
          for (int64_t q = ph, t = 0; q < d.KW; q += S, ++t) {
            of.push_back((-u * O + o) * Lg + Tpad - t);
            wf.push_back(((p * d.KW + q) * O + o) * CP);
          }
    }
  const int64_t BR = kBandRows, bands = ceil_div(d.H, BR);
  const int64_t work = d.N * d.O * d.OH * d.OW * d.C * d.KH * d.KW;
#pragma omp parallel for schedule(static) if (work >= kParallelMin)
  for (int64_t it = 0; it < d.N * bands; ++it) {
    const int64_t n = it / bands, hA = it % bands * BR, hB = std::min(d.H, hA + BR);
    // gy rows i_lo..i_hi of image n, zero-bordered: G[(i − i_lo)·O + o][Tpad + j].
    const int64_t i_lo = floor_div(hA + d.PH - (d.KH - 1), SH), i_hi = (hB - 1 + d.PH) / SH;
    const int64_t ni = i_hi - i_lo + 1;
    T* G = thread_scratch<T>(0, (size_t)(ni * O * Lg));
    T* rowbuf = thread_scratch<T>(1, (size_t)(CP * BR * S * MW));
    T* res = thread_scratch<T>(2, (size_t)(kMaxBlock * kMaxVecs * VL));
    for (int64_t ii = 0; ii < ni; ++ii)
      for (int64_t o = 0; o < O; ++o) {
        T* gr = G + (ii * O + o) * Lg;
        std::fill(gr, gr + Lg, T(0));
        const int64_t i = i_lo + ii;
        if (i >= 0 && i < d.OH) std::memcpy(gr + Tpad, gy + ((n * O + o) * d.OH + i) * d.OW, sizeof(T) * (size_t)d.OW);
      }
    for (int64_t rho = 0; rho < SH; ++rho)
      for (int64_t ph = 0; ph < S; ++ph) {
        const auto& of = toff[(size_t)(rho * S + ph)];
        const auto& wf = twoff[(size_t)(rho * S + ph)];
        // The band's rows with hp ≡ ρ (mod SH), Mvec vectors each, V at a time.
        const int64_t h1 = hA + (((rho - (hA + d.PH)) % SH) + SH) % SH;
        const int64_t nr = h1 < hB ? (hB - 1 - h1) / SH + 1 : 0, nv = nr * Mvec;
        for (int64_t v0 = 0; v0 < nv; v0 += bk.V) {
          const int V = (int)std::min<int64_t>(bk.V, nv - v0);
          const T* src[kMaxVecs];
          int64_t vh[kMaxVecs], vm[kMaxVecs];
          for (int v = 0; v < V; ++v) {
            vh[v] = h1 + (v0 + v) / Mvec * SH;
            vm[v] = (v0 + v) % Mvec * VL;
            src[v] = G + ((vh[v] + d.PH) / SH - i_lo) * O * Lg + vm[v];
          }
          const MicroFn<T> fn = micro_pick<T>(bk.B, V);
          for (int64_t c0 = 0; c0 < CP; c0 += bk.B) {
            fn(src, of.data(), wf.data(), (int64_t)of.size(), wx.data() + c0, res);
            for (int64_t c = c0; c < std::min(d.C, c0 + bk.B); ++c)
              for (int v = 0; v < V; ++v)
                vstore(rowbuf + ((c * BR + vh[v] - hA) * S + ph) * MW + vm[v], vload(res + ((c - c0) * V + v) * VL));
          }
        }
      }
    // Fold the phase-split rows back: input column ww is padded column ww + PW = m·S + ph.
    for (int64_t c = 0; c < d.C; ++c)
      for (int64_t h = hA; h < hB; ++h)
        fold_row(rowbuf + (c * BR + h - hA) * S * MW, gx + ((n * d.C + c) * d.H + h) * d.W, d, S, MW);
  }
}

#define CTG_CONV2D_DIRECT_INSTANTIATE(T)                                                            \
  template void conv2d_forward_cpu_direct<T>(const T*, const T*, const T*, T*, const Conv2dDims&); \
  template void conv2d_grad_input_direct<T>(const T*, const T*, T*, const Conv2dDims&);
CTG_CONV2D_DIRECT_INSTANTIATE(float)
CTG_CONV2D_DIRECT_INSTANTIATE(double)
#undef CTG_CONV2D_DIRECT_INSTANTIATE

}  // namespace ctg::kernels
