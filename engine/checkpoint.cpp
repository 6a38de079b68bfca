#include "engine/checkpoint.h"

namespace ctg {

std::vector<NamedTensor> to_named(const NamedTensorList& list) {
  std::vector<NamedTensor> out;
  out.reserve(list.size());
  for (auto& [n, t] : list) out.push_back({n, t});
  return out;
}

NamedTensorList from_named(const std::vector<NamedTensor>& list) {
  NamedTensorList out;
  out.reserve(list.size());
  for (auto& nt : list) out.emplace_back(nt.name, nt.tensor);
  return out;
}

void save_module(const std::string& path, const Module& m, const std::map<std::string, std::string>& metadata) {
  save_safetensors(path, to_named(m.state_dict()), metadata);
}

void load_module(const std::string& path, Module& m, bool strict) {
  SafetensorsFile f = load_safetensors(path);
  try {
    m.load_state_dict(from_named(f.tensors), strict);
  } catch (const Error& e) {
    throw Error(path + ": " + e.what());
  }
}

}  // namespace ctg
