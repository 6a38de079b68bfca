// The autograd machinery: accumulation, zero_grad, fan-out, NoGradGuard,
// input gradients, freeing the graph, error cases, saved_bytes.
#include <cmath>

#include "engine/autograd.h"
#include "engine/ops.h"
#include "tests/gradcheck.h"

using namespace ctg;

namespace {
Tensor f64(const std::vector<double>& v, const Shape& s) { return Tensor::from_vector(v, s, DType::f64); }
}  // namespace

TEST_CASE("autograd: gradients accumulate across two backward() calls on a leaf") {
  Tensor x = f64({1, 2, 3, 4, 5, 6}, {2, 3});
  Tensor w = f64({1, -1, 0.5, 2, 0, -3}, {2, 3});
  w.set_requires_grad(true);
  Tensor gy = f64({1, 2, 3, -1}, {2, 2});
  // gW = gyᵀ·x: row0 = 1·[1,2,3] + 3·[4,5,6] = [13, 17, 21]; row1 = 2·[1,2,3] − [4,5,6] = [-2, -1, 0]
  const std::vector<double> once{13, 17, 21, -2, -1, 0};
  autograd::backward(ops::linear(x, w, Tensor()), gy);
  REQUIRE(w.grad().defined());
  CHECK(w.grad().to_vector() == once);
  autograd::backward(ops::linear(x, w, Tensor()), gy);
  CHECK(w.grad().to_vector() == std::vector<double>{26, 34, 42, -4, -2, 0});

  SUBCASE("zero_grad drops the buffer; the next backward starts from zero") {
    w.zero_grad();
    CHECK_FALSE(w.grad().defined());
    autograd::backward(ops::linear(x, w, Tensor()), gy);
    REQUIRE(w.grad().defined());
    CHECK(w.grad().to_vector() == once);
  }
}

TEST_CASE("autograd: backward on a leaf scalar accumulates the seed") {
  Tensor s = f64({2.5}, {});
  s.set_requires_grad(true);
  autograd::backward(s);
  CHECK(s.grad().item() == 1.0);
  autograd::backward(s, f64({3}, {}));
  CHECK(s.grad().item() == 4.0);
}

TEST_CASE("autograd: a tensor used twice gets the summed gradient") {
  SUBCASE("x + x") {
    Tensor x = f64({1, -2, 3}, {3});
    x.set_requires_grad(true);
    autograd::backward(ops::add(x, x), f64({1, 2, 3}, {3}));
    CHECK(x.grad().to_vector() == std::vector<double>{2, 4, 6});
  }
  SUBCASE("relu(x) + x") {
    Tensor x = f64({1, -2, 3, -0.5}, {4});
    x.set_requires_grad(true);
    autograd::backward(ops::add(ops::relu(x), x), f64({1, 2, 3, 4}, {4}));
    // d/dx = [x > 0] + 1
    CHECK(x.grad().to_vector() == std::vector<double>{2, 2, 6, 4});
  }
  SUBCASE("diamond: h = sigmoid(x); y = h + relu(h)") {
    Tensor x = f64({0.0, 1.0}, {2});
    x.set_requires_grad(true);
    Tensor h = ops::sigmoid(x);
    autograd::backward(ops::add(h, ops::relu(h)), f64({1, 1}, {2}));
    // dy/dh = 2 (h > 0), dh/dx = σ(1 − σ): 0.25 at 0 and 0.19661193324148185 at 1.
    std::vector<double> g = x.grad().to_vector();
    CHECK(g[0] == doctest::Approx(0.5).epsilon(1e-14));
    CHECK(g[1] == doctest::Approx(2 * 0.19661193324148185).epsilon(1e-14));
  }
}

TEST_CASE("autograd: intermediates owned only by the graph survive backward") {
  // Every intermediate here is a temporary: only the graph's nodes keep them alive.
  Tensor x = f64({0.5, -1, 2, -0.25, 1.5, 3}, {2, 3});
  x.set_requires_grad(true);
  Tensor y = ops::sigmoid(ops::flatten(ops::relu(ops::add(x, x))).reshape({-1}));
  autograd::backward(y, f64({1, 1, 1, 1, 1, 1}, {6}));
  // dy/dx = σ'(2x)·2 for x > 0, else 0.
  std::vector<double> xv = x.to_vector(), g = x.grad().to_vector();
  for (size_t i = 0; i < xv.size(); ++i) {
    CAPTURE(i);
    double s = 1.0 / (1.0 + std::exp(-2 * xv[i]));
    CHECK(g[i] == doctest::Approx(xv[i] > 0 ? 2 * s * (1 - s) : 0.0).epsilon(1e-14));
  }
}

TEST_CASE("autograd: NoGradGuard records nothing and restores the mode") {
  Tensor x = f64({1, 2}, {2});
  x.set_requires_grad(true);
  REQUIRE(autograd::grad_enabled());
  {
    autograd::NoGradGuard ng;
    CHECK_FALSE(autograd::grad_enabled());
    for (Tensor y : {ops::relu(x), ops::sigmoid(x), ops::add(x, x), ops::dropout(ops::add(x, x), 0.5, true, 1)}) {
      CHECK((y.grad_fn() == nullptr));
      CHECK_FALSE(y.requires_grad());
    }
    {
      autograd::NoGradGuard nested;
      CHECK_FALSE(autograd::grad_enabled());
    }
    CHECK_FALSE(autograd::grad_enabled());  // nested guard restores "off", not "on"
  }
  CHECK(autograd::grad_enabled());
  Tensor y = ops::relu(x);
  CHECK((y.grad_fn() != nullptr));
  CHECK(y.requires_grad());
}

TEST_CASE("autograd: no graph when no input requires grad") {
  Tensor x = f64({1, 2}, {1, 2});
  Tensor w = f64({1, 2, 3, 4}, {2, 2});
  Tensor y = ops::linear(x, w, Tensor());
  CHECK((y.grad_fn() == nullptr));
  CHECK_FALSE(y.requires_grad());
  CHECK_THROWS_WITH_AS(autograd::backward(y, f64({1, 1}, {1, 2})), doctest::Contains("backward"), Error);
}

TEST_CASE("autograd: gradients w.r.t. inputs as well as parameters") {
  Tensor x = f64({1, 2, -1}, {1, 3});  // the input batch
  Tensor w = f64({0.5, -1, 2, 1, 1, 1}, {2, 3});
  Tensor b = f64({0.1, -0.2}, {2});
  x.set_requires_grad(true);
  w.set_requires_grad(true);
  b.set_requires_grad(true);
  Tensor y = ops::linear(x, w, b);
  autograd::backward(y, f64({2, -1}, {1, 2}));
  // gx = gy·W = 2·[0.5, −1, 2] − [1, 1, 1] = [0, −3, 3]
  REQUIRE(x.grad().defined());
  CHECK(x.grad().to_vector() == std::vector<double>{0, -3, 3});
  CHECK(w.grad().to_vector() == std::vector<double>{2, 4, -2, -1, -2, 1});
  CHECK(b.grad().to_vector() == std::vector<double>{2, -1});
}

TEST_CASE("autograd: backward twice through the same graph is a clear error") {
  Tensor x = f64({1, -2, 3}, {3});
  x.set_requires_grad(true);
  Tensor loss = ops::bce_with_logits(ops::relu(x), f64({1, 0, 1}, {3}));
  autograd::backward(loss);
  const std::vector<double> g1 = x.grad().to_vector();
  CHECK_THROWS_WITH_AS(autograd::backward(loss), doctest::Contains("already freed"), Error);
  // The failed call did not add anything to the leaf.
  CHECK(x.grad().to_vector() == g1);
}

TEST_CASE("autograd: backward on a non-scalar needs grad_out") {
  Tensor x = f64({1, 2, 3}, {3});
  x.set_requires_grad(true);
  Tensor y = ops::sigmoid(x);
  CHECK_THROWS_WITH_AS(autograd::backward(y), doctest::Contains("grad_out"), Error);
  // A grad_out of the wrong shape or dtype is rejected too.
  CHECK_THROWS_AS(autograd::backward(y, f64({1, 1}, {2})), Error);
  CHECK_THROWS_AS(autograd::backward(y, Tensor::from_vector({1, 1, 1}, {3}, DType::f32)), Error);
  // The graph was not consumed by the failed calls.
  CHECK_NOTHROW(autograd::backward(y, f64({1, 1, 1}, {3})));
  CHECK(x.grad().defined());
}

TEST_CASE("autograd: backward on a tensor that does not require grad throws") {
  Tensor x = f64({1.5}, {});
  CHECK_THROWS_WITH_AS(autograd::backward(x), doctest::Contains("does not require grad"), Error);
  Tensor d = ops::relu(f64({1, 2}, {2}));
  CHECK_THROWS_AS(autograd::backward(d, f64({1, 1}, {2})), Error);
}

TEST_CASE("autograd: saved_bytes counts what backward keeps") {
  const int64_t N = 4, I = 6, O = 3;
  std::mt19937_64 rng(71);
  Tensor x = test::rand_tensor({N, I}, rng);
  Tensor w = test::rand_tensor({O, I}, rng);
  w.set_requires_grad(true);
  Tensor y = ops::linear(x, w, Tensor());
  // linear saves its input and its weight.
  CHECK(autograd::saved_bytes(y, false) == (size_t)((N * I + O * I) * 8));
  // Both are leaves (input batch, parameter): no activations.
  CHECK(autograd::saved_bytes(y, true) == 0);

  // relu(x) feeding linear: relu saves its output h, linear saves h (the same
  // storage, counted once) and W.
  x.set_requires_grad(true);
  Tensor h = ops::relu(x);
  Tensor y2 = ops::linear(h, w, Tensor());
  CHECK(autograd::saved_bytes(y2, true) == (size_t)(N * I * 8));
  CHECK(autograd::saved_bytes(y2, false) == (size_t)((N * I + O * I) * 8));
  // float32 halves it.
  Tensor y3 = ops::linear(ops::relu(x.to(DType::f32).set_requires_grad(true)), w.to(DType::f32), Tensor());
  CHECK(autograd::saved_bytes(y3, true) == (size_t)(N * I * 4));
  // After backward the graph is freed: nothing is held any more.
  autograd::backward(y2, Tensor::full({N, O}, 1.0, DType::f64));
  CHECK(autograd::saved_bytes(y2, false) == 0);
  // Nothing recorded, nothing saved.
  CHECK(autograd::saved_bytes(x.detach(), false) == 0);
}

TEST_CASE("autograd: intermediate gradients are freed after backward") {
  Tensor x = f64({0.5, -1, 2}, {3});
  x.set_requires_grad(true);
  Tensor h = ops::sigmoid(x);
  Tensor r = ops::relu(h);
  Tensor y = ops::add(r, h);
  autograd::backward(y, f64({1, 1, 1}, {3}));
  CHECK(x.grad().defined());    // leaf keeps its gradient
  CHECK_FALSE(h.grad().defined());  // non-leaves do not
  CHECK_FALSE(r.grad().defined());
  CHECK_FALSE(y.grad().defined());
  CHECK((h.grad_fn() != nullptr));
  CHECK_FALSE(static_cast<bool>(h.grad_fn()->backward));  // the node's closure was released
  CHECK(h.grad_fn()->saved.empty());
  CHECK(h.grad_fn()->inputs.empty());
}
