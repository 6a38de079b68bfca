#include "engine/autograd.h"

#include <unordered_map>
#include <unordered_set>

#include "engine/ops.h"
#include "engine/trace.h"

namespace ctg {

const Tensor& Node::save(const std::string& name, const Tensor& t) {
  saved.push_back({name, t.detach(), t.is_leaf()});
  return saved.back().tensor;
}

const Tensor& Node::save_buffer(const std::string& name, const Tensor& t) {
  saved.push_back({name, t.detach(), false});
  return saved.back().tensor;
}

bool Node::has_saved(const std::string& name) const {
  for (const SavedTensor& s : saved)
    if (s.name == name) return true;
  return false;
}

const Tensor& Node::saved_tensor(const std::string& name) const {
  for (const SavedTensor& s : saved)
    if (s.name == name) return s.tensor;
  throw Error(op + ": backward asked for a saved tensor '" + name + "' that the forward did not save");
}

namespace autograd {

namespace {
thread_local bool g_grad_enabled = true;
thread_local GradReadyHook g_grad_ready;

bool is_grad_leaf(const Tensor& t) { return t.defined() && t.requires_grad() && !t.grad_fn(); }
}  // namespace

bool grad_enabled() { return g_grad_enabled; }
GradReadyHook set_grad_ready_hook(GradReadyHook hook) {
  std::swap(g_grad_ready, hook);
  return hook;
}
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
  if (trace::active()) trace::recorded(node, out);
  return node;
}

Tensor input_grad(Node& node, size_t i) {
  Tensor& x = node.inputs.at(i);
  if (!x.defined() || !x.requires_grad()) return Tensor();
  TensorImpl& xi = x.impl();
  if (!xi.grad) xi.grad = Tensor::zeros(xi.shape, xi.dtype, x.device()).impl_ptr();
  return Tensor(xi.grad);
}

GradOut input_grad_out(Node& node, size_t i) {
  Tensor& x = node.inputs.at(i);
  if (!x.defined() || !x.requires_grad()) return {};
  TensorImpl& xi = x.impl();
  if (xi.grad) return {Tensor(xi.grad), true};
  xi.grad = Tensor::empty(xi.shape, xi.dtype, x.device()).impl_ptr();
  return {Tensor(xi.grad), false};
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
  // The implicit seed 1 is filled where the root lives (a kernel on a GPU:
  // no host copy, no synchronisation inside a training step).
  Tensor seed = grad_out.defined() ? grad_out.clone() : Tensor::empty(root.shape(), root.dtype(), root.device());
  if (!grad_out.defined()) seed.fill_(1.0);
  if (r->grad) {
    ops::accumulate_(Tensor(r->grad), seed);
  } else {
    r->grad = seed.impl_ptr();
  }
  NoGradGuard no_grad;  // backward functions never record
  const std::vector<std::shared_ptr<TensorImpl>> order = topo_order(root.impl_ptr());
  // With a grad-ready hook: how many nodes still have to add into each leaf.
  const GradReadyHook hook = g_grad_ready;
  std::unordered_map<const TensorImpl*, int> readers;
  if (hook)
    for (const std::shared_ptr<TensorImpl>& t : order)
      if (t->grad_fn)
        for (const Tensor& in : t->grad_fn->inputs)
          if (is_grad_leaf(in)) ++readers[in.impl_ptr().get()];
  for (const std::shared_ptr<TensorImpl>& t : order) {
    std::shared_ptr<Node> node = t->grad_fn;
    if (!node) continue;  // a leaf: its grad stays for the optimiser / caller
    if (!node->backward)
      throw Error("backward: the graph through '" + node->op +
                  "' was already freed by an earlier backward()");
    if (t->grad) {
      Tensor g(t->grad);
      const bool traced = trace::active();
      if (traced) trace::backward_begin(*node, g);
      node->backward(*node, g);
      if (traced) trace::backward_end(*node);
    }
    if (hook)
      for (const Tensor& in : node->inputs)
        if (is_grad_leaf(in) && --readers[in.impl_ptr().get()] == 0) hook(in);
    // Free what this node held: a non-leaf's gradient, saved tensors, inputs.
    t->grad.reset();
    node->backward = nullptr;
    node->saved.clear();
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
    for (const SavedTensor& s : n.saved) {
      if (activations_only && s.is_leaf) continue;
      const Storage* st = s.tensor.impl().storage.get();
      if (counted.insert(st).second) total += st->bytes;
    }
  }
  return total;
}

}  // namespace autograd
}  // namespace ctg
