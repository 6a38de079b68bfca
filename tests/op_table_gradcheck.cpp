// The op table (engine/op_table.h) in gradcheck mode: for every entry, every
// case flagged `gradcheck` runs tests/gradcheck.h in double precision — the
// inputs from the case's maker, the op through engine/ops.h, its tolerances —
// and inputs that do not require grad must get no gradient.
//
// One TEST_CASE per op (so ctest runs them in parallel and a failure names the
// op); the failing case is named in the message. An entry without its own
// TEST_CASE line below still runs, under "op table gradcheck: other ops".
#include <set>

#include "engine/op_table.h"
#include "tests/gradcheck.h"
#include "tests/op_table_check.h"

using namespace ctg;

namespace {

void gradcheck_entry(const op_table::OpEntry& e) {
  int ran = 0;
  uint64_t seed = 0;
  for (const op_table::OpCase& k : e.cases({})) {
    ++seed;  // every case its own inputs, the same on every run
    if (!k.gradcheck) continue;
    INFO("op table gradcheck: " << e.op << " case '" << k.desc << "'");
    std::mt19937_64 rng(seed);
    std::vector<Tensor> in = k.make(rng, DType::f64, Device::cpu);
    REQUIRE(in.size() == k.inputs.size());
    for (size_t i = 0; i < in.size(); ++i) in[i].set_requires_grad(k.inputs[i].grad);
    test::GradcheckOptions opt;
    opt.eps = k.grad_tol.eps, opt.rtol = k.grad_tol.rtol, opt.atol = k.grad_tol.atol;
    test::gradcheck(k.call, in, opt);
    for (size_t i = 0; i < in.size(); ++i)
      if (!k.inputs[i].grad) {
        INFO("input '" << k.inputs[i].name << "' does not require grad");
        CHECK_FALSE(in[i].grad().defined());
      }
    ++ran;
  }
  CHECK_MESSAGE(ran > 0, e.op << " has no gradcheck case");
}

void gradcheck_op(const std::string& op) { gradcheck_entry(op_table::entry(op)); }

}  // namespace

CTG_OP_TABLE_TEST_CASES("op table gradcheck", gradcheck_op)

TEST_CASE("op table: every entry is well formed") {
  // Names unique; every case's inputs described, made in the stated shapes and
  // dtype; gradcheck and cuda cases small; bench cases with passes and a count.
  std::set<std::string> ops;
  for (const op_table::OpEntry& e : op_table::entries()) {
    CAPTURE(e.op);
    CHECK(ops.insert(e.op).second);
    std::set<std::string> descs;
    int checked = 0;
    for (const op_table::OpCase& k : e.cases({})) {
      CAPTURE(k.desc);
      CHECK(descs.insert(k.desc + (k.bench ? " (bench)" : "")).second);
      CHECK((k.gradcheck || k.cuda || k.bench));
      REQUIRE(k.inputs.size() == k.shapes.size());
      REQUIRE((k.make && k.call));
      if (k.bench) {
        CHECK(bool(k.bench_setup));
        CHECK(k.count >= 1);
        CHECK(k.flops + k.bytes > 0);
        continue;
      }
      std::mt19937_64 rng(1);
      const std::vector<Tensor> in = k.make(rng, DType::f32, Device::cpu);
      REQUIRE(in.size() == k.shapes.size());
      for (size_t i = 0; i < in.size(); ++i) {
        CHECK(in[i].shape() == k.shapes[i]);
        CHECK(in[i].dtype() == DType::f32);
        // small: finite differences and the emulation run every element (the
        // largest: conv2d's 2x32x24x24 input, the smallest the CPU's Winograd
        // rule takes — a cuda case, no gradcheck; its table runs in ~0.5 s)
        CHECK(in[i].numel() <= (k.gradcheck ? 20000 : 40000));
      }
      ++checked;
    }
    CHECK(checked > 0);
  }
  CHECK_THROWS_WITH_AS(op_table::entry("conv3d"), doctest::Contains("op table: no entry 'conv3d' (known: conv2d"),
                       Error);
}
