#include "engine/layers.h"

#include <cmath>

namespace ctg {

Linear::Linear(int64_t in, int64_t out, bool with_bias, Generator& gen, DType dt) {
  double bound = 1.0 / std::sqrt((double)in);  // kaiming_uniform_(a=√5) reduces to this
  weight = register_parameter("weight", Tensor::empty({out, in}, dt));
  gen.uniform_(weight, -bound, bound);
  if (with_bias) {
    bias = register_parameter("bias", Tensor::empty({out}, dt));
    gen.uniform_(bias, -bound, bound);
  }
}

Conv2d::Conv2d(int64_t in, int64_t out, int64_t k, int64_t stride, int64_t padding, bool with_bias,
               Generator& gen, DType dt) {
  params.stride_h = params.stride_w = stride;
  params.pad_h = params.pad_w = padding;
  double bound = 1.0 / std::sqrt((double)(in * k * k));
  weight = register_parameter("weight", Tensor::empty({out, in, k, k}, dt));
  gen.uniform_(weight, -bound, bound);
  if (with_bias) {
    bias = register_parameter("bias", Tensor::empty({out}, dt));
    gen.uniform_(bias, -bound, bound);
  }
}

BatchNorm2d::BatchNorm2d(int64_t c, DType dt) {
  weight = register_parameter("weight", Tensor::full({c}, 1.0, dt));
  bias = register_parameter("bias", Tensor::zeros({c}, dt));
  running_mean = register_buffer("running_mean", Tensor::zeros({c}, dt));
  running_var = register_buffer("running_var", Tensor::full({c}, 1.0, dt));
  num_batches_tracked = register_buffer("num_batches_tracked", Tensor::zeros({}, DType::i64));
}

Tensor BatchNorm2d::forward(const Tensor& x) {
  if (is_training()) num_batches_tracked.data<int64_t>()[0] += 1;
  if (is_training() && sync_forward) return sync_forward(*this, x);
  if (is_training() && fuse_relu)
    return ops::batchnorm2d_relu(x, weight, bias, running_mean, running_var, true, momentum, eps);
  return ops::batchnorm2d(x, weight, bias, running_mean, running_var, is_training(), momentum, eps);
}

Tensor Sequential::forward(const Tensor& x) {
  Tensor h = x;
  for (auto& [name, m] : children()) h = (*m)(h);
  return h;
}

}  // namespace ctg
