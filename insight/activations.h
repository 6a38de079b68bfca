// What a network holds and computes inside: its convolution filters, the
// outputs of named layers (feature maps) and ResNet18's head map — the
// study's Slika 12–19 (SEED_NOTES section 8).
//
// Layers are named as in the state dict, without the tensor's suffix:
// `conv1`, `bn2`, `layer2.0.conv1`, `layer1.0.downsample.0` (a module's
// path of child names). A number k instead names the k-th convolution in
// execution order, counted from 1 (ResNet18 runs 21: conv1, then per block
// conv1, conv2 and, where present, the downsample conv — 20 in the body —
// and last its 1×1 head `fc`), which is how the study's "layers 1, 10 and
// 20" are meant.
#pragma once
#include <string>
#include <utility>
#include <vector>

#include "engine/module.h"
#include "engine/tensor.h"

namespace ctg::insight {

// Every submodule under its dotted name, depth first in registration order
// (the root itself is left out).
std::vector<std::pair<std::string, const Module*>> named_modules(const Module& root);
// The names of the Conv2d submodules: the layers `filters` accepts.
std::vector<std::string> conv_layer_names(const Module& root);

// The weights [O, I, kh, kw] of conv layer `layer` (a CPU copy, float32).
// Errors name --layer and list the net's conv layers.
Tensor conv_filters(const Module& net, const std::string& layer);
// This net's filters minus those of the same layer in the checkpoint
// `other` (a safetensors state dict: key `<layer>.weight` of the same shape),
// e.g. CT-trained minus ImageNet (Slika 13). Errors name --diff and the key.
Tensor filter_difference(const Tensor& mine, const std::string& other, const std::string& layer);

// Filters laid out for one picture on one colour scale: I == 1 → a
// near-square grid of the O filters; I > 1 → O rows of I filters (row o,
// column i is W[o, i]); one cell of 0 between filters.
struct Mosaic {
  int64_t height = 0, width = 0, rows = 0, cols = 0;
  std::vector<float> values;  // height · width
};
Mosaic filter_mosaic(const Tensor& weights);

// The output of each layer of `layers` for one image x [1,C,H,W] on the
// net's device: module names or conv numbers as above; a module called more
// than once in a forward pass (ResNet's shared `relu`) gives its first call.
// Returns [C′,H′,W′] CPU tensors in the order asked. Errors: an unknown name
// (listing the known ones), a number outside 1..(conv count), a layer whose
// output is not a feature map [1,C′,H′,W′] (a Linear layer).
std::vector<std::pair<std::string, Tensor>> feature_maps(Module& net, const Tensor& x,
                                                         const std::vector<std::string>& layers);

// ResNet18's 1×1-conv map before the global max pool for one image x
// [1,1,H,W]: [H′, W′] raw logits (CPU); its maximum is the net's logit.
// Error when `net` has no such head (`net_name` names it in the message).
Tensor head_map(Module& net, const Tensor& x, const std::string& net_name);

}  // namespace ctg::insight
