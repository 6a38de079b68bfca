// Dense(h) and Dense(100,100) of the study: flatten the S×S slice, fully
// connected layers with ReLU between them, one logit out. Names fc1, fc2, fc3.
#pragma once
#include <vector>

#include "engine/layers.h"

namespace ctg::nets {

class Dense : public Module {
 public:
  // hidden = {20} gives Dense(20); {100, 100} gives Dense(100,100).
  Dense(int64_t size, std::vector<int64_t> hidden, Generator& gen);
  std::string type_name() const override { return "Dense"; }

 protected:
  Tensor forward(const Tensor& x) override;

 private:
  std::vector<std::shared_ptr<Linear>> fc_;
};

}  // namespace ctg::nets
