// bce_with_logits: forward at known values incl. |z| = 100 (where the naive
// formula overflows), hand-computed gradient, gradcheck of the logits, errors.
#include <cmath>

#include "engine/ops.h"
#include "tests/gradcheck.h"

using namespace ctg;

namespace {
// Stable per-element loss in long double: max(z,0) − z·y + log1p(e^−|z|).
long double bce_stable(long double z, long double y) {
  return std::max(z, 0.0L) - z * y + std::log1p(std::exp(-std::fabs(z)));
}
// Naive −[y log σ(z) + (1−y) log(1−σ(z))] in long double (only for moderate |z|).
long double bce_naive(long double z, long double y) {
  long double s = 1.0L / (1.0L + std::exp(-z));
  return -(y * std::log(s) + (1 - y) * std::log(1 - s));
}
}  // namespace

TEST_CASE("bce_with_logits forward: hand-computed values") {
  // z = 0, y = 1: log 2 = 0.69314718055994531
  // z = 2, y = 1: log(1 + e^−2) = 0.12692801104297249
  // z = −1, y = 0.25: max(0) + 0.25 + log(1 + e^−1) = 0.25 + 0.31326168751822284 = 0.56326168751822284
  // mean = (0.69314718055994531 + 0.12692801104297249 + 0.56326168751822284) / 3 = 0.46111229304038021
  for (DType dt : {DType::f32, DType::f64}) {
    CAPTURE(dtype_name(dt));
    Tensor z = Tensor::from_vector({0, 2, -1}, {3}, dt);
    Tensor y = Tensor::from_vector({1, 1, 0.25}, {3}, dt);
    Tensor loss = ops::bce_with_logits(z, y);
    CHECK(loss.numel() == 1);
    CHECK(loss.dtype() == dt);
    CHECK(loss.item() == doctest::Approx(0.46111229304038021).epsilon(dt == DType::f32 ? 1e-6 : 1e-14));
  }
}

TEST_CASE("bce_with_logits forward: matches the naive formula for moderate logits") {
  std::mt19937_64 rng(51);
  Tensor z = test::rand_tensor({4, 6}, rng, -5, 5);
  Tensor y = test::rand_tensor({4, 6}, rng, 0, 1);
  std::vector<double> zv = z.to_vector(), yv = y.to_vector();
  long double naive = 0;
  for (size_t i = 0; i < zv.size(); ++i) naive += bce_naive(zv[i], yv[i]);
  naive /= (long double)zv.size();
  CHECK(ops::bce_with_logits(z, y).item() == doctest::Approx((double)naive).epsilon(1e-12));
}

TEST_CASE("bce_with_logits forward: large |z| = 100 stays finite and exact") {
  // In double σ(100) rounds to 1, so the naive formula hits log(0) = −inf there.
  // Per element: (100, y=0) → 100; (100, y=1) → log1p(e^−100) ≈ 3.72e−44;
  // (−100, y=0) → 3.72e−44; (−100, y=1) → 100; (100, y=0.5) → 50.
  const std::vector<double> zs{100, 100, -100, -100, 100};
  const std::vector<double> ys{0, 1, 0, 1, 0.5};
  long double expect = 0;
  for (size_t i = 0; i < zs.size(); ++i) expect += bce_stable(zs[i], ys[i]);
  expect /= 5;
  CHECK((double)expect == doctest::Approx(50.0).epsilon(1e-15));  // (100 + 0 + 0 + 100 + 50) / 5
  for (DType dt : {DType::f32, DType::f64}) {
    CAPTURE(dtype_name(dt));
    Tensor z = Tensor::from_vector(zs, {5}, dt);
    Tensor y = Tensor::from_vector(ys, {5}, dt);
    z.set_requires_grad(true);
    Tensor loss = ops::bce_with_logits(z, y);
    REQUIRE(std::isfinite(loss.item()));
    CHECK(loss.item() == doctest::Approx((double)expect).epsilon(dt == DType::f32 ? 1e-6 : 1e-14));
    autograd::backward(loss);
    // dL/dz = (σ(z) − y) / 5: 0.2, 0, 0, −0.2, 0.1 (up to e^−100 terms).
    std::vector<double> g = z.grad().to_vector();
    const std::vector<double> ge{0.2, 0, 0, -0.2, 0.1};
    for (size_t i = 0; i < g.size(); ++i) {
      CAPTURE(i);
      REQUIRE(std::isfinite(g[i]));
      CHECK(g[i] == doctest::Approx(ge[i]).epsilon(1e-6));
    }
  }
  // A single element where only log1p saves the day: z = 100, y = 1 → 3.72e−44.
  Tensor z1 = Tensor::from_vector({100}, {1}, DType::f64);
  Tensor y1 = Tensor::from_vector({1}, {1}, DType::f64);
  double l1 = ops::bce_with_logits(z1, y1).item();
  CHECK(l1 > 0);
  CHECK(l1 == doctest::Approx((double)bce_stable(100, 1)).epsilon(1e-12));
}

TEST_CASE("bce_with_logits backward: hand-computed (sigma(z) - y) / N") {
  Tensor z = Tensor::from_vector({0, 2, -2, 1}, {2, 2}, DType::f64);
  Tensor y = Tensor::from_vector({1, 0, 0.5, 1}, {2, 2}, DType::f64);
  z.set_requires_grad(true);
  Tensor loss = ops::bce_with_logits(z, y);
  autograd::backward(loss, Tensor::full({}, 2.0, DType::f64));  // seed g = 2
  // 2·(σ(z) − y)/4: (0.5−1)/2 = −0.25; σ(2)/2 = 0.44039853898894122;
  // (σ(−2) − 0.5)/2 = −0.19039853898894122; (σ(1) − 1)/2 = −0.13447071068499756
  std::vector<double> g = z.grad().to_vector();
  CHECK(g[0] == doctest::Approx(-0.25).epsilon(1e-14));
  CHECK(g[1] == doctest::Approx(0.44039853898894122).epsilon(1e-14));
  CHECK(g[2] == doctest::Approx(-0.19039853898894122).epsilon(1e-14));
  CHECK(g[3] == doctest::Approx(-0.13447071068499756).epsilon(1e-14));
}

TEST_CASE("bce_with_logits errors name the op") {
  Tensor z = Tensor::full({4}, 0.5);
  CHECK_NOTHROW(ops::bce_with_logits(z, Tensor::full({4}, 1.0)));
  CHECK_THROWS_WITH_AS(ops::bce_with_logits(z, Tensor::full({5}, 1.0)), doctest::Contains("bce_with_logits"), Error);
  CHECK_THROWS_WITH_AS(ops::bce_with_logits(Tensor::full({0}, 1.0), Tensor::full({0}, 1.0)),
                       doctest::Contains("bce_with_logits"), Error);
  CHECK_THROWS_WITH_AS(ops::bce_with_logits(z, Tensor::full({4}, 1.0, DType::f64)),
                       doctest::Contains("bce_with_logits"), Error);
  CHECK_THROWS_WITH_AS(ops::bce_with_logits(z, Tensor::full({4}, 1.0, DType::i64)),
                       doctest::Contains("bce_with_logits"), Error);
  CHECK_THROWS_WITH_AS(ops::bce_with_logits(Tensor(), z), doctest::Contains("bce_with_logits"), Error);
}
