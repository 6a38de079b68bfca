// safetensors: ctgrad's checkpoint format, byte-compatible with the Python
// `safetensors` library (and so with PyTorch's `safetensors.torch`).
//
// File layout (https://github.com/huggingface/safetensors):
//   u64 little-endian N | N bytes of UTF-8 JSON header | byte buffer
// The header maps each tensor name to {"dtype", "shape", "data_offsets":[begin,end]}
// (offsets into the byte buffer) and may hold "__metadata__": {string: string}.
// Data is little-endian and row-major; the tensors tile the buffer exactly.
#pragma once
#include <map>
#include <string>
#include <vector>

#include "engine/tensor.h"

namespace ctg {

struct NamedTensor {
  std::string name;
  Tensor tensor;
  // The dtype string the tensor had in the file ("F32", "F16", "BF16", ...);
  // set by load_safetensors, ignored by save_safetensors. F16 and BF16 are
  // widened to float32 on load, so this is the only trace of the original.
  std::string source_dtype = {};
};

// Write `tensors` (CPU tensors of dtype f32/f64/i64, unique non-empty names) and
// optional string metadata to `path`, laid out exactly as the Python writer
// lays them out: tensors sorted by descending dtype alignment, then by name
// (so I64/F64 before F32; this keeps every tensor's data aligned to its
// element size), the header's keys in that same order after "__metadata__",
// compact JSON padded with spaces to a multiple of 8 bytes. Hence the order of
// `tensors` does not survive a round trip; load_safetensors returns the file's
// order. Atomic: the bytes go to PATH.tmp.<pid>, are fsync'ed, and the file is
// renamed over PATH; on failure nothing is left behind and PATH is untouched.
void save_safetensors(const std::string& path, const std::vector<NamedTensor>& tensors,
                      const std::map<std::string, std::string>& metadata = {});

struct SafetensorsFile {
  std::vector<NamedTensor> tensors;  // in the order of their data in the file
  std::map<std::string, std::string> metadata;
};

// Read and fully validate a file. F32/F64/I64 load as f32/f64/i64; F16/BF16
// load as f32 (source_dtype records the original). Every problem (truncation,
// bad JSON, a header whose offsets lie, overlaps or holes in the buffer, an
// unsupported dtype, more than 4 dims, duplicate names, ...) is a ctg::Error
// whose message starts with `path` and names the tensor or field at fault.
SafetensorsFile load_safetensors(const std::string& path);

}  // namespace ctg
