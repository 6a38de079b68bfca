// What torch's globals mean to the restricted unpickler (unpickle.h): the
// allow-list, the storage records behind BINPERSID and the few callables a
// state dict REDUCEs. Errors here carry only the reason; the unpickler
// prefixes them with the file, the byte offset and the opcode.
#include <set>

#include "engine/tensor.h"
#include "interop/unpickle.h"

namespace ctg::interop {
namespace {

struct DtypeRow {
  const char *dtype, *storage;
  int size;
};
const DtypeRow kDtypes[] = {
    {"float32", "FloatStorage", 4}, {"float64", "DoubleStorage", 8}, {"float16", "HalfStorage", 2},
    {"bfloat16", "BFloat16Storage", 2}, {"int64", "LongStorage", 8}, {"int32", "IntStorage", 4},
    {"int16", "ShortStorage", 2},   {"int8", "CharStorage", 1},    {"uint8", "ByteStorage", 1},
    {"bool", "BoolStorage", 1}};
// torch.float is torch.float32, etc.: the other names a dtype global may use.
const std::pair<const char*, const char*> kDtypeAliases[] = {{"float", "float32"}, {"double", "float64"},
                                                            {"half", "float16"},  {"long", "int64"},
                                                            {"int", "int32"},     {"short", "int16"}};

// "torch.float16" → "float16"; "" when not a dtype global.
std::string dtype_of_global(const std::string& g) {
  if (g.compare(0, 6, "torch.") != 0) return "";
  const std::string n = g.substr(6);
  for (auto& r : kDtypes)
    if (n == r.dtype) return n;
  for (auto& [alias, d] : kDtypeAliases)
    if (n == alias) return d;
  return "";
}

// "torch.HalfStorage" → true, dtype "float16"; torch.UntypedStorage → true, "".
bool storage_global(const std::string& g, std::string* dtype) {
  dtype->clear();
  if (g == "torch.UntypedStorage" || g == "torch.storage.UntypedStorage") return true;
  for (auto& r : kDtypes)
    if (g == std::string("torch.") + r.storage) return *dtype = r.dtype, true;
  return false;
}

uint32_t make(Pickle& p, PyKind k) {
  p.values.emplace_back();
  p.values.back().kind = k;
  return (uint32_t)(p.values.size() - 1);
}

const char* kind_of(const Pickle& p, uint32_t v) { return py_kind_name(p[v].kind); }

// A tuple of non-negative ints (a size or stride), as values.
std::vector<int64_t> ints(const Pickle& p, uint32_t t, const std::string& what) {
  if (p[t].kind != PyKind::tuple) throw Error(what + " is a " + kind_of(p, t) + ", not a tuple");
  std::vector<int64_t> out;
  for (uint32_t i : p[t].items) {
    if (p[i].kind != PyKind::integer || p[i].integer < 0)
      throw Error(what + " holds " + describe(p, i) + ", not a non-negative int");
    out.push_back(p[i].integer);
  }
  return out;
}

// _rebuild_tensor_v2(storage, offset, size, stride, requires_grad, hooks[, metadata])
// _rebuild_tensor_v3(storage, offset, size, stride, requires_grad, hooks, dtype[, metadata])
uint32_t rebuild_tensor(Pickle& p, const std::vector<uint32_t>& a, bool v3) {
  const size_t need = v3 ? 7 : 6;
  if (a.size() != need && a.size() != need + 1)
    throw Error("expects " + std::to_string(need) + " or " + std::to_string(need + 1) + " arguments, got " +
                std::to_string(a.size()));
  if (p[a[0]].kind != PyKind::storage) throw Error(std::string("argument 0 is a ") + kind_of(p, a[0]) + ", not a storage");
  if (p[a[1]].kind != PyKind::integer || p[a[1]].integer < 0) throw Error("storage offset is not a non-negative int");
  TensorInfo info;
  info.storage = a[0];
  info.offset = p[a[1]].integer;
  info.size = ints(p, a[2], "size");
  info.stride = ints(p, a[3], "stride");
  if (info.size.size() != info.stride.size()) throw Error("size and stride have different lengths");
  std::string storage_dtype;
  storage_global("torch." + p[a[0]].storage.type, &storage_dtype);
  if (v3) {
    if (p[a[6]].kind != PyKind::global || dtype_of_global(p[a[6]].text).empty()) throw Error("argument 6 is not a dtype");
    info.dtype = dtype_of_global(p[a[6]].text);
    if (!storage_dtype.empty() && storage_dtype != info.dtype)
      throw Error("dtype " + info.dtype + " does not match its " + p[a[0]].storage.type);
  } else {
    if (storage_dtype.empty()) throw Error("an untyped storage needs _rebuild_tensor_v3 (with a dtype)");
    info.dtype = storage_dtype;
  }
  const uint32_t v = make(p, PyKind::tensor);
  p.values[v].tensor = std::move(info);
  return v;
}

}  // namespace

int torch_dtype_size(const std::string& dtype) {
  for (auto& r : kDtypes)
    if (dtype == r.dtype) return r.size;
  return 0;
}

namespace detail {

bool allowed_global(const std::string& g) {
  static const std::set<std::string> fixed = {
      "collections.OrderedDict", "torch._utils._rebuild_tensor_v2", "torch._utils._rebuild_tensor_v3",
      "torch._utils._rebuild_parameter", "torch._utils._rebuild_parameter_with_state",
      "torch._tensor._rebuild_from_type_v2", "torch.Tensor", "torch._tensor.Tensor", "torch.nn.parameter.Parameter"};
  std::string unused;
  return fixed.count(g) || storage_global(g, &unused) || !dtype_of_global(g).empty();
}

uint32_t torch_persistent_load(Pickle& p, uint32_t pid) {
  const PyValue& t = p[pid];
  auto is = [&](size_t i, PyKind k) { return p[t.items[i]].kind == k; };
  if (t.kind != PyKind::tuple || t.items.size() != 5 || !is(0, PyKind::string) || p[t.items[0]].text != "storage" ||
      !is(1, PyKind::global) || !is(2, PyKind::string) || !is(3, PyKind::string) || !is(4, PyKind::integer))
    throw Error("persistent id is not ('storage', type, key, location, numel)");
  const std::string& type = p[t.items[1]].text;
  std::string dtype;
  if (!storage_global(type, &dtype)) throw Error("persistent id names '" + type + "', not a storage type");
  if (p[t.items[2]].text.empty()) throw Error("persistent id has an empty storage key");
  if (p[t.items[4]].integer < 0) throw Error("persistent id has a negative storage size");
  StorageInfo s{type.substr(type.rfind('.') + 1), p[t.items[2]].text, p[t.items[3]].text, p[t.items[4]].integer};
  const uint32_t v = make(p, PyKind::storage);
  p.values[v].storage = std::move(s);
  return v;
}

uint32_t torch_call(Pickle& p, const std::string& g, const std::vector<uint32_t>& a) {
  if (g == "collections.OrderedDict") {
    if (!a.empty()) throw Error("OrderedDict with constructor arguments is not supported");
    return make(p, PyKind::dict);
  }
  if (g == "torch._utils._rebuild_tensor_v2") return rebuild_tensor(p, a, false);
  if (g == "torch._utils._rebuild_tensor_v3") return rebuild_tensor(p, a, true);
  if (g == "torch._utils._rebuild_parameter" || g == "torch._utils._rebuild_parameter_with_state") {
    if (a.empty() || p[a[0]].kind != PyKind::tensor) throw Error(g + ": argument 0 is not a tensor");
    return a[0];  // a Parameter is its data here
  }
  if (g == "torch._tensor._rebuild_from_type_v2") {  // (func, type, args, state): a tensor subclass
    if (a.size() != 4 || p[a[0]].kind != PyKind::global || p[a[1]].kind != PyKind::global || p[a[2]].kind != PyKind::tuple)
      throw Error("_rebuild_from_type_v2 expects (func, type, args, state)");
    const std::string f = p[a[0]].text;
    if (f.compare(0, 22, "torch._utils._rebuild_") != 0) throw Error("_rebuild_from_type_v2 of '" + f + "'");
    const std::vector<uint32_t> inner = p[a[2]].items;
    return torch_call(p, f, inner);
  }
  throw Error("global '" + g + "' cannot be called");
}

}  // namespace detail
}  // namespace ctg::interop
