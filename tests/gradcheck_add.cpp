// add: hand-computed forward, gradcheck of both operands, the same tensor as
// both operands, errors.
#include "engine/ops.h"
#include "tests/gradcheck.h"

using namespace ctg;

TEST_CASE("add forward: hand-computed") {
  for (DType dt : {DType::f32, DType::f64}) {
    CAPTURE(dtype_name(dt));
    Tensor a = Tensor::from_vector({1, -2, 0.5, 3, 4.25, -1}, {2, 3}, dt);
    Tensor b = Tensor::from_vector({0.5, 2, -1.5, -3, 0.75, 10}, {2, 3}, dt);
    Tensor y = ops::add(a, b);
    CHECK(y.shape() == Shape{2, 3});
    CHECK(y.dtype() == dt);
    CHECK(y.to_vector() == std::vector<double>{1.5, 0, -1, 0, 5, 9});
    CHECK_FALSE(y.same_storage(a));  // a new tensor, inputs untouched
    CHECK(a.to_vector() == std::vector<double>{1, -2, 0.5, 3, 4.25, -1});
    CHECK(b.to_vector() == std::vector<double>{0.5, 2, -1.5, -3, 0.75, 10});
  }
}

TEST_CASE("add backward: gradient reaches only the operand that requires grad") {
  Tensor a = Tensor::from_vector({1, 2, 3}, {3}, DType::f64);
  Tensor b = Tensor::from_vector({4, 5, 6}, {3}, DType::f64);
  b.set_requires_grad(true);
  Tensor y = ops::add(a, b);
  autograd::backward(y, Tensor::from_vector({0.5, -1, 2}, {3}, DType::f64));
  CHECK_FALSE(a.grad().defined());
  REQUIRE(b.grad().defined());
  CHECK(b.grad().to_vector() == std::vector<double>{0.5, -1, 2});
}

TEST_CASE("add: the same tensor as both operands gets 2*g") {
  Tensor x = Tensor::from_vector({1, -2, 3, 0.5}, {2, 2}, DType::f64);
  x.set_requires_grad(true);
  Tensor y = ops::add(x, x);
  CHECK(y.to_vector() == std::vector<double>{2, -4, 6, 1});
  autograd::backward(y, Tensor::from_vector({1, 0.25, -3, 2}, {2, 2}, DType::f64));
  REQUIRE(x.grad().defined());
  CHECK(x.grad().to_vector() == std::vector<double>{2, 0.5, -6, 4});

  // And numerically.
  Tensor z = Tensor::from_vector({0.3, -0.7, 1.1}, {3}, DType::f64);
  z.set_requires_grad(true);
  test::gradcheck([](const std::vector<Tensor>& in) { return ops::add(in[0], in[0]); }, {z});
}

TEST_CASE("add errors name the op") {
  Tensor a = Tensor::full({2, 3}, 1.0);
  CHECK_NOTHROW(ops::add(a, Tensor::full({2, 3}, 2.0)));
  CHECK_THROWS_WITH_AS(ops::add(a, Tensor::full({3, 2}, 1.0)), doctest::Contains("add"), Error);
  CHECK_THROWS_WITH_AS(ops::add(a, Tensor::full({6}, 1.0)), doctest::Contains("add"), Error);
  CHECK_THROWS_WITH_AS(ops::add(a, Tensor::full({2, 3}, 1.0, DType::f64)), doctest::Contains("add"), Error);
  CHECK_THROWS_WITH_AS(ops::add(a.to(DType::i64), a.to(DType::i64)), doctest::Contains("add"), Error);
  CHECK_THROWS_WITH_AS(ops::add(a, Tensor()), doctest::Contains("add"), Error);
}
