// Winograd F(m×m, 3×3) (kernels/cpu/winograd.h, kernels/cpu/conv2d_winograd.cpp):
//  1. the transforms: for one tile, Aᵀ[(G g Gᵀ) ⊙ (Bᵀ d B)]A equals the 3×3
//     correlation of the α×α input tile, in double, for m = 2 and 4;
//  2. the float convolution against the plain reference loops on odd shapes
//     (cut tiles at the right and bottom edges, rows of tiles that do not fill
//     a vector, padding 0–2, one and several blocks, bias, accumulate), within
//     a bound relative to each output's scale S = Σ|w|·|x| (the same sum on
//     absolute values): |got − want| ≤ tol·S + 1e-6 with tol = 2e-6 for
//     F(2×2) and 2e-5 for F(4×4) (the measured worst cases on these shapes
//     are ~8× and ~10× below: float's rounding of sums of K ≤ 360 terms, and the
//     transforms' coefficients);
//  3. the tuned entry points take it where asked: forward and the stride-1
//     input gradient (first write and accumulate, on NaN-poisoned memory);
//  4. the weight gradient, Gᵀ[(A dY Aᵀ) ⊙ V]G summed over tiles, the same way
//     (in one chunk of tiles and in one per tile row);
//  5. the forward's result does not depend on the thread count (bitwise);
//  6. the rule.
#include <doctest/doctest.h>

#include <cmath>
#include <random>
#include <vector>

#include "engine/parallel.h"
#include "kernels/conv2d.h"
#include "kernels/cpu/winograd.h"
#include "tests/test_util.h"

using namespace ctg;
using namespace ctg::kernels;

namespace {

template <int M>
double tile_error(std::mt19937_64& rng) {
  using Fm = winograd::F<M>;
  constexpr int A = Fm::alpha;
  std::uniform_real_distribution<double> u(-1, 1);
  double d[A][A], g[3][3];
  for (auto& r : d)
    for (double& v : r) v = u(rng);
  for (auto& r : g)
    for (double& v : r) v = u(rng);
  // U = G g Gᵀ, V = Bᵀ d B, by the header's column transforms.
  double t[A][3], U[A][A], s[A][A], V[A][A], col[A], out[A];
  for (int q = 0; q < 3; ++q) {
    const double c3[3] = {g[0][q], g[1][q], g[2][q]};
    Fm::g(c3, out);
    for (int a = 0; a < A; ++a) t[a][q] = out[a];
  }
  for (int a = 0; a < A; ++a) Fm::g(t[a], U[a]);
  for (int b = 0; b < A; ++b) {
    for (int a = 0; a < A; ++a) col[a] = d[a][b];
    Fm::bt(col, out);
    for (int a = 0; a < A; ++a) s[a][b] = out[a];
  }
  for (int a = 0; a < A; ++a) Fm::bt(s[a], V[a]);
  double P[A][A], r[M][A], Y[M][M];
  for (int a = 0; a < A; ++a)
    for (int b = 0; b < A; ++b) P[a][b] = U[a][b] * V[a][b];
  for (int b = 0; b < A; ++b) {
    for (int a = 0; a < A; ++a) col[a] = P[a][b];
    Fm::at(col, out);
    for (int i = 0; i < M; ++i) r[i][b] = out[i];
  }
  for (int i = 0; i < M; ++i) Fm::at(r[i], Y[i]);
  double worst = 0;
  for (int i = 0; i < M; ++i)
    for (int j = 0; j < M; ++j) {
      double want = 0;
      for (int p = 0; p < 3; ++p)
        for (int q = 0; q < 3; ++q) want += g[p][q] * d[i + p][j + q];
      worst = std::max(worst, std::fabs(Y[i][j] - want));
    }
  return worst;
}

struct WinoShape {
  int64_t N, C, H, W, O, P;  // 3×3, stride 1, padding P on both sides
  Conv2dDims dims() const { return conv2d_dims(N, C, H, W, O, 3, 3, 1, 1, P, P); }
};
// Odd sizes: 1-pixel outputs, cut last tiles (OH, OW not multiples of 2 or 4),
// rows of 19 and 10 tiles (two and one vector of 8 plus single tiles), many
// tile rows (several blocks per thread), channel counts that fill no vector.
const WinoShape kShapes[] = {{1, 1, 3, 3, 1, 0},   {2, 3, 5, 7, 4, 1},    {1, 5, 1, 1, 3, 1},  {3, 7, 9, 37, 5, 1},
                         {2, 13, 37, 21, 11, 2}, {1, 40, 16, 16, 24, 1}, {2, 9, 6, 40, 17, 0}};

struct Scaled {
  std::vector<float> want;
  std::vector<double> scale;  // Σ|w|·|x| per output
};
Scaled reference(const std::vector<float>& x, const std::vector<float>& w, const float* b, const Conv2dDims& d) {
  Scaled r;
  r.want.assign((size_t)(d.N * d.O * d.OH * d.OW), 0.f);
  conv2d_forward_cpu_reference<float>(x.data(), w.data(), b, r.want.data(), d);
  std::vector<double> ax(x.begin(), x.end()), aw(w.begin(), w.end());
  for (double& v : ax) v = std::fabs(v);
  for (double& v : aw) v = std::fabs(v);
  r.scale.assign(r.want.size(), 0.0);
  conv2d_forward_cpu_reference<double>(ax.data(), aw.data(), nullptr, r.scale.data(), d);
  return r;
}
int64_t count_far(const std::vector<float>& got, const Scaled& r, double tol, double* worst = nullptr) {
  int64_t n = 0;
  for (size_t i = 0; i < got.size(); ++i) {
    const double err = std::fabs((double)got[i] - r.want[i]);
    if (worst && r.scale[i] > 0) *worst = std::max(*worst, err / r.scale[i]);
    n += !(err <= tol * r.scale[i] + 1e-6);
  }
  return n;
}
double tol_of(int m) { return m == 2 ? 2e-6 : 2e-5; }

}  // namespace

TEST_CASE("winograd transforms: one tile of F(2x2,3x3) and F(4x4,3x3) equals the 3x3 correlation (double)") {
  std::mt19937_64 rng(5);
  double w2 = 0, w4 = 0;
  for (int rep = 0; rep < 200; ++rep) w2 = std::max(w2, tile_error<2>(rng)), w4 = std::max(w4, tile_error<4>(rng));
  CHECK(w2 < 1e-12);
  CHECK(w4 < 1e-6);  // G's 1/6, 1/12, 1/24 are float constants: rounded at ~3e-8 relative
}

TEST_CASE("conv2d winograd: F(2x2) and F(4x4) against the reference loops, bias and accumulate, odd shapes") {
  std::mt19937_64 rng(17);
  for (int m : {2, 4})
    for (const WinoShape& s : kShapes) {
      const Conv2dDims d = s.dims();
      CAPTURE(m); CAPTURE(d.N); CAPTURE(d.C); CAPTURE(d.H); CAPTURE(d.W); CAPTURE(d.O); CAPTURE(d.PH);
      const auto x = test::uniform_vec<float>((size_t)(d.N * d.C * d.H * d.W), rng);
      const auto w = test::uniform_vec<float>((size_t)(d.O * d.C * 9), rng);
      const auto b = test::uniform_vec<float>((size_t)d.O, rng);
      const size_t ny = (size_t)(d.N * d.O * d.OH * d.OW);
      double worst = 0;
      for (bool bias : {false, true}) {
        const Scaled r = reference(x, w, bias ? b.data() : nullptr, d);
        std::vector<float> y(ny, NAN);  // a plain forward never reads y
        conv2d_forward_cpu_winograd(x.data(), w.data(), bias ? b.data() : nullptr, y.data(), d, m);
        CHECK(count_far(y, r, tol_of(m), &worst) == 0);
      }
      // accumulate: y0 + conv
      const auto y0 = test::uniform_vec<float>(ny, rng);
      std::vector<float> y = y0;
      conv2d_forward_cpu_winograd(x.data(), w.data(), nullptr, y.data(), d, m, true);
      Scaled r = reference(x, w, nullptr, d);
      for (size_t i = 0; i < ny; ++i) r.want[i] += y0[i], r.scale[i] += std::fabs(y0[i]);
      CHECK(count_far(y, r, tol_of(m)) == 0);
      MESSAGE("F(", m, "x", m, ") worst |error| / scale: ", worst);
    }
}

TEST_CASE("conv2d tuned, float, winograd forced: the forward and the stride-1 input gradient, first write too") {
  std::mt19937_64 rng(23);
  for (int m : {2, 4})
    for (const WinoShape& s : kShapes) {
      const Conv2dDims d = s.dims();
      CAPTURE(m); CAPTURE(d.C); CAPTURE(d.H); CAPTURE(d.W); CAPTURE(d.O); CAPTURE(d.PH);
      Conv2dCpuTuning t;
      t.direct_max_out = 0, t.winograd = m;
      const auto x = test::uniform_vec<float>((size_t)(d.N * d.C * d.H * d.W), rng);
      const auto w = test::uniform_vec<float>((size_t)(d.O * d.C * 9), rng);
      const auto gy = test::uniform_vec<float>((size_t)(d.N * d.O * d.OH * d.OW), rng);
      std::vector<float> y(gy.size(), NAN);
      conv2d_forward_cpu_tuned<float>(x.data(), w.data(), nullptr, y.data(), d, t);
      CHECK(count_far(y, reference(x, w, nullptr, d), tol_of(m)) == 0);
      // gx = Σ W·gy, the reference's own backward; its scale from absolute values.
      std::vector<float> want(x.size(), 0.f);
      conv2d_backward_cpu_reference<float>(x.data(), w.data(), gy.data(), want.data(), nullptr, nullptr, d);
      std::vector<double> scale(x.size(), 0.0), aw(w.begin(), w.end()), agy(gy.begin(), gy.end());
      for (double& v : aw) v = std::fabs(v);
      for (double& v : agy) v = std::fabs(v);
      std::vector<double> xd(x.size(), 0.0);
      conv2d_backward_cpu_reference<double>(xd.data(), aw.data(), agy.data(), scale.data(), nullptr, nullptr, d);
      const Scaled r{want, scale};
      std::vector<float> gx(x.size(), NAN);  // first write: gx never read
      conv2d_backward_cpu_tuned<float>(x.data(), w.data(), gy.data(), gx.data(), nullptr, nullptr, d, t, false);
      CHECK(count_far(gx, r, tol_of(m)) == 0);
      std::vector<float> gx2(x.size(), 0.f);  // accumulate onto zeros
      conv2d_backward_cpu_tuned<float>(x.data(), w.data(), gy.data(), gx2.data(), nullptr, nullptr, d, t, true);
      CHECK(count_far(gx2, r, tol_of(m)) == 0);
    }
}

TEST_CASE("conv2d winograd: the weight gradient Gᵀ[(A dY Aᵀ) ⊙ V]G against the reference loops, direct and tuned") {
  std::mt19937_64 rng(31);
  for (int m : {2, 4})
    for (const WinoShape& s : kShapes) {
      const Conv2dDims d = s.dims();
      CAPTURE(m); CAPTURE(d.N); CAPTURE(d.C); CAPTURE(d.H); CAPTURE(d.W); CAPTURE(d.O); CAPTURE(d.PH);
      const auto x = test::uniform_vec<float>((size_t)(d.N * d.C * d.H * d.W), rng);
      const auto gy = test::uniform_vec<float>((size_t)(d.N * d.O * d.OH * d.OW), rng);
      const auto gw0 = test::uniform_vec<float>((size_t)(d.O * d.C * 9), rng);  // gw accumulates onto this
      Scaled r{gw0, std::vector<double>(gw0.size(), 0.0)};
      conv2d_backward_cpu_reference<float>(x.data(), nullptr, gy.data(), nullptr, r.want.data(), nullptr, d);
      std::vector<double> ax(x.begin(), x.end()), agy(gy.begin(), gy.end());
      for (double& v : ax) v = std::fabs(v);
      for (double& v : agy) v = std::fabs(v);
      conv2d_backward_cpu_reference<double>(ax.data(), nullptr, agy.data(), nullptr, r.scale.data(), nullptr, d);
      for (size_t i = 0; i < gw0.size(); ++i) r.scale[i] += std::fabs(gw0[i]);
      std::vector<float> gw = gw0;
      conv2d_backward_weight_cpu_winograd(x.data(), gy.data(), gw.data(), d, m);
      double worst = 0;
      CHECK(count_far(gw, r, tol_of(m), &worst) == 0);
      MESSAGE("dW F(", m, "x", m, ") worst |error| / scale: ", worst);
      std::vector<float> gw1 = gw0;  // one tile row per chunk: dU summed over many chunks
      conv2d_backward_weight_cpu_winograd(x.data(), gy.data(), gw1.data(), d, m, 1);
      CHECK(count_far(gw1, r, tol_of(m)) == 0);
      Conv2dCpuTuning t;  // through the tuned backward, with dx and db beside it
      t.direct_max_out = 0, t.winograd = m;
      const auto w = test::uniform_vec<float>((size_t)(d.O * d.C * 9), rng);
      std::vector<float> gw2 = gw0, gx(x.size(), NAN), gb((size_t)d.O, 0.f);
      conv2d_backward_cpu_tuned<float>(x.data(), w.data(), gy.data(), gx.data(), gw2.data(), gb.data(), d, t, false);
      CHECK(count_far(gw2, r, tol_of(m)) == 0);
    }
}

TEST_CASE("conv2d winograd: bitwise the same result with 1 and 2 threads") {
  std::mt19937_64 rng(29);
  const int before = num_threads();
  for (int m : {2, 4}) {
    const Conv2dDims d = WinoShape{3, 24, 29, 35, 40, 1}.dims();
    const auto x = test::uniform_vec<float>((size_t)(d.N * d.C * d.H * d.W), rng);
    const auto w = test::uniform_vec<float>((size_t)(d.O * d.C * 9), rng);
    std::vector<float> y1((size_t)(d.N * d.O * d.OH * d.OW)), y2(y1.size());
    set_num_threads(1);
    conv2d_forward_cpu_winograd(x.data(), w.data(), nullptr, y1.data(), d, m);
    set_num_threads(2);
    conv2d_forward_cpu_winograd(x.data(), w.data(), nullptr, y2.data(), d, m);
    CHECK(y1 == y2);
  }
  set_num_threads(before);
}

TEST_CASE("conv2d winograd: where the rule applies it") {
  Conv2dCpuTuning t;
  CHECK(conv2d_winograd_tile(conv2d_dims(9, 64, 128, 128, 64, 3, 3, 1, 1, 1, 1), t) == 4);   // layer1
  CHECK(conv2d_winograd_tile(conv2d_dims(9, 512, 16, 16, 512, 3, 3, 1, 1, 1, 1), t) == 2);    // layer4
  CHECK(conv2d_winograd_tile(conv2d_dims(2, 128, 32, 32, 128, 3, 3, 1, 1, 1, 1), t) == 2);    // 2048 pixels
  CHECK(conv2d_winograd_tile(conv2d_dims(2, 256, 16, 16, 256, 3, 3, 1, 1, 1, 1), t) == 0);    // 512 pixels
  CHECK(conv2d_winograd_tile(conv2d_dims(9, 512, 2, 2, 512, 3, 3, 1, 1, 1, 1), t) == 0);      // layer4 at 64²
  CHECK(conv2d_winograd_tile(conv2d_dims(9, 16, 128, 128, 64, 3, 3, 1, 1, 1, 1), t) == 0);    // few channels
  CHECK(conv2d_winograd_tile(conv2d_dims(9, 64, 128, 128, 128, 3, 3, 2, 2, 1, 1), t) == 0);  // stride 2
  CHECK(conv2d_winograd_tile(conv2d_dims(9, 64, 128, 128, 128, 1, 1, 1, 1, 0, 0), t) == 0);  // 1×1
  CHECK(conv2d_winograd_tile(conv2d_dims(9, 1, 512, 512, 64, 7, 7, 2, 2, 3, 3), t) == 0);    // the stem
  t.winograd = 0;
  CHECK(conv2d_winograd_tile(conv2d_dims(9, 64, 128, 128, 64, 3, 3, 1, 1, 1, 1), t) == 0);
  t.winograd = 4;
  CHECK(conv2d_winograd_tile(conv2d_dims(1, 2, 5, 5, 3, 3, 3, 1, 1, 1, 1), t) == 4);
  CHECK(conv2d_winograd_tile(conv2d_dims(1, 2, 5, 5, 3, 3, 3, 2, 2, 1, 1), t) == 0);
  CHECK_THROWS(conv2d_forward_cpu_winograd(nullptr, nullptr, nullptr, nullptr,
                                           conv2d_dims(1, 2, 5, 5, 3, 3, 3, 2, 2, 1, 1), 2));
}
