// Autograd glue for conv2d (kernels in kernels/conv2d.h).
#include <string>

#include "engine/ops.h"
#include "engine/ops/common.h"
#include "kernels/conv2d.h"

namespace ctg::ops {

namespace {
std::string str(int64_t v) { return std::to_string(v); }
}  // namespace

Tensor conv2d(const Tensor& x, const Tensor& w, const Tensor& b, const Conv2dParams& prm) {
  trace::ForwardOp op("conv2d");
  detail::check_float(x, "conv2d", "input");
  detail::check_float(w, "conv2d", "weight");
  detail::check_dim(x, 4, "conv2d", "input");
  detail::check_dim(w, 4, "conv2d", "weight");
  detail::check_same_dtype(x, w, "conv2d", "weight");
  kernels::Conv2dDims d{};
  d.N = x.size(0), d.C = x.size(1), d.H = x.size(2), d.W = x.size(3);
  d.O = w.size(0), d.KH = w.size(2), d.KW = w.size(3);
  d.SH = prm.stride_h, d.SW = prm.stride_w, d.PH = prm.pad_h, d.PW = prm.pad_w;
  if (d.C < 1 || d.H < 1 || d.W < 1 || d.O < 1)
    throw Error("conv2d: input " + shape_str(x.shape()) + " and weight " + shape_str(w.shape()) +
                " must have at least one channel, row, column and output channel");
  if (w.size(1) != d.C)
    throw Error("conv2d: input " + shape_str(x.shape()) + " has " + str(d.C) + " channels but weight " +
                shape_str(w.shape()) + " expects " + str(w.size(1)));
  if (b.defined()) {
    detail::check_float(b, "conv2d", "bias");
    detail::check_same_dtype(x, b, "conv2d", "bias");
    if (b.shape() != Shape{d.O})
      throw Error("conv2d: bias " + shape_str(b.shape()) + " should be [" + str(d.O) + "]");
  }
  if (d.SH < 1 || d.SW < 1)
    throw Error("conv2d: stride (" + str(d.SH) + ", " + str(d.SW) + ") must be >= 1");
  if (d.PH < 0 || d.PW < 0)
    throw Error("conv2d: padding (" + str(d.PH) + ", " + str(d.PW) + ") must be >= 0");
  // OH = (H + 2·PH − KH)/SH + 1 must be ≥ 1, i.e. the kernel fits the padded input.
  const int64_t span_h = d.H + 2 * d.PH - d.KH, span_w = d.W + 2 * d.PW - d.KW;
  if (d.KH < 1 || d.KW < 1 || span_h < 0 || span_w < 0)
    throw Error("conv2d: kernel " + str(d.KH) + "x" + str(d.KW) + " of weight " + shape_str(w.shape()) +
                " does not fit input " + shape_str(x.shape()) + " with padding (" + str(d.PH) + ", " +
                str(d.PW) + "): output size would be < 1");
  d.OH = span_h / d.SH + 1, d.OW = span_w / d.SW + 1;

  Tensor y = Tensor::empty({d.N, d.O, d.OH, d.OW}, x.dtype(), x.device());
  CTG_KERNEL(conv2d_forward, x, x, w, b, y, d);
  if (autograd::needs_grad({&x, &w, &b})) {
    auto node = autograd::record("conv2d", y, {x, w, b});
    node->save("x", x);  // the columns are recomputed from x, not stored
    node->save("weight", w);
    node->backward = [d](Node& n, const Tensor& gy) {
      Tensor gx = autograd::input_grad(n, 0), gw = autograd::input_grad(n, 1), gb = autograd::input_grad(n, 2);
      CTG_KERNEL(conv2d_backward, gy, n.saved_tensor("x"), n.saved_tensor("weight"), gy, gx, gw, gb, d);
    };
  }
  return y;
}

}  // namespace ctg::ops
