// Private to the Winograd convolution (kernels/cpu/conv2d_winograd.cpp: the
// forward; conv2d_winograd_backward.cpp: the weight gradient): the vector
// helpers, the per-thread scratch and the input transform both use.
#pragma once
#include <algorithm>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <string>
#include <utility>

#include "base/error.h"
#include "base/thread_scratch.h"
#include "kernels/conv2d.h"
#include "kernels/cpu/winograd.h"

namespace ctg::kernels::winograd_detail {

typedef float V8 __attribute__((vector_size(32)));  // eight tiles (or filters), one per lane
constexpr int kW = 8;

inline V8 load8(const float* p) {
  V8 v;
  std::memcpy(&v, p, sizeof v);
  return v;
}
inline void store8(float* p, V8 v) { std::memcpy(p, &v, sizeof v); }
// The value type's load and store: a vector of 8, or one float.
template <typename V>
inline V load(const float* p) {
  if constexpr (sizeof(V) == sizeof(float)) return *p;
  else return load8(p);
}
template <typename V>
inline void store(float* p, V v) {
  if constexpr (sizeof(V) == sizeof(float)) *p = v;
  else store8(p, v);
}

// The most V and M (or V and Z) the whole-layer forms hold at once.
constexpr int64_t kWholeBytes = int64_t(256) << 20;

// The distance, in floats, between consecutive ξ of a transformed buffer
// (V, M, Z, U, dU: α² matrices of n floats each): n rounded up to 16 floats
// past a multiple of 4 KiB. The transforms touch all α² matrices at once (36
// streams for F(4×4)); with a stride that is a multiple of 4 KiB (64 channels
// × 128 tiles: 32 KiB) they all map to one L1 set and one L2 set group and
// evict each other. One cache line apart modulo 4 KiB, they do not.
// Measured (2-core Xeon, Sapphire Rapids, KVM; ResNet18's 3×3 layers at
// batch 9, 512², 2 threads, best of 12): the weight gradient 77 → 61, 59 →
// 49, 51 → 41, 44 → 34 ms for layers 1–4; the forward within the noise.
inline int64_t xi_stride(int64_t n) { return (n + 1023 - 16) / 1024 * 1024 + 16; }

// Per-thread scratch slots (base/thread_scratch.h): 0 V (and the weights'
// rearrangement), 1 U or dU, 2 M or Z, 3 phase rows.
struct Scratch;
inline float* buffer(int which, int64_t n) {
  float* p = thread_scratch<Scratch, 4>(which, (size_t)n);
  if (!p) throw Error("conv2d (winograd): out of memory for " + std::to_string(n) + " floats of scratch");
  return p;
}

// One input row split by column phase: dst[s·J + j] = row[j·m + s − PW] for
// s < m, j < J, zero where that column lies outside [0, W). Where all m
// phases are inside the row (j in [Lo, Hi)), eight j at a time: 8·m
// contiguous floats de-interleaved by shuffles (on AVX-512 each is one
// vpermt2ps) instead of 8·m strided scalar copies — the scalar split was 8 %
// of a ResNet18 step on a 2-core Xeon. The rest, scalar.
typedef int I8 __attribute__((vector_size(32)));
template <int M, int S>
inline V8 phase_of(const V8* q) {
  static_assert(M == 2 || M == 4, "Winograd F(2x2) or F(4x4)");
  if constexpr (M == 2) {
    return __builtin_shuffle(q[0], q[1], I8{S, S + 2, S + 4, S + 6, S + 8, S + 10, S + 12, S + 14});
  } else {
    const I8 pick{S, S + 4, S + 8, S + 12, S, S + 4, S + 8, S + 12};
    return __builtin_shuffle(__builtin_shuffle(q[0], q[1], pick), __builtin_shuffle(q[2], q[3], pick),
                             I8{0, 1, 2, 3, 8, 9, 10, 11});
  }
}
template <int M, int... S>
inline void store_phases(const float* src, float* dst, int64_t J, std::integer_sequence<int, S...>) {
  V8 q[M];
  for (int i = 0; i < M; ++i) q[i] = load8(src + i * kW);
  (store8(dst + S * J, phase_of<M, S>(q)), ...);
}
template <int M>
void split_phases(const float* row, int64_t W, int64_t PW, int64_t J, float* dst) {
  int64_t lo[M], hi[M], Lo = 0, Hi = J;
  for (int s = 0; s < M; ++s) {  // column j·m + s − PW lies in [0, W) for j in [lo, hi)
    lo[s] = std::min(J, std::max<int64_t>(0, floor_div(PW - s + M - 1, M)));
    hi[s] = std::max(lo[s], std::min(J, floor_div(W - 1 + PW - s, M) + 1));
    Lo = std::max(Lo, lo[s]);
    Hi = std::min(Hi, hi[s]);
  }
  const int64_t Hv = Hi > Lo ? Lo + (Hi - Lo) / kW * kW : Lo;  // [Lo, Hv): the vector part
  for (int64_t j = Lo; j < Hv; j += kW)
    store_phases<M>(row + j * M - PW, dst + j, J, std::make_integer_sequence<int, M>{});
  for (int s = 0; s < M; ++s) {
    float* ds = dst + s * J;
    const float* xr = row + (s - PW);  // + j·m: column j·m + s − PW
    std::fill(ds, ds + lo[s], 0.f);
    for (int64_t j = lo[s]; j < std::min(hi[s], Lo); ++j) ds[j] = xr[j * M];
    for (int64_t j = std::max(lo[s], Hv); j < hi[s]; ++j) ds[j] = xr[j * M];
    std::fill(ds + hi[s], ds + J, 0.f);
  }
}

// A block's tiles, V[ξ, c, t] (t: the block's tiles, T of them, row by row;
// ξ xs floats apart).
// ph[a][s][j] = input row ti·m − PH + a at column j·m + s − PW (zero outside
// x): the α rows a tile row reads, split by column phase s, so that tap
// column b of eight consecutive tiles is one contiguous load ph[a][b % m][tj + b / m].
template <int M>
void transform_inputs(const float* x, const Conv2dDims& d, int64_t g0, int64_t g1, int64_t TH, int64_t TW,
                      int64_t c0, int64_t c1, float* V, int64_t xs, float* ph) {
  using Fm = winograd::F<M>;
  constexpr int A = Fm::alpha;
  const int64_t T = (g1 - g0) * TW, J = TW + kW + 1;  // phase row length (vector loads read up to TW + 1)
  for (int64_t c = c0; c < c1; ++c)
    for (int64_t g = g0; g < g1; ++g) {
      const int64_t n = g / TH, ti = g % TH;
      const float* xc = x + (n * d.C + c) * d.H * d.W;
      for (int a = 0; a < A; ++a) {
        const int64_t h = ti * M - d.PH + a;
        float* dst = ph + a * M * J;
        if (h < 0 || h >= d.H) std::fill(dst, dst + M * J, 0.f);
        else split_phases<M>(xc + h * d.W, d.W, d.PW, J, dst);
      }
      float* vt = V + c * T + (g - g0) * TW;  // this row's tiles of channel c
      auto tiles = [&](auto tag, int64_t tj) {
        using V_ = decltype(tag);
        V_ dd[A][A], col[A], t[A][A], v[A];
        for (int a = 0; a < A; ++a)
          for (int b = 0; b < A; ++b) dd[a][b] = load<V_>(ph + (a * M + b % M) * J + tj + b / M);
        for (int b = 0; b < A; ++b) {  // t = Bᵀ d: down each column
          for (int a = 0; a < A; ++a) col[a] = dd[a][b];
          Fm::bt(col, v);
          for (int a = 0; a < A; ++a) t[a][b] = v[a];
        }
        for (int a = 0; a < A; ++a) {  // V = t B: along each row
          Fm::bt(t[a], v);
          for (int b = 0; b < A; ++b) store<V_>(vt + (a * A + b) * xs + tj, v[b]);
        }
      };
      int64_t tj = 0;
      for (; tj + kW <= TW; tj += kW) tiles(V8{}, tj);
      for (; tj < TW; ++tj) tiles(0.f, tj);
    }
}

}  // namespace ctg::kernels::winograd_detail
