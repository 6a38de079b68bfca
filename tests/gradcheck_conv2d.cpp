#include <cmath>
#include <sstream>
#include <string>

#include "engine/ops.h"
#include "kernels/conv2d.h"
#include "tests/gradcheck.h"
#include "tests/test_util.h"

using namespace ctg;

namespace {

using Conf = test::ConvConf;

// The definition, loop by loop: y[n,o,i,j] = b[o] + Σ_{c,p,q} W[o,c,p,q]·x[n,c,i·SH+p−PH,j·SW+q−PW].
std::vector<double> naive_forward(const std::vector<double>& x, const std::vector<double>& w,
                                  const std::vector<double>* b, const kernels::Conv2dDims& d) {
  std::vector<double> y((size_t)(d.N * d.O * d.OH * d.OW));
  for (int64_t n = 0; n < d.N; ++n)
    for (int64_t o = 0; o < d.O; ++o)
      for (int64_t i = 0; i < d.OH; ++i)
        for (int64_t j = 0; j < d.OW; ++j) {
          double s = b ? (*b)[o] : 0.0;
          for (int64_t c = 0; c < d.C; ++c)
            for (int64_t p = 0; p < d.KH; ++p)
              for (int64_t q = 0; q < d.KW; ++q) {
                int64_t h = i * d.SH + p - d.PH, v = j * d.SW + q - d.PW;
                if (h < 0 || h >= d.H || v < 0 || v >= d.W) continue;
                s += w[((o * d.C + c) * d.KH + p) * d.KW + q] * x[((n * d.C + c) * d.H + h) * d.W + v];
              }
          y[((n * d.O + o) * d.OH + i) * d.OW + j] = s;
        }
  return y;
}

// The same loops transposed by hand: every product W·x in the forward sends
// gy·x to dW and gy·W to dx.
void naive_backward(const std::vector<double>& x, const std::vector<double>& w, const std::vector<double>& gy,
                    std::vector<double>& gx, std::vector<double>& gw, std::vector<double>& gb,
                    const kernels::Conv2dDims& d) {
  for (int64_t n = 0; n < d.N; ++n)
    for (int64_t o = 0; o < d.O; ++o)
      for (int64_t i = 0; i < d.OH; ++i)
        for (int64_t j = 0; j < d.OW; ++j) {
          double g = gy[((n * d.O + o) * d.OH + i) * d.OW + j];
          gb[o] += g;
          for (int64_t c = 0; c < d.C; ++c)
            for (int64_t p = 0; p < d.KH; ++p)
              for (int64_t q = 0; q < d.KW; ++q) {
                int64_t h = i * d.SH + p - d.PH, v = j * d.SW + q - d.PW;
                if (h < 0 || h >= d.H || v < 0 || v >= d.W) continue;
                size_t wi = ((o * d.C + c) * d.KH + p) * d.KW + q, xi = ((n * d.C + c) * d.H + h) * d.W + v;
                gw[wi] += g * x[xi];
                gx[xi] += g * w[wi];
              }
        }
}

std::string describe(const Conf& c) {
  std::ostringstream os;
  os << "x [" << c.N << "," << c.C << "," << c.H << "," << c.W << "], W [" << c.O << "," << c.C << ","
     << c.KH << "," << c.KW << "], stride (" << c.SH << "," << c.SW << "), pad (" << c.PH << "," << c.PW
     << "), bias " << c.bias;
  return os.str();
}

ops::Conv2dParams params_of(const Conf& c) { return {c.SH, c.SW, c.PH, c.PW}; }

using ctg::test::check_close;
using ctg::test::contains;
using ctg::test::error_of;

}  // namespace

TEST_CASE("conv2d forward: hand-computed") {
  // x = 1..9 as 3×3, W = [[1,2],[3,4]].
  Tensor x = Tensor::from_vector({1, 2, 3, 4, 5, 6, 7, 8, 9}, {1, 1, 3, 3});
  Tensor w = Tensor::from_vector({1, 2, 3, 4}, {1, 1, 2, 2});
  SUBCASE("stride 1, no padding") {
    // y00 = 1·1+2·2+4·3+5·4 = 37; y01 = 2+6+15+24 = 47; y10 = 4+10+21+32 = 67; y11 = 5+12+24+36 = 77.
    Tensor y = ops::conv2d(x, w, Tensor(), {});
    CHECK(y.shape() == Shape{1, 1, 2, 2});
    CHECK(y.to_vector() == std::vector<double>{37, 47, 67, 77});
    Tensor yb = ops::conv2d(x, w, Tensor::from_vector({0.5}, {1}), {});
    CHECK(yb.to_vector() == std::vector<double>{37.5, 47.5, 67.5, 77.5});
  }
  SUBCASE("stride 2, padding 1") {
    // Window (i,j) covers rows 2i−1..2i, columns 2j−1..2j; the padding ring is 0.
    // y00 = x00·W11 = 4; y01 = x01·W10 + x02·W11 = 6+12 = 18;
    // y10 = x10·W01 + x20·W11 = 8+28 = 36; y11 = 5+12+24+36 = 77.
    Tensor y = ops::conv2d(x, w, Tensor(), {2, 2, 1, 1});
    CHECK(y.shape() == Shape{1, 1, 2, 2});
    CHECK(y.to_vector() == std::vector<double>{4, 18, 36, 77});
  }
  SUBCASE("1x1, two channels in and out, bias") {
    // y0 = 1·c0 + 0.5·c1 + 1,  y1 = −c0 + 2·c1 − 1.
    Tensor x2 = Tensor::from_vector({1, 2, 3, 4, 10, 20, 30, 40}, {1, 2, 2, 2});
    Tensor w2 = Tensor::from_vector({1, 0.5, -1, 2}, {2, 2, 1, 1});
    Tensor y = ops::conv2d(x2, w2, Tensor::from_vector({1, -1}, {2}), {});
    CHECK(y.to_vector() == std::vector<double>{7, 13, 19, 25, 18, 37, 56, 75});
  }
}

TEST_CASE("conv2d forward matches the direct 7-loop convolution") {
  std::mt19937_64 rng(7);
  // Small P (whole images grouped under one GEMM), large P (bands of output
  // rows), odd sizes, padding wider than the kernel reach, 1×1 in place.
  const Conf confs[] = {
      {2, 3, 7, 9, 4, 3, 2, 2, 1, 1, 2, true},   {5, 2, 4, 4, 3, 3, 3, 1, 1, 1, 1, true},
      {4, 2, 30, 30, 3, 3, 3, 1, 1, 1, 1, false}, {2, 2, 50, 47, 3, 3, 3, 1, 1, 1, 1, true},
      {3, 1, 17, 13, 5, 7, 7, 2, 2, 3, 3, false}, {2, 3, 11, 10, 2, 5, 5, 3, 3, 3, 3, true},
      {3, 4, 6, 5, 3, 1, 1, 1, 1, 0, 0, true},    {3, 4, 7, 8, 3, 1, 1, 2, 2, 0, 0, false},
      {1, 2, 3, 2, 2, 3, 3, 1, 2, 2, 2, true}};
  for (const Conf& c : confs) {
    INFO(describe(c));
    kernels::Conv2dDims d = c.dims();
    Tensor x = test::rand_tensor({c.N, c.C, c.H, c.W}, rng), w = test::rand_tensor({c.O, c.C, c.KH, c.KW}, rng);
    Tensor b = c.bias ? test::rand_tensor({c.O}, rng) : Tensor();
    std::vector<double> bv = c.bias ? b.to_vector() : std::vector<double>();
    std::vector<double> want = naive_forward(x.to_vector(), w.to_vector(), c.bias ? &bv : nullptr, d);
    Tensor y = ops::conv2d(x, w, b, params_of(c));
    CHECK(y.shape() == Shape{c.N, c.O, d.OH, d.OW});
    check_close(y.to_vector(), want, 1e-12, 1e-12);
    // float32 through the same path: rounding only.
    Tensor yf = ops::conv2d(x.to(DType::f32), w.to(DType::f32), c.bias ? b.to(DType::f32) : Tensor(), params_of(c));
    check_close(yf.to_vector(), want, 1e-4, 1e-4);
  }
}

TEST_CASE("conv2d kernels match the direct loops under every tiling") {
  std::mt19937_64 rng(11);
  // The kernel cuts the work into im2col tiles: one image or a band of its
  // output rows, or a group of whole images under one wide GEMM. Shrinking the
  // tuning runs every cut (one-row bands, partial bands, remainder groups) on small shapes.
  const Conf confs[] = {{5, 2, 13, 12, 3, 3, 2, 2, 1, 1, 2, true},
                        {4, 3, 10, 9, 2, 3, 3, 1, 1, 1, 1, true},
                        {3, 1, 17, 13, 4, 7, 7, 2, 2, 3, 3, true},
                        {3, 2, 11, 10, 2, 5, 5, 3, 3, 3, 3, true},
                        {3, 4, 9, 8, 3, 1, 1, 1, 1, 0, 0, true},
                        {2, 2, 4, 5, 3, 2, 2, 1, 1, 3, 3, true},   // border rows that read only padding
                        // Large enough that im2col/col2im run on several threads:
                        {2, 16, 40, 40, 3, 3, 3, 1, 1, 1, 1, true},
                        {2, 16, 41, 40, 3, 3, 3, 2, 2, 1, 1, true}};
  const int64_t huge = int64_t(1) << 40;
  for (const Conf& c : confs) {
    kernels::Conv2dDims d = c.dims();
    const int64_t K = c.C * c.KH * c.KW, P = d.OH * d.OW;
    const kernels::Conv2dCpuTuning tunings[] = {
        {},                              // defaults (the direct kernel where its rule says)
        {0, 1, 0},                       // bands of one output row (direct off: the im2col cuts)
        {0, 3 * K * d.OW, 0},            // bands of up to three rows (balanced, some partial)
        {0, huge, 0},                    // one tile per image
        {huge, 1, 0},                    // groups of one whole image
        {huge, 2 * (K + c.O) * P, 0}};   // groups of two (+ remainder): wide GEMM + scatter
    std::vector<double> x = test::rand_tensor({c.N, c.C, c.H, c.W}, rng).to_vector();
    std::vector<double> w = test::rand_tensor({c.O, c.C, c.KH, c.KW}, rng).to_vector();
    std::vector<double> b = test::rand_tensor({c.O}, rng).to_vector();
    std::vector<double> gy = test::rand_tensor({c.N, c.O, d.OH, d.OW}, rng).to_vector();
    const std::vector<double> want_y = naive_forward(x, w, &b, d);
    // Start every gradient at 0.25: the kernel must add, not overwrite.
    std::vector<double> want_gx(x.size(), 0.25), want_gw(w.size(), 0.25), want_gb((size_t)c.O, 0.25);
    naive_backward(x, w, gy, want_gx, want_gw, want_gb, d);
    for (const auto& t : tunings) {
      INFO(describe(c) << ", tuning {" << t.wide_below << ", " << t.max_scratch << "}");
      std::vector<double> y(want_y.size(), -7.0);
      kernels::conv2d_forward_cpu(x.data(), w.data(), b.data(), y.data(), d, t);
      check_close(y, want_y, 1e-12, 1e-12);
      std::vector<double> gx(x.size(), 0.25), gw(w.size(), 0.25), gb((size_t)c.O, 0.25);
      kernels::conv2d_backward_cpu(x.data(), w.data(), gy.data(), gx.data(), gw.data(), gb.data(), d, t);
      check_close(gx, want_gx, 1e-10, 1e-10);
      check_close(gw, want_gw, 1e-10, 1e-10);
      check_close(gb, want_gb, 1e-10, 1e-10);
      // Only dx requested: the other buffers may be null.
      std::vector<double> gx2(x.size(), 0.25);
      kernels::conv2d_backward_cpu<double>(x.data(), w.data(), gy.data(), gx2.data(), nullptr, nullptr, d, t);
      check_close(gx2, want_gx, 1e-10, 1e-10);
    }
  }
}

TEST_CASE("conv2d errors name the op and the wrong value") {
  Tensor x = Tensor::full({1, 3, 5, 5}, 0.5);
  Tensor w = Tensor::full({4, 2, 3, 3}, 0.5);
  std::string m = error_of([&] { ops::conv2d(x, w, Tensor(), {}); });
  CHECK(contains(m, "conv2d"));
  CHECK(contains(m, "3 channels"));
  CHECK(contains(m, "expects 2"));

  m = error_of([&] { ops::conv2d(x, Tensor::full({4, 3, 7, 7}, 0.5), Tensor(), {}); });
  CHECK(contains(m, "conv2d"));
  CHECK(contains(m, "7x7"));
  CHECK(contains(m, "output size would be < 1"));
  // The same kernel fits once padded: 5 + 2·1 − 7 = 0 → one output pixel.
  // Its value: 3 channels × 25 unpadded pixels × 0.5·0.5 = 18.75.
  Tensor y1 = ops::conv2d(x, Tensor::full({4, 3, 7, 7}, 0.5), Tensor(), {1, 1, 1, 1});
  CHECK(y1.shape() == Shape{1, 4, 1, 1});
  CHECK(y1.at(0) == doctest::Approx(18.75));

  m = error_of([&] { ops::conv2d(x, Tensor::full({4, 3, 3, 3}, 0.5), Tensor(), {0, 1, 0, 0}); });
  CHECK(contains(m, "conv2d"));
  CHECK(contains(m, "stride (0, 1)"));
  m = error_of([&] { ops::conv2d(x, Tensor::full({4, 3, 3, 3}, 0.5), Tensor(), {1, 1, 0, -1}); });
  CHECK(contains(m, "padding (0, -1)"));
  m = error_of([&] { ops::conv2d(x, Tensor::full({4, 3, 3, 3}, 0.5), Tensor::full({3}, 0.5), {}); });
  CHECK(contains(m, "conv2d: bias [3]"));
  m = error_of([&] { ops::conv2d(Tensor::full({3, 5, 5}, 0.5), Tensor::full({4, 3, 3, 3}, 0.5), Tensor(), {}); });
  CHECK(contains(m, "conv2d: input must be 4-D"));
  m = error_of([&] { ops::conv2d(x, Tensor::full({4, 3, 3, 3}, 0.5, DType::f64), Tensor(), {}); });
  CHECK(contains(m, "conv2d: weight has dtype"));
}
