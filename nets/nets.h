// The study's networks by name: dense20, dense50, dense100, dense100x100,
// cnn1, cnn2, resnet18. Every net maps [N,1,S,S] to logits [N,1].
#pragma once
#include <memory>
#include <string>
#include <vector>

#include "engine/module.h"

namespace ctg::nets {

struct NetOptions {
  int64_t size = 512;      // input side S (the study's 512)
  uint64_t seed = 0;       // initialisation seed
  bool dropout = false;    // ResNet18: Dropout(0.5) before the head
};

const std::vector<std::string>& net_names();
// Throws ctg::Error naming the unknown net and listing the known ones.
std::shared_ptr<Module> make_net(const std::string& name, const NetOptions& opt = {});

}  // namespace ctg::nets
