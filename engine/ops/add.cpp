// Autograd glue for add (kernels in kernels/add.h).
#include "engine/ops.h"
#include "engine/ops/common.h"
#include "kernels/add.h"

namespace ctg::ops {

namespace detail {
void accumulate(const Tensor& gy, const Tensor& g) {
  CTG_DISPATCH_DEVICE(g, "accumulate", kernels::add_backward_cpu(gy.data<scalar_t>(), g.data<scalar_t>(), g.numel()),
                      kernels::add_backward_cuda(gy.device_data<float>(), g.device_data<float>(), g.numel()));
}
}  // namespace detail

Tensor add(const Tensor& a, const Tensor& b) {
  detail::check_float(a, "add", "first operand");
  detail::check_float(b, "add", "second operand");
  detail::check_same_dtype(a, b, "add", "second operand");
  if (a.shape() != b.shape())
    throw Error("add: shapes " + shape_str(a.shape()) + " and " + shape_str(b.shape()) + " differ");
  Tensor y = Tensor::empty(a.shape(), a.dtype(), a.device());
  CTG_DISPATCH_DEVICE(a, "add",
                      kernels::add_forward_cpu(a.data<scalar_t>(), b.data<scalar_t>(), y.data<scalar_t>(), a.numel()),
                      kernels::add_forward_cuda(a.device_data<float>(), b.device_data<float>(), y.device_data<float>(), a.numel()));
  if (autograd::needs_grad({&a, &b})) {
    auto node = autograd::record("add", y, {a, b});
    node->backward = [](Node& n, const Tensor& gy) {
      for (size_t i = 0; i < 2; ++i) {
        Tensor g = autograd::input_grad(n, i);
        if (!g.defined()) continue;
        detail::trace_kernel("add_backward", gy);
        detail::accumulate(gy, g);
      }
    };
  }
  return y;
}

}  // namespace ctg::ops
