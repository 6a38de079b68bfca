// Modules: named parameters and buffers, children, train/eval mode, and a
// state dict whose names and order follow PyTorch's (`layer1.0.conv1.weight`,
// `bn1.running_mean`, ...): each module's own parameters, then its own
// buffers, then its children in registration order.
#pragma once
#include <functional>
#include <memory>
#include <random>
#include <string>
#include <utility>
#include <vector>

#include "engine/tensor.h"

namespace ctg {

using NamedTensorList = std::vector<std::pair<std::string, Tensor>>;

class Module {
 public:
  virtual ~Module() = default;
  // PyTorch's class name ("Conv2d", "BasicBlock", ...), used by summaries.
  virtual std::string type_name() const = 0;
  // Containers (Sequential) are skipped by summaries, as torchsummary does.
  virtual bool is_container() const { return false; }

  // Call the module: runs forward() and notifies the active call observer.
  Tensor operator()(const Tensor& x);

  void train(bool on = true);
  void eval() { train(false); }
  bool is_training() const { return training_; }

  NamedTensorList named_parameters() const;
  NamedTensorList named_buffers() const;
  NamedTensorList state_dict() const;
  std::vector<Tensor> parameters() const;
  int64_t num_parameters() const;
  // Copies values into the existing tensors (shapes must match). strict:
  // every key must be present and no extra key allowed. Errors name the key.
  void load_state_dict(const NamedTensorList& sd, bool strict = true);
  void zero_grad();
  // Move every float parameter and buffer to `device` in place: the tensors
  // keep their identity (the same handles), only their storage moves.
  // Integer counters (num_batches_tracked) stay on the host.
  void to(Device device);
  // This module's own "weight" and "bias" parameters (torchsummary's count).
  int64_t own_weight_bias_numel() const;
  const std::vector<std::pair<std::string, std::shared_ptr<Module>>>& children() const { return children_; }

 protected:
  virtual Tensor forward(const Tensor& x) = 0;
  Tensor register_parameter(const std::string& name, Tensor t);
  Tensor register_buffer(const std::string& name, Tensor t);
  template <typename M>
  std::shared_ptr<M> register_module(const std::string& name, std::shared_ptr<M> m) {
    children_.emplace_back(name, m);
    return m;
  }

 private:
  void collect(const std::string& prefix, bool params, bool buffers, NamedTensorList& out) const;
  NamedTensorList params_, buffers_;
  std::vector<std::pair<std::string, std::shared_ptr<Module>>> children_;
  bool training_ = true;
};

// Observer of module calls, for summaries: called after each call returns
// with the module, its output and the nesting depth (0 = the outermost call).
using ModuleCallObserver = std::function<void(const Module&, const Tensor& out, int depth)>;
// Install an observer for the current thread; returns the previous one.
ModuleCallObserver set_module_call_observer(ModuleCallObserver obs);

// Seeded random source for initialisation and dropout.
class Generator {
 public:
  explicit Generator(uint64_t seed = 0) : rng_(seed) {}
  void uniform_(Tensor& t, double lo, double hi);
  void normal_(Tensor& t, double mean, double std);
  uint64_t next_u64() { return rng_(); }

 private:
  std::mt19937_64 rng_;
};

}  // namespace ctg
