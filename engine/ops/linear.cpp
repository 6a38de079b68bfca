// Autograd glue for linear (kernels in kernels/linear.h).
#include "engine/ops.h"
#include "engine/ops/common.h"
#include "kernels/linear.h"

namespace ctg::ops {

Tensor linear(const Tensor& x, const Tensor& w, const Tensor& b) {
  detail::check_float(x, "linear", "input");
  detail::check_float(w, "linear", "weight");
  detail::check_dim(x, 2, "linear", "input");
  detail::check_dim(w, 2, "linear", "weight");
  detail::check_same_dtype(x, w, "linear", "weight");
  const int64_t N = x.size(0), I = x.size(1), O = w.size(0);
  if (w.size(1) != I)
    throw Error("linear: input " + shape_str(x.shape()) + " has " + std::to_string(I) +
                " features but weight " + shape_str(w.shape()) + " expects " + std::to_string(w.size(1)));
  if (b.defined()) {
    detail::check_float(b, "linear", "bias");
    detail::check_same_dtype(x, b, "linear", "bias");
    if (b.shape() != Shape{O}) throw Error("linear: bias " + shape_str(b.shape()) + " should be [" + std::to_string(O) + "]");
  }
  Tensor y = Tensor::empty({N, O}, x.dtype(), x.device());
  CTG_DISPATCH_DEVICE(x, "linear",
                      kernels::linear_forward_cpu(x.data<scalar_t>(), w.data<scalar_t>(),
                                                  detail::ptr_or_null<scalar_t>(b), y.data<scalar_t>(), N, I, O),
                      kernels::linear_forward_cuda(x.device_data<float>(), w.device_data<float>(), detail::device_ptr_or_null<float>(b),
                                                   y.device_data<float>(), N, I, O));
  if (autograd::needs_grad({&x, &w, &b})) {
    auto node = autograd::record("linear", y, {x, w, b});
    node->save(x);
    node->save(w);
    node->backward = [N, I, O](Node& n, const Tensor& gy) {
      Tensor gx = autograd::input_grad(n, 0), gw = autograd::input_grad(n, 1), gb = autograd::input_grad(n, 2);
      detail::trace_kernel("linear_backward", gy);
      CTG_DISPATCH_DEVICE(gy, "linear",
                          kernels::linear_backward_cpu(
                              n.saved[0].data<scalar_t>(), n.saved[1].data<scalar_t>(), gy.data<scalar_t>(),
                              detail::ptr_or_null<scalar_t>(gx), detail::ptr_or_null<scalar_t>(gw),
                              detail::ptr_or_null<scalar_t>(gb), N, I, O),
                          kernels::linear_backward_cuda(
                              n.saved[0].device_data<float>(), n.saved[1].device_data<float>(), gy.device_data<float>(),
                              detail::device_ptr_or_null<float>(gx), detail::device_ptr_or_null<float>(gw),
                              detail::device_ptr_or_null<float>(gb), N, I, O));
    };
  }
  return y;
}

}  // namespace ctg::ops
