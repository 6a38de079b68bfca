// torchvision's resnet18 state dict (ImageNet weights, or any resnet18
// trained in PyTorch) onto ctgrad's ResNet18 (nets/resnet18.h), the study's
// ResNet18*: the body keeps every weight and BatchNorm statistic under the
// same names; two places differ.
//  - conv1: ImageNet's is [64,3,7,7] (RGB), ours [64,1,7,7] (one CT channel).
//    `sum`: W'[o,0,p,q] = Σ_c W[o,c,p,q]. Convolution is linear in the input,
//    so conv(x, W') = Σ_c conv(x, W[:,c]) = conv([x,x,x], W): exactly what
//    the ImageNet net computes on the grey slice repeated as three channels
//    (summed in double, rounded once to float). `fresh`: keep our own
//    initialisation (PyTorch's Conv2d default, as the study's code did).
//  - the head: torchvision's fc is Linear(512, 1000); ours a 1×1 conv 512→1
//    named fc (fc.weight [1,512,1,1], fc.bias [1]). A Linear head of any
//    width is dropped and ours keeps its initialisation.
// A ctgrad ResNet18 state dict (1-channel conv1, our fc) is accepted as is.
// A state dict for another net — a key we have no place for, a body key
// missing, a shape that differs — is a ctg::Error naming the key; the net is
// left untouched. A "module." prefix on every key (nn.DataParallel) is
// removed. Missing num_batches_tracked (very old files) keep our 0.
#pragma once
#include <string>
#include <vector>

#include "engine/module.h"
#include "engine/safetensors.h"
#include "interop/weights.h"

namespace ctg::interop {

enum class Conv1Mode { sum, fresh };
// "sum" / "fresh"; anything else throws naming the flag.
Conv1Mode parse_conv1_mode(const std::string& s);
const char* conv1_mode_name(Conv1Mode m);

struct ImportReport {
  std::vector<std::string> used;         // ResNet18 keys filled from the file
  std::vector<SkippedEntry> skipped;     // file keys not used, with the reason
  std::vector<std::string> initialised;  // ResNet18 keys keeping our initialisation
  std::string conv1;                     // what was done to conv1, in words
};

// `net` must be a ctgrad ResNet18 (nets::make_net("resnet18", ...)), whose
// initialisation supplies the head (and conv1 under `fresh`). `source` names
// the file in errors.
ImportReport import_resnet18(const std::vector<NamedTensor>& src, Module& net, Conv1Mode mode,
                             const std::string& source);

// [O,C,k,k] → [O,1,k,k], the sum over C (in double).
Tensor sum_input_channels(const Tensor& w);

}  // namespace ctg::interop
