#include "nets/cnn.h"

#include "kernels/conv2d.h"
#include "kernels/maxpool2d.h"

namespace ctg::nets {

static const int64_t kStride[3] = {3, 2, 2};

int64_t CNN::feature_side(int64_t s) {
  for (int64_t st : kStride) {
    s = kernels::conv2d_output_size(s, 5, st, 3);     // conv k5 p3
    s = kernels::maxpool2d_output_size(s, 2, 2, 0);  // maxpool 2
  }
  return s;
}

CNN::CNN(int64_t size, std::array<int64_t, 3> ch, int64_t hidden, Generator& gen) {
  int64_t side = feature_side(size);
  if (side < 1) throw Error("CNN: input size " + std::to_string(size) + " is too small (features vanish)");
  int64_t in = 1;
  // Registration order conv1, bn1, conv2, ... gives PyTorch's state dict order
  // for a module that assigns them in that order.
  for (int i = 0; i < 3; ++i) {
    std::string k = std::to_string(i + 1);
    conv_[i] = register_module("conv" + k, std::make_shared<Conv2d>(in, ch[i], 5, kStride[i], 3, false, gen));
    bn_[i] = register_module("bn" + k, std::make_shared<BatchNorm2d>(ch[i]));
    bn_[i]->fuse_relu = true;  // relu(bn(·)) in one op while training
    in = ch[i];
  }
  fc1_ = register_module("fc1", std::make_shared<Linear>(ch[2] * side * side, hidden, true, gen));
  fc2_ = register_module("fc2", std::make_shared<Linear>(hidden, 1, true, gen));
}

Tensor CNN::forward(const Tensor& x) {
  Tensor h = x;
  for (int i = 0; i < 3; ++i) h = ops::maxpool2d(ops::relu((*bn_[i])((*conv_[i])(h))), ops::Pool2dParams{});
  h = ops::relu((*fc1_)(ops::flatten(h)));
  return (*fc2_)(h);  // [N, 1]
}

}  // namespace ctg::nets
