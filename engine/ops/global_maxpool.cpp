// Autograd glue for global_maxpool (kernels in kernels/global_maxpool.h).
#include <climits>

#include "engine/ops.h"
#include "engine/ops/common.h"
#include "kernels/global_maxpool.h"

namespace ctg::ops {

Tensor global_maxpool(const Tensor& x) {
  trace::ForwardOp op("global_maxpool");
  detail::check_float(x, "global_maxpool", "input");
  detail::check_dim(x, 4, "global_maxpool", "input");
  const int64_t N = x.size(0), C = x.size(1), HW = x.size(2) * x.size(3);
  if (HW < 1)
    throw Error("global_maxpool: input " + shape_str(x.shape()) + " has empty planes (H·W = 0)");
  if (HW > INT32_MAX)
    throw Error("global_maxpool: input plane " + shape_str(x.shape()) + " has more than 2^31 values");
  const int64_t planes = N * C;
  Tensor y = Tensor::empty({N, C, 1, 1}, x.dtype(), x.device());
  // No int32 dtype in the engine: the int32 argmax is packed two per i64
  // element, so the saved buffer is a tensor that memory accounting sees.
  Tensor argmax = Tensor::empty({(planes + 1) / 2}, DType::i64, x.device());
  int32_t* argmax_i32 = static_cast<int32_t*>(detail::kernel_ptr(argmax));
  CTG_KERNEL(global_maxpool_forward, x, x, y, argmax_i32, planes, HW);
  if (autograd::needs_grad({&x})) {
    auto node = autograd::record("global_maxpool", y, {x});
    node->save_buffer("argmax", argmax);
    node->backward = [planes, HW](Node& n, const Tensor& gy) {
      Tensor gx = autograd::input_grad(n, 0);
      if (!gx.defined()) return;
      const int32_t* am = static_cast<const int32_t*>(detail::kernel_ptr(n.saved_tensor("argmax")));
      CTG_KERNEL(global_maxpool_backward, gy, am, gy, gx, planes, HW);
    };
  }
  return y;
}

}  // namespace ctg::ops
