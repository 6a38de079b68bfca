// The trace of one training step: how backprop maps to kernels.
//
// A recording (start() … stop()) collects, on the thread that started it:
// - every forward op, with the module it ran in (the state-dict prefix,
//   `layer1.0.conv1`), its input and output shapes, FLOPs, bytes read and
//   written, the bytes it saved for backward and its time;
// - every backward node, with the gradient shapes, FLOPs, bytes and time;
// - every kernel call (the glue's one-call kernel entry and the optimiser's),
//   nested in the op or node that made it, and on CUDA each launch's grid
//   and block (kernels/cuda/runtime.h's launch observer).
// Counting conventions (the standard ones): one multiply-add is 2 FLOPs (so
// the counts are twice the MACs that ptflops and fvcore report); conv2d forward is
// 2·N·O·OH·OW·C·KH·KW, and each of its backward GEMMs (grad input, grad
// weight) the same; linear is 2·N·in·out per GEMM; elementwise ops, pooling,
// batch norm and the loss are 0 FLOPs and are counted by their bytes only.
// Bytes are the minimum traffic: every operand read once, every result
// written once (not measured cache or DRAM traffic).
//
// The hooks below are what the op glue (engine/ops/*.cpp), the tape
// (engine/autograd.cpp), the optimiser and Module::operator() call; each
// costs one thread-local bool test when no recording is on.
#pragma once
#include <memory>
#include <string>
#include <vector>

#include "engine/tensor.h"

namespace ctg {
struct Node;
class Module;
class Optimizer;
}  // namespace ctg

namespace ctg::trace {

bool active();  // a recording is on for this thread

// RAII around one forward op's glue (the top of every op in engine/ops/*.cpp).
struct ForwardOp {
  explicit ForwardOp(const char* op);
  ~ForwardOp();
  ForwardOp(const ForwardOp&) = delete;
  ForwardOp& operator=(const ForwardOp&) = delete;

 private:
  int index_ = -1;  // the op's event, -1 when not recording
};

// autograd::record calls this once the node exists; the node's saved tensors
// are read when the enclosing ForwardOp closes.
void recorded(const std::shared_ptr<Node>& node, const Tensor& out);
// autograd::backward calls these around each node's backward function.
void backward_begin(const Node& node, const Tensor& grad_out);
void backward_end(const Node& node);
// Around every kernel call: name = the kernel entry without its device suffix
// ("conv2d_backward"), on = the device it runs on.
void kernel_begin(const char* name, Device on);
void kernel_end(const char* name, Device on);
// The phase the driver is in: "forward", "backward" or "optimizer".
void set_phase(const char* phase);
// Module::operator() brackets forward() with these (the module-path stack).
void module_enter(const Module& m);
void module_leave();

// ---- the recording ----------------------------------------------------------
struct Launch {  // one CUDA launch (ctg::cuda::launch) inside a kernel call
  std::string kernel;  // the __global__ function, e.g. "conv2d_forward_kernel<float>"
  unsigned grid[3] = {1, 1, 1}, block[3] = {1, 1, 1};
  size_t shared_bytes = 0;
};

struct KernelEvent {
  std::string name;  // kernel entry, e.g. "conv2d_forward"
  Device device = Device::cpu;
  std::string phase;
  int parent = -1;  // index into Trace::ops, -1 outside any op (the optimiser)
  double ts_us = 0, dur_us = 0;
  std::vector<Launch> launches;
  // Filled for kernels outside ops (optimiser updates): the parameter updated.
  std::string param;
  Shape param_shape;
  double bytes_read = 0, bytes_written = 0;
};

struct OpEvent {
  std::string phase;   // "forward" or "backward"
  std::string module;  // state-dict prefix of the innermost module ("" at the top)
  std::string op;      // "conv2d", ...
  int depth = 0;       // nesting among forward ops (an op called by another op)
  int forward = -1;    // backward: index of the forward op that recorded the node
  std::vector<Shape> inputs;  // forward: the node's inputs; backward: grad_out first
  Shape output;               // forward: the output
  std::vector<Shape> grads;   // backward: gradients written (inputs that need grad)
  std::vector<std::string> saved;  // forward: "name shape" of each saved tensor
  double flops = 0, bytes_read = 0, bytes_written = 0;
  size_t saved_bytes = 0;  // saved activations first saved by this op (not leaves)
  double ts_us = 0, dur_us = 0;
};

struct Phase {
  std::string name;
  double ts_us = 0, dur_us = 0;
};

struct Trace {
  std::vector<OpEvent> ops;
  std::vector<KernelEvent> kernels;
  std::vector<Phase> phases;
  Device device = Device::cpu;
  std::string timing;  // how times were taken (CUDA: synchronised per kernel)
  // Filled by the driver: what autograd::saved_bytes measured for the same
  // graph (activations only, and with parameters and input).
  size_t measured_saved_activations = 0, measured_saved_total = 0;
  std::string title;  // "cnn1, batch 2, 32x32 input, cpu"
  double loss = 0;    // the step's loss (record_training_step)
};

struct StartOptions {
  Device device = Device::cpu;  // cuda: synchronise around every op and kernel
  // The optimiser's parameters in the order it updates them: the k-th update
  // kernel of the "optimizer" phase is attributed to the k-th entry.
  std::vector<std::pair<std::string, Shape>> params;
  size_t param_elem_bytes = 4;
};

void start(const StartOptions& opts);  // throws when a recording is already on
Trace stop();

// One training step under a recording (engine/trace_step.cpp), as `ctgrad
// bench step` and `ctgrad train` take it: zero_grad, forward, BCE-with-logits
// loss, backward, optimiser step, in the phases "forward", "backward" and
// "optimizer"; fills measured_saved_* from autograd::saved_bytes.
Trace record_training_step(Module& model, Optimizer& opt, const Tensor& x, const Tensor& targets, Device device);
// The batch `ctgrad bench step` and `ctgrad trace` train on: [batch, 1, size,
// size] images uniform in [0, 1) from Generator(3) and labels 0, 1, 0, ...
// ([batch, 1]), on `device`.
std::pair<Tensor, Tensor> step_batch(int64_t batch, int64_t size, Device device);

// Writers (engine/trace_format.cpp).
std::string format_table(const Trace& t);
std::string format_chrome(const Trace& t);  // Chrome trace-event JSON
// "2.42 GFLOP", "1.50 MiB", "[2,1,32,32]"-style helpers shared by the writers.
std::string human_flops(double f);
std::string human_bytes(double b);

}  // namespace ctg::trace
