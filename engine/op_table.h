// One table of op cases, as ggml's test-backend-ops: every differentiable op
// (engine/ops.h) is described ONCE — how to make its inputs, the shapes to
// try, its tolerances per mode, its FLOP/byte count — and the same
// description drives three checks and one benchmark:
//
//   tests/op_table_gradcheck.cpp   double-precision finite differences (tests/gradcheck.h)
//   tests/op_table_cuda.cpp        CUDA (native or emulated) vs the CPU, float32
//   tests/op_table_reference.cpp   tuned CPU kernels vs the plain reference loops
//   ctgrad bench kernels           the native CUDA kernels at the study's shapes
//
// An entry is one op (the name of engine/ops/<op>.cpp, kernels/<op>.h and of
// its bench row) and a list of cases. Each case says which modes use it:
// gradcheck and cuda cases are small, odd, non-square shapes that are no
// multiple of any tile or vector width; bench cases are the study's shapes
// (ResNet18 at --batch and --size, one input channel; Dense(20)'s fc1), built
// from a StudySize. The entries live in engine/op_table/<family>.cpp, a few ops
// per file; adding an op means adding one entry there.
#pragma once
#include <cstdint>
#include <functional>
#include <memory>
#include <random>
#include <string>
#include <vector>

#include "engine/tensor.h"

namespace ctg::op_table {

// |got − want| ≤ atol + rtol·|want| (want: the CPU / reference side).
struct Tol {
  double atol = 0, rtol = 0;
};

// Central differences with step eps; |analytic − numeric| ≤ atol + rtol·max(|a|, |n|).
struct GradcheckTol {
  double eps = 1e-6, rtol = 1e-5, atol = 1e-7;
};

// The study's sizes the bench cases are built at (`bench kernels --batch --size`).
struct StudySize {
  int64_t batch = 15, size = 512;
};

// ---- Input makers: random, never all zeros, away from kinks --------------

// Uniform in [lo, hi), drawn in double in row-major order, stored as dt.
Tensor uniform(const Shape& s, std::mt19937_64& rng, double lo = -1, double hi = 1, DType dt = DType::f64);
// Magnitudes uniform in [lo, hi) with random signs: away from ReLU's kink at 0.
Tensor signed_away_from_zero(const Shape& s, std::mt19937_64& rng, double lo, double hi, DType dt = DType::f64);
// Values whose pairwise gaps are at least `gap` (a shuffled, jittered ramp):
// max pooling never sees a near-tie, so its derivative is defined.
Tensor distinct(const Shape& s, std::mt19937_64& rng, double gap = 1e-2, DType dt = DType::f64);
// 0 or 1 with probability ½ each (binary targets).
Tensor bernoulli(const Shape& s, std::mt19937_64& rng, DType dt = DType::f64);

// ---- The bench side: device buffers and timed passes ----------------------

// Device memory for one bench row's operands, filled with a fixed pattern in
// [-1, 1) (fill = false: left as allocated, e.g. maxpool's int32 argmax).
struct DeviceBuf {
  void* p = nullptr;
  int64_t n = 0;  // elements of 4 bytes (float or int32)
  DeviceBuf(int64_t count, uint32_t seed, bool fill = true);
  ~DeviceBuf();
  DeviceBuf(const DeviceBuf&) = delete;
  DeviceBuf& operator=(const DeviceBuf&) = delete;
  float* f() const { return static_cast<float*>(p); }
};

// One timed pass: `work` is FLOPs (flops = true) or bytes moved; `out` is what
// the pass writes, compared between the native and the alternative implementation.
struct BenchPass {
  std::string name;
  double work = 0;
  bool flops = false;
  std::function<void()> run;
  const DeviceBuf* out = nullptr;
};
// Which cuBLAS/cuDNN alternative a group of rows is compared against.
enum class Alt { none, gemm, conv };
struct BenchRows {
  std::string op, shape;  // the row's op and shape columns
  int count = 1;          // how often the net uses this layer
  Alt alt = Alt::none;
  std::vector<BenchPass> passes;
};
// The buffers of one bench case (alive as long as its passes) and its rows.
struct BenchSetup {
  std::vector<std::unique_ptr<DeviceBuf>> bufs;
  std::vector<BenchRows> rows;
  DeviceBuf* buf(int64_t count, uint32_t seed, bool fill = true);
};

// ---- Cases and entries ------------------------------------------------------

struct Input {
  std::string name;
  bool grad = false;   // requires grad: checked by gradcheck, compared in cuda mode
  bool state = false;  // updated in place by the op (running statistics): compared after the call
  Tol cuda;            // cuda mode: tolerance of its gradient (grad) or of its value after the call (state)
};

struct OpCase {
  std::string desc;            // e.g. "2x3x7x9 k3x2 s2x1 p1x2 bias"
  std::vector<Shape> shapes;   // of the inputs, in order
  bool gradcheck = false, cuda = false, bench = false;
  std::vector<Input> inputs;   // names and roles, one per made input
  // The inputs from an rng, as dt on dev (drawn on the CPU, then moved).
  std::function<std::vector<Tensor>(std::mt19937_64&, DType, Device)> make;
  // The op through engine/ops.h (it may update "state" inputs in place).
  std::function<Tensor(const std::vector<Tensor>&)> call;
  GradcheckTol grad_tol;       // gradcheck, in double
  Tol cuda_out;                // cuda vs cpu of the output, float32
  Tol reference_tol{1e-10, 1e-10};  // tuned vs reference CPU, double
  bool accumulate = false;     // cuda mode: gradients start from random values (backward must add)
  double flops = 0;            // forward FLOPs (compute-bound ops) ...
  double bytes = 0;            // ... or bytes moved by the forward (memory-bound ops)
  int count = 1;               // bench: uses in the net
  std::function<void(BenchSetup&)> bench_setup;  // bench cases: buffers and passes
};

struct OpEntry {
  std::string op;
  std::function<std::vector<OpCase>(const StudySize&)> cases;
};

// Every entry, in the order the bench prints them.
const std::vector<OpEntry>& entries();
// The entry of `op`; a ctg::Error naming the op and the known ones otherwise.
const OpEntry& entry(const std::string& op);

// "5x3x7x9" (a shape as the case descriptions write it).
std::string dims_str(const Shape& s);

}  // namespace ctg::op_table
