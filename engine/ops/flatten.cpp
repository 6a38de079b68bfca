// Views: reshape and flatten share the input's storage; their backward just
// adds the incoming gradient (same number of elements) into the input's.
#include "engine/ops.h"
#include "engine/ops/common.h"
#include "kernels/add.h"

namespace ctg {

Tensor Tensor::reshape(const Shape& shape) const {
  Shape s = shape;
  int64_t known = 1, infer = -1;
  for (size_t i = 0; i < s.size(); ++i) {
    if (s[i] == -1) {
      if (infer >= 0) throw Error("reshape: more than one -1 in " + shape_str(shape));
      infer = (int64_t)i;
    } else if (s[i] < 0) {
      throw Error("reshape: negative size " + std::to_string(s[i]) + " in " + shape_str(shape));
    } else {
      known *= s[i];
    }
  }
  if (infer >= 0 && known > 0) s[(size_t)infer] = numel() / known;
  if (shape_numel(s) != numel() || s.size() > 4)
    throw Error("reshape: cannot view " + shape_str(this->shape()) + " as " + shape_str(shape));
  trace::ForwardOp op("reshape");
  Tensor v = detach();
  v.impl().shape = s;
  if (autograd::needs_grad({this})) {
    auto node = autograd::record("reshape", v, {*this});
    node->backward = [](Node& n, const Tensor& gy) {
      Tensor gx = autograd::input_grad(n, 0);
      if (!gx.defined()) return;
      ops::detail::accumulate(gy, gx);
    };
  }
  return v;
}

namespace ops {
Tensor flatten(const Tensor& x) {
  if (x.dim() < 1) throw Error("flatten: input must have a batch dimension, got " + shape_str(x.shape()));
  return x.reshape({x.size(0), -1});
}
}  // namespace ops

}  // namespace ctg
