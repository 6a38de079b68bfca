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

struct Node {
  std::string op;                // e.g. "conv2d"
  std::vector<Tensor> inputs;    // differentiable inputs, in the op's order
  std::vector<Tensor> saved;     // detached tensors kept for backward
  std::vector<bool> saved_is_leaf;  // per saved tensor: was it a leaf (parameter, input)?
  // Called once with dL/d(output). Must accumulate into input_grad(node, i).
  std::function<void(Node& node, const Tensor& grad_out)> backward;

  // Keep `t` for backward; returns the detached alias that was stored.
  Tensor save(const Tensor& t);
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

// Back-propagate from `root`. With no `grad_out`, root must hold one element
// and the seed is 1. Frees the graph as it goes (backward twice is an error).
void backward(const Tensor& root, const Tensor& grad_out = Tensor());

// Bytes of the distinct storages saved for backward in the graph under root.
// `activations_only` leaves out leaves (parameters, the input batch).
size_t saved_bytes(const Tensor& root, bool activations_only);

// Trace mode: print each forward op and each kernel its backward launches.
void set_trace(bool on);
bool trace_enabled();
void trace(const std::string& line);  // prints "[trace] line" when enabled

}  // namespace autograd
}  // namespace ctg
