// flatten / reshape: views sharing storage, -1 inference, errors, gradients.
#include "engine/ops.h"
#include "tests/gradcheck.h"

using namespace ctg;

TEST_CASE("flatten: [N, C, H, W] -> [N, C*H*W] view sharing storage") {
  std::vector<double> v(2 * 3 * 4 * 5);
  for (size_t i = 0; i < v.size(); ++i) v[i] = (double)i + 1;
  Tensor x = Tensor::from_vector(v, {2, 3, 4, 5});
  Tensor y = ops::flatten(x);
  CHECK(y.shape() == Shape{2, 60});
  CHECK(y.same_storage(x));
  CHECK(y.to_vector() == v);  // same row-major order
  // A write through the view is visible in the original, and the other way round.
  y.data<float>()[61] = -7.0f;
  CHECK(x.at(61) == -7.0);
  x.data<float>()[0] = 42.0f;
  CHECK(y.at(0) == 42.0);
  // Already 2-D stays [N, rest]; 1-D becomes [N, 1].
  CHECK(ops::flatten(Tensor::full({3, 4}, 1.0)).shape() == Shape{3, 4});
  CHECK(ops::flatten(Tensor::full({5}, 1.0)).shape() == Shape{5, 1});
  CHECK(ops::flatten(Tensor::full({2, 1, 1, 1}, 1.0)).shape() == Shape{2, 1});
}

TEST_CASE("reshape: shape inference with -1 and shared storage") {
  Tensor x = Tensor::from_vector({1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12}, {2, 6});
  Tensor a = x.reshape({-1, 4});
  CHECK(a.shape() == Shape{3, 4});
  CHECK(a.same_storage(x));
  CHECK(a.to_vector() == x.to_vector());
  CHECK(x.reshape({3, -1, 2}).shape() == Shape{3, 2, 2});
  CHECK(x.reshape({-1}).shape() == Shape{12});
  CHECK(x.reshape({1, 2, 3, 2}).shape() == Shape{1, 2, 3, 2});
  CHECK(x.reshape({12, -1}).shape() == Shape{12, 1});
  // reshape of a reshape still views the same storage.
  CHECK(x.reshape({4, 3}).reshape({2, -1}).same_storage(x));
  // Scalar round trip.
  Tensor s = Tensor::full({1}, 3.5);
  CHECK(s.reshape({}).shape() == Shape{});
  CHECK(s.reshape({}).item() == 3.5);
}

TEST_CASE("reshape and flatten errors") {
  Tensor x = Tensor::full({2, 6}, 1.0);
  CHECK_THROWS_WITH_AS(x.reshape({5, 2}), doctest::Contains("reshape"), Error);    // 10 ≠ 12
  CHECK_THROWS_WITH_AS(x.reshape({5, -1}), doctest::Contains("reshape"), Error);   // 12 not divisible by 5
  CHECK_THROWS_WITH_AS(x.reshape({-1, -1}), doctest::Contains("reshape"), Error);  // two unknowns
  CHECK_THROWS_WITH_AS(x.reshape({1, 1, 2, 3, 2}), doctest::Contains("reshape"), Error);  // > 4 dims
  CHECK_THROWS_WITH_AS(x.reshape({}), doctest::Contains("reshape"), Error);
  CHECK_THROWS_WITH_AS(ops::flatten(Tensor::full({}, 1.0)), doctest::Contains("flatten"), Error);
}

TEST_CASE("reshape rejects negative sizes other than -1") {
  // -2 · -6 = 12 = numel, but a negative extent is never a valid shape.
  Tensor x = Tensor::full({2, 6}, 1.0);
  CHECK_THROWS_AS(x.reshape({-2, -6}), Error);
  CHECK_THROWS_AS(x.reshape({-3, 2, -2}), Error);
}

TEST_CASE("reshape backward: gradient comes back in the input's shape") {
  Tensor x = Tensor::from_vector({1, 2, 3, 4, 5, 6}, {2, 3}, DType::f64);
  x.set_requires_grad(true);
  Tensor y = x.reshape({3, -1});
  REQUIRE((y.grad_fn() != nullptr));
  CHECK(y.requires_grad());
  autograd::backward(y, Tensor::from_vector({6, 5, 4, 3, 2, 1}, {3, 2}, DType::f64));
  REQUIRE(x.grad().defined());
  CHECK(x.grad().shape() == Shape{2, 3});
  CHECK(x.grad().to_vector() == std::vector<double>{6, 5, 4, 3, 2, 1});
}

TEST_CASE("flatten without grad mode records nothing") {
  Tensor x = Tensor::full({2, 3, 4}, 1.0, DType::f64);
  x.set_requires_grad(true);
  autograd::NoGradGuard ng;
  Tensor y = ops::flatten(x);
  CHECK((y.grad_fn() == nullptr));
  CHECK_FALSE(y.requires_grad());
  CHECK(y.same_storage(x));
}
