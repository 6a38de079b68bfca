// Private parts shared by the direct conv2d kernels (conv2d_direct.cpp:
// forward and dx; conv2d_direct_backward.cpp: dW and db). Not an API.
//
// Vectors are GCC/Clang vector extensions of 64 bytes (16 floats, 8 doubles):
// one AVX-512 register where the CPU has them, two or four narrower ones
// otherwise (the code stays correct, only the register budget shrinks).
#pragma once
#include <omp.h>

#include <algorithm>
#include <cstdint>
#include <cstring>
#include <vector>

#include "kernels/conv2d.h"

namespace ctg::kernels::direct {

// The vector the build's code has: zmm (64 bytes, 32 registers) where the
// build targets AVX-512, else ymm (32 bytes, 16 registers: an AVX2 build,
// CMake CTGRAD_MARCH=x86-64-v3). A 64-byte vector in an AVX2 build is split
// into register pairs and the 24 accumulators below spill: CNN2's step went
// from 15 ms to 161 ms in such a build.
#if defined(__AVX512F__)
constexpr int64_t kVecBytes = 64;
constexpr int kVecRegisters = 32;
#else
constexpr int64_t kVecBytes = 32;
constexpr int kVecRegisters = 16;
#endif
template <typename T>
struct VecOf;
template <>
struct VecOf<float> {
  typedef float type __attribute__((vector_size(kVecBytes)));
};
template <>
struct VecOf<double> {
  typedef double type __attribute__((vector_size(kVecBytes)));
};
template <typename T>
using Vec = typename VecOf<T>::type;
template <typename T>
constexpr int64_t kLanes = int64_t(kVecBytes / sizeof(T));

template <typename T>
inline Vec<T> vload(const T* p) {
  Vec<T> v;
  std::memcpy(&v, p, sizeof v);  // unaligned load
  return v;
}
template <typename T>
inline void vstore(T* p, const Vec<T>& v) {
  std::memcpy(p, &v, sizeof v);
}

// Below this many multiply-adds a call runs on the calling thread.
constexpr int64_t kParallelMin = int64_t(1) << 16;

// Output rows per band (one unit of thread work in the forward and dW).
constexpr int64_t kBandRows = 8;

// The phase-split padded input band: for image n, channel c and padded input
// row hp = hp0 + r (r < R), buf[((c·R + r)·S + ph)·L + m] = xpad[n,c,hp, m·S + ph]
// (xpad: x with PH/PW zeros around it, zeros past its end). Output column j,
// kernel column q reads padded column j·S + q = (j + q/S)·S + q%S, i.e.
// buf[.. (q%S)·L + q/S + j]: a contiguous run over j for every q and stride,
// so each product is a unit-stride vector FMA with no border tests; padding
// rows are zero rows, so no row tests either.
struct Band {
  int64_t S, L, nvec, OWp, R, rs;  // stride, entries per phase, vectors per output row, nvec·lanes, rows, SH·S·L
};
template <typename T>
Band band_of(const Conv2dDims& d, int64_t rows = kBandRows) {
  Band g;
  g.S = d.SW;
  g.nvec = ceil_div(d.OW, kLanes<T>);
  g.OWp = g.nvec * kLanes<T>;
  g.L = g.OWp + (d.KW - 1) / d.SW;
  g.R = (rows - 1) * d.SH + d.KH;
  g.rs = d.SH * g.S * g.L;
  return g;
}
// Offset of tap k = (c,p,q) from the start of output row i's band rows.
inline int64_t band_tap(const Conv2dDims& d, const Band& g, int64_t c, int64_t p, int64_t q) {
  return ((c * g.R + p) * g.S + q % g.S) * g.L + q / g.S;
}

// One row: b[ph·L + m] = xr[m·S + ph − PW], zero outside [0, W). The middle,
// where every phase is inside the row, is a complete interleave group for
// S = 2, 3 (the compiler turns it into vector shuffles).
template <typename T>
void fill_row(const T* __restrict__ xr, T* __restrict__ b, const Conv2dDims& d, int64_t S, int64_t L) {
  const int64_t W = d.W, PW = d.PW;
  const int64_t lo = std::min(L, ceil_div(PW, S));
  const int64_t hi = std::clamp<int64_t>(W - S + PW >= 0 ? (W - S + PW) / S + 1 : 0, lo, L);
  auto edge = [&](int64_t m) {
    for (int64_t ph = 0; ph < S; ++ph) {
      const int64_t col = m * S + ph - PW;
      b[ph * L + m] = col >= 0 && col < W ? xr[col] : T(0);
    }
  };
  for (int64_t m = 0; m < lo; ++m) edge(m);
  for (int64_t m = hi; m < L; ++m) edge(m);
  const T* __restrict__ s = xr + (lo * S - PW);
  const int64_t n = hi - lo;
  T* __restrict__ b0 = b + lo;
  if (S == 1) {
    std::memcpy(b0, s, sizeof(T) * (size_t)n);
  } else if (S == 2) {
    T* __restrict__ b1 = b0 + L;
    for (int64_t t = 0; t < n; ++t) b0[t] = s[2 * t], b1[t] = s[2 * t + 1];
  } else if (S == 3) {
    T* __restrict__ b1 = b0 + L;
    T* __restrict__ b2 = b0 + 2 * L;
    for (int64_t t = 0; t < n; ++t) b0[t] = s[3 * t], b1[t] = s[3 * t + 1], b2[t] = s[3 * t + 2];
  } else {
    for (int64_t ph = 0; ph < S; ++ph)
      for (int64_t t = 0; t < n; ++t) b0[ph * L + t] = s[t * S + ph];
  }
}

// The reverse of fill_row, adding: xr[m·S + ph − PW] += b[ph·L + m] for the
// columns inside [0, W); the middle is again a complete interleave group.
template <typename T>
void fold_row(const T* __restrict__ b, T* __restrict__ xr, const Conv2dDims& d, int64_t S, int64_t L) {
  const int64_t W = d.W, PW = d.PW;
  const int64_t lo = std::min(L, ceil_div(PW, S));
  const int64_t hi = std::clamp<int64_t>(W - S + PW >= 0 ? (W - S + PW) / S + 1 : 0, lo, L);
  auto edge = [&](int64_t m) {
    for (int64_t ph = 0; ph < S; ++ph) {
      const int64_t col = m * S + ph - PW;
      if (col >= 0 && col < W) xr[col] += b[ph * L + m];
    }
  };
  for (int64_t m = 0; m < lo; ++m) edge(m);
  for (int64_t m = hi; m < L; ++m) edge(m);
  T* __restrict__ s = xr + (lo * S - PW);
  const int64_t n = hi - lo;
  const T* __restrict__ b0 = b + lo;
  if (S == 1) {
    for (int64_t t = 0; t < n; ++t) s[t] += b0[t];
  } else if (S == 2) {
    const T* __restrict__ b1 = b0 + L;
    for (int64_t t = 0; t < n; ++t) s[2 * t] += b0[t], s[2 * t + 1] += b1[t];
  } else if (S == 3) {
    const T* __restrict__ b1 = b0 + L;
    const T* __restrict__ b2 = b0 + 2 * L;
    for (int64_t t = 0; t < n; ++t) s[3 * t] += b0[t], s[3 * t + 1] += b1[t], s[3 * t + 2] += b2[t];
  } else {
    for (int64_t ph = 0; ph < S; ++ph)
      for (int64_t t = 0; t < n; ++t) s[t * S + ph] += b0[ph * L + t];
  }
}

// The band of image xn for `rows` ≤ the band's output rows starting at
// padded input row hp0 (all C channels; only the (rows−1)·SH + KH rows read).
template <typename T>
void fill_band(const T* xn, T* buf, const Conv2dDims& d, const Band& g, int64_t hp0, int64_t rows) {
  const int64_t R = std::min(g.R, (rows - 1) * d.SH + d.KH);
  for (int64_t c = 0; c < d.C; ++c)
    for (int64_t r = 0; r < R; ++r) {
      T* row = buf + (c * g.R + r) * g.S * g.L;
      const int64_t h = hp0 + r - d.PH;
      if (h < 0 || h >= d.H)
        std::fill(row, row + g.S * g.L, T(0));
      else
        fill_row(xn + (c * d.H + h) * d.W, row, d, g.S, g.L);
    }
}

// The register-blocked inner product both the forward and dx run:
//   res[b][v][:] = Σ_k w[woff[k] + b] · src[v][off[k] .. off[k] + lanes)
// for B output channels (b < B) and V output vectors (v < V), k in fixed order.
// Each loaded input vector feeds B FMAs and each broadcast weight V, with the
// B·V accumulators in registers (B·V ≤ 24 of AVX-512's 32).
template <typename T>
using MicroFn = void (*)(const T* const* src, const int64_t* off, const int64_t* woff, int64_t K, const T* w, T* res);

template <typename T, int B, int V>
void micro(const T* const* src, const int64_t* off, const int64_t* woff, int64_t K, const T* w, T* res) {
  Vec<T> acc[B][V];
  for (int b = 0; b < B; ++b)
    for (int v = 0; v < V; ++v) acc[b][v] = Vec<T>{};
  const T* s[V];
  for (int v = 0; v < V; ++v) s[v] = src[v];
  for (int64_t k = 0; k < K; ++k) {
    const T* wk = w + woff[k];
    const int64_t o = off[k];
    Vec<T> in[V];
    for (int v = 0; v < V; ++v) in[v] = vload(s[v] + o);
    for (int b = 0; b < B; ++b) {
      const Vec<T> wv = Vec<T>{} + wk[b];
      for (int v = 0; v < V; ++v) acc[b][v] += wv * in[v];
    }
  }
  for (int b = 0; b < B; ++b)
    for (int v = 0; v < V; ++v) vstore(res + (b * V + v) * kLanes<T>, acc[b][v]);
}

constexpr int kMaxBlock = 12;  // output channels per pass
constexpr int kMaxVecs = 4;    // output vectors per pass
constexpr int kMaxAcc = kVecRegisters * 3 / 4;  // accumulators per pass (24 of 32, 12 of 16 registers)

template <typename T, int B>
MicroFn<T> micro_v(int v) {
  switch (v) {
    case 1: return micro<T, B, 1>;
    case 2: return micro<T, B, 2>;
    case 3: return micro<T, B, 3>;
    default: return micro<T, B, 4>;
  }
}
template <typename T>
MicroFn<T> micro_pick(int b, int v) {
  switch (b) {
    case 1: return micro_v<T, 1>(v);
    case 2: return micro_v<T, 2>(v);
    case 3: return micro_v<T, 3>(v);
    case 4: return micro_v<T, 4>(v);
    case 5: return micro_v<T, 5>(v);
    case 6: return micro_v<T, 6>(v);
    case 7: return micro_v<T, 7>(v);
    case 8: return micro_v<T, 8>(v);
    case 9: return micro_v<T, 9>(v);
    case 10: return micro_v<T, 10>(v);
    case 11: return micro_v<T, 11>(v);
    default: return micro_v<T, 12>(v);
  }
}

// Channels per pass for n channels: the fewest passes of ≤ kMaxBlock, evened
// out (20 → 2 × 10, 50 → 5 × 10); vectors per pass to fill the accumulators.
struct Blocking {
  int B, V;
  int64_t padded;  // n rounded up to a multiple of B (extra channels: zero weights)
};
inline Blocking blocking_of(int64_t n) {
  const int64_t passes = ceil_div(n, kMaxBlock);
  const int B = (int)ceil_div(n, passes);
  return {B, std::max(1, std::min(kMaxVecs, kMaxAcc / B)), passes * B};
}

// A fixed pairwise tree over a vector's lanes (unrolled, vectorised; trees of
// different vectors are independent, so they overlap).
template <typename T>
inline T lane_sum(const Vec<T>& v) {
  constexpr int64_t VL = kLanes<T>;
  T t[VL];
  std::memcpy(t, &v, sizeof t);
  for (int64_t h = VL / 2; h > 0; h /= 2)
    for (int64_t l = 0; l < h; ++l) t[l] += t[l + h];
  return t[0];
}

// Per-thread scratch that lives across calls (no allocation per band).
template <typename T>
T* thread_scratch(int slot, size_t n) {
  thread_local std::vector<T> s[3];
  if (s[slot].size() < n) s[slot].resize(n);
  return s[slot].data();
}

}  // namespace ctg::kernels::direct
