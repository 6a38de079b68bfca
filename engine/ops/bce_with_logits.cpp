// Autograd glue for bce_with_logits (kernels in kernels/bce_with_logits.h).
#include "engine/ops.h"
#include "engine/ops/common.h"
#include "kernels/bce_with_logits.h"

namespace ctg::ops {

Tensor bce_with_logits(const Tensor& logits, const Tensor& targets) {
  trace::ForwardOp op("bce_with_logits");
  detail::check_float(logits, "bce_with_logits", "logits");
  detail::check_float(targets, "bce_with_logits", "targets");
  detail::check_same_dtype(logits, targets, "bce_with_logits", "targets");
  if (logits.numel() != targets.numel() || logits.numel() == 0)
    throw Error("bce_with_logits: logits " + shape_str(logits.shape()) + " and targets " +
                shape_str(targets.shape()) + " must have the same, non-zero number of elements");
  Tensor loss = Tensor::empty({}, logits.dtype(), logits.device());
  // The CPU kernel returns the mean (a host scalar), the CUDA one writes it to
  // device memory, so this entry spells its two calls (CTG_KERNEL's job elsewhere).
  detail::run_kernel(
      "bce_with_logits_forward", logits,
      [](auto* z, auto* t, auto* out, int64_t n) { *out = kernels::bce_with_logits_forward_cpu(z, t, n); },
      [](float* z, float* t, float* out, int64_t n) { kernels::bce_with_logits_forward_cuda(z, t, out, n); },
      logits, targets, loss, logits.numel());
  if (autograd::needs_grad({&logits})) {
    auto node = autograd::record("bce_with_logits", loss, {logits});
    node->save("logits", logits);
    node->save("targets", targets);
    node->backward = [](Node& n, const Tensor& g) {
      Tensor gz = autograd::input_grad(n, 0);
      if (!gz.defined()) return;
      // dL/dloss is a scalar: read on the host by the CPU kernel, in device memory by the CUDA one.
      detail::run_kernel(
          "bce_with_logits_backward", g,
          [](auto* z, auto* t, auto* gl, auto* gz_, int64_t m) { kernels::bce_with_logits_backward_cpu(z, t, *gl, gz_, m); },
          [](float* z, float* t, float* gl, float* gz_, int64_t m) {
            kernels::bce_with_logits_backward_cuda(z, t, gl, gz_, m);
          },
          n.saved_tensor("logits"), n.saved_tensor("targets"), g, gz, gz.numel());
    };
  }
  return loss;
}

}  // namespace ctg::ops
