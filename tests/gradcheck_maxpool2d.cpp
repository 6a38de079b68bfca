#include <cmath>
#include <limits>

#include "engine/ops.h"
#include "tests/gradcheck.h"

using namespace ctg;

namespace {

// Direct definition: scan each window in row-major order, skipping padding
// (−∞), the first maximum wins; gx scatters gy to the winners.
void naive_maxpool(const Tensor& x, const ops::Pool2dParams& p, const std::vector<double>& gy,
                   std::vector<double>* y, std::vector<double>* gx) {
  const int64_t P = x.size(0) * x.size(1), H = x.size(2), W = x.size(3);
  const int64_t OH = (H + 2 * p.pad_h - p.kernel_h) / p.stride_h + 1;
  const int64_t OW = (W + 2 * p.pad_w - p.kernel_w) / p.stride_w + 1;
  const std::vector<double> v = x.to_vector();
  y->assign(P * OH * OW, 0);
  gx->assign(v.size(), 0);
  for (int64_t pl = 0; pl < P; ++pl)
    for (int64_t i = 0; i < OH; ++i)
      for (int64_t j = 0; j < OW; ++j) {
        double best = -std::numeric_limits<double>::infinity();
        int64_t arg = -1;
        for (int64_t a = 0; a < p.kernel_h; ++a)
          for (int64_t b = 0; b < p.kernel_w; ++b) {
            const int64_t h = i * p.stride_h + a - p.pad_h, w = j * p.stride_w + b - p.pad_w;
            if (h < 0 || h >= H || w < 0 || w >= W) continue;
            const int64_t k = pl * H * W + h * W + w;
            if (arg < 0 || v[k] > best) best = v[k], arg = k;
          }
        const int64_t o = (pl * OH + i) * OW + j;
        (*y)[o] = best;
        (*gx)[arg] += gy[o];
      }
}

struct PoolCase {
  const char* name;
  Shape shape;
  ops::Pool2dParams p;
};

// kernel, stride, padding: {kh, kw, sh, sw, ph, pw}.
const PoolCase kCases[] = {
    {"kernel 2 stride 2", {2, 3, 6, 8}, {2, 2, 2, 2, 0, 0}},
    {"kernel 3 stride 2 pad 1 (ResNet stem), odd sizes", {2, 3, 7, 9}, {3, 3, 2, 2, 1, 1}},
    {"kernel (3,2) stride (2,1) pad (1,0)", {2, 3, 7, 9}, {3, 2, 2, 1, 1, 0}},
    {"kernel 3 stride 1 pad 1 (overlapping windows)", {1, 2, 5, 6}, {3, 3, 1, 1, 1, 1}},
    {"kernel 3 stride 3 pad 1 (runtime stride)", {1, 2, 8, 10}, {3, 3, 3, 3, 1, 1}},
    {"kernel 2 stride 2 on odd sizes (last row/column dropped)", {2, 1, 5, 7}, {2, 2, 2, 2, 0, 0}},
    // Output widths that are whole multiples of the kernel's 16-column blocks.
    {"kernel 3 stride 2 pad 1, 32 output columns", {1, 2, 5, 64}, {3, 3, 2, 2, 1, 1}},
    {"kernel 2 stride 2, 16 output columns", {1, 1, 4, 33}, {2, 2, 2, 2, 0, 0}},
};

}  // namespace

TEST_CASE("maxpool2d forward and backward: hand-computed, kernel 2 stride 2, tie") {
  // Windows: {1,5,3,4}→5 @1, {2,0,8,7}→8 @6, {0,−1,2,9}→9 @13, {6,6,−3,6}→6,
  // a three-way tie won by the first in row-major order, @10.
  Tensor x = Tensor::from_vector({1, 5, 2, 0, 3, 4, 8, 7, 0, -1, 6, 6, 2, 9, -3, 6}, {1, 1, 4, 4}, DType::f64);
  x.set_requires_grad(true);
  Tensor y = ops::maxpool2d(x, {2, 2, 2, 2, 0, 0});
  CHECK(y.shape() == Shape{1, 1, 2, 2});
  CHECK(y.to_vector() == std::vector<double>{5, 8, 9, 6});
  autograd::backward(y, Tensor::from_vector({1, 2, 3, 4}, {1, 1, 2, 2}, DType::f64));
  CHECK(x.grad().to_vector() == std::vector<double>{0, 1, 0, 0, 0, 0, 2, 0, 0, 0, 4, 0, 0, 3, 0, 0});
}

TEST_CASE("maxpool2d: padding counts as -inf (all-negative input, kernel 3 stride 2 pad 1)") {
  // OH = OW = ⌊(3 + 2 − 3)/2⌋ + 1 = 2; every window hangs over the border.
  // Zero padding would give 0 everywhere; −∞ padding gives the real maxima.
  Tensor x = Tensor::from_vector({-1, -2, -3, -4, -5, -6, -7, -8, -9}, {1, 1, 3, 3}, DType::f64);
  Tensor y = ops::maxpool2d(x, {3, 3, 2, 2, 1, 1});
  CHECK(y.to_vector() == std::vector<double>{-1, -2, -4, -5});
}

TEST_CASE("maxpool2d: hand-computed non-square kernel (3,2) stride (2,1) pad (1,0)") {
  // x = [[4 1 7] [2 0 3] [8 5 6]]; OH = ⌊(3+2−3)/2⌋+1 = 2, OW = ⌊(3−2)/1⌋+1 = 2.
  // Row windows: padding+rows 0,1 for i=0; rows 1,2+padding for i=1.
  Tensor x = Tensor::from_vector({4, 1, 7, 2, 0, 3, 8, 5, 6}, {1, 1, 3, 3}, DType::f64);
  x.set_requires_grad(true);
  Tensor y = ops::maxpool2d(x, {3, 2, 2, 1, 1, 0});
  CHECK(y.shape() == Shape{1, 1, 2, 2});
  CHECK(y.to_vector() == std::vector<double>{4, 7, 8, 6});
  autograd::backward(y, Tensor::full({1, 1, 2, 2}, 1.0, DType::f64));
  CHECK(x.grad().to_vector() == std::vector<double>{1, 0, 1, 0, 0, 0, 1, 0, 1});
}

TEST_CASE("maxpool2d backward accumulates where windows overlap - NaN propagates") {
  // kernel 3 stride 1 pad 1 on 3×3: all nine windows contain the centre max.
  Tensor x = Tensor::from_vector({0, 1, 2, 3, 10, 4, 5, 6, 7}, {1, 1, 3, 3}, DType::f64);
  x.set_requires_grad(true);
  Tensor y = ops::maxpool2d(x, {3, 3, 1, 1, 1, 1});
  CHECK(y.to_vector() == std::vector<double>(9, 10.0));
  autograd::backward(y, Tensor::full({1, 1, 3, 3}, 0.5, DType::f64));
  CHECK(x.grad().to_vector() == std::vector<double>{0, 0, 0, 0, 4.5, 0, 0, 0, 0});
  Tensor xn = Tensor::from_vector({1, NAN, 2, 3}, {1, 1, 2, 2}, DType::f32);
  CHECK(std::isnan(ops::maxpool2d(xn, {2, 2, 2, 2, 0, 0}).item()));
}

TEST_CASE("maxpool2d matches a naive window scan, float64 and float32") {
  std::mt19937_64 rng(21);
  for (const PoolCase& pc : kCases) {
    INFO("case: " << pc.name);
    // Continuous values, and small integers with many ties inside windows
    // (the first maximum in row-major window order must win).
    Tensor x = test::rand_tensor(pc.shape, rng, -3, 3);
    Tensor ties = x.clone();
    for (int64_t i = 0; i < ties.numel(); ++i) ties.data<double>()[i] = std::floor(ties.data<double>()[i] / 2);
    for (int variant = 0; variant < 4; ++variant) {
      const Tensor& xin = variant < 2 ? x : ties;
      const DType dt = variant % 2 == 0 ? DType::f64 : DType::f32;
      INFO((variant < 2 ? "continuous values" : "values with ties"));
      INFO("dtype " << dtype_name(dt));
      Tensor xs = xin.to(dt).set_requires_grad(true);
      Tensor y = ops::maxpool2d(xs, pc.p);
      Tensor gy = test::rand_tensor(y.shape(), rng, 0.5, 1.5, dt);
      std::vector<double> y_ref, gx_ref;
      naive_maxpool(xs, pc.p, gy.to_vector(), &y_ref, &gx_ref);
      CHECK(y.to_vector() == y_ref);  // a max is exact in any precision
      autograd::backward(y, gy);
      const std::vector<double> gx = xs.grad().to_vector();
      REQUIRE(gx.size() == gx_ref.size());
      int64_t bad = 0;
      for (size_t i = 0; i < gx.size(); ++i) bad += std::fabs(gx[i] - gx_ref[i]) > 1e-6 * (1 + std::fabs(gx_ref[i]));
      CHECK(bad == 0);
    }
  }
}

TEST_CASE("maxpool2d errors name the op, the parameter and the wrong value") {
  Tensor x = Tensor::full({1, 2, 5, 5}, 1.0, DType::f64);
  CHECK_THROWS_WITH_AS(ops::maxpool2d(x, {3, 3, 2, 2, 2, 1}),
                       doctest::Contains("maxpool2d: pad_h=2 must be between 0 and kernel_h/2 (kernel_h=3)"), Error);
  CHECK_THROWS_WITH_AS(ops::maxpool2d(x, {2, 2, 2, 2, 0, -1}),
                       doctest::Contains("maxpool2d: pad_w=-1 must be between 0 and kernel_w/2"), Error);
  CHECK_THROWS_WITH_AS(ops::maxpool2d(x, {0, 2, 2, 2, 0, 0}), doctest::Contains("maxpool2d: kernel_h must be >= 1, got 0"),
                       Error);
  CHECK_THROWS_WITH_AS(ops::maxpool2d(x, {2, 2, 2, 0, 0, 0}), doctest::Contains("maxpool2d: stride_w must be >= 1, got 0"),
                       Error);
  CHECK_THROWS_WITH_AS(ops::maxpool2d(x, {2, 8, 2, 2, 0, 1}),
                       doctest::Contains("maxpool2d: kernel_w=8 is larger than the padded width 7"), Error);
  CHECK_THROWS_WITH_AS(ops::maxpool2d(Tensor::full({2, 5, 5}, 1.0, DType::f64), {}),
                       doctest::Contains("maxpool2d: input must be 4-D, got [2, 5, 5]"), Error);
  CHECK_THROWS_WITH_AS(ops::maxpool2d(Tensor::full({1, 1, 2, 2}, 1.0, DType::i64), {}),
                       doctest::Contains("maxpool2d: input has dtype int64"), Error);
}
