// Reverse-mode automatic differentiation on a define-by-run tape.
//
// Every differentiable op that runs in grad mode with at least one input that
// requires grad records a Node on its output: the inputs, the tensors its
// backward needs (saved, always detached so the graph has no cycles) and a
// backward function. backward(root) orders the nodes reverse-topologically
// from the root and calls each node's backward with dL/d(output); the backward
// *adds* into the inputs' gradient buffers (see input_grad), which is what
// makes a tensor used twice (a ResNet skip connection) need no special case.
#pragma once
#include <functional>
#include <string>
#include <vector>

#include "engine/tensor.h"

namespace ctg {

// One tensor a node keeps for its backward, by name ("x", "weight", "argmax"),
// always detached so the graph has no cycles.
struct SavedTensor {
  std::string name;
  Tensor tensor;
  // A parameter or an input the op was given (true), or an activation or a
  // per-batch buffer (false): saved_bytes(activations_only) counts the latter.
  bool is_leaf = false;
};

struct Node {
  std::string op;                   // e.g. "conv2d"
  std::vector<Tensor> inputs;       // differentiable inputs, in the op's order
  std::vector<SavedTensor> saved;   // what backward reads, by name
  // Called once with dL/d(output). Must add into input_grad(node, i) (or
  // write input_grad_out(node, i) as it says).
  std::function<void(Node& node, const Tensor& grad_out)> backward;

  // Keep `t` (an input, a parameter or the output) for backward under `name`;
  // returns the detached alias that was stored.
  const Tensor& save(const std::string& name, const Tensor& t);
  // Keep a buffer the op made itself (max pool's argmax, BatchNorm's batch
  // statistics): counted with the activations although it is not a graph node.
  const Tensor& save_buffer(const std::string& name, const Tensor& t);
  // The tensor saved under `name` (an Error naming the op and name if absent).
  const Tensor& saved_tensor(const std::string& name) const;
  bool has_saved(const std::string& name) const;
};

namespace autograd {

bool grad_enabled();
void set_grad_enabled(bool on);

// RAII: no graph is recorded inside the scope (evaluation, optimiser steps).
class NoGradGuard {
 public:
  NoGradGuard() : prev_(grad_enabled()) { set_grad_enabled(false); }
  ~NoGradGuard() { set_grad_enabled(prev_); }
  NoGradGuard(const NoGradGuard&) = delete;
  NoGradGuard& operator=(const NoGradGuard&) = delete;

 private:
  bool prev_;
};

// True when grad mode is on and any of `inputs` requires grad.
bool needs_grad(std::initializer_list<const Tensor*> inputs);

// Create the node for `out`, produced by `op` from `inputs`; marks `out` as
// requiring grad. Callers fill node->saved/backward.
std::shared_ptr<Node> record(const std::string& op, Tensor& out, std::vector<Tensor> inputs);

// Gradient buffer of node.inputs[i], created as zeros on first use; an
// undefined tensor when that input does not require grad (skip its kernel).
Tensor input_grad(Node& node, size_t i);

// The same buffer for a backward kernel that writes every element of it:
// on the first contribution to that input's gradient the buffer is created
// *uninitialised* and `accumulate` is false (the kernel stores g, no
// zero-fill pass and no read of the old value); later contributions get the
// existing buffer and accumulate = true (the kernel adds). Only for kernels
// that write the whole buffer — a scatter (max pool, col2im) needs input_grad.
// Tests poison fresh memory (CTGRAD_CPU_POISON, the CUDA emulation's NaN), so
// a kernel that leaves an element unwritten fails them.
struct GradOut {
  Tensor grad;              // undefined: the input needs no gradient
  bool accumulate = false;  // add into grad (true) or overwrite it (false)
};
GradOut input_grad_out(Node& node, size_t i);

// Back-propagate from `root`. With no `grad_out`, root must hold one element
// and the seed is 1. Frees the graph as it goes (backward twice is an error).
void backward(const Tensor& root, const Tensor& grad_out = Tensor());

// Called by backward() as soon as a leaf's gradient is complete, i.e. every
// node that reads the leaf has run (its grad() holds the final sum). Data
// parallel training starts a bucket's all-reduce there while backward goes on
// (train/distributed.h GradientReducer, as PyTorch DDP's autograd hooks).
// The order is the same on every run and every rank for the same graph.
using GradReadyHook = std::function<void(const Tensor& leaf)>;
// Install a hook for backward() calls on this thread; returns the previous one.
GradReadyHook set_grad_ready_hook(GradReadyHook hook);

// Bytes of the distinct storages saved for backward in the graph under root.
// `activations_only` leaves out leaves (parameters, the input batch).
size_t saved_bytes(const Tensor& root, bool activations_only);

}  // namespace autograd
}  // namespace ctg
