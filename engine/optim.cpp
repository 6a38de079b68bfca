#include "engine/optim.h"

#include "engine/autograd.h"
#include "engine/ops/common.h"

namespace ctg {

void Optimizer::zero_grad() {
  for (auto& [n, p] : params_) p.zero_grad();
}

Tensor& Optimizer::buffer(const std::string& param, const std::string& name, const Tensor& like) {
  auto key = param + "." + name;
  auto it = state_.find(key);
  if (it == state_.end()) it = state_.emplace(key, Tensor::zeros(like.shape(), like.dtype(), like.device())).first;
  if (it->second.device() != like.device()) it->second = it->second.to(like.device());  // restored on the CPU
  return it->second;
}

NamedTensorList Optimizer::state_dict() const {
  NamedTensorList out;
  for (auto& [k, t] : state_) out.emplace_back(k, t);
  out.emplace_back("step", Tensor::from_vector({(double)step_}, {}, DType::i64));
  out.emplace_back("lr", Tensor::from_vector({lr_}, {}, DType::f64));
  return out;
}

// A buffer "<param>.<name>" goes where its parameter lives, with its shape
// checked: a state dict from another net or a CUDA run resumed on the CPU
// (or the reverse) must either fit exactly or fail naming the key.
Tensor Optimizer::place_state(const std::string& key, const Tensor& t) const {
  const Tensor* param = nullptr;
  size_t best = 0;
  for (auto& [name, p] : params_)
    if (key.size() > name.size() && key.compare(0, name.size(), name) == 0 && key[name.size()] == '.' &&
        name.size() > best)
      param = &p, best = name.size();
  if (!param) throw Error("optimizer state: '" + key + "' belongs to no parameter of this model");
  if (t.shape() != param->shape())
    throw Error("optimizer state: '" + key + "' has shape " + shape_str(t.shape()) + ", its parameter " +
                shape_str(param->shape()));
  Tensor out = Tensor::empty(t.shape(), param->dtype(), param->device());
  out.copy_(t);
  return out;
}

void Optimizer::load_state_dict(const NamedTensorList& sd) {
  state_.clear();
  bool have_step = false, have_lr = false;
  for (auto& [k, t] : sd) {
    if (k == "step") step_ = (int64_t)t.item(), have_step = true;
    else if (k == "lr") lr_ = t.item(), have_lr = true;
    else state_[k] = place_state(k, t);
  }
  if (!have_step || !have_lr) throw Error("optimizer state: 'step' or 'lr' is missing");
}

void Optimizer::count_step(const kernels::OptimScalars& s) {
  ++step_;
  for (auto& [name, p] : params_) {
    if (p.device() != Device::cuda) continue;
    if (!scalars_.defined()) scalars_ = Tensor::empty({4}, DType::f32, Device::cuda);
    kernels::optim_scalars_cuda(scalars_.device_data<float>(), s);
    return;
  }
}

// The CPU updates take the scalars by value; the CUDA ones read them from
// device_scalars() (kernels/optim.h).
void SGD::prepare_step() { count_step(kernels::sgd_scalars(lr_)); }

void SGD::apply_step() {
  autograd::NoGradGuard ng;
  for (auto& [name, p] : params_) {
    Tensor g = p.grad();
    if (!g.defined()) continue;
    bool first = !state_.count(name + ".momentum_buffer");
    Tensor buf = momentum_ != 0 ? buffer(name, "momentum_buffer", p) : Tensor();
    ops::detail::run_kernel(
        "sgd_update", p, [&](auto... a) { kernels::sgd_update_cpu(a..., lr_, momentum_, wd_, first); },
        [&](auto... a) { kernels::sgd_update_cuda(a..., device_scalars(), momentum_, wd_, first); }, p, g, buf,
        p.numel());
  }
}

void Adam::prepare_step() { count_step(kernels::adam_scalars(lr_, b1_, b2_, wd_, decoupled_, step_ + 1)); }

void Adam::apply_step() {
  autograd::NoGradGuard ng;
  for (auto& [name, p] : params_) {
    Tensor g = p.grad();
    if (!g.defined()) continue;
    Tensor m = buffer(name, "exp_avg", p), v = buffer(name, "exp_avg_sq", p);
    ops::detail::run_kernel(
        "adam_update", p,
        [&](auto... a) { kernels::adam_update_cpu(a..., lr_, b1_, b2_, eps_, wd_, decoupled_, step_); },
        [&](auto... a) { kernels::adam_update_cuda(a..., device_scalars(), b1_, b2_, eps_); }, p, g, m, v,
        p.numel());
  }
}

}  // namespace ctg
