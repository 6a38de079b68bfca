// The op table (engine/op_table.h) in "tuned CPU vs plain reference" mode:
// every small case (flagged gradcheck or cuda) runs the op through
// engine/ops.h on the CPU twice — under the plain reference loops and under
// the tuned kernels (kernels/cpu_impl.h: im2col + OpenBLAS, the vector pool
// forward, ...) — on the same inputs, L = Σ c·y, and compares the output, every
// input's gradient (accumulated when the case says so) and every in-place
// update, tuned against reference (|tuned − ref| ≤ atol + rtol·|ref|):
//   float64: the case's reference_tol (rounding only: 1e-10 by default);
//   float32: the case's CUDA-vs-CPU tolerances — the same situation, sums
//            rounded in another order (exact ops stay exact).
// Ops without a tuned variant run their reference twice and must agree exactly.
#include "kernels/cpu_impl.h"
#include "tests/op_table_check.h"

using namespace ctg;

namespace {

test::CaseResult run_as(kernels::CpuImpl impl, const op_table::OpCase& k, const test::CaseData& d) {
  kernels::ScopedCpuImpl scope(impl);
  return test::run_case(k, d, Device::cpu);
}

void reference_entry(const op_table::OpEntry& e) {
  uint64_t seed = 200;
  int ran = 0;
  for (const op_table::OpCase& k : e.cases({})) {
    ++seed;
    if (!k.gradcheck && !k.cuda) continue;  // bench cases are the study's (large) shapes
    for (DType dt : {DType::f64, DType::f32}) {
      const std::string what = "op table tuned vs reference: " + e.op + " case '" + k.desc + "' " + dtype_name(dt);
      INFO(what);
      const test::CaseData d = test::case_data(k, seed, dt);
      const test::CaseResult want = run_as(kernels::CpuImpl::reference, k, d);
      const test::CaseResult got = run_as(kernels::CpuImpl::tuned, k, d);
      if (dt == DType::f64)
        test::check_case(k, e.op, got, want, k.reference_tol, false, k.reference_tol);
      else
        test::check_case(k, e.op, got, want, k.cuda_out, true);
    }
    ++ran;
  }
  CHECK_MESSAGE(ran > 0, e.op << " has no small case");
}

void reference_op(const std::string& op) { reference_entry(op_table::entry(op)); }

}  // namespace

CTG_OP_TABLE_TEST_CASES("op table tuned vs reference", reference_op)
