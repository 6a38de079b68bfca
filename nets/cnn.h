// CNN1 and CNN2 of the study: three stages of
//   Conv(k5, no bias; stride 3, then 2, 2; padding 3) → BatchNorm → ReLU → MaxPool(2)
// then Linear(c3·s·s, hidden) → ReLU → Linear(hidden, 1).
// At 512×512: 172 → 86, 44 → 22, 12 → 6, so s = 6. ReLU and pooling are
// functional (not modules), which is what makes torchsummary's pass size
// match the study's Table 1.
#pragma once
#include <array>

#include "engine/layers.h"

namespace ctg::nets {

class CNN : public Module {
 public:
  CNN(int64_t size, std::array<int64_t, 3> channels, int64_t hidden, Generator& gen);
  std::string type_name() const override { return "CNN"; }
  // Spatial side after the three stages for an input of side `size`.
  static int64_t feature_side(int64_t size);

 protected:
  Tensor forward(const Tensor& x) override;

 private:
  std::shared_ptr<Conv2d> conv_[3];
  std::shared_ptr<BatchNorm2d> bn_[3];
  std::shared_ptr<Linear> fc1_, fc2_;
};

}  // namespace ctg::nets
