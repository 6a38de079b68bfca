// Tuned CPU conv2d, direct variant (issue 16): for convolutions with few
// output channels (CNN1/CNN2: O = 5..20, C = 1 stems on 512² images), where
// im2col + GEMM spends its time writing and re-reading the K× larger column
// matrix and the GEMM is too thin to run near peak. Selected inside the tuned
// path (conv2d_*_cpu_tuned) when O ≤ Conv2dCpuTuning::direct_max_out (default
// off: not yet a clear win per training step, see kernels/conv2d.h); tested
// against the plain loops of kernels/cpu/conv2d.cpp (tests/test_cpu_reference.cpp).
//
// The trick is the padded, phase-split input row (as in maxpool2d_tuned.cpp):
// for input row h of channel c, buf[ph·L + m] = xpad[h, m·SW + ph] (xpad: x with
// PW zero columns each side). Output column j, kernel column q reads padded
// column j·SW + q = (j + q/SW)·SW + q%SW, i.e. buf[(q%SW)·L + q/SW + j]: for a
// fixed q one contiguous run over j, so every product is a unit-stride vector
// FMA over an output row, whatever the stride, with no border tests.
//   forward   y[n,o,i,:] = b[o] + Σ_{c,p,q} W[o,c,p,q] · run(c, i·SH+p−PH, q)
//   dW        dW[o,c,p,q] += Σ_{n,i} ⟨gy[n,o,i,:], run(c, i·SH+p−PH, q)⟩
//   dx        gather per input row h: every (p, i) with i·SH + p − PH = h adds
//             Σ_{o,q} W[o,c,p,q]·gy[n,o,i,:] into a phase-split row, folded back.
// Threads split output rows (forward), input rows (dx: each row has one
// writer) and output rows with per-thread dW/db partials added in thread
// order (dW, db), so results do not depend on scheduling (only, for dW and db,
// on the thread count, as with OpenBLAS).
#include <omp.h>

#include <algorithm>
#include <vector>

#include "kernels/conv2d.h"

namespace ctg::kernels {

bool conv2d_use_direct(const Conv2dDims& d, const Conv2dCpuTuning& tune) { return d.O <= tune.direct_max_out; }

namespace {

// Output rows are computed kBlock columns at a time, rounded up (the extra
// columns are computed into scratch and dropped): a scalar remainder loop
// after the vector loop would cost as much as the whole vector part at
// OW = 172. A whole number of vectors of float or double.
constexpr int64_t kBlock = 16;

// Phase-split padded rows: L entries per phase; OWp = OW rounded up to kBlock.
struct Rows {
  int64_t S, L, OWp;  // column stride, entries per phase, padded output row
};
inline Rows rows_of(const Conv2dDims& d) {
  const int64_t OWp = (d.OW + kBlock - 1) / kBlock * kBlock;
  return {d.SW, OWp + (d.KW - 1) / d.SW, OWp};
}

// buf[ph·L + m] = xpad[m·S + ph] for the input row xr (W values, PW zeros each
// side, and zeros past the end): the real columns of each phase are one
// strided copy between two zero runs.
template <typename T>
void fill_row(const T* __restrict__ xr, T* __restrict__ buf, const Conv2dDims& d, const Rows& r) {
  for (int64_t ph = 0; ph < r.S; ++ph) {
    T* __restrict__ b = buf + ph * r.L;
    // m with 0 ≤ m·S + ph − PW < W: [lo, hi).
    const int64_t lo = std::min(r.L, std::max<int64_t>(0, (d.PW - ph + r.S - 1) / r.S));
    const int64_t hi = std::max(lo, std::min(r.L, d.W - 1 + d.PW - ph >= 0 ? (d.W - 1 + d.PW - ph) / r.S + 1 : 0));
    std::fill(b, b + lo, T(0));
    const T* src = xr + (lo * r.S + ph - d.PW);
    if (r.S == 1) {
      std::copy(src, src + (hi - lo), b + lo);
    } else {
      for (int64_t m = lo; m < hi; ++m) b[m] = src[(m - lo) * r.S];
    }
    std::fill(b + hi, b + r.L, T(0));
  }
}

// Below this many multiply-adds a call runs on the calling thread.
constexpr int64_t kParallelMin = int64_t(1) << 16;

}  // namespace

template <typename T>
void conv2d_forward_cpu_direct(const T* x, const T* w, const T* b, T* y, const Conv2dDims& d) {
  const Rows r = rows_of(d);
  const int64_t OW = d.OW, OWp = r.OWp, KK = d.KH * d.KW, work = d.N * d.O * d.OH * OW * d.C * KK;
#pragma omp parallel if (work >= kParallelMin)
  {
    std::vector<T> buf((size_t)(r.S * r.L)), acc((size_t)(d.O * OWp));
#pragma omp for collapse(2) schedule(static)
    for (int64_t n = 0; n < d.N; ++n)
      for (int64_t i = 0; i < d.OH; ++i) {
        for (int64_t o = 0; o < d.O; ++o) std::fill(acc.begin() + o * OWp, acc.begin() + (o + 1) * OWp, b ? b[o] : T(0));
        for (int64_t c = 0; c < d.C; ++c)
          for (int64_t p = 0; p < d.KH; ++p) {
            const int64_t h = i * d.SH + p - d.PH;
            if (h < 0 || h >= d.H) continue;  // a padding row adds zeros
            fill_row(x + ((n * d.C + c) * d.H + h) * d.W, buf.data(), d, r);
            for (int64_t o = 0; o < d.O; ++o) {
              T* __restrict__ a = acc.data() + o * OWp;
              const T* wr = w + ((o * d.C + c) * d.KH + p) * d.KW;
              for (int64_t q = 0; q < d.KW; ++q) {
                const T wv = wr[q];
                const T* __restrict__ src = buf.data() + (q % r.S) * r.L + q / r.S;
#pragma omp simd
                for (int64_t j = 0; j < OWp; ++j) a[j] += wv * src[j];
              }
            }
          }
        for (int64_t o = 0; o < d.O; ++o)
          std::copy(acc.begin() + o * OWp, acc.begin() + o * OWp + OW, y + ((n * d.O + o) * d.OH + i) * OW);
      }
  }
}

template <typename T>
void conv2d_backward_cpu_direct(const T* x, const T* w, const T* gy, T* gx, T* gw, T* gb, const Conv2dDims& d) {
  const Rows r = rows_of(d);
  const int64_t OW = d.OW, OWp = r.OWp, KK = d.KH * d.KW, nw = d.O * d.C * KK;
  const int64_t work = d.N * d.O * d.OH * OW * d.C * KK;
  // The O rows gy[n,:,i,:] copied into g [O, OWp], zero past OW.
  auto load_gy = [&](int64_t n, int64_t i, T* g) {
    for (int64_t o = 0; o < d.O; ++o) {
      const T* src = gy + ((n * d.O + o) * d.OH + i) * OW;
      std::copy(src, src + OW, g + o * OWp);
      std::fill(g + o * OWp + OW, g + (o + 1) * OWp, T(0));
    }
  };
  if (gw || gb) {
    // Per-thread partials [dW | db], added in thread order at the end.
    std::vector<T> part;
    int nt = 1;
#pragma omp parallel if (work >= kParallelMin)
    {
#pragma omp single
      {
        nt = omp_get_num_threads();
        part.assign((size_t)(nt * (nw + d.O)), T(0));
      }
      T* mine = part.data() + (size_t)omp_get_thread_num() * (size_t)(nw + d.O);
      std::vector<T> buf((size_t)(r.S * r.L)), grows((size_t)(d.O * OWp));
#pragma omp for collapse(2) schedule(static)
      for (int64_t n = 0; n < d.N; ++n)
        for (int64_t i = 0; i < d.OH; ++i) {
          load_gy(n, i, grows.data());
          if (gb)
            for (int64_t o = 0; o < d.O; ++o) {
              const T* __restrict__ g = grows.data() + o * OWp;
              T s = 0;
#pragma omp simd reduction(+ : s)
              for (int64_t j = 0; j < OWp; ++j) s += g[j];
              mine[nw + o] += s;
            }
          if (!gw) continue;
          for (int64_t c = 0; c < d.C; ++c)
            for (int64_t p = 0; p < d.KH; ++p) {
              const int64_t h = i * d.SH + p - d.PH;
              if (h < 0 || h >= d.H) continue;
              fill_row(x + ((n * d.C + c) * d.H + h) * d.W, buf.data(), d, r);
              for (int64_t o = 0; o < d.O; ++o) {
                const T* __restrict__ g = grows.data() + o * OWp;
                T* pw = mine + ((o * d.C + c) * d.KH + p) * d.KW;
                for (int64_t q = 0; q < d.KW; ++q) {
                  const T* __restrict__ src = buf.data() + (q % r.S) * r.L + q / r.S;
                  T s = 0;
#pragma omp simd reduction(+ : s)
                  for (int64_t j = 0; j < OWp; ++j) s += g[j] * src[j];
                  pw[q] += s;
                }
              }
            }
        }
    }
    for (int t = 0; t < nt; ++t) {
      const T* pt = part.data() + (size_t)t * (size_t)(nw + d.O);
      if (gw)
        for (int64_t k = 0; k < nw; ++k) gw[k] += pt[k];
      if (gb)
        for (int64_t o = 0; o < d.O; ++o) gb[o] += pt[nw + o];
    }
  }
  if (!gx) return;
#pragma omp parallel if (work >= kParallelMin)
  {
    std::vector<T> buf((size_t)(r.S * r.L)), grows((size_t)(d.O * OWp));
    int64_t loaded_n = -1, loaded_i = -1;  // the gy rows in grows
#pragma omp for collapse(3) schedule(static)
    for (int64_t n = 0; n < d.N; ++n)
      for (int64_t c = 0; c < d.C; ++c)
        for (int64_t h = 0; h < d.H; ++h) {
          std::fill(buf.begin(), buf.end(), T(0));
          bool any = false;
          for (int64_t p = 0; p < d.KH; ++p) {
            const int64_t s = h + d.PH - p;  // = i·SH for the output row i that reads row h at p
            if (s < 0 || s % d.SH != 0 || s / d.SH >= d.OH) continue;
            const int64_t i = s / d.SH;
            any = true;
            if (n != loaded_n || i != loaded_i) load_gy(n, i, grows.data()), loaded_n = n, loaded_i = i;
            for (int64_t q = 0; q < d.KW; ++q) {
              T* __restrict__ dst = buf.data() + (q % r.S) * r.L + q / r.S;
              for (int64_t o = 0; o < d.O; ++o) {
                const T wv = w[((o * d.C + c) * d.KH + p) * d.KW + q];
                const T* __restrict__ g = grows.data() + o * OWp;
#pragma omp simd
                for (int64_t j = 0; j < OWp; ++j) dst[j] += wv * g[j];
              }
            }
          }
          if (!any) continue;
          // Fold: input column ww is padded column ww + PW = m·S + ph.
          T* gr = gx + ((n * d.C + c) * d.H + h) * d.W;
          for (int64_t ww = 0; ww < d.W; ++ww) {
            const int64_t cp = ww + d.PW, m = cp / r.S;
            if (m < r.L) gr[ww] += buf[(size_t)((cp % r.S) * r.L + m)];
          }
        }
  }
}

#define CTG_CONV2D_DIRECT_INSTANTIATE(T)                                                            \
  template void conv2d_forward_cpu_direct<T>(const T*, const T*, const T*, T*, const Conv2dDims&); \
  template void conv2d_backward_cpu_direct<T>(const T*, const T*, const T*, T*, T*, T*, const Conv2dDims&);
CTG_CONV2D_DIRECT_INSTANTIATE(float)
CTG_CONV2D_DIRECT_INSTANTIATE(double)
#undef CTG_CONV2D_DIRECT_INSTANTIATE

}  // namespace ctg::kernels
