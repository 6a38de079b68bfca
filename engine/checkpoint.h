// Module state dicts as safetensors files (the project's checkpoint format):
// PyTorch's names, so `load_state_dict(strict=True)` in PyTorch accepts them.
#pragma once
#include <map>
#include <string>

#include "engine/module.h"
#include "engine/safetensors.h"

namespace ctg {

std::vector<NamedTensor> to_named(const NamedTensorList& list);
NamedTensorList from_named(const std::vector<NamedTensor>& list);

// Atomic write (see save_safetensors).
void save_module(const std::string& path, const Module& m, const std::map<std::string, std::string>& metadata = {});
// Load into an existing module; errors name the file and the key at fault.
void load_module(const std::string& path, Module& m, bool strict = true);

}  // namespace ctg
