// Autograd glue for add (kernels in kernels/add.h).
//   y = a + b;  dL/da = dL/db = dL/dy.
#include "engine/ops.h"
#include "engine/ops/common.h"
#include "kernels/add.h"

namespace ctg::ops {

namespace detail {
// g += gy: add's backward kernel is exactly the engine's gradient accumulation.
void accumulate(const Tensor& gy, const Tensor& g) { CTG_KERNEL(add_backward, g, gy, g, g.numel()); }
}  // namespace detail

void accumulate_(const Tensor& dst, const Tensor& src) {
  detail::check_float(dst, "accumulate_", "destination");
  detail::check_same_dtype(dst, src, "accumulate_", "source");
  if (dst.shape() != src.shape())
    throw Error("accumulate_: shapes " + shape_str(dst.shape()) + " and " + shape_str(src.shape()) + " differ");
  detail::accumulate(src, dst);
}

Tensor add(const Tensor& a, const Tensor& b) {
  trace::ForwardOp op("add");
  detail::check_float(a, "add", "first operand");
  detail::check_float(b, "add", "second operand");
  detail::check_same_dtype(a, b, "add", "second operand");
  if (a.shape() != b.shape())
    throw Error("add: shapes " + shape_str(a.shape()) + " and " + shape_str(b.shape()) + " differ");
  Tensor y = Tensor::empty(a.shape(), a.dtype(), a.device());
  CTG_KERNEL(add_forward, a, a, b, y, a.numel());
  if (autograd::needs_grad({&a, &b})) {
    auto node = autograd::record("add", y, {a, b});
    node->backward = [](Node& n, const Tensor& gy) {
      for (size_t i = 0; i < 2; ++i) {
        Tensor g = autograd::input_grad(n, i);
        if (g.defined()) detail::accumulate(gy, g);
      }
    };
  }
  return y;
}

}  // namespace ctg::ops
