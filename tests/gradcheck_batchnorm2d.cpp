#include <cmath>

#include "engine/ops.h"
#include "tests/gradcheck.h"
#include "tests/test_util.h"

using namespace ctg;

namespace {

// Plain two-pass batch normalisation in double over a [N,C,H,W] tensor:
// the definition, written out without the kernel's one-pass shift trick.
std::vector<double> naive_batchnorm(const Tensor& x, const std::vector<double>& gamma,
                                    const std::vector<double>& beta, double eps,
                                    std::vector<double>* mean_out, std::vector<double>* var_out) {
  const int64_t N = x.size(0), C = x.size(1), HW = x.size(2) * x.size(3);
  const std::vector<double> v = x.to_vector();
  std::vector<double> y(v.size());
  for (int64_t c = 0; c < C; ++c) {
    double s = 0, ss = 0;
    for (int64_t n = 0; n < N; ++n)
      for (int64_t i = 0; i < HW; ++i) s += v[(n * C + c) * HW + i];
    const double mu = s / (double)(N * HW);
    for (int64_t n = 0; n < N; ++n)
      for (int64_t i = 0; i < HW; ++i) ss += std::pow(v[(n * C + c) * HW + i] - mu, 2);
    const double var = ss / (double)(N * HW);
    for (int64_t n = 0; n < N; ++n)
      for (int64_t i = 0; i < HW; ++i) {
        const int64_t k = (n * C + c) * HW + i;
        y[k] = (v[k] - mu) / std::sqrt(var + eps) * gamma[c] + beta[c];
      }
    mean_out->push_back(mu);
    var_out->push_back(var);
  }
  return y;
}

}  // namespace

TEST_CASE("batchnorm2d forward (training): hand-computed, with running-stat update") {
  // x [2,2,1,2]: channel 0 holds {1,2,3,6} (μ=3, biased σ²=3.5), channel 1
  // holds {9,8,7,4} (μ=7, σ²=3.5). eps = 0.5 makes σ²+eps = 4, invstd = 0.5.
  Tensor x = Tensor::from_vector({1, 2, 9, 8, 3, 6, 7, 4}, {2, 2, 1, 2}, DType::f64);
  Tensor gamma = Tensor::from_vector({2, -1}, {2}, DType::f64);
  Tensor beta = Tensor::from_vector({1, 0.5}, {2}, DType::f64);
  Tensor rm = Tensor::from_vector({0, 1}, {2}, DType::f64);
  Tensor rv = Tensor::from_vector({1, 2}, {2}, DType::f64);
  Tensor y = ops::batchnorm2d(x, gamma, beta, rm, rv, true, 0.1, 0.5);
  // c0: x̂ = (−1, −0.5, 0, 1.5), y = 2x̂ + 1;  c1: x̂ = (1, 0.5, 0, −1.5), y = −x̂ + 0.5.
  test::check_close(y.to_vector(), {-1, 0, -0.5, 0, 1, 4, 0.5, 2}, 1e-15, 1e-15);
  // running ← 0.9·running + 0.1·batch, with the unbiased variance σ²·M/(M−1), M = 4.
  const double unbiased = 3.5 * 4.0 / 3.0;
  CHECK(rm.at(0) == doctest::Approx(0.9 * 0 + 0.1 * 3).epsilon(1e-15));
  CHECK(rm.at(1) == doctest::Approx(0.9 * 1 + 0.1 * 7).epsilon(1e-15));
  CHECK(rv.at(0) == doctest::Approx(0.9 * 1 + 0.1 * unbiased).epsilon(1e-15));
  CHECK(rv.at(1) == doctest::Approx(0.9 * 2 + 0.1 * unbiased).epsilon(1e-15));
}

TEST_CASE("batchnorm2d forward (training) matches a naive two-pass computation, f64 and f32") {
  std::mt19937_64 rng(7);
  // Offset +50 with spread 1: the one-pass sums must not lose the variance.
  Tensor x = test::rand_tensor({3, 4, 5, 6}, rng, 49, 51);
  Tensor gamma = test::rand_tensor({4}, rng, 0.5, 1.5), beta = test::rand_tensor({4}, rng);
  std::vector<double> mu, var;
  const std::vector<double> want = naive_batchnorm(x, gamma.to_vector(), beta.to_vector(), 1e-5, &mu, &var);
  const std::vector<double> rm0{0.5, -0.5, 1, 2}, rv0{1, 2, 0.5, 3};
  for (DType dt : {DType::f64, DType::f32}) {
    INFO("dtype " << dtype_name(dt));
    Tensor rm = Tensor::from_vector(rm0, {4}, dt), rv = Tensor::from_vector(rv0, {4}, dt);
    Tensor y = ops::batchnorm2d(x.to(dt), gamma.to(dt), beta.to(dt), rm, rv, true);
    const double tol = dt == DType::f64 ? 1e-10 : 2e-4;
    test::check_close(y.to_vector(), want, tol, tol);
    const double M = 3 * 5 * 6;
    for (int c = 0; c < 4; ++c) {
      CHECK(rm.at(c) == doctest::Approx(0.9 * rm0[c] + 0.1 * mu[c]).epsilon(dt == DType::f64 ? 1e-14 : 1e-6));
      CHECK(rv.at(c) ==
            doctest::Approx(0.9 * rv0[c] + 0.1 * var[c] * M / (M - 1)).epsilon(dt == DType::f64 ? 1e-10 : 1e-5));
    }
  }
}

TEST_CASE("batchnorm2d eval mode normalises with the running statistics and leaves them alone") {
  // running_var + eps = {4, 9}: invstd = {1/2, 1/3}.
  Tensor x = Tensor::from_vector({1, 5, -2, 4}, {1, 2, 1, 2}, DType::f64);
  Tensor gamma = Tensor::from_vector({2, 3}, {2}, DType::f64);
  Tensor beta = Tensor::from_vector({0, 1}, {2}, DType::f64);
  Tensor rm = Tensor::from_vector({1, -2}, {2}, DType::f64);
  Tensor rv = Tensor::from_vector({3, 8}, {2}, DType::f64);
  Tensor y = ops::batchnorm2d(x, gamma, beta, rm, rv, false, 0.1, 1.0);
  // c0: x̂ = (x − 1)/2 = (0, 2) → y = 2x̂;  c1: x̂ = (x + 2)/3 = (0, 2) → y = 3x̂ + 1.
  test::check_close(y.to_vector(), {0, 4, 1, 7}, 1e-15, 1e-15);
  CHECK(rm.to_vector() == std::vector<double>{1, -2});
  CHECK(rv.to_vector() == std::vector<double>{3, 8});
  // One value per channel is fine in eval mode (no batch statistics).
  Tensor x1 = Tensor::from_vector({3, -2}, {1, 2, 1, 1}, DType::f64);
  test::check_close(ops::batchnorm2d(x1, gamma, beta, rm, rv, false, 0.1, 1.0).to_vector(), {2, 1}, 1e-15, 1e-15);
}

TEST_CASE("batchnorm2d float32 gradients agree with float64 (vectorised f32 kernels)") {
  std::mt19937_64 rng(14);
  Tensor x = test::rand_tensor({2, 3, 17, 19}, rng, -1, 2);
  Tensor gamma = test::rand_tensor({3}, rng, 0.5, 1.5), beta = test::rand_tensor({3}, rng);
  Tensor gy = test::rand_tensor(x.shape(), rng);
  for (bool training : {true, false}) {
    CAPTURE(training);
    std::vector<std::vector<double>> grads[2];
    for (int k = 0; k < 2; ++k) {
      const DType dt = k == 0 ? DType::f64 : DType::f32;
      Tensor xs = x.to(dt).set_requires_grad(true), gs = gamma.to(dt).set_requires_grad(true),
             bs = beta.to(dt).set_requires_grad(true);
      Tensor rm = Tensor::full({3}, 0.25, dt), rv = Tensor::full({3}, 1.5, dt);
      autograd::backward(ops::batchnorm2d(xs, gs, bs, rm, rv, training), gy.to(dt));
      grads[k] = {xs.grad().to_vector(), gs.grad().to_vector(), bs.grad().to_vector()};
    }
    for (int i = 0; i < 3; ++i) test::check_close(grads[1][i], grads[0][i], 1e-4, 1e-4);
  }
}

TEST_CASE("batchnorm2d errors name the op, the tensor and the wrong value") {
  Tensor x = Tensor::full({2, 3, 2, 2}, 1.0, DType::f64);
  x.data<double>()[1] = 2;
  Tensor g3 = Tensor::full({3}, 1.0, DType::f64), g4 = Tensor::full({4}, 1.0, DType::f64);
  Tensor rm = Tensor::zeros({3}, DType::f64), rv = Tensor::full({3}, 1.0, DType::f64);
  Tensor rv4 = Tensor::full({4}, 1.0, DType::f64), none;
  Tensor x3 = Tensor::full({2, 3, 4}, 1.0, DType::f64);
  CHECK_THROWS_WITH_AS(ops::batchnorm2d(x3, g3, g3, rm, rv, true),
                       doctest::Contains("batchnorm2d: input must be 4-D, got [2, 3, 4]"), Error);
  CHECK_THROWS_WITH_AS(ops::batchnorm2d(x, g4, g3, rm, rv, true),
                       doctest::Contains("batchnorm2d: gamma has shape [4] but the input [2, 3, 2, 2] has 3 channels"),
                       Error);
  CHECK_THROWS_WITH_AS(ops::batchnorm2d(x, g3, g4, rm, rv, true), doctest::Contains("batchnorm2d: beta has shape [4]"),
                       Error);
  CHECK_THROWS_WITH_AS(ops::batchnorm2d(x, g3, g3, rm, rv4, false),
                       doctest::Contains("batchnorm2d: running_var has shape [4]"), Error);
  CHECK_THROWS_WITH_AS(ops::batchnorm2d(x, g3, g3, none, rv, false),
                       doctest::Contains("batchnorm2d: eval mode needs running_mean and running_var"), Error);
  CHECK_THROWS_WITH_AS(ops::batchnorm2d(x, g3.to(DType::f32), g3, rm, rv, true),
                       doctest::Contains("batchnorm2d: gamma has dtype float32 but the input is float64"), Error);
  Tensor x1 = Tensor::full({1, 3, 1, 1}, 1.0, DType::f64);
  CHECK_THROWS_WITH_AS(ops::batchnorm2d(x1, g3, g3, rm, rv, true),
                       doctest::Contains("batchnorm2d: expected more than 1 value per channel when training, got "
                                         "input [1, 3, 1, 1]"),
                       Error);
  CHECK_THROWS_WITH_AS(ops::batchnorm2d(x, g3, g3, rm, rv, true, 0.1, 0.0),
                       doctest::Contains("batchnorm2d: eps must be positive"), Error);
}
