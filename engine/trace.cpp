// The trace recorder behind engine/trace.h: hooks called by the op glue, the
// tape, the optimiser, Module::operator() and the CUDA launch wrapper append
// events to the recording of the thread that called start().
#include "engine/trace.h"

#include <chrono>
#include <unordered_map>
#include <unordered_set>

#include "engine/autograd.h"
#include "engine/module.h"
#include "kernels/cuda/runtime.h"

namespace ctg::trace {

namespace {

using Clock = std::chrono::steady_clock;

struct OpenForward {  // a ForwardOp whose scope has not closed yet
  int index;
  std::shared_ptr<Node> node;  // set by recorded()
  Tensor out;
};

struct Recorder {
  StartOptions opts;
  Trace t;
  Clock::time_point t0;
  std::string phase = "forward";
  std::vector<OpenForward> forward_stack;
  std::vector<int> backward_stack, kernel_stack;
  std::vector<const Module*> modules;
  std::vector<std::string> paths;
  std::unordered_map<const Node*, int> node_forward;  // node -> its forward op
  std::unordered_set<const Storage*> saved_seen;      // storages already counted
  size_t optimizer_kernels = 0;
};

thread_local Recorder* g_rec = nullptr;

double now_us(const Recorder& r) {
  return std::chrono::duration<double, std::micro>(Clock::now() - r.t0).count();
}

// On CUDA the host only queues kernels: wait for the device at every event
// boundary so that a kernel's time is its run time, not its launch time.
void sync(const Recorder& r) {
  if (r.opts.device == Device::cuda) cuda::synchronize();
}

bool same_storage(const Tensor& a, const Tensor& b) {
  return a.defined() && b.defined() && a.impl().storage == b.impl().storage;
}

// 2 FLOPs per multiply-add of the op's GEMM (module comment in trace.h).
double forward_flops(const std::string& op, const std::vector<Tensor>& in, const Shape& out) {
  if (op == "conv2d" && in.size() >= 2 && in[0].defined() && in[1].defined() && out.size() == 4) {
    const Shape& w = in[1].shape();  // [O, C, KH, KW]
    return 2.0 * (double)out[0] * (double)out[1] * (double)out[2] * (double)out[3] * (double)w[1] *
           (double)w[2] * (double)w[3];
  }
  if (op == "linear" && in.size() >= 2 && in[0].defined() && in[1].defined()) {
    const Shape& w = in[1].shape();  // [out, in]; x is [N, in]
    return 2.0 * (double)(in[0].numel() / w[1]) * (double)w[1] * (double)w[0];
  }
  return 0;  // elementwise, pooling, batch norm, loss: bytes only
}

// The node is complete (saved tensors filled): shapes, FLOPs, bytes, saved.
void fill_forward(Recorder& r, OpEvent& e, const Node& n, const Tensor& out) {
  e.inputs.clear();
  double read = 0;
  for (size_t i = 0; i < n.inputs.size(); ++i) {
    const Tensor& x = n.inputs[i];
    if (!x.defined()) continue;
    e.inputs.push_back(x.shape());
    bool dup = false;  // add(x, x) reads x once
    for (size_t j = 0; j < i; ++j) dup = dup || same_storage(n.inputs[j], x);
    if (!dup) read += (double)x.nbytes();
  }
  e.output = out.shape();
  e.flops = forward_flops(e.op, n.inputs, out.shape());
  double written = (double)out.nbytes();
  for (const SavedTensor& s : n.saved) {
    const Tensor& st = s.tensor;
    const bool leaf = s.is_leaf;
    e.saved.push_back(s.name + " " + shape_str(st.shape()));
    bool is_operand = same_storage(st, out);
    for (const Tensor& x : n.inputs) is_operand = is_operand || same_storage(st, x);
    // A saved tensor that is no input nor the output: a buffer the op made
    // (argmax, batch statistics: written) or a leaf it was given (targets: read).
    if (!is_operand) (leaf ? read : written) += (double)st.nbytes();
    // The same rule as autograd::saved_bytes(activations_only): distinct
    // storages of non-leaf saved tensors, each counted at its first saver.
    const Storage* storage = st.impl().storage.get();
    if (!leaf && r.saved_seen.insert(storage).second) e.saved_bytes += storage->bytes;
  }
  e.bytes_read = read;
  e.bytes_written = written;
}

int innermost_op(const Recorder& r) {
  int a = r.forward_stack.empty() ? -1 : r.forward_stack.back().index;
  int b = r.backward_stack.empty() ? -1 : r.backward_stack.back();
  return a > b ? a : b;
}

void on_launch(const char* kernel, const unsigned grid[3], const unsigned block[3], size_t shmem) {
  Recorder* r = g_rec;
  if (!r) return;  // another thread's launch, or no recording
  Launch l;
  l.kernel = kernel;  // CTG_LAUNCH's #kernel: "(gemm<TA, TB>)" keeps the parentheses a comma needs
  if (l.kernel.size() > 2 && l.kernel.front() == '(' && l.kernel.back() == ')')
    l.kernel = l.kernel.substr(1, l.kernel.size() - 2);
  for (int i = 0; i < 3; ++i) l.grid[i] = grid[i], l.block[i] = block[i];
  l.shared_bytes = shmem;
  if (!r->kernel_stack.empty()) {
    r->t.kernels[(size_t)r->kernel_stack.back()].launches.push_back(l);
    return;
  }
  // A launch outside the glue's kernel entries (a fill, a gradient
  // accumulation): its own zero-length kernel event, named by the launch.
  KernelEvent k;
  k.name = kernel;
  k.device = Device::cuda;
  k.phase = r->phase;
  k.parent = innermost_op(*r);
  k.ts_us = now_us(*r);
  k.launches.push_back(l);
  r->t.kernels.push_back(std::move(k));
}

}  // namespace

bool active() { return g_rec != nullptr; }

ForwardOp::ForwardOp(const char* op) {
  Recorder* r = g_rec;
  if (!r) return;
  sync(*r);
  OpEvent e;
  e.phase = r->phase;
  e.module = r->paths.empty() ? "" : r->paths.back();
  e.op = op;
  e.depth = (int)r->forward_stack.size();
  e.ts_us = now_us(*r);
  index_ = (int)r->t.ops.size();
  r->t.ops.push_back(std::move(e));
  r->forward_stack.push_back({index_, nullptr, Tensor()});
}

ForwardOp::~ForwardOp() {
  Recorder* r = g_rec;
  if (!r || index_ < 0 || r->forward_stack.empty() || r->forward_stack.back().index != index_) return;
  sync(*r);
  OpenForward f = std::move(r->forward_stack.back());
  r->forward_stack.pop_back();
  OpEvent& e = r->t.ops[(size_t)index_];
  e.dur_us = now_us(*r) - e.ts_us;
  if (f.node) {
    fill_forward(*r, e, *f.node, f.out);
    return;
  }
  // No node and no kernel: the op passed its input through (a ReLU already
  // fused into the batchnorm2d_relu before it, a no-op reshape): not a step.
  const bool last = (size_t)index_ + 1 == r->t.ops.size();
  const bool kernels = !r->t.kernels.empty() && r->t.kernels.back().parent >= index_;
  if (last && !kernels) r->t.ops.pop_back();
}

void recorded(const std::shared_ptr<Node>& node, const Tensor& out) {
  Recorder* r = g_rec;
  if (!r || r->forward_stack.empty()) return;
  OpenForward& f = r->forward_stack.back();
  f.node = node;
  f.out = out;
  r->node_forward[node.get()] = f.index;
}

void backward_begin(const Node& node, const Tensor& grad_out) {
  Recorder* r = g_rec;
  if (!r) return;
  sync(*r);
  OpEvent e;
  e.phase = r->phase;
  e.op = node.op;
  auto it = r->node_forward.find(&node);
  if (it != r->node_forward.end()) {
    e.forward = it->second;
    e.module = r->t.ops[(size_t)it->second].module;
  }
  e.inputs.push_back(grad_out.shape());
  e.bytes_read = (double)grad_out.nbytes();
  for (const SavedTensor& s : node.saved) e.bytes_read += (double)s.tensor.nbytes();
  // One GEMM per gradient the node produces among (input, weight); the bias
  // gradient is a reduction (bytes only).
  const double f = forward_flops(node.op, node.inputs, e.forward >= 0 ? r->t.ops[(size_t)e.forward].output : Shape{});
  for (size_t i = 0; i < node.inputs.size(); ++i) {
    const Tensor& x = node.inputs[i];
    if (!x.defined() || !x.requires_grad()) continue;
    e.grads.push_back(x.shape());
    e.bytes_written += (double)x.nbytes();
    if (i < 2) e.flops += f;
  }
  e.ts_us = now_us(*r);
  r->backward_stack.push_back((int)r->t.ops.size());
  r->t.ops.push_back(std::move(e));
}

void backward_end(const Node&) {
  Recorder* r = g_rec;
  if (!r || r->backward_stack.empty()) return;
  sync(*r);
  OpEvent& e = r->t.ops[(size_t)r->backward_stack.back()];
  e.dur_us = now_us(*r) - e.ts_us;
  r->backward_stack.pop_back();
}

void kernel_begin(const char* name, Device on) {
  Recorder* r = g_rec;
  if (!r) return;
  sync(*r);
  KernelEvent k;
  k.name = name;
  k.device = on;
  k.phase = r->phase;
  k.parent = innermost_op(*r);
  if (k.parent < 0 && r->phase == "optimizer") {
    // The optimiser updates its parameters in order, one kernel each; an
    // update reads param, grad and its moments and writes them back.
    const size_t i = r->optimizer_kernels++;
    if (i < r->opts.params.size()) {
      k.param = r->opts.params[i].first;
      k.param_shape = r->opts.params[i].second;
      // Tensors read and written per element (kernels/optim.h): Adam reads
      // p, g, m, v and writes p, m, v; SGD (with momentum) reads p, g, buf
      // and writes p, buf.
      const std::string n = name;
      const bool adam = n.rfind("adam", 0) == 0;
      const double bytes = (double)shape_numel(k.param_shape) * (double)r->opts.param_elem_bytes;
      k.bytes_read = (adam ? 4 : 3) * bytes;
      k.bytes_written = (adam ? 3 : 2) * bytes;
    }
  }
  k.ts_us = now_us(*r);
  r->kernel_stack.push_back((int)r->t.kernels.size());
  r->t.kernels.push_back(std::move(k));
}

void kernel_end(const char*, Device) {
  Recorder* r = g_rec;
  if (!r || r->kernel_stack.empty()) return;
  sync(*r);
  KernelEvent& k = r->t.kernels[(size_t)r->kernel_stack.back()];
  k.dur_us = now_us(*r) - k.ts_us;
  r->kernel_stack.pop_back();
}

void set_phase(const char* phase) {
  Recorder* r = g_rec;
  if (!r) return;
  sync(*r);
  const double t = now_us(*r);
  if (!r->t.phases.empty()) r->t.phases.back().dur_us = t - r->t.phases.back().ts_us;
  r->t.phases.push_back({phase, t, 0});
  r->phase = phase;
}

void module_enter(const Module& m) {
  Recorder* r = g_rec;
  if (!r) return;
  // The child's name is the one its parent registered it under, so the path
  // is the state-dict prefix (`layer1.0.conv1`); the outermost module is "".
  std::string path;
  if (!r->modules.empty()) {
    std::string name = m.type_name();  // a module called without being registered
    for (const auto& [child_name, child] : r->modules.back()->children())
      if (child.get() == &m) name = child_name;
    path = r->paths.back().empty() ? name : r->paths.back() + "." + name;
  }
  r->modules.push_back(&m);
  r->paths.push_back(path);
}

void module_leave() {
  Recorder* r = g_rec;
  if (!r || r->modules.empty()) return;
  r->modules.pop_back();
  r->paths.pop_back();
}

void start(const StartOptions& opts) {
  if (g_rec) throw Error("trace: a recording is already on for this thread");
  auto* r = new Recorder();
  r->opts = opts;
  r->t.device = opts.device;
  r->t.timing = opts.device == Device::cuda
                    ? "host clock; the device is synchronised before and after every op and kernel, so the "
                      "GPU runs one kernel at a time (slower than an untraced step)"
                    : "host clock (steady_clock) around every op and kernel";
  r->t0 = Clock::now();
  r->t.phases.push_back({r->phase, 0, 0});
  g_rec = r;
  cuda::launch_observer() = &on_launch;
}

Trace stop() {
  Recorder* r = g_rec;
  if (!r) throw Error("trace: no recording is on");
  sync(*r);
  if (!r->t.phases.empty()) r->t.phases.back().dur_us = now_us(*r) - r->t.phases.back().ts_us;
  cuda::launch_observer() = nullptr;
  g_rec = nullptr;
  Trace t = std::move(r->t);
  delete r;
  return t;
}

}  // namespace ctg::trace
