// The op table (engine/op_table.h) in CUDA-vs-CPU mode: for every entry,
// every case flagged `cuda` runs the op through engine/ops.h in float32 on the
// CPU and on CUDA (native, or the emulation under several thread orders, see
// tests/cuda_check.h) on the same inputs, L = Σ c·y with random c ∈ [0.5, 1.5),
// and compares, within the case's tolerances (|cuda − cpu| ≤ atol + rtol·|cpu|):
//   the output y (which must live on the input's device),
//   the gradient of every input that requires grad — started from random
//     values when the case says `accumulate` (backward must add, not overwrite),
//   every input the op updates in place (running statistics), after the call;
// inputs that do not require grad must get no gradient on either device.
#include "tests/op_table_check.h"

using namespace ctg;

namespace {

void cuda_entry(const op_table::OpEntry& e) {
  uint64_t seed = 100;
  for (const op_table::OpCase& k : e.cases({})) {
    ++seed;  // every case its own inputs, the same on every run
    if (!k.cuda) continue;
    INFO("op table cuda vs cpu: " << e.op << " case '" << k.desc << "'");
    const test::CaseData d = test::case_data(k, seed, DType::f32);
    const test::CaseResult want = test::run_case(k, d, Device::cpu);
    test::for_each_schedule([&] { test::check_case(k, e.op, test::run_case(k, d, Device::cuda), want, k.cuda_out, true); });
  }
}

void cuda_op(const std::string& op) { cuda_entry(op_table::entry(op)); }

}  // namespace

CTG_OP_TABLE_TEST_CASES("op table cuda vs cpu", cuda_op)
