// dropout: mask statistics, scaling, determinism in the seed, identity in eval
// mode / p = 0, gradient = mask scale, gradcheck with a fixed seed, errors.
#include <cmath>

#include "engine/ops.h"
#include "kernels/dropout.h"
#include "tests/gradcheck.h"

using namespace ctg;

namespace {
// Input with every element nonzero (so a zero in the output means "dropped").
Tensor nonzero_input(int64_t n, DType dt, uint64_t seed) {
  std::mt19937_64 rng(seed);
  return test::rand_tensor({n}, rng, 0.5, 1.5, dt);
}
std::vector<bool> mask_of(const Tensor& y) {
  std::vector<double> v = y.to_vector();
  std::vector<bool> m(v.size());
  for (size_t i = 0; i < v.size(); ++i) m[i] = v[i] != 0.0;
  return m;
}
}  // namespace

TEST_CASE("dropout forward: fraction of zeros within binomial tolerance, survivors scaled by 1/(1-p)") {
  const int64_t n = 100000;
  for (double p : {0.1, 0.3, 0.5, 0.75}) {
    for (DType dt : {DType::f32, DType::f64}) {
      CAPTURE(p);
      CAPTURE(dtype_name(dt));
      Tensor x = nonzero_input(n, dt, 41);
      Tensor y = ops::dropout(x, p, /*training=*/true, /*seed=*/1234);
      REQUIRE(y.shape() == x.shape());
      CHECK(y.dtype() == dt);
      std::vector<double> xv = x.to_vector(), yv = y.to_vector();
      int64_t zeros = 0, bad_scale = 0;
      // The kernel multiplies by scale = T(1/(1-p)); survivors must be exactly x·scale.
      const double scale64 = 1.0 / (1.0 - p);
      for (int64_t i = 0; i < n; ++i) {
        if (yv[i] == 0.0) { ++zeros; continue; }
        double expect = dt == DType::f32 ? (double)((float)xv[i] * (float)scale64) : xv[i] * scale64;
        if (yv[i] != expect) ++bad_scale;
      }
      const double sd = std::sqrt((double)n * p * (1 - p));
      CHECK(std::fabs((double)zeros - p * (double)n) < 5 * sd);
      CHECK(bad_scale == 0);
    }
  }
  // p = 0.5 and 0.75: scales 2 and 4 are exact in binary, so y ∈ {0, 2x} / {0, 4x} exactly.
  Tensor x = nonzero_input(1000, DType::f64, 42);
  std::vector<double> xv = x.to_vector();
  std::vector<double> y2 = ops::dropout(x, 0.5, true, 9).to_vector();
  std::vector<double> y4 = ops::dropout(x, 0.75, true, 9).to_vector();
  int64_t bad = 0;
  for (size_t i = 0; i < xv.size(); ++i) {
    if (y2[i] != 0 && y2[i] != 2 * xv[i]) ++bad;
    if (y4[i] != 0 && y4[i] != 4 * xv[i]) ++bad;
  }
  CHECK(bad == 0);
}

TEST_CASE("dropout mask: same seed same mask, different seed different mask, independent of n") {
  const int64_t n = 100000;  // large enough for the parallel path
  const double p = 0.3;
  Tensor x = nonzero_input(n, DType::f32, 43);
  std::vector<bool> m1 = mask_of(ops::dropout(x, p, true, 77));
  std::vector<bool> m2 = mask_of(ops::dropout(x, p, true, 77));
  std::vector<bool> m3 = mask_of(ops::dropout(x, p, true, 78));
  CHECK(m1 == m2);
  int64_t differ = 0;
  for (int64_t i = 0; i < n; ++i) differ += m1[(size_t)i] != m3[(size_t)i];
  // Independent masks differ on a fraction 2p(1-p) = 0.42 of the elements.
  CHECK(differ > (int64_t)(0.35 * n));
  CHECK(differ < (int64_t)(0.49 * n));

  // The mask is a function of (seed, index): a short tensor (serial path) sees
  // the same prefix, and it matches the documented hash.
  const std::vector<double> xv = x.to_vector();
  Tensor xs = Tensor::from_vector(std::vector<double>(xv.begin(), xv.begin() + 1000), {1000}, DType::f32);
  std::vector<bool> ms = mask_of(ops::dropout(xs, p, true, 77));
  int64_t prefix_mismatch = 0, hash_mismatch = 0;
  for (size_t i = 0; i < ms.size(); ++i) {
    prefix_mismatch += ms[i] != m1[i];
    hash_mismatch += ms[i] != (kernels::dropout_uniform(77, i) >= p);
  }
  CHECK(prefix_mismatch == 0);
  CHECK(hash_mismatch == 0);
}

TEST_CASE("dropout: eval mode and p = 0 are the identity") {
  Tensor x = nonzero_input(257, DType::f64, 44);
  x.set_requires_grad(true);
  const std::vector<double> xv = x.to_vector();
  Tensor ye = ops::dropout(x, 0.5, /*training=*/false, 5);
  CHECK(ye.to_vector() == xv);
  Tensor y0 = ops::dropout(x, 0.0, /*training=*/true, 5);
  CHECK(y0.to_vector() == xv);
  // Gradient passes through unchanged.
  autograd::backward(ye, Tensor::full({257}, 3.0, DType::f64));
  REQUIRE(x.grad().defined());
  CHECK(x.grad().to_vector() == std::vector<double>(257, 3.0));
}

TEST_CASE("dropout backward: gradient equals the mask scale") {
  const double p = 0.4;
  Tensor x = nonzero_input(5000, DType::f64, 45);
  x.set_requires_grad(true);
  Tensor y = ops::dropout(x, p, true, 99);
  REQUIRE((y.grad_fn() != nullptr));
  std::vector<bool> m = mask_of(y);
  autograd::backward(y, Tensor::full({5000}, 1.0, DType::f64));
  std::vector<double> g = x.grad().to_vector();
  int64_t bad = 0, kept = 0;
  for (size_t i = 0; i < g.size(); ++i) {
    double expect = m[i] ? 1.0 / (1.0 - p) : 0.0;
    kept += m[i];
    if (g[i] != expect) ++bad;
  }
  CHECK(bad == 0);
  CHECK(kept > 0);
  CHECK(kept < 5000);
}

TEST_CASE("dropout errors name the op") {
  Tensor x = Tensor::full({4}, 1.0);
  CHECK_THROWS_WITH_AS(ops::dropout(x, 1.0, true, 0), doctest::Contains("dropout"), Error);
  CHECK_THROWS_WITH_AS(ops::dropout(x, -0.1, true, 0), doctest::Contains("dropout"), Error);
  CHECK_THROWS_WITH_AS(ops::dropout(x, std::nan(""), true, 0), doctest::Contains("dropout"), Error);
  CHECK_THROWS_WITH_AS(ops::dropout(Tensor::full({4}, 1.0, DType::i64), 0.5, true, 0),
                       doctest::Contains("dropout"), Error);
}
