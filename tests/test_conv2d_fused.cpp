// The unfold fused into ctgrad's SGEMM packing (kernels/cpu/im2col.h, the
// GemmBSource of kernels/cpu/sgemm.h), in three layers:
//  1. im2col_row writes exactly the rows of the im2col matrix, for any
//     segment (crossing output rows, bands and images of a group);
//  2. the SGEMM with op(B) from a GemmBSource equals the same SGEMM on B in
//     memory, bitwise, for both transposes, split-K included, every kernel
//     this CPU runs (the packed panels hold the same values, so every sum is
//     the same chain);
//  3. the tuned float convolution with the unfold fused equals the unfused
//     one bitwise (forward, dx, dW, db; every tiling), and both match the
//     plain reference loops to |d| ≤ 1e-5·(Σ|terms|-scaled 1) + 1e-5.
#include <doctest/doctest.h>

#include <cmath>
#include <random>
#include <string>
#include <vector>

#include "engine/parallel.h"
#include "kernels/conv2d.h"
#include "kernels/cpu/gemm.h"
#include "kernels/cpu/im2col.h"
#include "kernels/cpu/sgemm.h"
#include "tests/test_util.h"

using namespace ctg;
using namespace ctg::kernels;

namespace {

struct Conf {
  int64_t N, C, H, W, O, KH, KW, SH, SW, PH, PW;
  Conv2dDims dims() const { return conv2d_dims(N, C, H, W, O, KH, KW, SH, SW, PH, PW); }
};
// Odd sizes, strides 1–3, padding 0 to KH−1 and beyond, 1×1 with padding,
// rectangular kernels, the stem's C = 1 7×7 stride 2.
const Conf kConfs[] = {{2, 3, 7, 9, 5, 3, 3, 1, 1, 1, 1},   {3, 2, 11, 6, 7, 3, 2, 2, 1, 1, 0},
                       {1, 1, 23, 21, 9, 7, 7, 2, 2, 3, 3}, {2, 4, 5, 5, 3, 1, 1, 1, 1, 1, 1},
                       {2, 3, 9, 10, 4, 3, 3, 3, 2, 2, 1},  {1, 2, 6, 7, 3, 5, 3, 1, 1, 4, 2},
                       {3, 5, 13, 12, 17, 3, 3, 1, 1, 1, 1}};

std::vector<float> rand_vec(size_t n, std::mt19937_64& rng) { return test::uniform_vec<float>(n, rng); }

// Tiles as conv2d_tuned.cpp cuts them: one group of all images, groups of two,
// whole images, bands of `rows` output rows.
std::vector<cpu_conv::Tile> tiles_of(const Conv2dDims& d) {
  std::vector<cpu_conv::Tile> t{{0, d.N, 0, d.OH}};
  if (d.N > 1) t.push_back({1, d.N - 1, 0, d.OH});
  for (int64_t rows : {int64_t(1), int64_t(2), d.OH})
    for (int64_t i0 = 0; i0 < d.OH; i0 += rows) t.push_back({d.N - 1, 1, i0, std::min(d.OH, i0 + rows)});
  return t;
}

}  // namespace

TEST_CASE("im2col_row: every segment of a row equals that part of the im2col matrix") {
  std::mt19937_64 rng(11);
  for (const Conf& c : kConfs) {
    const Conv2dDims d = c.dims();
    const std::vector<float> x = rand_vec((size_t)(d.N * d.C * d.H * d.W), rng);
    const int64_t K = d.C * d.KH * d.KW;
    for (const cpu_conv::Tile& t : tiles_of(d)) {
      const int64_t ld = t.g * (t.i1 - t.i0) * d.OW;
      const float* xt = x.data() + t.n0 * d.C * d.H * d.W;
      std::vector<float> cols((size_t)(K * ld), NAN);
      cpu_conv::im2col(xt, cols.data(), t, d);
      std::uniform_int_distribution<int64_t> pick(0, ld - 1);
      int64_t bad = 0;
      for (int64_t r = 0; r < K; ++r) {
        std::vector<float> row((size_t)ld + 1, -9.f);  // one guard element past the segment
        cpu_conv::im2col_row(xt, t, d, r, 0, ld, row.data());
        for (int64_t j = 0; j < ld; ++j) bad += row[(size_t)j] != cols[(size_t)(r * ld + j)];
        bad += row[(size_t)ld] != -9.f;
        for (int rep = 0; rep < 4; ++rep) {  // random segments: starts inside rows, bands and images
          const int64_t c0 = pick(rng), n = std::uniform_int_distribution<int64_t>(1, ld - c0)(rng);
          std::vector<float> seg((size_t)n + 1, -9.f);
          cpu_conv::im2col_row(xt, t, d, r, c0, n, seg.data());
          for (int64_t j = 0; j < n; ++j) bad += seg[(size_t)j] != cols[(size_t)(r * ld + c0 + j)];
          bad += seg[(size_t)n] != -9.f;
        }
      }
      INFO("N C H W O KH KW SH SW PH PW = " << c.N << ' ' << c.C << ' ' << c.H << ' ' << c.W << ' ' << c.O << ' '
                                            << c.KH << ' ' << c.KW << ' ' << c.SH << ' ' << c.SW << ' ' << c.PH
                                            << ' ' << c.PW << ", tile n0 " << t.n0 << " g " << t.g << " rows "
                                            << t.i0 << ".." << t.i1);
      CHECK(bad == 0);
    }
  }
}

namespace {
// A memory-backed GemmBSource over a stored matrix, to hold the GEMM's
// source path against its dense path.
struct MemRows {
  const float* p;
  int64_t ld;
  static void rows(const void* ctx, int64_t r, int64_t c0, int64_t n, float* dst) {
    const auto* m = static_cast<const MemRows*>(ctx);
    for (int64_t j = 0; j < n; ++j) dst[j] = m->p[r * m->ld + c0 + j];
  }
};
}  // namespace

TEST_CASE("sgemm: op(B) from a GemmBSource equals op(B) in memory, bitwise, both transposes, split-K too") {
  std::mt19937_64 rng(12);
  struct S {
    int64_t M, N, K;
  };
  // Block edges of both kernels (MR 8/6, NR 48/16, KC 256, NC 2064), C too
  // small to share with K long and ≥ 2^21 multiply-adds (split-K on 2
  // threads), the stem's 64×49 weight gradient.
  const S shapes[] = {{7, 50, 33},   {64, 49, 3000}, {9, 20, 20000}, {30, 40, 4000}, {17, 2100, 300},
                      {96, 97, 257}, {1, 5, 700},    {13, 65, 260}};
  const int before = num_threads();
  for (cpu::CpuGemm g : {cpu::CpuGemm::avx512, cpu::CpuGemm::avx2}) {
    if (!cpu::cpu_gemm_available(g)) continue;
    for (int threads : {1, 2}) {
      set_num_threads(threads);
      for (const S& s : shapes)
        for (bool ta : {false, true})
          for (bool tb : {false, true})
            for (float beta : {0.f, 0.5f}) {
              const int64_t lda = (ta ? s.M : s.K) + 2, ldb = (tb ? s.K : s.N) + 3;
              const std::vector<float> A = rand_vec((size_t)((ta ? s.K : s.M) * lda), rng);
              const std::vector<float> B = rand_vec((size_t)((tb ? s.N : s.K) * ldb), rng);
              std::vector<float> c1 = rand_vec((size_t)(s.M * s.N), rng), c2 = c1;
              cpu::sgemm(g, ta, tb, s.M, s.N, s.K, 1.25f, A.data(), lda, B.data(), ldb, beta, c1.data(), s.N);
              const MemRows mem{B.data(), ldb};
              const cpu::GemmBSource src{&MemRows::rows, &mem};
              cpu::sgemm(g, ta, tb, s.M, s.N, s.K, 1.25f, A.data(), lda, src, beta, c2.data(), s.N);
              int64_t bad = 0;
              for (size_t i = 0; i < c1.size(); ++i) bad += c1[i] != c2[i];
              INFO(std::string(cpu::cpu_gemm_name(g)) << " threads " << threads << " M N K " << s.M << ' ' << s.N << ' ' << s.K
                                         << " ta " << ta << " tb " << tb << " beta " << beta);
              CHECK(bad == 0);
            }
    }
  }
  set_num_threads(before);
}

namespace {
int64_t count_diff(const std::vector<float>& a, const std::vector<float>& b) {
  int64_t n = 0;
  for (size_t i = 0; i < a.size(); ++i) n += !(a[i] == b[i]);
  return n;
}
// |got − want| ≤ tol·(1 + |want|) everywhere.
int64_t count_far(const std::vector<float>& got, const std::vector<float>& want, double tol) {
  int64_t n = 0;
  for (size_t i = 0; i < got.size(); ++i) n += !(std::fabs((double)got[i] - want[i]) <= tol * (1 + std::fabs(want[i])));
  return n;
}
}  // namespace

TEST_CASE("conv2d tuned, float: the unfold fused into the SGEMM equals the written unfold, bitwise, every tiling") {
  if (!cpu::gemm_takes_source()) {
    MESSAGE("the selected CPU GEMM is OpenBLAS: nothing fuses");
    return;
  }
  std::mt19937_64 rng(13);
  const int64_t huge = int64_t(1) << 40;
  const int before = num_threads();
  for (int threads : {1, 2}) {
    set_num_threads(threads);
    for (const Conf& c : kConfs) {
      const Conv2dDims d = c.dims();
      const int64_t K = d.C * d.KH * d.KW, P = d.OH * d.OW;
      // {wide_below, max_scratch, direct_max_out}: defaults with the direct
      // kernel off, one-row bands, one tile per image, groups of two images.
      const Conv2dCpuTuning tunings[] = {{2048, int64_t(1) << 24, 0}, {0, 1, 0}, {0, huge, 0},
                                         {huge, 2 * (K + d.O) * P, 0}};
      const std::vector<float> x = rand_vec((size_t)(d.N * d.C * d.H * d.W), rng);
      const std::vector<float> w = rand_vec((size_t)(d.O * K), rng), b = rand_vec((size_t)d.O, rng);
      const std::vector<float> gy = rand_vec((size_t)(d.N * d.O * P), rng);
      std::vector<float> ry((size_t)(d.N * d.O * P)), rgx(x.size(), 0.25f), rgw(w.size(), 0.25f), rgb(b.size(), 0.25f);
      conv2d_forward_cpu_reference(x.data(), w.data(), b.data(), ry.data(), d);
      conv2d_backward_cpu_reference(x.data(), w.data(), gy.data(), rgx.data(), rgw.data(), rgb.data(), d);
      for (Conv2dCpuTuning t : tunings) {
        std::vector<float> y[2], gx[2], gw[2], gb[2];
        for (int f = 0; f < 2; ++f) {
          t.fused_im2col = f;
          y[f].assign(ry.size(), NAN);
          conv2d_forward_cpu_tuned(x.data(), w.data(), b.data(), y[f].data(), d, t);
          gx[f].assign(x.size(), 0.25f), gw[f].assign(w.size(), 0.25f), gb[f].assign(b.size(), 0.25f);
          conv2d_backward_cpu_tuned(x.data(), w.data(), gy.data(), gx[f].data(), gw[f].data(), gb[f].data(), d, t);
        }
        INFO("threads " << threads << ", N C H W O KH KW SH SW PH PW = " << c.N << ' ' << c.C << ' ' << c.H << ' '
                        << c.W << ' ' << c.O << ' ' << c.KH << ' ' << c.KW << ' ' << c.SH << ' ' << c.SW << ' '
                        << c.PH << ' ' << c.PW << ", tuning {" << t.wide_below << ", " << t.max_scratch << "}");
        CHECK(count_diff(y[1], y[0]) == 0);
        CHECK(count_diff(gx[1], gx[0]) == 0);
        CHECK(count_diff(gw[1], gw[0]) == 0);
        CHECK(count_diff(gb[1], gb[0]) == 0);
        CHECK(count_far(y[1], ry, 1e-5) == 0);  // and both right: the reference loops, float rounding
        CHECK(count_far(gx[1], rgx, 1e-5) == 0);
        CHECK(count_far(gw[1], rgw, 1e-5) == 0);
      }
    }
  }
  set_num_threads(before);
}
