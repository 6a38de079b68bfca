// Autograd glue for add (kernels in kernels/add.h).
#include "engine/ops.h"
#include "engine/ops/common.h"
#include "kernels/add.h"

namespace ctg::ops {

Tensor add(const Tensor& a, const Tensor& b) {
  detail::check_float(a, "add", "first operand");
  detail::check_float(b, "add", "second operand");
  detail::check_same_dtype(a, b, "add", "second operand");
  if (a.shape() != b.shape())
    throw Error("add: shapes " + shape_str(a.shape()) + " and " + shape_str(b.shape()) + " differ");
  Tensor y = Tensor::empty(a.shape(), a.dtype());
  CTG_DISPATCH_FLOAT(a.dtype(), "add",
                     kernels::add_forward_cpu(a.data<scalar_t>(), b.data<scalar_t>(),
                                              y.data<scalar_t>(), a.numel()));
  if (autograd::needs_grad({&a, &b})) {
    auto node = autograd::record("add", y, {a, b});
    node->backward = [](Node& n, const Tensor& gy) {
      for (size_t i = 0; i < 2; ++i) {
        Tensor g = autograd::input_grad(n, i);
        if (!g.defined()) continue;
        autograd::trace("  add_backward_cpu");
        CTG_DISPATCH_FLOAT(gy.dtype(), "add",
                           kernels::add_backward_cpu(gy.data<scalar_t>(), g.data<scalar_t>(), gy.numel()));
      }
    };
  }
  return y;
}

}  // namespace ctg::ops
