// sigmoid: hand-computed forward incl. large |x| (no NaN/inf), gradcheck,
// hand-computed backward, errors.
#include <cmath>

#include "engine/ops.h"
#include "tests/gradcheck.h"

using namespace ctg;

TEST_CASE("sigmoid forward: hand-computed at 0, +-2, +-50") {
  // σ(0) = 0.5, σ(2) = 0.88079707797788244..., σ(−2) = 0.11920292202211755...,
  // σ(50) = 1 − 1.93e−22 (rounds to 1), σ(−50) = 1.92874984796391778e−22.
  const std::vector<double> xs{0, 2, -2, 50, -50};
  const std::vector<double> expect{0.5, 0.88079707797788244, 0.11920292202211756, 1.0,
                                   1.9287498479639178e-22};
  for (DType dt : {DType::f32, DType::f64}) {
    CAPTURE(dtype_name(dt));
    const double rel = dt == DType::f32 ? 1e-6 : 1e-14;
    Tensor y = ops::sigmoid(Tensor::from_vector(xs, {5}, dt));
    CHECK(y.shape() == Shape{5});
    CHECK(y.dtype() == dt);
    std::vector<double> v = y.to_vector();
    for (size_t i = 0; i < xs.size(); ++i) {
      CAPTURE(xs[i]);
      CHECK(std::isfinite(v[i]));
      CHECK(v[i] == doctest::Approx(expect[i]).epsilon(rel));
    }
    CHECK(v[0] == 0.5);                 // exact
    CHECK(v[4] > 0);                    // tiny but not flushed to 0 or NaN
    CHECK(v[4] < 1e-21);
    CHECK(v[1] + v[2] == doctest::Approx(1.0).epsilon(rel));  // σ(x) + σ(−x) = 1
  }
}

TEST_CASE("sigmoid backward: hand-computed, finite at +-50") {
  Tensor x = Tensor::from_vector({0, 2, -2, 50, -50}, {5}, DType::f64);
  x.set_requires_grad(true);
  Tensor y = ops::sigmoid(x);
  autograd::backward(y, Tensor::from_vector({4, 1, 2, 1, 1}, {5}, DType::f64));
  std::vector<double> g = x.grad().to_vector();
  // σ' = σ(1 − σ): at 0 it is 1/4 (×4 = 1); at ±2 it is 0.10499358540350652 (×1, ×2).
  CHECK(g[0] == 1.0);
  CHECK(g[1] == doctest::Approx(0.10499358540350652).epsilon(1e-13));
  CHECK(g[2] == doctest::Approx(2 * 0.10499358540350652).epsilon(1e-13));
  for (double v : g) CHECK(std::isfinite(v));
  CHECK(g[3] >= 0);
  CHECK(g[3] < 1e-20);
  CHECK(g[4] > 0);
  CHECK(g[4] < 1e-20);
}

TEST_CASE("sigmoid errors name the op") {
  CHECK_THROWS_WITH_AS(ops::sigmoid(Tensor::full({3}, 1.0, DType::i64)), doctest::Contains("sigmoid"), Error);
  CHECK_THROWS_WITH_AS(ops::sigmoid(Tensor()), doctest::Contains("sigmoid"), Error);
}
