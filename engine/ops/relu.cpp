// Autograd glue for relu (kernels in kernels/relu.h).
#include "engine/ops.h"
#include "engine/ops/common.h"
#include "kernels/relu.h"

namespace ctg::ops {

Tensor relu(const Tensor& x) {
  detail::check_float(x, "relu", "input");
  Tensor y = Tensor::empty(x.shape(), x.dtype(), x.device());
  CTG_DISPATCH_DEVICE(x, "relu", kernels::relu_forward_cpu(x.data<scalar_t>(), y.data<scalar_t>(), x.numel()),
                      kernels::relu_forward_cuda(x.device_data<float>(), y.device_data<float>(), x.numel()));
  if (autograd::needs_grad({&x})) {
    auto node = autograd::record("relu", y, {x});
    node->save(y);  // the mask is y > 0
    node->backward = [](Node& n, const Tensor& gy) {
      Tensor gx = autograd::input_grad(n, 0);
      if (!gx.defined()) return;
      detail::trace_kernel("relu_backward", gy);
      CTG_DISPATCH_DEVICE(gy, "relu",
                          kernels::relu_backward_cpu(n.saved[0].data<scalar_t>(), gy.data<scalar_t>(),
                                                     gx.data<scalar_t>(), gy.numel()),
                          kernels::relu_backward_cuda(n.saved[0].device_data<float>(), gy.device_data<float>(),
                                                      gx.device_data<float>(), gy.numel()));
    };
  }
  return y;
}

}  // namespace ctg::ops
