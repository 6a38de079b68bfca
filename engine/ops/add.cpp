// Autograd glue for add and add_relu (kernels in kernels/add.h, kernels/add_relu.h).
//   y = a + b;  dL/da = dL/db = dL/dy.
//   add_relu: y = max(a + b, 0);  dL/da = dL/db = dL/dy·[y > 0].
#include "engine/ops.h"
#include "engine/ops/common.h"
#include "kernels/add.h"
#include "kernels/add_relu.h"

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

namespace {
void check_operands(const Tensor& a, const Tensor& b, const char* op) {
  detail::check_float(a, op, "first operand");
  detail::check_float(b, op, "second operand");
  detail::check_same_dtype(a, b, op, "second operand");
  if (a.shape() != b.shape())
    throw Error(std::string(op) + ": shapes " + shape_str(a.shape()) + " and " + shape_str(b.shape()) + " differ");
}
}  // namespace

Tensor add(const Tensor& a, const Tensor& b) {
  trace::ForwardOp op("add");
  check_operands(a, b, "add");
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

Tensor add_relu(const Tensor& a, const Tensor& b) {
  trace::ForwardOp op("add_relu");
  check_operands(a, b, "add_relu");
  Tensor y = Tensor::empty(a.shape(), a.dtype(), a.device());
  CTG_KERNEL(add_relu_forward, a, a, b, y, a.numel());
  if (autograd::needs_grad({&a, &b})) {
    auto node = autograd::record("add_relu", y, {a, b});
    node->save("y", y);  // the mask is y > 0
    node->backward = [](Node& n, const Tensor& gy) {
      // Both written in full: first writes store, later ones add. a and b may
      // be one tensor: then gb is asked for after ga exists, so it adds.
      const autograd::GradOut ga = autograd::input_grad_out(n, 0), gb = autograd::input_grad_out(n, 1);
      if (ga.grad.defined() || gb.grad.defined())
        CTG_KERNEL(add_relu_backward, gy, n.saved_tensor("y"), gy, ga.grad, gb.grad, gy.numel(), ga.accumulate,
                   gb.accumulate);
    };
  }
  return y;
}

}  // namespace ctg::ops
