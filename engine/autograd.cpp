#include "engine/autograd.h"

#include <cstdio>
#include <unordered_map>
#include <unordered_set>

#include "engine/ops/common.h"

namespace ctg {

Tensor Node::save(const Tensor& t) {
  saved.push_back(t.detach());
  // saved_bytes() tells activations from parameters and inputs by this.
  saved_is_leaf.push_back(t.is_leaf());
  return saved.back();
}

namespace autograd {

namespace {
thread_local bool g_grad_enabled = true;
bool g_trace = false;
}  // namespace

bool grad_enabled() { return g_grad_enabled; }
void set_grad_enabled(bool on) { g_grad_enabled = on; }

bool needs_grad(std::initializer_list<const Tensor*> inputs) {
  if (!g_grad_enabled) return false;
  for (const Tensor* t : inputs)
    if (t && t->defined() && t->requires_grad()) return true;
  return false;
}

std::shared_ptr<Node> record(const std::string& op, Tensor& out, std::vector<Tensor> inputs) {
  auto node = std::make_shared<Node>();
  node->op = op;
  node->inputs = std::move(inputs);
  out.impl().requires_grad = true;
  out.impl().grad_fn = node;
  if (g_trace) trace("forward " + op + " -> " + shape_str(out.shape()));
  return node;
}

Tensor input_grad(Node& node, size_t i) {
  Tensor& x = node.inputs.at(i);
  if (!x.defined() || !x.requires_grad()) return Tensor();
  TensorImpl& xi = x.impl();
  if (!xi.grad) xi.grad = Tensor::zeros(xi.shape, xi.dtype, x.device()).impl_ptr();
  return Tensor(xi.grad);
}

// Reverse topological order of the tensors reachable from root through
// grad_fn edges (iterative DFS: deep nets must not overflow the stack).
// Owning pointers: backward() frees node inputs as it goes, and the list must
// keep every tensor alive until its turn.
static std::vector<std::shared_ptr<TensorImpl>> topo_order(const std::shared_ptr<TensorImpl>& root) {
  std::vector<std::shared_ptr<TensorImpl>> order;
  std::unordered_set<TensorImpl*> seen;
  std::vector<std::pair<std::shared_ptr<TensorImpl>, size_t>> stack{{root, 0}};
  seen.insert(root.get());
  while (!stack.empty()) {
    Node* n = stack.back().first->grad_fn.get();
    size_t next = stack.back().second;
    if (n && next < n->inputs.size()) {
      stack.back().second++;
      const std::shared_ptr<TensorImpl>& in = n->inputs[next].impl_ptr();
      if (in && in->requires_grad && seen.insert(in.get()).second) stack.push_back({in, 0});
    } else {
      order.push_back(std::move(stack.back().first));
      stack.pop_back();
    }
  }
  return {order.rbegin(), order.rend()};  // root first
}

void backward(const Tensor& root, const Tensor& grad_out) {
  if (!root.requires_grad())
    throw Error("backward: the tensor does not require grad (no parameter or input needs a gradient)");
  TensorImpl* r = root.impl_ptr().get();
  if (grad_out.defined()) {
    if (grad_out.shape() != root.shape() || grad_out.dtype() != root.dtype())
      throw Error("backward: grad_out " + shape_str(grad_out.shape()) + " does not match output " +
                  shape_str(root.shape()));
  } else if (root.numel() != 1) {
    throw Error("backward: root of shape " + shape_str(root.shape()) +
                " needs an explicit grad_out (only scalars get the implicit seed 1)");
  }
  if (grad_out.defined() && grad_out.device() != root.device())
    throw Error("backward: grad_out is on " + std::string(device_name(grad_out.device())) + ", the output on " +
                device_name(root.device()));
  Tensor seed = grad_out.defined() ? grad_out.clone() : Tensor::full(root.shape(), 1.0, root.dtype()).to(root.device());
  if (r->grad) {
    ops::detail::accumulate(seed, Tensor(r->grad));
  } else {
    r->grad = seed.impl_ptr();
  }
  NoGradGuard no_grad;  // backward functions never record
  for (const std::shared_ptr<TensorImpl>& t : topo_order(root.impl_ptr())) {
    std::shared_ptr<Node> node = t->grad_fn;
    if (!node) continue;  // a leaf: its grad stays for the optimiser / caller
    if (!node->backward)
      throw Error("backward: the graph through '" + node->op +
                  "' was already freed by an earlier backward()");
    if (t->grad) {
      Tensor g(t->grad);
      if (g_trace) trace("backward " + node->op);
      node->backward(*node, g);
    }
    // Free what this node held: a non-leaf's gradient, saved tensors, inputs.
    t->grad.reset();
    node->backward = nullptr;
    node->saved.clear();
    node->saved_is_leaf.clear();
    node->inputs.clear();
  }
}

size_t saved_bytes(const Tensor& root, bool activations_only) {
  if (!root.defined() || !root.grad_fn()) return 0;
  std::unordered_set<const Storage*> counted;
  size_t total = 0;
  for (const std::shared_ptr<TensorImpl>& t : topo_order(root.impl_ptr())) {
    if (!t->grad_fn) continue;
    const Node& n = *t->grad_fn;
    for (size_t i = 0; i < n.saved.size(); ++i) {
      if (activations_only && n.saved_is_leaf[i]) continue;
      const Storage* st = n.saved[i].impl().storage.get();
      if (counted.insert(st).second) total += st->bytes;
    }
  }
  return total;
}

void set_trace(bool on) { g_trace = on; }
bool trace_enabled() { return g_trace; }
void trace(const std::string& line) {
  if (g_trace) std::fprintf(stderr, "[trace] %s\n", line.c_str());
}

}  // namespace autograd
}  // namespace ctg
