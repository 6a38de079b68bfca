// The direct conv2d kernel (kernels/cpu/conv2d_direct.cpp, conv2d_direct_backward.cpp)
// against the plain reference loops (kernels/cpu/conv2d.cpp), on fresh random
// inputs in [−1, 1) and shapes chosen to reach every path of its blocking:
// output rows that are not a whole number of vectors (OW = 1, 5, 17, 33 …),
// strides 1, 2, 3 (phase-split rows of one, two, three phases, and the
// generic one at 4), a stride larger than the kernel (phases no tap reads),
// padding on one side only, C = 1 stems, channel counts that are not a
// multiple of the register blocks (O = 1, 7, 13, 25: padded blocks in the
// forward and dW; C = 13 in dx), O > 20 (dW taken from im2col), partial
// bands of output and input rows,
// N = 1 and 3, float and double; forward, dW, dx, db, each alone and together.
// Also: the gradients add (+=) into what was there, the results do not change
// with the thread count, and the selection rule routes the study's layers as measured.
//
// Tolerance: both sides sum the same L terms of size ≤ 1 in different orders,
// so |direct − reference| ≤ tol·(1 + |reference|), tol = 1e-14·L (double),
// 1e-6·L (float); L = C·KH·KW for y, O·KH·KW for dx, N·OH·OW for dW and db.
#include <doctest/doctest.h>
#include <omp.h>

#include <cmath>
#include <random>
#include <string>
#include <vector>

#include "kernels/conv2d.h"
#include "tests/test_util.h"

using namespace ctg;

namespace {


template <typename T>
void check_close(const std::vector<T>& got, const std::vector<T>& want, int64_t L, const std::string& what) {
  REQUIRE(got.size() == want.size());
  const double tol = (sizeof(T) == 8 ? 1e-14 : 1e-6) * (double)L;
  size_t bad = 0;
  double worst = 0;
  for (size_t i = 0; i < got.size(); ++i) {
    double d = std::fabs((double)got[i] - (double)want[i]);
    if (std::isnan(d)) d = INFINITY;
    if (!(d <= tol * (1 + std::fabs((double)want[i])))) {
      if (bad < 5) MESSAGE(what << "[" << i << "] direct " << got[i] << " reference " << want[i]);
      ++bad;
    }
    worst = std::max(worst, d);
  }
  INFO(what << ": " << bad << " of " << got.size() << " beyond tol " << tol << "; largest difference " << worst);
  CHECK(bad == 0);
}

struct Case {
  int64_t N, C, H, W, O, KH, KW, SH, SW, PH, PW;
};

template <typename T>
void direct_vs_reference(const Case& c, std::mt19937_64& rng) {
  const kernels::Conv2dDims d = kernels::conv2d_dims(c.N, c.C, c.H, c.W, c.O, c.KH, c.KW, c.SH, c.SW, c.PH, c.PW);
  REQUIRE(d.OH >= 1);
  REQUIRE(d.OW >= 1);
  INFO("conv " << c.N << "x" << c.C << "x" << c.H << "x" << c.W << " O" << c.O << " k" << c.KH << "x" << c.KW << " s"
               << c.SH << "," << c.SW << " p" << c.PH << "," << c.PW << " " << (sizeof(T) == 8 ? "double" : "float"));
  const int64_t P = d.OH * d.OW;
  const auto x = test::uniform_vec<T>((size_t)(c.N * c.C * c.H * c.W), rng);
  const auto w = test::uniform_vec<T>((size_t)(c.O * c.C * c.KH * c.KW), rng);
  const auto b = test::uniform_vec<T>((size_t)c.O, rng);
  const auto gy = test::uniform_vec<T>((size_t)(c.N * c.O * P), rng);
  const int64_t Ly = c.C * c.KH * c.KW, Lx = c.O * c.KH * c.KW, Lw = c.N * P;

  std::vector<T> want_y(gy.size(), T(-7)), y(gy.size(), T(-7));
  kernels::conv2d_forward_cpu_reference(x.data(), w.data(), b.data(), want_y.data(), d);
  kernels::conv2d_forward_cpu_direct(x.data(), w.data(), b.data(), y.data(), d);
  check_close(y, want_y, Ly, "y");
  std::vector<T> want_nb(gy.size(), T(-7)), nb(gy.size(), T(-7));
  kernels::conv2d_forward_cpu_reference<T>(x.data(), w.data(), nullptr, want_nb.data(), d);
  kernels::conv2d_forward_cpu_direct<T>(x.data(), w.data(), nullptr, nb.data(), d);
  check_close(nb, want_nb, Ly, "y without bias");

  // Gradients start at 0.25 on both sides: the kernels must add, not overwrite.
  std::vector<T> want_gx(x.size(), T(0.25)), want_gw(w.size(), T(0.25)), want_gb(b.size(), T(0.25));
  kernels::conv2d_backward_cpu_reference(x.data(), w.data(), gy.data(), want_gx.data(), want_gw.data(), want_gb.data(),
                                         d);
  std::vector<T> gx(x.size(), T(0.25)), gw(w.size(), T(0.25)), gb(b.size(), T(0.25));
  kernels::conv2d_backward_cpu_direct(x.data(), w.data(), gy.data(), gx.data(), gw.data(), gb.data(), d);
  check_close(gx, want_gx, Lx, "gx");
  check_close(gw, want_gw, Lw, "gw");
  check_close(gb, want_gb, Lw, "gb");
  // Each gradient alone (the others nullptr), as the engine asks for them.
  std::vector<T> gx1(x.size(), T(0.25)), gw1(w.size(), T(0.25)), gb1(b.size(), T(0.25));
  kernels::conv2d_backward_cpu_direct<T>(x.data(), w.data(), gy.data(), gx1.data(), nullptr, nullptr, d);
  kernels::conv2d_backward_cpu_direct<T>(x.data(), w.data(), gy.data(), nullptr, gw1.data(), nullptr, d);
  kernels::conv2d_backward_cpu_direct<T>(x.data(), w.data(), gy.data(), nullptr, nullptr, gb1.data(), d);
  check_close(gx1, want_gx, Lx, "gx alone");
  check_close(gw1, want_gw, Lw, "gw alone");
  check_close(gb1, want_gb, Lw, "gb alone");

  // Through the tuned entry points with direct forced: the same kernel.
  kernels::Conv2dCpuTuning force;
  force.direct_max_out = int64_t(1) << 40;
  std::vector<T> yt(gy.size(), T(-7));
  kernels::conv2d_forward_cpu_tuned(x.data(), w.data(), b.data(), yt.data(), d, force);
  CHECK(yt == y);
}

const Case kCases[] = {
    {1, 1, 61, 47, 5, 5, 5, 3, 3, 3, 3},     // CNN1's stem at N = 1: C = 1, k5 s3 p3, OW = 17
    {3, 1, 50, 52, 10, 5, 5, 3, 3, 3, 3},    // CNN2's stem, N = 3, OW = 18
    {3, 5, 30, 29, 5, 5, 5, 2, 2, 3, 3},     // CNN1's conv2: C = O = 5, stride 2, OW = 16 (one whole vector)
    {1, 10, 21, 37, 20, 5, 5, 2, 2, 3, 3},   // CNN2's conv2: O = 20 (2 blocks of 10), OW = 20
    {3, 7, 19, 9, 13, 3, 3, 1, 1, 1, 1},     // stride 1, O = 13 (blocks of 7, padded), OW = 9
    {1, 13, 12, 66, 7, 3, 4, 1, 1, 0, 2},    // C = 13 in dx blocks, O = 7 in dW blocks, OW = 67
    {3, 2, 23, 35, 25, 3, 3, 2, 2, 1, 1},    // O = 25: 3 forward blocks of 9 (27); dW by im2col (O > 20)
    {3, 20, 22, 22, 50, 5, 5, 2, 2, 3, 3},   // CNN2's conv3 at N = 3: O = 50, C = 20 (2 dx blocks of 10)
    {3, 2, 15, 19, 1, 3, 3, 2, 2, 1, 1},     // O = 1: forward block of 1, dW block of 1 × 8 taps
    {1, 3, 9, 11, 4, 2, 2, 3, 3, 0, 0},      // stride 3 > kernel 2: a phase no tap reads
    {3, 2, 17, 26, 3, 5, 3, 4, 4, 2, 1},     // stride 4 (generic phase split), non-square kernel
    {1, 3, 14, 13, 2, 3, 5, 2, 1, 0, 2},     // unequal strides and padding: SH = 2, SW = 1, PH = 0
    {3, 2, 5, 4, 3, 1, 1, 1, 1, 0, 0},       // 1×1 pointwise, OW = 4
    {3, 4, 9, 8, 6, 1, 1, 2, 2, 0, 0},       // 1×1 stride 2 (ResNet downsample)
    {1, 1, 7, 1, 3, 3, 1, 1, 1, 1, 0},       // OW = 1: one column
    {3, 2, 4, 5, 3, 2, 3, 1, 2, 2, 3},       // border rows that read only padding
    {1, 6, 33, 40, 11, 5, 5, 1, 1, 2, 2},    // OH = 33: four full bands and a partial one; OW = 40
};

}  // namespace

TEST_CASE("conv2d direct: forward and backward match the plain loops, float and double") {
  std::mt19937_64 rng(1601);
  for (const Case& c : kCases) {
    direct_vs_reference<double>(c, rng);
    direct_vs_reference<float>(c, rng);
  }
}

TEST_CASE("conv2d direct: results are the same bits on 1 and 2 threads") {
  // Large enough (≥ 2^16 multiply-adds) that the kernels split work between threads.
  const kernels::Conv2dDims d = kernels::conv2d_dims(3, 2, 61, 70, 5, 5, 5, 3, 3, 3, 3);
  std::mt19937_64 rng(1602);
  const auto x = test::uniform_vec<float>((size_t)(d.N * d.C * d.H * d.W), rng);
  const auto w = test::uniform_vec<float>((size_t)(d.O * d.C * d.KH * d.KW), rng);
  const auto gy = test::uniform_vec<float>((size_t)(d.N * d.O * d.OH * d.OW), rng);
  std::vector<float> y[2], gx[2], gw[2];
  const int before = omp_get_max_threads();
  for (int t = 0; t < 2; ++t) {
    omp_set_num_threads(t + 1);
    y[t].assign((size_t)(d.N * d.O * d.OH * d.OW), 0.f);
    gx[t].assign(x.size(), 0.f);
    gw[t].assign(w.size(), 0.f);
    kernels::conv2d_forward_cpu_direct<float>(x.data(), w.data(), nullptr, y[t].data(), d);
    kernels::conv2d_backward_cpu_direct<float>(x.data(), w.data(), gy.data(), gx[t].data(), gw[t].data(), nullptr, d);
  }
  omp_set_num_threads(before);
  CHECK(y[0] == y[1]);
  CHECK(gx[0] == gx[1]);
  CHECK(gw[0] == gw[1]);
}

TEST_CASE("conv2d direct: the rule picks it for the study's CNN layers and not for ResNet18") {
  const kernels::Conv2dCpuTuning dflt;
  auto direct = [&](int64_t N, int64_t C, int64_t H, int64_t O, int64_t k, int64_t s, int64_t p) {
    return kernels::conv2d_use_direct(kernels::conv2d_dims(N, C, H, H, O, k, k, s, s, p, p), dflt);
  };
  // CNN1 (5, 5, 5) and CNN2 (10, 20, 50) at batch 9, 512²: k5, strides 3, 2, 2, pad 3.
  CHECK(direct(9, 1, 512, 5, 5, 3, 3));
  CHECK(direct(9, 5, 86, 5, 5, 2, 3));
  CHECK(direct(9, 5, 22, 5, 5, 2, 3));
  CHECK(direct(9, 1, 512, 10, 5, 3, 3));
  CHECK(direct(9, 10, 86, 20, 5, 2, 3));
  CHECK(direct(9, 20, 22, 50, 5, 2, 3));  // CNN2's conv3 (its dW through im2col: O > 20)
  CHECK_FALSE(direct(9, 20, 22, 64, 5, 2, 3));
  CHECK_FALSE(direct(9, 21, 22, 50, 5, 2, 3));
  // ResNet18 at 512²: the stem, a body layer, a downsample and the 1×1 fc head.
  CHECK_FALSE(direct(9, 1, 512, 64, 7, 2, 3));
  CHECK_FALSE(direct(9, 64, 128, 64, 3, 1, 1));
  CHECK_FALSE(direct(9, 64, 128, 128, 1, 2, 0));
  CHECK_FALSE(direct(9, 512, 16, 1, 1, 1, 0));
  // Tiny shapes (set-up dominates) stay on im2col; 0 and a positive limit force either way.
  CHECK_FALSE(direct(2, 3, 11, 5, 5, 3, 3));
  CHECK_FALSE(direct(2, 3, 11, 5, 3, 1, 1));  // N·OH·OW = 242 < 256
  CHECK(direct(2, 3, 12, 5, 3, 1, 1));        // 288 ≥ 256

  kernels::Conv2dCpuTuning never, always;
  never.direct_max_out = 0;
  always.direct_max_out = 64;
  CHECK_FALSE(kernels::conv2d_use_direct(kernels::conv2d_dims(9, 1, 512, 512, 5, 5, 5, 3, 3, 3, 3), never));
  CHECK(kernels::conv2d_use_direct(kernels::conv2d_dims(2, 3, 11, 11, 5, 3, 3, 1, 1, 1, 1), always));
}
