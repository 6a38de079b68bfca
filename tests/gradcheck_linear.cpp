// linear: hand-computed forward and backward, and the shape/dtype errors
// (its gradient checks and CUDA-vs-CPU cases: engine/op_table/gemm.cpp).
#include "engine/ops.h"
#include "tests/gradcheck.h"

using namespace ctg;

TEST_CASE("linear forward: hand-computed 2x3 input, 2x3 weight, bias") {
  // x = [[1, 2, 3], [-1, 0.5, 2]], W = [[1, 0, -1], [0.5, 2, 1]], b = [0.25, -1]
  // y[0,0] = 1 - 3 + 0.25 = -1.75        y[0,1] = 0.5 + 4 + 3 - 1 = 6.5
  // y[1,0] = -1 - 2 + 0.25 = -2.75       y[1,1] = -0.5 + 1 + 2 - 1 = 1.5
  for (DType dt : {DType::f32, DType::f64}) {
    CAPTURE(dtype_name(dt));
    Tensor x = Tensor::from_vector({1, 2, 3, -1, 0.5, 2}, {2, 3}, dt);
    Tensor w = Tensor::from_vector({1, 0, -1, 0.5, 2, 1}, {2, 3}, dt);
    Tensor b = Tensor::from_vector({0.25, -1}, {2}, dt);
    Tensor y = ops::linear(x, w, b);
    CHECK(y.shape() == Shape{2, 2});
    CHECK(y.dtype() == dt);
    CHECK(y.to_vector() == std::vector<double>{-1.75, 6.5, -2.75, 1.5});
    // Without bias: the same minus b.
    Tensor y0 = ops::linear(x, w, Tensor());
    CHECK(y0.to_vector() == std::vector<double>{-2.0, 7.5, -3.0, 2.5});
  }
}

TEST_CASE("linear backward: hand-computed gradients of x, W, b") {
  Tensor x = Tensor::from_vector({1, 2, 3, -1, 0.5, 2}, {2, 3}, DType::f64);
  Tensor w = Tensor::from_vector({1, 0, -1, 0.5, 2, 1}, {2, 3}, DType::f64);
  Tensor b = Tensor::from_vector({0.25, -1}, {2}, DType::f64);
  x.set_requires_grad(true);
  w.set_requires_grad(true);
  b.set_requires_grad(true);
  Tensor y = ops::linear(x, w, b);
  Tensor gy = Tensor::from_vector({1, 2, -1, 3}, {2, 2}, DType::f64);
  autograd::backward(y, gy);
  // gx = gy·W: row0 = 1·[1,0,-1] + 2·[0.5,2,1] = [2, 4, 1]
  //            row1 = -1·[1,0,-1] + 3·[0.5,2,1] = [0.5, 6, 4]
  CHECK(x.grad().to_vector() == std::vector<double>{2, 4, 1, 0.5, 6, 4});
  // gW = gyᵀ·x: row0 = 1·[1,2,3] - 1·[-1,0.5,2] = [2, 1.5, 1]
  //             row1 = 2·[1,2,3] + 3·[-1,0.5,2] = [-1, 5.5, 12]
  CHECK(w.grad().to_vector() == std::vector<double>{2, 1.5, 1, -1, 5.5, 12});
  // gb = column sums of gy = [0, 5]
  CHECK(b.grad().to_vector() == std::vector<double>{0, 5});
}

TEST_CASE("linear errors name the op") {
  Tensor x = Tensor::full({2, 3}, 1.0);
  Tensor w = Tensor::full({4, 3}, 1.0);
  Tensor b = Tensor::full({4}, 1.0);
  CHECK_NOTHROW(ops::linear(x, w, b));
  // Feature mismatch: x has 3 features, W expects 5.
  CHECK_THROWS_WITH_AS(ops::linear(x, Tensor::full({4, 5}, 1.0), b), doctest::Contains("linear"), Error);
  // Wrong bias length.
  CHECK_THROWS_WITH_AS(ops::linear(x, w, Tensor::full({3}, 1.0)), doctest::Contains("linear"), Error);
  // Bias with two dims.
  CHECK_THROWS_WITH_AS(ops::linear(x, w, Tensor::full({1, 4}, 1.0)), doctest::Contains("linear"), Error);
  // Input not 2-D.
  CHECK_THROWS_WITH_AS(ops::linear(Tensor::full({3}, 1.0), w, b), doctest::Contains("linear"), Error);
  CHECK_THROWS_WITH_AS(ops::linear(Tensor::full({2, 3, 1}, 1.0), w, b), doctest::Contains("linear"), Error);
  // Weight not 2-D.
  CHECK_THROWS_WITH_AS(ops::linear(x, Tensor::full({3}, 1.0), b), doctest::Contains("linear"), Error);
  // Dtype mismatches.
  CHECK_THROWS_WITH_AS(ops::linear(x, w.to(DType::f64), b), doctest::Contains("linear"), Error);
  CHECK_THROWS_WITH_AS(ops::linear(x, w, b.to(DType::f64)), doctest::Contains("linear"), Error);
  CHECK_THROWS_WITH_AS(ops::linear(x.to(DType::i64), w, b), doctest::Contains("linear"), Error);
  // Undefined weight.
  CHECK_THROWS_WITH_AS(ops::linear(x, Tensor(), b), doctest::Contains("linear"), Error);
}
