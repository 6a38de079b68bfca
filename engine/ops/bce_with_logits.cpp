// Autograd glue for bce_with_logits (kernels in kernels/bce_with_logits.h).
#include "engine/ops.h"
#include "engine/ops/common.h"
#include "kernels/bce_with_logits.h"

namespace ctg::ops {

Tensor bce_with_logits(const Tensor& logits, const Tensor& targets) {
  detail::check_float(logits, "bce_with_logits", "logits");
  detail::check_float(targets, "bce_with_logits", "targets");
  detail::check_same_dtype(logits, targets, "bce_with_logits", "targets");
  if (logits.numel() != targets.numel() || logits.numel() == 0)
    throw Error("bce_with_logits: logits " + shape_str(logits.shape()) + " and targets " +
                shape_str(targets.shape()) + " must have the same, non-zero number of elements");
  Tensor loss = Tensor::empty({}, logits.dtype(), logits.device());
  CTG_DISPATCH_DEVICE(logits, "bce_with_logits",
                      loss.data<scalar_t>()[0] = kernels::bce_with_logits_forward_cpu(
                          logits.data<scalar_t>(), targets.data<scalar_t>(), logits.numel()),
                      kernels::bce_with_logits_forward_cuda(logits.device_data<float>(), targets.device_data<float>(),
                                                            loss.device_data<float>(), logits.numel()));
  if (autograd::needs_grad({&logits})) {
    auto node = autograd::record("bce_with_logits", loss, {logits});
    node->save(logits);
    node->save(targets);
    node->backward = [](Node& n, const Tensor& g) {
      Tensor gz = autograd::input_grad(n, 0);
      if (!gz.defined()) return;
      detail::trace_kernel("bce_with_logits_backward", g);
      CTG_DISPATCH_DEVICE(g, "bce_with_logits",
                          kernels::bce_with_logits_backward_cpu(n.saved[0].data<scalar_t>(), n.saved[1].data<scalar_t>(),
                                                                g.data<scalar_t>()[0], gz.data<scalar_t>(), gz.numel()),
                          kernels::bce_with_logits_backward_cuda(n.saved[0].device_data<float>(), n.saved[1].device_data<float>(),
                                                                 g.device_data<float>(), gz.device_data<float>(), gz.numel()));
    };
  }
  return loss;
}

}  // namespace ctg::ops
