// Autograd glue for sigmoid (kernels in kernels/sigmoid.h).
#include "engine/ops.h"
#include "engine/ops/common.h"
#include "kernels/sigmoid.h"

namespace ctg::ops {

Tensor sigmoid(const Tensor& x) {
  detail::check_float(x, "sigmoid", "input");
  Tensor y = Tensor::empty(x.shape(), x.dtype(), x.device());
  CTG_DISPATCH_DEVICE(x, "sigmoid", kernels::sigmoid_forward_cpu(x.data<scalar_t>(), y.data<scalar_t>(), x.numel()),
                      kernels::sigmoid_forward_cuda(x.device_data<float>(), y.device_data<float>(), x.numel()));
  if (autograd::needs_grad({&x})) {
    auto node = autograd::record("sigmoid", y, {x});
    node->save(y);  // σ' = y(1 − y)
    node->backward = [](Node& n, const Tensor& gy) {
      Tensor gx = autograd::input_grad(n, 0);
      if (!gx.defined()) return;
      detail::trace_kernel("sigmoid_backward", gy);
      CTG_DISPATCH_DEVICE(gy, "sigmoid",
                          kernels::sigmoid_backward_cpu(n.saved[0].data<scalar_t>(), gy.data<scalar_t>(),
                                                        gx.data<scalar_t>(), gy.numel()),
                          kernels::sigmoid_backward_cuda(n.saved[0].device_data<float>(), gy.device_data<float>(), gx.device_data<float>(),
                                                         gy.numel()));
    };
  }
  return y;
}

}  // namespace ctg::ops
