// Winograd weight gradient of a 3×3 stride-1 float convolution (the forward
// and the input gradient: conv2d_winograd.cpp). The forward's tile is linear
// in the filter g:  Y = Aᵀ [(G g Gᵀ) ⊙ V] A,  V = Bᵀ d B.  So for a tile's
// output gradient dY (m×m) the filter's gradient is its adjoint,
//   dg = Gᵀ [ (A dY Aᵀ) ⊙ V ] G,
// and summed over channels and tiles:
//   dU_ξ[o, c] = Σ_t Z_ξ[o, t] · V_ξ[c, t],   Z = A dY Aᵀ   (one GEMM per ξ, K = the tiles)
//   dW[o, c]  += Gᵀ dU[o, c] G                             (α×α → 3×3)
// with V the forward's input transform (zero-padded input tiles) and dY zero
// past the output's edge (cut tiles). Tiles in as few chunks as a 256 MiB
// budget allows: V and Z for a chunk's tiles (ResNet18's layers at 512²,
// batch 9: 20–170 MB, one chunk), each GEMM as long as the chunk and
// threaded inside (split K where dU is small), the transforms threaded over
// channels. The sums over tiles are fixed-order for a thread
// count (the GEMM's split-K adds its partials in thread order).
#include <omp.h>

#include "kernels/cpu/conv2d_winograd.h"
#include "kernels/cpu/gemm.h"

namespace ctg::kernels {

namespace {

using namespace winograd_detail;

// z = A y (α values from m): the adjoint of Aᵀ, rows of Aᵀ as columns.
template <int M, typename V>
inline void a_of(const V* y, V* z) {
  if constexpr (M == 2) {
    z[0] = y[0], z[1] = y[0] + y[1], z[2] = y[0] - y[1], z[3] = -y[1];
  } else {
    const V e = y[0] + y[2], o = y[1] + y[3], e4 = y[0] + 4.f * y[2], o8 = 2.f * y[1] + 8.f * y[3];
    z[0] = y[0], z[1] = e + o, z[2] = e - o, z[3] = e4 + o8, z[4] = e4 - o8, z[5] = y[3];
  }
}
// r = Gᵀ u (3 values from α): the adjoint of G.
template <int M, typename V>
inline void gt_of(const V* u, V* r) {
  if constexpr (M == 2) {
    r[0] = u[0] + 0.5f * (u[1] + u[2]), r[1] = 0.5f * (u[1] - u[2]), r[2] = 0.5f * (u[1] + u[2]) + u[3];
  } else {
    const float s6 = 1.f / 6.f, s12 = 1.f / 12.f, s24 = 1.f / 24.f;
    r[0] = 0.25f * u[0] - s6 * (u[1] + u[2]) + s24 * (u[3] + u[4]);
    r[1] = s6 * (u[2] - u[1]) + s12 * (u[3] - u[4]);
    r[2] = s6 * (u[3] + u[4] - u[1] - u[2]) + u[5];
  }
}

// Z[ξ, o, t] = (A dY_{o,t} Aᵀ)_ξ (ξ xz floats apart) for output channel o, every tile t (row by
// row), eight tiles per vector: the m gy rows of a tile row are split by
// column phase first (ph[i][s][j] = gy[ti·m + i, j·m + s], zero past the
// edge), so element (i, j) of eight consecutive tiles is one contiguous load.
template <int M>
void transform_grads(const float* gy, const Conv2dDims& d, int64_t o, int64_t g0, int64_t g1, int64_t TH,
                     int64_t TW, float* Z, int64_t xz, float* ph) {
  constexpr int A = winograd::F<M>::alpha;
  const int64_t J = TW + kW, T = (g1 - g0) * TW;
  for (int64_t g = g0; g < g1; ++g) {
    const int64_t n = g / TH, ti = g % TH;
    const float* go = gy + (n * d.O + o) * d.OH * d.OW;
    for (int i = 0; i < M; ++i)
      for (int s = 0; s < M; ++s) {
        float* dst = ph + (i * M + s) * J;
        const int64_t r = ti * M + i;
        const int64_t hi = r < d.OH ? std::min(J, std::max<int64_t>(0, (d.OW - s + M - 1) / M)) : 0;
        for (int64_t jj = 0; jj < hi; ++jj) dst[jj] = go[r * d.OW + jj * M + s];
        std::fill(dst + hi, dst + J, 0.f);
      }
    float* zg = Z + o * T + (g - g0) * TW;
    auto tiles = [&](auto tag, int64_t tj) {
      using V = decltype(tag);
      V col[M], zc[A], t[A][M], z[A];
      for (int j = 0; j < M; ++j) {  // t = A y: down each column
        for (int i = 0; i < M; ++i) col[i] = load<V>(ph + (i * M + j) * J + tj);
        a_of<M>(col, zc);
        for (int a = 0; a < A; ++a) t[a][j] = zc[a];
      }
      for (int a = 0; a < A; ++a) {  // Z = t Aᵀ: along each row
        a_of<M>(t[a], z);
        for (int b = 0; b < A; ++b) store<V>(zg + (a * A + b) * xz + tj, z[b]);
      }
    };
    int64_t tj = 0;
    for (; tj + kW <= TW; tj += kW) tiles(V8{}, tj);
    for (; tj < TW; ++tj) tiles(0.f, tj);
  }
}

template <int M>
void weight_grad(const float* x, const float* gy, float* gw, const Conv2dDims& d, int64_t budget) {
  constexpr int A = winograd::F<M>::alpha, A2 = A * A;
  const int64_t C = d.C, O = d.O, TH = (d.OH + M - 1) / M, TW = (d.OW + M - 1) / M, G = d.N * TH;
  const int64_t J = TW + kW + 1;
  // Chunks of whole tile rows, V and Z for a chunk's tiles within the budget
  // (one chunk for ResNet18's layers at batch 9; layer 1 at batch 15 takes two):
  // dU accumulates over the chunks in order.
  const int64_t per_row = (int64_t)A2 * (C + O) * TW * (int64_t)sizeof(float);
  const int64_t rows = std::max<int64_t>(1, std::min(G, budget / per_row)), Tmax = rows * TW;
  const int64_t xu = xi_stride(O * C);
  float* V = buffer(0, A2 * xi_stride(C * Tmax));
  float* Z = buffer(2, A2 * xi_stride(O * Tmax));
  float* dU = buffer(1, A2 * xu);
  for (int64_t g0 = 0; g0 < G; g0 += rows) {
    const int64_t g1 = std::min(G, g0 + rows), T = (g1 - g0) * TW, xs = xi_stride(C * T), xz = xi_stride(O * T);
#pragma omp parallel for schedule(static)
    for (int64_t c = 0; c < C; ++c)
      transform_inputs<M>(x, d, g0, g1, TH, TW, c, c + 1, V, xs, buffer(3, A * M * J));
#pragma omp parallel for schedule(static)
    for (int64_t o = 0; o < O; ++o)
      transform_grads<M>(gy, d, o, g0, g1, TH, TW, Z, xz, buffer(3, M * M * (TW + kW)));
    for (int xi = 0; xi < A2; ++xi)  // dU_ξ (+)= Z_ξ · V_ξᵀ   [O×T]·[T×C]
      cpu::gemm(false, true, O, C, T, 1.f, Z + xi * xz, T, V + xi * xs, T, g0 == 0 ? 0.f : 1.f, dU + xi * xu, C);
  }
  // gw[o, c] += Gᵀ dU G: down each column of the α×α dU, then along each row.
#pragma omp parallel for schedule(static)
  for (int64_t k = 0; k < O * C; ++k) {
    float u[A][A], col[A], r[3], t[3][A];
    for (int xi = 0; xi < A2; ++xi) u[xi / A][xi % A] = dU[xi * xu + k];
    for (int b = 0; b < A; ++b) {
      for (int a = 0; a < A; ++a) col[a] = u[a][b];
      gt_of<M>(col, r);
      for (int p = 0; p < 3; ++p) t[p][b] = r[p];
    }
    for (int p = 0; p < 3; ++p) {
      gt_of<M>(t[p], r);
      for (int q = 0; q < 3; ++q) gw[k * 9 + p * 3 + q] += r[q];
    }
  }
}

}  // namespace

void conv2d_backward_weight_cpu_winograd(const float* x, const float* gy, float* gw, const Conv2dDims& d, int m,
                                         int64_t chunk_bytes) {
  const int64_t budget = chunk_bytes > 0 ? chunk_bytes : kWholeBytes;
  if (!conv2d_winograd_applies(d)) throw Error("conv2d (winograd): needs a 3x3 kernel with stride 1");
  if (m == 2) return weight_grad<2>(x, gy, gw, d, budget);
  if (m == 4) return weight_grad<4>(x, gy, gw, d, budget);
  throw Error("conv2d (winograd): tile " + std::to_string(m) + " (expected 2 or 4)");
}

}  // namespace ctg::kernels
