// Autograd glue for maxpool2d (kernels in kernels/maxpool2d.h).
#include <climits>

#include "engine/ops.h"
#include "engine/ops/common.h"
#include "kernels/maxpool2d.h"

namespace ctg::ops {

namespace {

void check_pool_dim(const char* name, int64_t kernel, int64_t stride, int64_t pad, int64_t in_size,
                    const char* in_name, const Shape& shape) {
  const std::string k = std::to_string(kernel), s = std::to_string(stride), p = std::to_string(pad);
  if (kernel < 1) throw Error(std::string("maxpool2d: kernel_") + name + " must be >= 1, got " + k);
  if (stride < 1) throw Error(std::string("maxpool2d: stride_") + name + " must be >= 1, got " + s);
  // Padding is −∞; more than half a kernel would allow windows of padding
  // only, which PyTorch rejects the same way.
  if (pad < 0 || pad > kernel / 2)
    throw Error(std::string("maxpool2d: pad_") + name + "=" + p + " must be between 0 and kernel_" +
                name + "/2 (kernel_" + name + "=" + k + ")");
  if (in_size + 2 * pad < kernel)
    throw Error(std::string("maxpool2d: kernel_") + name + "=" + k + " is larger than the padded " +
                in_name + " " + std::to_string(in_size + 2 * pad) + " of input " + shape_str(shape));
}

}  // namespace

Tensor maxpool2d(const Tensor& x, const Pool2dParams& p) {
  trace::ForwardOp op("maxpool2d");
  detail::check_float(x, "maxpool2d", "input");
  detail::check_dim(x, 4, "maxpool2d", "input");
  const int64_t N = x.size(0), C = x.size(1), H = x.size(2), W = x.size(3);
  check_pool_dim("h", p.kernel_h, p.stride_h, p.pad_h, H, "height", x.shape());
  check_pool_dim("w", p.kernel_w, p.stride_w, p.pad_w, W, "width", x.shape());
  // argmax and the kernel's index arithmetic are int32 within a plane (with
  // some slack for padding and the kernel's rounded-up column blocks).
  if ((H + p.kernel_h + 1) * (W + p.kernel_w) + 16 * p.stride_w > INT32_MAX)
    throw Error("maxpool2d: input planes of " + shape_str(x.shape()) + " are too large for 32-bit indices");
  const kernels::MaxPool2dGeometry g =
      kernels::maxpool2d_geometry(N, C, H, W, p.kernel_h, p.kernel_w, p.stride_h, p.stride_w, p.pad_h, p.pad_w);

  Tensor y = Tensor::empty({N, C, g.OH, g.OW}, x.dtype(), x.device());
  // The engine has no int32 dtype: the int32 argmax lives in an i64 tensor of
  // half the length, so it costs 4 bytes per output and is still a tensor
  // that the saved-memory accounting sees.
  const int64_t n_out = N * C * g.OH * g.OW;
  Tensor argmax = Tensor::empty({(n_out + 1) / 2}, DType::i64, x.device());
  int32_t* argmax_i32 = static_cast<int32_t*>(detail::kernel_ptr(argmax));
  CTG_KERNEL(maxpool2d_forward, x, x, y, argmax_i32, g);

  if (autograd::needs_grad({&x})) {
    auto node = autograd::record("maxpool2d", y, {x});
    node->save_buffer("argmax", argmax);
    node->backward = [g](Node& n, const Tensor& gy) {
      const autograd::GradOut gx = autograd::input_grad_out(n, 0);  // every element written
      if (!gx.grad.defined()) return;
      const int32_t* am = static_cast<const int32_t*>(detail::kernel_ptr(n.saved_tensor("argmax")));
      CTG_KERNEL(maxpool2d_backward, gy, am, gy, gx.grad, g, gx.accumulate);
    };
  }
  return y;
}

}  // namespace ctg::ops
