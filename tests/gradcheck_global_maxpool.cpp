#include <cmath>

#include "engine/ops.h"
#include "tests/gradcheck.h"

using namespace ctg;

TEST_CASE("global_maxpool forward and backward: hand-computed, tie") {
  // x [1,2,2,3]. Plane 0 = {3,−1,3, 0,2,1}: max 3, tied at 0 and 2, the first
  // (index 0) wins. Plane 1 = {−5,−2,−7, −3,−2.5,−9}: max −2 at index 1.
  Tensor x = Tensor::from_vector({3, -1, 3, 0, 2, 1, -5, -2, -7, -3, -2.5, -9}, {1, 2, 2, 3}, DType::f64);
  x.set_requires_grad(true);
  Tensor y = ops::global_maxpool(x);
  CHECK(y.shape() == Shape{1, 2, 1, 1});
  CHECK(y.to_vector() == std::vector<double>{3, -2});
  autograd::backward(y, Tensor::from_vector({2, 5}, {1, 2, 1, 1}, DType::f64));
  CHECK(x.grad().to_vector() == std::vector<double>{2, 0, 0, 0, 0, 0, 0, 5, 0, 0, 0, 0});
  // Backward accumulates: a second use of x adds to its gradient.
  Tensor y2 = ops::global_maxpool(x);
  autograd::backward(y2, Tensor::from_vector({1, 1}, {1, 2, 1, 1}, DType::f64));
  CHECK(x.grad().to_vector() == std::vector<double>{3, 0, 0, 0, 0, 0, 0, 6, 0, 0, 0, 0});
}

TEST_CASE("global_maxpool float32 matches float64 - NaN propagates") {
  std::mt19937_64 rng(31);
  Tensor x = test::distinct_tensor({2, 3, 9, 11}, rng);
  Tensor y64 = ops::global_maxpool(x), y32 = ops::global_maxpool(x.to(DType::f32));
  const std::vector<double> a = y64.to_vector(), b = y32.to_vector();
  for (size_t i = 0; i < a.size(); ++i) CHECK(b[i] == doctest::Approx(a[i]).epsilon(1e-6));
  Tensor xn = Tensor::from_vector({1, 2, NAN, 0}, {1, 1, 2, 2}, DType::f32);
  CHECK(std::isnan(ops::global_maxpool(xn).item()));
}

TEST_CASE("global_maxpool errors name the op, the tensor and the wrong value") {
  CHECK_THROWS_WITH_AS(ops::global_maxpool(Tensor::full({2, 3, 4}, 1.0, DType::f64)),
                       doctest::Contains("global_maxpool: input must be 4-D, got [2, 3, 4]"), Error);
  CHECK_THROWS_WITH_AS(ops::global_maxpool(Tensor::full({1, 1, 2, 2}, 1.0, DType::i64)),
                       doctest::Contains("global_maxpool: input has dtype int64"), Error);
  CHECK_THROWS_WITH_AS(ops::global_maxpool(Tensor::full({1, 2, 0, 3}, 1.0, DType::f64)),
                       doctest::Contains("global_maxpool: input [1, 2, 0, 3] has empty planes"), Error);
}
