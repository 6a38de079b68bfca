// A restricted unpickler for PyTorch state dicts (the `data.pkl` of a
// torch.save zip). It is not Python's pickle: it builds a plain value tree and
// never runs code. Only the opcodes state dicts use are accepted (protocols
// 2-5: PROTO FRAME MARK STOP POP POP_MARK, EMPTY_DICT/LIST/TUPLE, TUPLE1-3,
// TUPLE, SETITEM(S), APPEND(S), BININT BININT1 BININT2 LONG1, BINFLOAT,
// NEWTRUE/FALSE, NONE, BINUNICODE SHORT_BINUNICODE BINUNICODE8, BINPUT
// LONG_BINPUT MEMOIZE BINGET LONG_BINGET, GLOBAL STACK_GLOBAL, REDUCE, BUILD,
// BINPERSID), and GLOBAL only names an allow-list:
//   collections.OrderedDict                  -> an (ordered) dict
//   torch._utils._rebuild_tensor_v2/_v3      -> a tensor reference
//   torch._utils._rebuild_parameter(_with_state), torch._tensor._rebuild_from_type_v2
//                                            -> the tensor inside
//   torch.<Float|Half|BFloat16|Double|Long|Int|Short|Char|Byte|Bool>Storage,
//   torch.UntypedStorage                     -> storage types (in persistent ids)
//   torch.float32, torch.half, ...           -> dtypes (_rebuild_tensor_v3)
//   torch.Tensor, torch.nn.parameter.Parameter (types for _rebuild_from_type_v2)
// Anything else is ctg::Error "<name>: byte <offset>: <OPCODE (0xNN)>: <why>",
// naming the global where one is at fault.
//
// Persistent ids (BINPERSID) are torch's storage records
//   ('storage', <storage type>, key, location, numel)
// whose bytes live in the zip at ARCHIVE/data/<key>; the location ('cpu',
// 'cuda:0', 'mps', ...) is kept but means nothing to us (loaded to the CPU).
//
// Values live in one arena and refer to each other by index, so hostile
// input (deep nesting, cycles through the memo) cannot blow the C++ stack on
// destruction; the walkers below bound their own depth and work. At most
// 2^20 values are made (a state dict needs ~25 per tensor).
// Files: unpickle.cpp (the opcode machine), unpickle_torch.cpp (the globals
// and storage records), pickle_tree.cpp (describe, flatten).
#pragma once
#include <cstdint>
#include <deque>
#include <string>
#include <utility>
#include <vector>

namespace ctg::interop {

enum class PyKind : uint8_t { none, boolean, integer, floating, string, tuple, list, dict, global, storage, tensor };

struct StorageInfo {
  std::string type;      // "FloatStorage", ..., "UntypedStorage"
  std::string key;       // entry name under ARCHIVE/data/
  std::string location;  // ignored
  int64_t numel = 0;     // elements of the storage type (bytes when untyped)
};

struct TensorInfo {
  uint32_t storage = 0;  // index of a PyKind::storage value
  std::string dtype;     // "float32", "float16", "bfloat16", "float64", "int64", ...
  int64_t offset = 0;    // in elements
  std::vector<int64_t> size, stride;
};

struct PyValue {
  PyKind kind = PyKind::none;
  int64_t integer = 0;  // int and bool
  double real = 0;      // float
  std::string text;     // str, or "module.name" of a global
  std::vector<uint32_t> items;                         // tuple, list
  std::vector<std::pair<uint32_t, uint32_t>> entries;  // dict (key, value) in insertion order
  StorageInfo storage;
  TensorInfo tensor;
};

struct Pickle {
  std::deque<PyValue> values;
  uint32_t root = 0;
  const PyValue& operator[](uint32_t i) const { return values[i]; }
};

// Parses a whole pickle; `name` prefixes error messages ("FILE: data.pkl").
Pickle unpickle(const uint8_t* data, size_t size, const std::string& name);

// "None", "bool", "int", "float", "str", "tuple", "list", "dict", "global", "storage", "tensor".
const char* py_kind_name(PyKind k);

// Element size of a torch dtype name ("float32" → 4); 0 when unknown.
int torch_dtype_size(const std::string& dtype);

// Short description of a value for reports: "int 42", "float 0.123",
// "str 'adam'", "None", "list of 3", "tensor float32 [10, 5]".
std::string describe(const Pickle& p, uint32_t v);

// A leaf found by flatten(): its dotted key and value index.
struct PickleLeaf {
  std::string key;
  uint32_t value = 0;
};
// Walks dicts (keys str or int, joined with '.'), and lists/tuples (by index)
// that hold tensors or containers; tensors go to `tensors`, every other leaf
// to `others`, both in file order. Errors (naming the key): another kind of
// dict key, a duplicate key, nesting deeper than 64 (or a cycle), more than
// 10 million nodes visited (shared sub-trees multiplying).
void flatten(const Pickle& p, uint32_t root, const std::string& prefix, std::vector<PickleLeaf>& tensors,
             std::vector<PickleLeaf>& others, const std::string& name);

namespace detail {
// torch's side of the machine (unpickle_torch.cpp). These throw ctg::Error
// with the bare reason; the unpickler adds the file, byte offset and opcode.
bool allowed_global(const std::string& module_dot_name);
// BINPERSID: ('storage', <storage type>, key, location, numel) → a storage value.
uint32_t torch_persistent_load(Pickle& p, uint32_t pid);
// REDUCE of an allowed global on the items of its argument tuple.
uint32_t torch_call(Pickle& p, const std::string& global, const std::vector<uint32_t>& args);
}  // namespace detail

}  // namespace ctg::interop
