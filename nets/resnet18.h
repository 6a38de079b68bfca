// ResNet18 as the study builds it: torchvision's resnet18 body (names and
// all) with a 1-channel conv1 (7×7, stride 2, padding 3, no bias); the
// average pool and 1000-class head removed; optional Dropout(0.5); a 1×1
// conv 512→1 with bias named `fc` (state dict fc.weight [1,512,1,1],
// fc.bias [1]); a global max pool gives the logit. 11,170,753 parameters.
//
// Initialisation follows torchvision for the body (Kaiming-normal, fan_out,
// ReLU gain; BN γ=1, β=0) and PyTorch's Conv2d default for conv1 and fc,
// which the study's code replaced after building the torchvision model.
#pragma once
#include "engine/layers.h"

namespace ctg::nets {

class BasicBlock : public Module {
 public:
  BasicBlock(int64_t in, int64_t out, int64_t stride, Generator& gen);
  std::string type_name() const override { return "BasicBlock"; }

 protected:
  Tensor forward(const Tensor& x) override;

 private:
  std::shared_ptr<Conv2d> conv1_, conv2_;
  std::shared_ptr<BatchNorm2d> bn1_, bn2_;
  std::shared_ptr<ReLU> relu_;
  std::shared_ptr<Sequential> downsample_;  // null when shapes already match
};

class ResNet18 : public Module {
 public:
  ResNet18(Generator& gen, bool dropout = false);
  std::string type_name() const override { return "ResNet18"; }
  // The 1×1 conv map before the global max pool, [N,1,h,w] (for the
  // visualisations: its hottest pixel is the score).
  Tensor head_map(const Tensor& x);

 protected:
  Tensor forward(const Tensor& x) override;

 private:
  std::shared_ptr<Conv2d> conv1_, fc_;
  std::shared_ptr<BatchNorm2d> bn1_;
  std::shared_ptr<ReLU> relu_;
  std::shared_ptr<MaxPool2d> maxpool_;
  std::shared_ptr<Sequential> layers_[4];
  std::shared_ptr<Dropout> dropout_;
  std::shared_ptr<GlobalMaxPool> pool_;
};

}  // namespace ctg::nets
