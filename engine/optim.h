// Optimisers over a module's named parameters, and the per-epoch learning
// rate decay of the study (ExponentialLR: lr_e = lr_0 · γ^e, γ = 0.95).
// The update arithmetic lives in kernels/optim.h; the state (momentum
// buffers, Adam moments, step count) round-trips through state_dict() so a
// killed run can resume exactly.
#pragma once
#include <map>
#include <string>

#include "engine/module.h"
#include "kernels/optim.h"

namespace ctg {

class Optimizer {
 public:
  explicit Optimizer(NamedTensorList params, double lr) : params_(std::move(params)), lr_(lr) {}
  virtual ~Optimizer() = default;
  // Apply one update from the parameters' accumulated gradients (a parameter
  // without a gradient is left alone, as in PyTorch): prepare_step() then
  // apply_step(). A CUDA graph (train/graph_step.h) captures apply_step()'s
  // launches once and replays them after each prepare_step(), which counts
  // the step and, on the GPU, writes its scalars (lr, Adam's bias
  // corrections: kernels/optim.h) to device memory outside the graph.
  void step() {
    prepare_step();
    apply_step();
  }
  virtual void prepare_step() = 0;
  virtual void apply_step() = 0;
  void zero_grad();
  double lr() const { return lr_; }
  void set_lr(double lr) { lr_ = lr; }
  int64_t steps() const { return step_; }
  // Keys: "<param>.<buffer>" plus "step" and "lr".
  NamedTensorList state_dict() const;
  void load_state_dict(const NamedTensorList& sd);

 protected:
  Tensor place_state(const std::string& key, const Tensor& t) const;
  // Per-parameter buffer `name`, created as zeros on first use.
  Tensor& buffer(const std::string& param, const std::string& name, const Tensor& like);
  // ++step_; on the GPU, `s` to the device scalars (allocated once, so a
  // captured update reads the same address at every replay).
  void count_step(const kernels::OptimScalars& s);
  // The device scalars the CUDA updates read (nullptr before count_step on the GPU).
  const float* device_scalars() const { return scalars_.defined() ? scalars_.device_data<float>() : nullptr; }
  NamedTensorList params_;
  double lr_;
  int64_t step_ = 0;
  std::map<std::string, Tensor> state_;  // "<param>.<buffer>" -> tensor
  Tensor scalars_;                       // 4 floats on the GPU (CUDA parameters only)
};

class SGD : public Optimizer {
 public:
  SGD(NamedTensorList params, double lr, double momentum = 0.9, double weight_decay = 0)
      : Optimizer(std::move(params), lr), momentum_(momentum), wd_(weight_decay) {}
  void prepare_step() override;
  void apply_step() override;

 private:
  double momentum_, wd_;
};

class Adam : public Optimizer {
 public:
  // decoupled = true gives AdamW (decay applied to the weights, not the gradient).
  Adam(NamedTensorList params, double lr, double weight_decay = 0, bool decoupled = false, double beta1 = 0.9,
       double beta2 = 0.999, double eps = 1e-8)
      : Optimizer(std::move(params), lr), wd_(weight_decay), decoupled_(decoupled), b1_(beta1), b2_(beta2), eps_(eps) {}
  void prepare_step() override;
  void apply_step() override;

 private:
  double wd_;
  bool decoupled_;
  double b1_, b2_, eps_;
};

// lr at epoch e = base · gamma^e; call step() once at the end of each epoch.
class ExponentialLR {
 public:
  ExponentialLR(Optimizer& opt, double gamma) : opt_(opt), gamma_(gamma) {}
  void step() { opt_.set_lr(opt_.lr() * gamma_); ++epoch_; }
  int64_t epoch() const { return epoch_; }

 private:
  Optimizer& opt_;
  double gamma_;
  int64_t epoch_ = 0;
};

}  // namespace ctg
