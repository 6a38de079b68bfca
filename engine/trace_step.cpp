// trace::record_training_step: one training step with the recorder on.
#include "engine/autograd.h"
#include "engine/module.h"
#include "engine/ops.h"
#include "engine/optim.h"
#include "engine/trace.h"

namespace ctg::trace {

Trace record_training_step(Module& model, Optimizer& opt, const Tensor& x, const Tensor& targets, Device device) {
  StartOptions o;
  o.device = device;
  // The optimiser's order (Optimizer keeps named_parameters() order).
  for (const auto& [name, p] : model.named_parameters()) o.params.push_back({name, p.shape()});
  o.param_elem_bytes = x.defined() ? dtype_size(x.dtype()) : 4;
  start(o);
  struct StopOnThrow {  // an exception mid-step must not leave the recorder on
    ~StopOnThrow() {
      if (active()) stop();
    }
  } guard;
  set_phase("forward");
  opt.zero_grad();
  Tensor loss = ops::bce_with_logits(model(x), targets);
  // The graph is complete: what the tape holds for backward (the same call
  // `ctgrad summary` makes at batch 1).
  const size_t saved_activations = autograd::saved_bytes(loss, true);
  const size_t saved_total = autograd::saved_bytes(loss, false);
  set_phase("backward");
  autograd::backward(loss);
  set_phase("optimizer");
  opt.step();
  Trace t = stop();
  t.measured_saved_activations = saved_activations;
  t.measured_saved_total = saved_total;
  t.loss = loss.item();
  return t;
}

std::pair<Tensor, Tensor> step_batch(int64_t batch, int64_t size, Device device) {
  Generator gen(3);
  Tensor x = Tensor::empty({batch, 1, size, size});
  gen.uniform_(x, 0.0, 1.0);
  std::vector<double> labels((size_t)batch);
  for (size_t i = 0; i < labels.size(); ++i) labels[i] = (double)(i % 2);
  return {x.to(device), Tensor::from_vector(labels, {batch, 1}).to(device)};
}

}  // namespace ctg::trace
