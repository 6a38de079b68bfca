// What the op-table drivers share (tests/op_table_cuda.cpp: CUDA vs CPU;
// tests/op_table_reference.cpp: tuned CPU vs the plain reference loops): one
// case's inputs, the weights c of L = Σ c·y and the starting gradients, and one
// forward + backward of the op on a device, its results brought to the CPU.
#pragma once
#include <doctest/doctest.h>

#include <random>
#include <set>
#include <string>
#include <vector>

#include "engine/autograd.h"
#include "engine/op_table.h"
#include "tests/cuda_check.h"

namespace ctg::test {

// The ops each driver gives a TEST_CASE of its own (ctest runs them in
// parallel; a failure names the op), written once for the three drivers by
// CTG_OP_TABLE_TEST_CASES below. Any other entry (flatten, a view; a new op)
// runs under the driver's "other ops" TEST_CASE: adding an op to the table
// needs no line here.
inline const std::set<std::string>& ops_with_own_test_case() {
  static const std::set<std::string> s = {"conv2d", "linear",  "batchnorm2d", "maxpool2d", "global_maxpool",
                                          "relu",   "add",     "sigmoid",     "dropout",   "bce_with_logits"};
  return s;
}

// A case's inputs on the CPU as dt, each requiring-grad input's starting
// gradient (when the case accumulates; else undefined) and the weights c ∈ [0.5, 1.5).
struct CaseData {
  std::vector<Tensor> x, g0;
  Tensor c;
};
inline CaseData case_data(const op_table::OpCase& k, uint64_t seed, DType dt) {
  std::mt19937_64 rng(seed);
  CaseData d;
  d.x = k.make(rng, dt, Device::cpu);
  REQUIRE(d.x.size() == k.inputs.size());
  for (size_t i = 0; i < d.x.size(); ++i)
    d.g0.push_back(k.inputs[i].grad && k.accumulate ? op_table::uniform(d.x[i].shape(), rng, -1, 1, dt) : Tensor());
  Shape out;
  {
    autograd::NoGradGuard ng;  // the output's shape, on copies (the op may update inputs in place)
    std::vector<Tensor> copies;
    for (const Tensor& t : d.x) copies.push_back(t.clone());
    out = k.call(copies).shape();
  }
  d.c = op_table::uniform(out, rng, 0.5, 1.5, dt);
  return d;
}

// y = op(inputs) and, per input, its gradient (requires grad) or its value
// after the call (state), on the CPU; inputs that need no gradient get none.
struct CaseResult {
  Tensor y;
  std::vector<Tensor> after;
};
inline CaseResult run_case(const op_table::OpCase& k, const CaseData& d, Device dev) {
  std::vector<Tensor> in;
  for (size_t i = 0; i < d.x.size(); ++i) {
    Tensor t = fresh_on(d.x[i], dev);
    if (k.inputs[i].grad) {
      t.set_requires_grad(true);
      if (d.g0[i].defined()) t.impl().grad = fresh_on(d.g0[i], dev).impl_ptr();
    }
    in.push_back(t);
  }
  Tensor y = k.call(in);
  CHECK(y.device() == dev);
  autograd::backward(y, d.c.to(dev));
  CaseResult r{y.to(Device::cpu), {}};
  for (size_t i = 0; i < in.size(); ++i) {
    const op_table::Input& s = k.inputs[i];
    if (!s.grad) {
      INFO("input '" << s.name << "' does not require grad");
      CHECK_FALSE(in[i].grad().defined());
    }
    r.after.push_back(s.grad ? in[i].grad().to(Device::cpu) : s.state ? in[i].to(Device::cpu) : Tensor());
  }
  return r;
}

// got vs want: the output within `out`, each input's gradient or state within its own tolerance.
inline void check_case(const op_table::OpCase& k, const std::string& op, const CaseResult& got,
                       const CaseResult& want, const op_table::Tol& out, bool per_input_tol,
                       const op_table::Tol& all = {}) {
  check_close(got.y, want.y, out.atol, out.rtol, op + " forward");
  for (size_t i = 0; i < k.inputs.size(); ++i) {
    const op_table::Input& s = k.inputs[i];
    if (!want.after[i].defined()) continue;
    const op_table::Tol t = per_input_tol ? s.cuda : all;
    check_close(got.after[i], want.after[i], t.atol, t.rtol,
                s.grad ? op + " gradient of " + s.name + (k.accumulate ? " (accumulated)" : "")
                       : s.name + " after the call");
  }
}

}  // namespace ctg::test

// The TEST_CASEs of one driver: "PREFIX: OP" for each op above, and "PREFIX:
// other ops" for the rest of the table; each calls FN(op name).
#define CTG_OP_TABLE_TEST_CASES(PREFIX, FN)                                     \
  TEST_CASE(PREFIX ": conv2d") { FN("conv2d"); }                                \
  TEST_CASE(PREFIX ": linear") { FN("linear"); }                                \
  TEST_CASE(PREFIX ": batchnorm2d") { FN("batchnorm2d"); }                      \
  TEST_CASE(PREFIX ": maxpool2d") { FN("maxpool2d"); }                          \
  TEST_CASE(PREFIX ": global_maxpool") { FN("global_maxpool"); }                \
  TEST_CASE(PREFIX ": relu") { FN("relu"); }                                    \
  TEST_CASE(PREFIX ": add") { FN("add"); }                                      \
  TEST_CASE(PREFIX ": sigmoid") { FN("sigmoid"); }                              \
  TEST_CASE(PREFIX ": dropout") { FN("dropout"); }                              \
  TEST_CASE(PREFIX ": bce_with_logits") { FN("bce_with_logits"); }              \
  TEST_CASE(PREFIX ": other ops") {                                             \
    for (const ::ctg::op_table::OpEntry& e : ::ctg::op_table::entries())        \
      if (!::ctg::test::ops_with_own_test_case().count(e.op)) FN(e.op);         \
  }
