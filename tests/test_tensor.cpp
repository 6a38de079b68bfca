// Tensor basics: factories, conversion, copies and views, accessors, errors.
#include <doctest/doctest.h>

#include <cstdint>

#include "engine/ops.h"
#include "engine/tensor.h"

using namespace ctg;

TEST_CASE("tensor factories: zeros, full, from_vector, empty") {
  Tensor z = Tensor::zeros({2, 3});
  CHECK(z.shape() == Shape{2, 3});
  CHECK(z.dim() == 2);
  CHECK(z.numel() == 6);
  CHECK(z.dtype() == DType::f32);
  CHECK(z.device() == Device::cpu);
  CHECK(z.nbytes() == 24);
  CHECK(z.to_vector() == std::vector<double>(6, 0.0));
  CHECK_FALSE(z.requires_grad());
  CHECK(z.is_leaf());
  CHECK_FALSE(z.grad().defined());

  Tensor f = Tensor::full({4}, -2.5, DType::f64);
  CHECK(f.dtype() == DType::f64);
  CHECK(f.nbytes() == 32);
  CHECK(f.to_vector() == std::vector<double>(4, -2.5));

  Tensor fi = Tensor::full({3}, 7, DType::i64);
  CHECK(fi.data<int64_t>()[2] == 7);

  Tensor v = Tensor::from_vector({1, 2, 3, 4, 5, 6}, {3, 2}, DType::f64);
  CHECK(v.shape() == Shape{3, 2});
  CHECK(v.size(0) == 3);
  CHECK(v.size(-1) == 2);
  CHECK(v.data<double>()[3] == 4.0);
  CHECK(v.at(5) == 6.0);
  CHECK(v.to_vector() == std::vector<double>{1, 2, 3, 4, 5, 6});
  CHECK_THROWS_AS(v.size(2), Error);
  CHECK_THROWS_AS(v.at(6), Error);

  Tensor e = Tensor::empty({2, 2, 2, 2});
  CHECK(e.numel() == 16);
  CHECK(e.dim() == 4);
  // CPU storage is 64-byte aligned.
  CHECK(reinterpret_cast<uintptr_t>(e.raw_data()) % 64 == 0);

  Tensor s = Tensor::full({}, 3.0);
  CHECK(s.dim() == 0);
  CHECK(s.numel() == 1);
  CHECK(s.item() == 3.0);

  CHECK_FALSE(Tensor().defined());
  CHECK_THROWS_AS(Tensor().shape(), Error);
}

TEST_CASE("tensor: from_vector size mismatch is an error") {
  CHECK_THROWS_WITH_AS(Tensor::from_vector({1, 2, 3}, {2, 2}), doctest::Contains("from_vector"), Error);
  CHECK_THROWS_WITH_AS(Tensor::from_vector({1, 2, 3, 4, 5}, {2, 2}), doctest::Contains("from_vector"), Error);
  CHECK_NOTHROW(Tensor::from_vector({1, 2, 3, 4}, {2, 2}));
}

TEST_CASE("tensor: more than 4 dims and negative dims are rejected") {
  CHECK_THROWS_AS(Tensor::empty({1, 1, 1, 1, 1}), Error);
  CHECK_THROWS_AS(Tensor::zeros({2, 1, 1, 1, 2}), Error);
  CHECK_THROWS_AS(Tensor::from_vector({1}, {1, 1, 1, 1, 1}), Error);
  CHECK_THROWS_AS(Tensor::empty({2, -1}), Error);
  CHECK_NOTHROW(Tensor::empty({1, 1, 1, 1}));
}

TEST_CASE("tensor: to(DType) converts values") {
  Tensor d = Tensor::from_vector({0.1, -2.75, 3.9, 1e10}, {4}, DType::f64);
  Tensor f = d.to(DType::f32);
  CHECK(f.dtype() == DType::f32);
  CHECK(f.shape() == d.shape());
  CHECK(f.data<float>()[0] == 0.1f);  // rounded to nearest float
  CHECK(f.at(0) != 0.1);              // ... which is not the double 0.1
  CHECK(f.at(1) == -2.75);
  CHECK(f.at(3) == 1e10);
  CHECK_FALSE(f.same_storage(d));

  Tensor i = d.to(DType::i64);
  CHECK(i.dtype() == DType::i64);
  CHECK(i.data<int64_t>()[0] == 0);  // truncation toward zero
  CHECK(i.data<int64_t>()[1] == -2);
  CHECK(i.data<int64_t>()[2] == 3);
  CHECK(i.data<int64_t>()[3] == 10000000000LL);

  Tensor back = i.to(DType::f64);
  CHECK(back.to_vector() == std::vector<double>{0, -2, 3, 1e10});

  // Same dtype: still a copy.
  Tensor same = d.to(DType::f64);
  CHECK_FALSE(same.same_storage(d));
  CHECK(same.to_vector() == d.to_vector());
}

TEST_CASE("tensor: clone is an independent deep copy without history") {
  Tensor x = Tensor::from_vector({1, 2, 3}, {3}, DType::f64);
  x.set_requires_grad(true);
  Tensor c = x.clone();
  CHECK_FALSE(c.same_storage(x));
  CHECK(c.to_vector() == x.to_vector());
  CHECK_FALSE(c.requires_grad());
  c.data<double>()[0] = 100;
  CHECK(x.at(0) == 1.0);
  x.data<double>()[1] = -5;
  CHECK(c.at(1) == 2.0);
  // Clone of a non-leaf has no grad_fn.
  Tensor r = ops::relu(x);
  REQUIRE((r.grad_fn() != nullptr));
  CHECK((r.clone().grad_fn() == nullptr));
}

TEST_CASE("tensor: detach shares storage and drops history") {
  Tensor x = Tensor::from_vector({1, -2, 3}, {3}, DType::f64);
  x.set_requires_grad(true);
  Tensor r = ops::relu(x);
  Tensor d = r.detach();
  CHECK(d.same_storage(r));
  CHECK((d.grad_fn() == nullptr));
  CHECK(d.is_leaf());
  CHECK_FALSE(d.requires_grad());
  CHECK(d.shape() == r.shape());
  d.data<double>()[2] = 9;
  CHECK(r.at(2) == 9.0);
  // The original keeps its history.
  CHECK((r.grad_fn() != nullptr));
  CHECK(r.requires_grad());
}

TEST_CASE("tensor: item() on a non-scalar is an error") {
  CHECK(Tensor::full({1, 1, 1}, 2.5).item() == 2.5);
  CHECK_THROWS_WITH_AS(Tensor::full({2}, 1.0).item(), doctest::Contains("item"), Error);
  CHECK_THROWS_AS(Tensor::zeros({0}).item(), Error);
}

TEST_CASE("tensor: data<T>() with the wrong T throws") {
  Tensor f = Tensor::full({2}, 1.0, DType::f32);
  CHECK_NOTHROW(f.data<float>());
  CHECK_THROWS_WITH_AS(f.data<double>(), doctest::Contains("float32"), Error);
  CHECK_THROWS_AS(f.data<int64_t>(), Error);
  Tensor d = Tensor::full({2}, 1.0, DType::f64);
  CHECK_THROWS_AS(d.data<float>(), Error);
  Tensor i = Tensor::full({2}, 1.0, DType::i64);
  CHECK_THROWS_AS(i.data<double>(), Error);
}

TEST_CASE("tensor: fill_, copy_ and requires_grad rules") {
  Tensor a = Tensor::zeros({2, 2}, DType::f64);
  a.fill_(1.5);
  CHECK(a.to_vector() == std::vector<double>(4, 1.5));
  Tensor b = Tensor::from_vector({1, 2, 3, 4}, {4}, DType::f32);
  a.copy_(b);  // same numel, converts dtype
  CHECK(a.to_vector() == std::vector<double>{1, 2, 3, 4});
  CHECK_THROWS_WITH_AS(a.copy_(Tensor::zeros({3})), doctest::Contains("copy_"), Error);
  CHECK_THROWS_AS(Tensor::zeros({2}, DType::i64).set_requires_grad(true), Error);
  Tensor g = Tensor::zeros({2});
  CHECK(g.set_requires_grad(true).requires_grad());
  CHECK_FALSE(g.set_requires_grad(false).requires_grad());
}
