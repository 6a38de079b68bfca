// The standard layers as Modules, with PyTorch's parameter names and default
// initialisation (Kaiming-uniform with a = √5: bound 1/√fan_in for weights
// and biases of Linear and Conv2d; BatchNorm γ = 1, β = 0, running stats 0/1).
#pragma once
#include <functional>

#include "engine/module.h"
#include "engine/ops.h"

namespace ctg {

class Linear : public Module {
 public:
  Linear(int64_t in, int64_t out, bool bias, Generator& gen, DType dt = DType::f32);
  std::string type_name() const override { return "Linear"; }
  Tensor weight, bias;

 protected:
  Tensor forward(const Tensor& x) override { return ops::linear(x, weight, bias); }
};

class Conv2d : public Module {
 public:
  Conv2d(int64_t in, int64_t out, int64_t kernel, int64_t stride, int64_t padding, bool bias, Generator& gen,
         DType dt = DType::f32);
  std::string type_name() const override { return "Conv2d"; }
  Tensor weight, bias;
  ops::Conv2dParams params;

 protected:
  Tensor forward(const Tensor& x) override { return ops::conv2d(x, weight, bias, params); }
};

class BatchNorm2d : public Module {
 public:
  explicit BatchNorm2d(int64_t channels, DType dt = DType::f32);
  std::string type_name() const override { return "BatchNorm2d"; }
  Tensor weight, bias, running_mean, running_var, num_batches_tracked;
  double momentum = 0.1, eps = 1e-5;
  // --sync-bn (train/distributed.h): when set, a training-mode forward goes
  // through it instead, normalising with the statistics of the global batch
  // summed across processes (PyTorch's SyncBatchNorm). Eval mode never does.
  std::function<Tensor(BatchNorm2d& bn, const Tensor& x)> sync_forward;
  // Set by a net whose every use of this layer is followed by a ReLU: in
  // training mode the layer then runs ops::batchnorm2d_relu (BatchNorm and
  // the ReLU in one pass forward and one backward, the same values) and the
  // ReLU that follows passes the clamped tensor through (see ops::relu). Eval
  // mode (scoring, feature maps) always returns the plain BatchNorm output.
  bool fuse_relu = false;

 protected:
  Tensor forward(const Tensor& x) override;
};

class ReLU : public Module {
 public:
  std::string type_name() const override { return "ReLU"; }

 protected:
  Tensor forward(const Tensor& x) override { return ops::relu(x); }
};

class MaxPool2d : public Module {
 public:
  explicit MaxPool2d(ops::Pool2dParams p) : params(p) {}
  std::string type_name() const override { return "MaxPool2d"; }
  ops::Pool2dParams params;

 protected:
  Tensor forward(const Tensor& x) override { return ops::maxpool2d(x, params); }
};

// AdaptiveMaxPool2d(1) in PyTorch terms.
class GlobalMaxPool : public Module {
 public:
  std::string type_name() const override { return "AdaptiveMaxPool2d"; }

 protected:
  Tensor forward(const Tensor& x) override { return ops::global_maxpool(x); }
};

// Each training-mode call draws a fresh mask seed from the module's generator.
class Dropout : public Module {
 public:
  Dropout(double p, uint64_t seed) : p(p), gen_(seed) {}
  std::string type_name() const override { return "Dropout"; }
  double p;
  // Restart the mask stream (the trainer reseeds every epoch from (seed,
  // epoch) so a resumed run draws the masks an uninterrupted one would).
  void reseed(uint64_t seed) { gen_ = Generator(seed); }

 protected:
  Tensor forward(const Tensor& x) override { return ops::dropout(x, p, is_training(), gen_.next_u64()); }

 private:
  Generator gen_;
};

class Sequential : public Module {
 public:
  std::string type_name() const override { return "Sequential"; }
  bool is_container() const override { return true; }
  // Appends under the next index as name ("0", "1", ...), as nn.Sequential.
  template <typename M>
  std::shared_ptr<M> add(std::shared_ptr<M> m) {
    return register_module(std::to_string(children().size()), m);
  }

 protected:
  Tensor forward(const Tensor& x) override;
};

}  // namespace ctg
