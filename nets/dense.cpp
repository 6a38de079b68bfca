#include "nets/dense.h"

namespace ctg::nets {

Dense::Dense(int64_t size, std::vector<int64_t> hidden, Generator& gen) {
  int64_t in = size * size;
  hidden.push_back(1);  // the logit
  for (size_t i = 0; i < hidden.size(); ++i) {
    fc_.push_back(register_module("fc" + std::to_string(i + 1), std::make_shared<Linear>(in, hidden[i], true, gen)));
    in = hidden[i];
  }
}

Tensor Dense::forward(const Tensor& x) {
  Tensor h = ops::flatten(x);
  for (size_t i = 0; i < fc_.size(); ++i) {
    h = (*fc_[i])(h);
    if (i + 1 < fc_.size()) h = ops::relu(h);  // functional, as in the study's model
  }
  return h;  // [N, 1]
}

}  // namespace ctg::nets
