// Autograd glue for relu (kernels in kernels/relu.h).
#include "engine/ops.h"
#include "engine/ops/common.h"
#include "kernels/relu.h"

namespace ctg::ops {

Tensor relu(const Tensor& x) {
  detail::check_float(x, "relu", "input");
  Tensor y = Tensor::empty(x.shape(), x.dtype());
  CTG_DISPATCH_FLOAT(x.dtype(), "relu",
                     kernels::relu_forward_cpu(x.data<scalar_t>(), y.data<scalar_t>(), x.numel()));
  if (autograd::needs_grad({&x})) {
    auto node = autograd::record("relu", y, {x});
    node->save(y);  // the mask is y > 0
    node->backward = [](Node& n, const Tensor& gy) {
      Tensor gx = autograd::input_grad(n, 0);
      if (!gx.defined()) return;
      autograd::trace("  relu_backward_cpu");
      CTG_DISPATCH_FLOAT(gy.dtype(), "relu",
                         kernels::relu_backward_cpu(n.saved[0].data<scalar_t>(), gy.data<scalar_t>(),
                                                    gx.data<scalar_t>(), gy.numel()));
    };
  }
  return y;
}

}  // namespace ctg::ops
