// Autograd glue for linear (kernels in kernels/linear.h).
#include "engine/ops.h"
#include "engine/ops/common.h"
#include "kernels/linear.h"

namespace ctg::ops {

Tensor linear(const Tensor& x, const Tensor& w, const Tensor& b) {
  trace::ForwardOp op("linear");
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
  CTG_KERNEL(linear_forward, x, x, w, b, y, N, I, O);
  if (autograd::needs_grad({&x, &w, &b})) {
    auto node = autograd::record("linear", y, {x, w, b});
    node->save("x", x);
    node->save("weight", w);
    node->backward = [N, I, O](Node& n, const Tensor& gy) {
      // gx and gw are whole GEMM outputs: first writes store (beta = 0); gb adds.
      const autograd::GradOut gx = autograd::input_grad_out(n, 0), gw = autograd::input_grad_out(n, 1);
      Tensor gb = autograd::input_grad(n, 2);
      CTG_KERNEL(linear_backward, gy, n.saved_tensor("x"), n.saved_tensor("weight"), gy, gx.grad, gw.grad, gb, N, I, O,
                 gx.accumulate, gw.accumulate);
    };
  }
  return y;
}

}  // namespace ctg::ops
