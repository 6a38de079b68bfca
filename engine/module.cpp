#include "engine/module.h"

#include <map>
#include <set>

#include "engine/trace.h"

namespace ctg {

namespace {
thread_local ModuleCallObserver g_observer;
thread_local int g_depth = 0;
}  // namespace

ModuleCallObserver set_module_call_observer(ModuleCallObserver obs) {
  std::swap(obs, g_observer);
  return obs;
}

namespace {
// Tells the trace recorder which module the ops inside forward() belong to.
struct TraceModuleScope {
  bool on;
  explicit TraceModuleScope(const Module& m) : on(trace::active()) {
    if (on) trace::module_enter(m);
  }
  ~TraceModuleScope() {
    if (on) trace::module_leave();
  }
  TraceModuleScope(const TraceModuleScope&) = delete;
  TraceModuleScope& operator=(const TraceModuleScope&) = delete;
};
}  // namespace

Tensor Module::operator()(const Tensor& x) {
  TraceModuleScope traced(*this);
  if (!g_observer) return forward(x);
  int depth = g_depth++;
  Tensor y;
  try {
    y = forward(x);
  } catch (...) {
    --g_depth;
    throw;
  }
  --g_depth;
  g_observer(*this, y, depth);
  return y;
}

void Module::train(bool on) {
  training_ = on;
  for (auto& [name, child] : children_) child->train(on);
}

Tensor Module::register_parameter(const std::string& name, Tensor t) {
  t.set_requires_grad(true);
  params_.emplace_back(name, t);
  return t;
}

Tensor Module::register_buffer(const std::string& name, Tensor t) {
  buffers_.emplace_back(name, t);
  return t;
}

void Module::collect(const std::string& prefix, bool params, bool buffers, NamedTensorList& out) const {
  if (params)
    for (auto& [n, t] : params_) out.emplace_back(prefix + n, t);
  if (buffers)
    for (auto& [n, t] : buffers_) out.emplace_back(prefix + n, t);
  for (auto& [n, child] : children_) child->collect(prefix + n + ".", params, buffers, out);
}

NamedTensorList Module::named_parameters() const {
  NamedTensorList out;
  collect("", true, false, out);
  return out;
}

NamedTensorList Module::named_buffers() const {
  NamedTensorList out;
  collect("", false, true, out);
  return out;
}

// PyTorch's order is per module (params, then buffers), depth first; a
// single collect pass with both flags reproduces it.
NamedTensorList Module::state_dict() const {
  NamedTensorList out;
  collect("", true, true, out);
  return out;
}

std::vector<Tensor> Module::parameters() const {
  std::vector<Tensor> out;
  for (auto& [n, t] : named_parameters()) out.push_back(t);
  return out;
}

int64_t Module::num_parameters() const {
  int64_t n = 0;
  for (auto& t : parameters()) n += t.numel();
  return n;
}

int64_t Module::own_weight_bias_numel() const {
  int64_t n = 0;
  for (auto& [name, t] : params_)
    if (name == "weight" || name == "bias") n += t.numel();
  return n;
}

void Module::load_state_dict(const NamedTensorList& sd, bool strict) {
  std::map<std::string, Tensor> given;
  for (auto& [n, t] : sd) {
    if (!given.emplace(n, t).second) throw Error("state dict: duplicate key '" + n + "'");
  }
  std::set<std::string> used;
  for (auto& [name, dst] : state_dict()) {
    auto it = given.find(name);
    if (it == given.end()) {
      if (strict) throw Error("state dict: missing key '" + name + "' (" + type_name() + ")");
      continue;
    }
    const Tensor& src = it->second;
    if (src.shape() != dst.shape())
      throw Error("state dict: '" + name + "' has shape " + shape_str(src.shape()) + " but the model expects " +
                  shape_str(dst.shape()));
    dst.copy_(src);  // converts dtype (e.g. a float64 file into a float32 model)
    used.insert(name);
  }
  if (strict)
    for (auto& [n, t] : given)
      if (!used.count(n)) throw Error("state dict: unexpected key '" + n + "' for a " + type_name());
}

void Module::to(Device device) {
  for (auto& [n, t] : state_dict()) {
    // Integer bookkeeping (BatchNorm's num_batches_tracked) stays on the host,
    // where the module updates it; only float tensors move.
    if (t.device() == device || !t.is_floating()) continue;
    Tensor moved = t.to(device);
    t.impl().storage = moved.impl().storage;
    t.impl().offset = 0;
    t.zero_grad();
  }
}

void Module::zero_grad() {
  for (auto& t : parameters()) t.zero_grad();
}

void Generator::uniform_(Tensor& t, double lo, double hi) {
  std::uniform_real_distribution<double> u(lo, hi);
  for (int64_t i = 0; i < t.numel(); ++i) {
    double v = u(rng_);
    if (t.dtype() == DType::f32) t.data<float>()[i] = (float)v;
    else t.data<double>()[i] = v;
  }
}

void Generator::normal_(Tensor& t, double mean, double std) {
  std::normal_distribution<double> d(mean, std);
  for (int64_t i = 0; i < t.numel(); ++i) {
    double v = d(rng_);
    if (t.dtype() == DType::f32) t.data<float>()[i] = (float)v;
    else t.data<double>()[i] = v;
  }
}

}  // namespace ctg
