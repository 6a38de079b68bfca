// Autograd glue for sigmoid (kernels in kernels/sigmoid.h).
#include "engine/ops.h"
#include "engine/ops/common.h"
#include "kernels/sigmoid.h"

namespace ctg::ops {

Tensor sigmoid(const Tensor& x) {
  trace::ForwardOp op("sigmoid");
  detail::check_float(x, "sigmoid", "input");
  Tensor y = Tensor::empty(x.shape(), x.dtype(), x.device());
  CTG_KERNEL(sigmoid_forward, x, x, y, x.numel());
  if (autograd::needs_grad({&x})) {
    auto node = autograd::record("sigmoid", y, {x});
    node->save("y", y);  // σ' = y(1 − y)
    node->backward = [](Node& n, const Tensor& gy) {
      Tensor gx = autograd::input_grad(n, 0);
      if (!gx.defined()) return;
      CTG_KERNEL(sigmoid_backward, gy, n.saved_tensor("y"), gy, gx, gy.numel());
    };
  }
  return y;
}

}  // namespace ctg::ops
