// Autograd glue for dropout (kernels in kernels/dropout.h).
#include "engine/ops.h"
#include "engine/ops/common.h"
#include "kernels/dropout.h"

namespace ctg::ops {

Tensor dropout(const Tensor& x, double p, bool training, uint64_t seed) {
  detail::check_float(x, "dropout", "input");
  if (!(p >= 0.0 && p < 1.0)) throw Error("dropout: p must be in [0, 1), got " + std::to_string(p));
  if (!training || p == 0.0) return x;  // identity: no copy, no node
  Tensor y = Tensor::empty(x.shape(), x.dtype(), x.device());
  CTG_DISPATCH_DEVICE(x, "dropout",
                      kernels::dropout_forward_cpu(x.data<scalar_t>(), y.data<scalar_t>(), x.numel(), p, seed),
                      kernels::dropout_forward_cuda(x.device_data<float>(), y.device_data<float>(), x.numel(), p, seed));
  if (autograd::needs_grad({&x})) {
    auto node = autograd::record("dropout", y, {x});
    node->backward = [p, seed](Node& n, const Tensor& gy) {
      Tensor gx = autograd::input_grad(n, 0);
      if (!gx.defined()) return;
      detail::trace_kernel("dropout_backward", gy);
      CTG_DISPATCH_DEVICE(gy, "dropout",
                          kernels::dropout_backward_cpu(gy.data<scalar_t>(), gx.data<scalar_t>(), gy.numel(), p, seed),
                          kernels::dropout_backward_cuda(gy.device_data<float>(), gx.device_data<float>(), gy.numel(), p, seed));
    };
  }
  return y;
}

}  // namespace ctg::ops
