// Named tensors from other frameworks' weight files:
//  - PyTorch's zip format (torch.save since 1.6; .pt/.pth): ARCHIVE/data.pkl
//    (read by the restricted unpickler, unpickle.h), ARCHIVE/data/<key> raw
//    storages, ARCHIVE/byteorder ("little" when absent); .format_version,
//    .storage_alignment, version and .data/serialization_id are not needed.
//  - safetensors (engine/safetensors.h).
// The legacy (pre-1.6) torch.save format and TorchScript archives are refused
// with a message that says how to re-save the file.
//
// Tensors come out as ctgrad dtypes: float16, bfloat16 and float64 become
// float32 (the half widenings are exact); int64 stays int64 (BatchNorm's
// num_batches_tracked); int32/int16/int8/uint8/bool become int64.
// NamedTensor::source_dtype keeps the file's dtype in safetensors spelling
// ("F32", "F16", "BF16", "F64", "I64", "I32", "I16", "I8", "U8", "BOOL").
// Strided (non-contiguous) tensors are gathered; a tensor must lie inside its
// storage and may not have more elements than it (no expanded views). The
// storage's device ('cpu', 'cuda:0', 'mps') is ignored: all loads go to the CPU.
#pragma once
#include <map>
#include <string>
#include <vector>

#include "engine/safetensors.h"

namespace ctg::interop {

struct SkippedEntry {
  std::string key;   // dotted, as in the file
  std::string what;  // "int 42", "float 0.123", "tensor float32 [10, 5] outside 'model_state_dict'"
};

struct LoadedWeights {
  std::string format;          // "torch" or "safetensors"
  std::string state_dict_key;  // e.g. "model_state_dict" when the file is a training checkpoint; else ""
  std::vector<NamedTensor> tensors;  // in file order, keys relative to the state dict
  std::vector<SkippedEntry> skipped;
  std::map<std::string, std::string> metadata;  // safetensors __metadata__
};

// The keys that hold a model's state dict inside a checkpoint dict, tried in
// this order; the first whose value is a dict holding tensors is taken, and
// everything else in the file is reported as skipped. Without one, nested
// dicts are flattened with '.' and every tensor is kept.
const std::vector<std::string>& state_dict_keys();

// By content: a zip is a torch file, a pickle is the legacy torch format
// (refused), anything else is read as safetensors.
LoadedWeights load_weights(const std::string& path);
// A torch zip already in memory (`name` for messages): the fuzzers' entry.
LoadedWeights load_torch_zip(std::vector<uint8_t> bytes, const std::string& name);

}  // namespace ctg::interop
