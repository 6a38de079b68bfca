#include "nets/resnet18.h"

#include <cmath>

namespace ctg::nets {

// torchvision: kaiming_normal_(mode="fan_out", nonlinearity="relu"): std = √(2 / (out·k·k)).
static std::shared_ptr<Conv2d> body_conv(int64_t in, int64_t out, int64_t k, int64_t stride, int64_t pad,
                                         Generator& gen) {
  auto c = std::make_shared<Conv2d>(in, out, k, stride, pad, false, gen);
  gen.normal_(c->weight, 0.0, std::sqrt(2.0 / (double)(out * k * k)));
  return c;
}

BasicBlock::BasicBlock(int64_t in, int64_t out, int64_t stride, Generator& gen) {
  conv1_ = register_module("conv1", body_conv(in, out, 3, stride, 1, gen));
  bn1_ = register_module("bn1", std::make_shared<BatchNorm2d>(out));
  bn1_->fuse_relu = true;  // relu(bn1(·)) in one op while training
  relu_ = register_module("relu", std::make_shared<ReLU>());
  conv2_ = register_module("conv2", body_conv(out, out, 3, 1, 1, gen));
  bn2_ = register_module("bn2", std::make_shared<BatchNorm2d>(out));
  if (stride != 1 || in != out) {
    downsample_ = register_module("downsample", std::make_shared<Sequential>());
    downsample_->add(body_conv(in, out, 1, stride, 0, gen));
    downsample_->add(std::make_shared<BatchNorm2d>(out));
  }
}

// out = relu(bn2(conv2(relu(bn1(conv1(x))))) + identity), identity = x or downsample(x).
Tensor BasicBlock::forward(const Tensor& x) {
  Tensor h = (*relu_)((*bn1_)((*conv1_)(x)));
  h = (*bn2_)((*conv2_)(h));
  Tensor identity = downsample_ ? (*downsample_)(x) : x;
  return (*relu_)(ops::add_relu(h, identity));  // the residual add and its ReLU in one op
}

ResNet18::ResNet18(Generator& gen, bool dropout) {
  conv1_ = register_module("conv1", std::make_shared<Conv2d>(1, 64, 7, 2, 3, false, gen));
  bn1_ = register_module("bn1", std::make_shared<BatchNorm2d>(64));
  bn1_->fuse_relu = true;
  relu_ = register_module("relu", std::make_shared<ReLU>());
  maxpool_ = register_module("maxpool", std::make_shared<MaxPool2d>(ops::Pool2dParams{3, 3, 2, 2, 1, 1}));
  const int64_t widths[4] = {64, 128, 256, 512};
  int64_t in = 64;
  for (int i = 0; i < 4; ++i) {
    layers_[i] = register_module("layer" + std::to_string(i + 1), std::make_shared<Sequential>());
    layers_[i]->add(std::make_shared<BasicBlock>(in, widths[i], i == 0 ? 1 : 2, gen));
    layers_[i]->add(std::make_shared<BasicBlock>(widths[i], widths[i], 1, gen));
    in = widths[i];
  }
  if (dropout) dropout_ = register_module("dropout", std::make_shared<Dropout>(0.5, gen.next_u64()));
  fc_ = register_module("fc", std::make_shared<Conv2d>(512, 1, 1, 1, 0, true, gen));
  pool_ = register_module("pool", std::make_shared<GlobalMaxPool>());
}

Tensor ResNet18::head_map(const Tensor& x) {
  Tensor h = (*maxpool_)((*relu_)((*bn1_)((*conv1_)(x))));
  for (auto& layer : layers_) h = (*layer)(h);
  if (dropout_) h = (*dropout_)(h);
  return (*fc_)(h);
}

Tensor ResNet18::forward(const Tensor& x) { return ops::flatten((*pool_)(head_map(x))); }

}  // namespace ctg::nets
