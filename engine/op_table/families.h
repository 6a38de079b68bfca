// The op families of the table (engine/op_table.h), one file each; entries()
// lists them in this order. A new family file adds its function here and in
// engine/op_table/registry.cpp.
#pragma once
#include <vector>

#include "engine/op_table.h"
#include "kernels/conv2d.h"

namespace ctg::op_table {

std::vector<OpEntry> gemm_entries();         // conv2d, linear (engine/op_table/gemm.cpp)
std::vector<OpEntry> norm_pool_entries();    // batchnorm2d, maxpool2d, global_maxpool (norm_pool.cpp)
std::vector<OpEntry> elementwise_entries();  // relu, add, sigmoid, dropout, flatten, bce_with_logits

// A maker of one input per shape, each uniform in [-1, 1), drawn in order.
inline std::function<std::vector<Tensor>(std::mt19937_64&, DType, Device)> uniform_inputs(std::vector<Shape> shapes) {
  return [shapes](std::mt19937_64& rng, DType dt, Device dev) {
    std::vector<Tensor> v;
    for (const Shape& s : shapes) v.push_back(uniform(s, rng, -1, 1, dt).to(dev));
    return v;
  };
}

// ResNet18's feature-map sides at the study's input size (the bench cases):
// the 7×7 s2 p3 stem gives `stem`, its 3×3 s2 p1 max pool gives layer[1], and
// the first 3×3 s2 p1 conv of layers 2-4 halves the side again (rounding up).
struct ResNetSides {
  int64_t stem = 0, layer[5] = {0, 0, 0, 0, 0};
};
inline ResNetSides resnet18_sides(const StudySize& st) {
  ResNetSides r;
  r.stem = kernels::conv2d_output_size(st.size, 7, 2, 3);
  r.layer[1] = kernels::conv2d_output_size(r.stem, 3, 2, 1);  // the max pool: the same formula
  for (int i = 2; i <= 4; ++i) r.layer[i] = kernels::conv2d_output_size(r.layer[i - 1], 3, 2, 1);
  return r;
}

}  // namespace ctg::op_table
