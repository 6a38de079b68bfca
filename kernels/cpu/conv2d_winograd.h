// Private to the Winograd convolution (kernels/cpu/conv2d_winograd.cpp: the
// forward; conv2d_winograd_backward.cpp: the weight gradient): the vector
// helpers, the per-thread scratch and the input transform both use.
#pragma once
#include <algorithm>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <string>

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

// Per-thread scratch slots (base/thread_scratch.h): 0 V (and the weights'
// rearrangement), 1 U or dU, 2 M or Z, 3 phase rows.
struct Scratch;
inline float* buffer(int which, int64_t n) {
  float* p = thread_scratch<Scratch, 4>(which, (size_t)n);
  if (!p) throw Error("conv2d (winograd): out of memory for " + std::to_string(n) + " floats of scratch");
  return p;
}

// A block's tiles, V[ξ, c, t] (t: the block's tiles, T of them, row by row).
// ph[a][s][j] = input row ti·m − PH + a at column j·m + s − PW (zero outside
// x): the α rows a tile row reads, split by column phase s, so that tap
// column b of eight consecutive tiles is one contiguous load ph[a][b % m][tj + b / m].
template <int M>
void transform_inputs(const float* x, const Conv2dDims& d, int64_t g0, int64_t g1, int64_t TH, int64_t TW,
                      int64_t c0, int64_t c1, float* V, float* ph) {
  using Fm = winograd::F<M>;
  constexpr int A = Fm::alpha;
  const int64_t T = (g1 - g0) * TW, J = TW + kW + 1;  // phase row length (vector loads read up to TW + 1)
  for (int64_t c = c0; c < c1; ++c)
    for (int64_t g = g0; g < g1; ++g) {
      const int64_t n = g / TH, ti = g % TH;
      const float* xc = x + (n * d.C + c) * d.H * d.W;
      for (int a = 0; a < A; ++a) {
        const int64_t h = ti * M - d.PH + a;
        for (int s = 0; s < M; ++s) {
          float* dst = ph + (a * M + s) * J;
          if (h < 0 || h >= d.H) {
            std::fill(dst, dst + J, 0.f);
            continue;
          }
          // Column j·m + s − PW lies in [0, W) for j in [lo, hi): zeros around a strided copy.
          const int64_t lo = std::min(J, std::max<int64_t>(0, floor_div(d.PW - s + M - 1, M)));
          const int64_t hi = std::max(lo, std::min(J, floor_div(d.W - 1 + d.PW - s, M) + 1));
          const float* xr = xc + h * d.W + (s - d.PW);  // + j·m: column j·m + s − PW (j ≥ lo)
          std::fill(dst, dst + lo, 0.f);
          for (int64_t j = lo; j < hi; ++j) dst[j] = xr[j * M];
          std::fill(dst + hi, dst + J, 0.f);
        }
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
          for (int b = 0; b < A; ++b) store<V_>(vt + (a * A + b) * d.C * T + tj, v[b]);
        }
      };
      int64_t tj = 0;
      for (; tj + kW <= TW; tj += kW) tiles(V8{}, tj);
      for (; tj < TW; ++tj) tiles(0.f, tj);
    }
}

}  // namespace ctg::kernels::winograd_detail
