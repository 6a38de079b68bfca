// Autograd glue for dropout (kernels in kernels/dropout.h).
#include "engine/ops.h"
#include "engine/ops/common.h"
#include "kernels/dropout.h"

namespace ctg::ops {

Tensor dropout(const Tensor& x, double p, bool training, uint64_t seed) {
  trace::ForwardOp op("dropout");
  detail::check_float(x, "dropout", "input");
  if (!(p >= 0.0 && p < 1.0)) throw Error("dropout: p must be in [0, 1), got " + std::to_string(p));
  if (!training || p == 0.0) return x;  // identity: no copy, no node
  Tensor y = Tensor::empty(x.shape(), x.dtype(), x.device());
  CTG_KERNEL(dropout_forward, x, x, y, x.numel(), p, seed);
  if (autograd::needs_grad({&x})) {
    auto node = autograd::record("dropout", y, {x});
    node->backward = [p, seed](Node& n, const Tensor& gy) {
      Tensor gx = autograd::input_grad(n, 0);
      if (!gx.defined()) return;
      // The mask is recomputed from (seed, index), so nothing is saved.
      CTG_KERNEL(dropout_backward, gy, gy, gx, gy.numel(), p, seed);
    };
  }
  return y;
}

}  // namespace ctg::ops
