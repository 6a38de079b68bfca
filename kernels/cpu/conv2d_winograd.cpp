// Winograd F(m×m, 3×3) for the tuned CPU convolution (float, 3×3, stride 1,
// any padding): the forward, and through it the stride-1 input gradient
// (kernels/cpu/conv2d_tuned.cpp: grad_input_conv). The transforms and their
// math: kernels/cpu/winograd.h. Tested against the plain loops of
// kernels/cpu/conv2d.cpp in tests/test_conv2d_winograd.cpp.
//
// Output tiles: m×m blocks of y (tile (ti, tj) of image n covers rows
// ti·m … ti·m+m−1 and columns tj·m …), TH × TW per image, the last ones cut at
// the image's edge. Its input tile: rows ti·m − PH … + α−1, columns likewise,
// zero outside x. Tiles are taken in blocks of whole tile rows (image n, tile
// row ti: g = n·TH + ti), each block by one thread, start to finish:
//   1. V_ξ[c, t] = (Bᵀ d_{c,t} B)_ξ for the block's tiles t and every channel c;
//   2. M_ξ = U_ξ · V_ξ, one GEMM [O×C]·[C×T] per ξ (cpu::gemm: ctgrad's SGEMM);
//   3. y tile = Aᵀ M_{o,t} A (+ bias, or onto y when accumulating).
// U_ξ[o, c] = (G g_{o,c} Gᵀ)_ξ is computed once per call, before the blocks.
// The transforms run eight tiles (or eight filters) per vector, the tiles of a
// row that do not fill a vector one at a time. A block's V and M stay in the
// caches (the budget below), so the image is read once and y written once.
// Where U is large and the image small (deep layers) the whole layer is one
// block instead, its GEMMs threaded inside, so U is read once per call.
// Every output element is one fixed-order computation (the SGEMM's sums do
// not depend on its threads either): results do not depend on the thread count.
// The weight gradient, the adjoint of this: conv2d_winograd_backward.cpp.
#include <omp.h>

#include <algorithm>
#include <cstdlib>
#include <string>

#include "base/error.h"
#include "kernels/conv2d.h"
#include "kernels/cpu/gemm.h"
#include "kernels/cpu/conv2d_winograd.h"
#include "kernels/cpu/winograd.h"

namespace ctg::kernels {

namespace {

using namespace winograd_detail;


// U[ξ, o, c] = (G g Gᵀ)_ξ for every filter g = w[o, c] (3×3), eight filters per
// vector: w is first rearranged tap-major (wt[pq, oc]) so that a vector holds
// one tap of eight consecutive filters.
template <int M>
void transform_weights(const float* w, int64_t OC, float* U, int64_t xu) {
  using Fm = winograd::F<M>;
  constexpr int A = Fm::alpha;
  float* wt = buffer(0, 9 * OC);
  for (int64_t k = 0; k < OC; ++k)
    for (int pq = 0; pq < 9; ++pq) wt[pq * OC + k] = w[k * 9 + pq];
  auto one = [&](auto tag, int64_t k) {
    using V = decltype(tag);
    V g[3][3], col[3], gc[A], t[A][3], row[3], u[A];
    for (int p = 0; p < 3; ++p)
      for (int q = 0; q < 3; ++q) g[p][q] = load<V>(wt + (p * 3 + q) * OC + k);
    for (int q = 0; q < 3; ++q) {  // t = G g: down each column
      for (int p = 0; p < 3; ++p) col[p] = g[p][q];
      Fm::g(col, gc);
      for (int a = 0; a < A; ++a) t[a][q] = gc[a];
    }
    for (int a = 0; a < A; ++a) {  // U = t Gᵀ: along each row
      for (int q = 0; q < 3; ++q) row[q] = t[a][q];
      Fm::g(row, u);
      for (int b = 0; b < A; ++b) store<V>(U + (a * A + b) * xu + k, u[b]);
    }
  };
  const int64_t vec = OC / kW * kW;
#pragma omp parallel for schedule(static) if (OC >= 4096)
  for (int64_t k = 0; k < vec; k += kW) one(V8{}, k);
  for (int64_t k = vec; k < OC; ++k) one(0.f, k);
}


// line[l·m + j] = out[j][l]: the m outputs of eight tiles' row in image order
// (a transpose of m×8 into 8×m: lane shuffles, no scalar moves).
typedef int I8 __attribute__((vector_size(32)));
template <int M>
inline void interleave(const V8* out, float* line) {
  const V8 lo = __builtin_shuffle(out[0], out[1], I8{0, 8, 1, 9, 2, 10, 3, 11});  // pairs (out0, out1)
  const V8 hi = __builtin_shuffle(out[0], out[1], I8{4, 12, 5, 13, 6, 14, 7, 15});
  if constexpr (M == 2) {
    store8(line, lo), store8(line + 8, hi);
  } else {
    static_assert(M == 4, "m is 2 or 4");
    const V8 lo2 = __builtin_shuffle(out[2], out[3], I8{0, 8, 1, 9, 2, 10, 3, 11});  // pairs (out2, out3)
    const V8 hi2 = __builtin_shuffle(out[2], out[3], I8{4, 12, 5, 13, 6, 14, 7, 15});
    store8(line, __builtin_shuffle(lo, lo2, I8{0, 1, 8, 9, 2, 3, 10, 11}));  // tiles 0, 1
    store8(line + 8, __builtin_shuffle(lo, lo2, I8{4, 5, 12, 13, 6, 7, 14, 15}));
    store8(line + 16, __builtin_shuffle(hi, hi2, I8{0, 1, 8, 9, 2, 3, 10, 11}));
    store8(line + 24, __builtin_shuffle(hi, hi2, I8{4, 5, 12, 13, 6, 7, 14, 15}));
  }
}

// y's tiles from M[ξ, o, t] (ξ xm floats apart): Aᵀ M A, stored where inside y (the last tiles of
// a row or column are cut), plus the bias, or added onto y (accumulate).
template <int M>
void transform_outputs(const float* Mb, const float* bias, float* y, const Conv2dDims& d, int64_t g0, int64_t g1,
                       int64_t TH, int64_t TW, int64_t o0, int64_t o1, bool accumulate, int64_t xm) {
  using Fm = winograd::F<M>;
  constexpr int A = Fm::alpha;
  const int64_t T = (g1 - g0) * TW, O = d.O;
  for (int64_t o = o0; o < o1; ++o)
    for (int64_t g = g0; g < g1; ++g) {
      const int64_t n = g / TH, ti = g % TH;
      const float* mt = Mb + o * T + (g - g0) * TW;
      float* yo = y + (n * O + o) * d.OH * d.OW;
      const float b0 = bias ? bias[o] : 0.f;
      auto tiles = [&](auto tag, int64_t tj, int lanes) {
        using V_ = decltype(tag);
        V_ mm[A][A], col[A], s[M][A], out[M];
        for (int a = 0; a < A; ++a)
          for (int b = 0; b < A; ++b) mm[a][b] = load<V_>(mt + (a * A + b) * xm + tj);
        for (int b = 0; b < A; ++b) {  // s = Aᵀ M: down each column
          for (int a = 0; a < A; ++a) col[a] = mm[a][b];
          Fm::at(col, out);
          for (int i = 0; i < M; ++i) s[i][b] = out[i];
        }
        const int64_t x0 = tj * M, nx = std::min<int64_t>(lanes * M, d.OW - x0);
        for (int i = 0; i < M; ++i) {  // Y = s A: along each row, then into y's row ti·m + i
          const int64_t row = ti * M + i;
          if (row >= d.OH) break;
          Fm::at(s[i], out);
          float line[kW * M];  // line[lane·m + j]: the row's outputs, left to right
          if constexpr (sizeof(V_) == sizeof(float)) {
            for (int j = 0; j < M; ++j) line[j] = out[j];
          } else {
            interleave<M>(out, line);
          }
          float* dst = yo + row * d.OW + x0;
          if (accumulate) {
            for (int64_t u = 0; u < nx; ++u) dst[u] += line[u];
          } else {
            for (int64_t u = 0; u < nx; ++u) dst[u] = b0 + line[u];
          }
        }
      };
      int64_t tj = 0;
      for (; tj + kW <= TW; tj += kW) tiles(V8{}, tj, kW);
      for (; tj < TW; ++tj) tiles(0.f, tj, 1);
    }
}

// Per-thread bytes of V and M a block may hold: both stay in L2/L3 while the
// block's GEMMs run.
constexpr int64_t kBlockBytes = int64_t(4) << 20;

template <int M>
void forward(const float* x, const float* w, const float* b, float* y, const Conv2dDims& d, bool accumulate) {
  using Fm = winograd::F<M>;
  constexpr int A = Fm::alpha, A2 = A * A;
  const int64_t C = d.C, O = d.O, TH = (d.OH + M - 1) / M, TW = (d.OW + M - 1) / M, G = d.N * TH;
  const int64_t J = TW + kW + 1;  // phase row length (transform_inputs)
  // U, shared by every block: [ξ][O][C] (in the calling thread's buffer 1).
  const int64_t xu = xi_stride(O * C);
  float* U = buffer(1, A2 * xu);
  transform_weights<M>(w, O * C, U, xu);
  // Blocks of whole tile rows: as many tiles as the budget allows, but at
  // least four blocks per thread where there are rows enough (load balance).
  const int threads = omp_get_max_threads();
  const int64_t per_tile = (int64_t)A2 * (C + O) * (int64_t)sizeof(float);
  int64_t rows = std::max<int64_t>(1, kBlockBytes / (per_tile * TW));
  rows = std::min(rows, std::max<int64_t>(1, (G + 4 * threads - 1) / (4 * threads)));
  const int64_t blocks = (G + rows - 1) / rows, Tmax = rows * TW, tiles = G * TW;
  // Each block's GEMMs read all of U: where U is large and the image small
  // (ResNet18's layer 4: U is 16–38 MB, V and M for all tiles 10–40 MB) one
  // pass over every tile reads it once instead — each GEMM as wide as the
  // layer and threaded inside, the transforms threaded over channels.
  const int64_t u_bytes = (int64_t)A2 * O * C * (int64_t)sizeof(float);
  const bool whole = blocks > 1 && per_tile * tiles <= kWholeBytes && u_bytes * blocks > 2 * per_tile * tiles;
  if (whole) {
    const int64_t xs = xi_stride(C * tiles), xm = xi_stride(O * tiles);
    float* V = buffer(0, A2 * xs);
    float* Mb = buffer(2, A2 * xm);
#pragma omp parallel for schedule(static)
    for (int64_t c = 0; c < C; ++c)
      transform_inputs<M>(x, d, 0, G, TH, TW, c, c + 1, V, xs, buffer(3, A * M * J));
    for (int xi = 0; xi < A2; ++xi)
      cpu::gemm(false, false, O, tiles, C, 1.f, U + xi * xu, C, V + xi * xs, tiles, 0.f, Mb + xi * xm, tiles);
#pragma omp parallel for schedule(static)
    for (int64_t o = 0; o < O; ++o) transform_outputs<M>(Mb, b, y, d, 0, G, TH, TW, o, o + 1, accumulate, xm);
    return;
  }
#pragma omp parallel if (blocks > 1 && d.N * O * d.OH * d.OW * C >= (int64_t(1) << 18))
  {
    float* V = buffer(0, A2 * xi_stride(C * Tmax));
    float* Mb = buffer(2, A2 * xi_stride(O * Tmax));
    float* ph = buffer(3, A * M * J);  // phase rows: a few KiB
#pragma omp for schedule(dynamic, 1)
    for (int64_t blk = 0; blk < blocks; ++blk) {
      const int64_t g0 = blk * rows, g1 = std::min(G, g0 + rows), T = (g1 - g0) * TW;
      const int64_t xs = xi_stride(C * T), xm = xi_stride(O * T);
      transform_inputs<M>(x, d, g0, g1, TH, TW, 0, C, V, xs, ph);
      for (int xi = 0; xi < A2; ++xi)  // M_ξ = U_ξ · V_ξ
        cpu::gemm(false, false, O, T, C, 1.f, U + xi * xu, C, V + xi * xs, T, 0.f, Mb + xi * xm, T);
      transform_outputs<M>(Mb, b, y, d, g0, g1, TH, TW, 0, O, accumulate, xm);
    }
  }
}

int winograd_default() {
  static const int m = [] {
    const char* v = std::getenv("CTGRAD_WINOGRAD");
    const std::string s = v ? v : "";
    if (s.empty() || s == "auto") return -1;
    if (s == "off") return 0;
    if (s == "2") return 2;
    if (s == "4") return 4;
    throw Error("CTGRAD_WINOGRAD: expected auto, off, 2 or 4, got '" + s + "'");
  }();
  return m;
}

}  // namespace

bool conv2d_winograd_applies(const Conv2dDims& d) {
  return d.KH == 3 && d.KW == 3 && d.SH == 1 && d.SW == 1;
}

int conv2d_winograd_tile(const Conv2dDims& d, const Conv2dCpuTuning& tune) {
  if (!conv2d_winograd_applies(d)) return 0;
  const int forced = tune.winograd >= 0 ? tune.winograd : winograd_default();
  if (forced >= 0) return forced;
  // The measured rule (2 Zen 4 cores; bench/RESULTS.md). A call costs the
  // weight transform and one packing of each U_ξ (∝ α²·O·C) whatever the
  // image; the multiplies it saves grow with the output pixels N·OH·OW. So:
  // with 32 channels or more in and out, F(4×4) from 4096 pixels with sides
  // ≥ 16 (ResNet18's layers 1–3 at 512², batch 9: 1.6–2.6× faster than the
  // fused im2col), F(2×2) from 1024 (layer 4 there, 16×16: 33 against 53 ms,
  // F(4×4) the same; 2 images of 32×32: 3.5 against 3.7). Below, Winograd
  // lost: 2 images of 16×16 at 256 channels 4.5 against 4.2 ms, 4×4 ones 5×.
  // Fewer channels: the direct kernel or im2col.
  const int64_t pixels = d.N * d.OH * d.OW;
  if (d.C < 32 || d.O < 32 || std::min(d.OH, d.OW) < 4 || pixels < 1024) return 0;
  return std::min(d.OH, d.OW) >= 16 && pixels >= 4096 ? 4 : 2;
}

void conv2d_forward_cpu_winograd(const float* x, const float* w, const float* b, float* y, const Conv2dDims& d,
                                 int m, bool accumulate) {
  if (!conv2d_winograd_applies(d)) throw Error("conv2d (winograd): needs a 3x3 kernel with stride 1");
  if (accumulate && b) throw Error("conv2d (winograd): a bias with accumulate");
  if (m == 2) return forward<2>(x, w, b, y, d, accumulate);
  if (m == 4) return forward<4>(x, w, b, y, d, accumulate);
  throw Error("conv2d (winograd): tile " + std::to_string(m) + " (expected 2 or 4)");
}

}  // namespace ctg::kernels
