// Autograd glue for relu (kernels in kernels/relu.h).
#include "engine/ops.h"
#include "engine/ops/common.h"
#include "kernels/relu.h"

namespace ctg::ops {

Tensor relu(const Tensor& x) {
  trace::ForwardOp op("relu");
  detail::check_float(x, "relu", "input");
  Tensor y = Tensor::empty(x.shape(), x.dtype(), x.device());
  CTG_KERNEL(relu_forward, x, x, y, x.numel());
  if (autograd::needs_grad({&x})) {
    auto node = autograd::record("relu", y, {x});
    node->save("y", y);  // the mask is y > 0
    node->backward = [](Node& n, const Tensor& gy) {
      Tensor gx = autograd::input_grad(n, 0);
      if (!gx.defined()) return;
      CTG_KERNEL(relu_backward, gy, n.saved_tensor("y"), gy, gx, gy.numel());
    };
  }
  return y;
}

}  // namespace ctg::ops
