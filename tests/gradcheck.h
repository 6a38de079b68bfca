// Finite-difference gradient check in double precision.
//
// For an op f and random weights c (fixed per check), L(x) = Σ c·f(x).
// The analytic gradient comes from backward(f(x), grad_out = c); the numeric
// one from central differences (L(x+εe_i) − L(x−εe_i)) / 2ε for every element
// of every input. They must agree to |a − n| ≤ atol + rtol·max(|a|, |n|).
// Kinks (ReLU at 0, ties in max pooling) make the numeric derivative
// meaningless; callers build inputs that stay more than ε away from them.
#pragma once
#include <doctest/doctest.h>

#include <cmath>
#include <functional>
#include <random>
#include <sstream>
#include <vector>

#include "engine/autograd.h"
#include "engine/op_table.h"
#include "engine/tensor.h"

namespace ctg::test {

// Uniform random tensor in [lo, hi); never all zeros (the op table's maker).
inline Tensor rand_tensor(const Shape& s, std::mt19937_64& rng, double lo = -1, double hi = 1,
                          DType dt = DType::f64) {
  return op_table::uniform(s, rng, lo, hi, dt);
}

// Values whose pairwise gaps are at least `gap`: max pooling never sees a
// near-tie, so the numeric derivative is defined (the op table's maker).
inline Tensor distinct_tensor(const Shape& s, std::mt19937_64& rng, double gap = 1e-2) {
  return op_table::distinct(s, rng, gap);
}

// The step and tolerances (engine/op_table.h) and the seed of the weights c.
struct GradcheckOptions : op_table::GradcheckTol {
  uint64_t seed = 1234;
};

// Checks d(Σ c·f)/d(inputs[i]) for every input with requires_grad set.
inline void gradcheck(const std::function<Tensor(const std::vector<Tensor>&)>& f,
                      std::vector<Tensor> inputs, const GradcheckOptions& opt = {}) {
  for (Tensor& t : inputs) t.zero_grad();
  Tensor out = f(inputs);
  REQUIRE(out.dtype() == DType::f64);
  std::mt19937_64 rng(opt.seed);
  Tensor c = rand_tensor(out.shape(), rng, 0.5, 1.5);  // away from 0: every output matters
  autograd::backward(out, c);
  const std::vector<double> cv = c.to_vector();
  auto L = [&]() {
    autograd::NoGradGuard ng;
    std::vector<double> y = f(inputs).to_vector();
    double s = 0;
    for (size_t i = 0; i < y.size(); ++i) s += cv[i] * y[i];
    return s;
  };
  for (size_t k = 0; k < inputs.size(); ++k) {
    Tensor& x = inputs[k];
    if (!x.defined() || !x.requires_grad()) continue;
    Tensor g = x.grad();
    REQUIRE_MESSAGE(g.defined(), "input " << k << " received no gradient");
    double* px = x.data<double>();
    double worst = 0;
    int64_t worst_i = -1, bad = 0;
    std::ostringstream first;
    for (int64_t i = 0; i < x.numel(); ++i) {
      double keep = px[i];
      px[i] = keep + opt.eps;
      double lp = L();
      px[i] = keep - opt.eps;
      double lm = L();
      px[i] = keep;
      double num = (lp - lm) / (2 * opt.eps), ana = g.at(i);
      double err = std::fabs(num - ana), tol = opt.atol + opt.rtol * std::max(std::fabs(num), std::fabs(ana));
      if (err > tol) {
        if (bad < 5) first << "  [" << i << "] analytic " << ana << " numeric " << num << "\n";
        ++bad;
      }
      double rel = err / (opt.atol + std::max(std::fabs(num), std::fabs(ana)));
      if (rel > worst) worst = rel, worst_i = i;
    }
    INFO("input " << k << " " << shape_str(x.shape()) << ": " << bad << " mismatches, worst relative error "
                  << worst << " at " << worst_i << "\n" << first.str());
    CHECK(bad == 0);
  }
}

}  // namespace ctg::test
