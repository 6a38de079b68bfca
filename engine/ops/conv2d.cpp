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
  const int64_t C = x.size(1), H = x.size(2), W = x.size(3), O = w.size(0), KH = w.size(2), KW = w.size(3);
  if (C < 1 || H < 1 || W < 1 || O < 1)
    throw Error("conv2d: input " + shape_str(x.shape()) + " and weight " + shape_str(w.shape()) +
                " must have at least one channel, row, column and output channel");
  if (w.size(1) != C)
    throw Error("conv2d: input " + shape_str(x.shape()) + " has " + str(C) + " channels but weight " +
                shape_str(w.shape()) + " expects " + str(w.size(1)));
  if (b.defined()) {
    detail::check_float(b, "conv2d", "bias");
    detail::check_same_dtype(x, b, "conv2d", "bias");
    if (b.shape() != Shape{O}) throw Error("conv2d: bias " + shape_str(b.shape()) + " should be [" + str(O) + "]");
  }
  if (prm.stride_h < 1 || prm.stride_w < 1)
    throw Error("conv2d: stride (" + str(prm.stride_h) + ", " + str(prm.stride_w) + ") must be >= 1");
  if (prm.pad_h < 0 || prm.pad_w < 0)
    throw Error("conv2d: padding (" + str(prm.pad_h) + ", " + str(prm.pad_w) + ") must be >= 0");
  const kernels::Conv2dDims d =
      kernels::conv2d_dims(x.size(0), C, H, W, O, KH, KW, prm.stride_h, prm.stride_w, prm.pad_h, prm.pad_w);
  // OH = (H + 2·PH − KH)/SH + 1 must be ≥ 1, i.e. the kernel fits the padded input.
  if (KH < 1 || KW < 1 || d.OH < 1 || d.OW < 1)
    throw Error("conv2d: kernel " + str(KH) + "x" + str(KW) + " of weight " + shape_str(w.shape()) +
                " does not fit input " + shape_str(x.shape()) + " with padding (" + str(d.PH) + ", " +
                str(d.PW) + "): output size would be < 1");

  Tensor y = Tensor::empty({d.N, d.O, d.OH, d.OW}, x.dtype(), x.device());
  CTG_KERNEL(conv2d_forward, x, x, w, b, y, d);
  if (autograd::needs_grad({&x, &w, &b})) {
    auto node = autograd::record("conv2d", y, {x, w, b});
    node->save("x", x);  // the columns are recomputed from x, not stored
    node->save("weight", w);
    node->backward = [d](Node& n, const Tensor& gy) {
      // dL/dx: every element written (a first write where this is x's first
      // contribution, no zero-fill pass); dW and db add into zero-filled buffers.
      const autograd::GradOut gx = autograd::input_grad_out(n, 0);
      Tensor gw = autograd::input_grad(n, 1), gb = autograd::input_grad(n, 2);
      const bool acc = gx.accumulate;
      // CTG_KERNEL's call spelled out: the flag trails each device's tuning.
      detail::run_kernel(
          "conv2d_backward", gy,
          [&](auto&&... a) { kernels::conv2d_backward_cpu(a..., kernels::Conv2dCpuTuning{}, acc); },
          [&](auto&&... a) { kernels::conv2d_backward_cuda(a..., kernels::Conv2dCudaTuning{}, acc); },
          n.saved_tensor("x"), n.saved_tensor("weight"), gy, gx.grad, gw, gb, d);
    };
  }
  return y;
}

}  // namespace ctg::ops
