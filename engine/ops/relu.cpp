// Autograd glue for relu (kernels in kernels/relu.h).
#include "engine/ops.h"
#include "engine/ops/common.h"
#include "kernels/relu.h"

namespace ctg::ops {

Tensor relu(const Tensor& x) {
  trace::ForwardOp op("relu");
  detail::check_float(x, "relu", "input");
  // The output of a fused op that already ended in this ReLU (batchnorm2d_relu,
  // add_relu) is its own ReLU: pass it through, so the net can keep its ReLU
  // module (and summaries their rows) while the work happens in the fused kernel.
  if (const auto& node = x.grad_fn(); node && (node->op == "batchnorm2d_relu" || node->op == "add_relu")) return x;
  Tensor y = Tensor::empty(x.shape(), x.dtype(), x.device());
  CTG_KERNEL(relu_forward, x, x, y, x.numel());
  if (autograd::needs_grad({&x})) {
    auto node = autograd::record("relu", y, {x});
    node->save("y", y);  // the mask is y > 0
    node->backward = [](Node& n, const Tensor& gy) {
      const autograd::GradOut gx = autograd::input_grad_out(n, 0);  // every element written
      if (!gx.grad.defined()) return;
      CTG_KERNEL(relu_backward, gy, n.saved_tensor("y"), gy, gx.grad, gy.numel(), gx.accumulate);
    };
  }
  return y;
}

}  // namespace ctg::ops
