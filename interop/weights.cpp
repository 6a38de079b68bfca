// Loading torch zips and safetensors files into named tensors (weights.h).
//
// A torch tensor is (storage, offset, size, stride) in elements of its dtype:
// element [i0,i1,...] lives at storage[offset + Σ ik·stride_k]. We check that
// the largest such index lies inside the storage (with overflow checks)
// before copying anything, then gather row-major and convert the dtype.
#include "interop/weights.h"

#include <cmath>
#include <cstring>
#include <fstream>

#include "interop/torch_zip.h"
#include "interop/unpickle.h"

namespace ctg::interop {
namespace {

const char* st_dtype(const std::string& torch_dtype) {
  static const std::pair<const char*, const char*> names[] = {
      {"float32", "F32"}, {"float16", "F16"}, {"bfloat16", "BF16"}, {"float64", "F64"}, {"int64", "I64"},
      {"int32", "I32"},   {"int16", "I16"},   {"int8", "I8"},       {"uint8", "U8"},    {"bool", "BOOL"}};
  for (auto& [t, s] : names)
    if (torch_dtype == t) return s;
  return "?";
}

float half_to_float(uint16_t h) {  // IEEE binary16 → binary32, exact
  const uint32_t sign = uint32_t(h >> 15) << 31, exp = (h >> 10) & 0x1f, mant = h & 0x3ff;
  if (exp == 0) {
    const float v = std::ldexp((float)mant, -24);  // zero or subnormal: mant·2^-24
    return sign ? -v : v;
  }
  const uint32_t bits = exp == 31 ? (sign | 0x7f800000u | (mant << 13)) : (sign | ((exp + 112) << 23) | (mant << 13));
  float f;
  std::memcpy(&f, &bits, 4);
  return f;
}

// The element types we decode, chosen once per tensor (not per element).
enum class Elem { f32, f64, f16, bf16, i64, i32, i16, i8, u8 };
Elem elem_of(const std::string& d) {
  static const std::pair<const char*, Elem> table[] = {
      {"float32", Elem::f32}, {"float64", Elem::f64}, {"float16", Elem::f16}, {"bfloat16", Elem::bf16},
      {"int64", Elem::i64},   {"int32", Elem::i32},   {"int16", Elem::i16},   {"int8", Elem::i8}};
  for (auto& [n, e] : table)
    if (d == n) return e;
  return Elem::u8;  // uint8, bool
}
bool is_float(Elem e) { return e == Elem::f32 || e == Elem::f64 || e == Elem::f16 || e == Elem::bf16; }

// One little-endian element as float (float types) or int64 (integer types).
float float_at(const uint8_t* p, Elem e) {
  if (e == Elem::f32) { float f; std::memcpy(&f, p, 4); return f; }
  if (e == Elem::f64) { double d; std::memcpy(&d, p, 8); return (float)d; }
  const uint16_t h = (uint16_t)(p[0] | p[1] << 8);
  if (e == Elem::f16) return half_to_float(h);
  const uint32_t bits = uint32_t(h) << 16;  // bfloat16 is the top half of a float32
  float f;
  std::memcpy(&f, &bits, 4);
  return f;
}
int64_t int_at(const uint8_t* p, Elem e) {
  if (e == Elem::i64) { int64_t v; std::memcpy(&v, p, 8); return v; }
  if (e == Elem::i32) { int32_t v; std::memcpy(&v, p, 4); return v; }
  if (e == Elem::i16) { int16_t v; std::memcpy(&v, p, 2); return v; }
  if (e == Elem::i8) return (int8_t)p[0];
  return p[0];
}

struct TorchArchive {
  const ZipReader& zip;
  std::string prefix;  // "ARCHIVE/"
  bool big_endian = false;
  std::map<std::string, std::vector<uint8_t>> storages;  // read once, shared by views

  const std::vector<uint8_t>& storage_bytes(const std::string& key) {
    auto it = storages.find(key);
    if (it != storages.end()) return it->second;
    const ZipEntry* e = zip.find(prefix + "data/" + key);
    if (!e) throw Error(zip.name() + ": storage '" + key + "': no entry " + prefix + "data/" + key + " in the archive");
    return storages[key] = zip.read(*e);
  }

  Tensor materialise(const Pickle& p, const std::string& key, const TensorInfo& t) {
    const std::string where = zip.name() + ": '" + key + "': ";
    const StorageInfo& s = p[t.storage].storage;
    const int elem = torch_dtype_size(t.dtype);
    const uint64_t storage_unit = s.type == "UntypedStorage" ? 1 : (uint64_t)elem;
    const std::vector<uint8_t>& bytes = storage_bytes(s.key);
    if ((uint64_t)s.numel > bytes.size() / storage_unit || (uint64_t)s.numel * storage_unit != bytes.size())
      throw Error(where + "storage '" + s.key + "' is declared as " + std::to_string(s.numel) + " x " +
                  std::to_string(storage_unit) + " bytes but its entry holds " + std::to_string(bytes.size()));
    const uint64_t storage_elems = bytes.size() / (uint64_t)elem;
    if (t.size.size() > 4)
      throw Error(where + "has " + std::to_string(t.size.size()) + " dims; ctgrad tensors have at most 4");
    uint64_t numel = 1, last = (uint64_t)t.offset;  // last: index of the last element
    bool overflow = false;
    for (size_t k = 0; k < t.size.size(); ++k) {
      uint64_t span = 0;
      overflow |= __builtin_mul_overflow((uint64_t)t.size[k], numel, &numel);
      if (t.size[k] > 0) overflow |= __builtin_mul_overflow((uint64_t)(t.size[k] - 1), (uint64_t)t.stride[k], &span);
      overflow |= __builtin_add_overflow(last, span, &last);
    }
    if (overflow || (numel > 0 && last >= storage_elems) || (uint64_t)t.offset > storage_elems)
      throw Error(where + "storage '" + s.key + "' (" + std::to_string(storage_elems) + " " + t.dtype +
                  " elements) is shorter than the tensor's offset and strides need");
    if (numel > storage_elems)
      throw Error(where + "has " + std::to_string(numel) + " elements but its storage only " +
                  std::to_string(storage_elems) + " (an expanded view? save a .contiguous() copy)");

    const Elem type = elem_of(t.dtype);
    Tensor out = Tensor::empty(Shape(t.size.begin(), t.size.end()), is_float(type) ? DType::f32 : DType::i64);
    float* fout = is_float(type) ? out.data<float>() : nullptr;
    int64_t* iout = is_float(type) ? nullptr : out.data<int64_t>();
    int64_t sz[4] = {1, 1, 1, 1}, st[4] = {0, 0, 0, 0};  // padded to 4-D on the left
    const size_t pad = 4 - t.size.size();
    for (size_t k = 0; k < t.size.size(); ++k) sz[pad + k] = t.size[k], st[pad + k] = t.stride[k];
    uint8_t tmp[8];
    int64_t o = 0;
    for (int64_t a = 0; a < sz[0]; ++a)
      for (int64_t b = 0; b < sz[1]; ++b)
        for (int64_t c = 0; c < sz[2]; ++c)
          for (int64_t d = 0; d < sz[3]; ++d, ++o) {
            const uint64_t idx = (uint64_t)(t.offset + a * st[0] + b * st[1] + c * st[2] + d * st[3]);
            const uint8_t* src = bytes.data() + idx * (uint64_t)elem;
            if (big_endian) {  // byteorder "big": reverse each element
              for (int i = 0; i < elem; ++i) tmp[i] = src[elem - 1 - i];
              src = tmp;
            }
            if (fout) fout[o] = float_at(src, type);
            else iout[o] = int_at(src, type);
          }
    return out;
  }
};

// The archive folder: the one "X/data.pkl" entry (X without '/').
std::string archive_prefix(const ZipReader& zip) {
  std::string prefix;
  for (const ZipEntry& e : zip.entries()) {
    const size_t slash = e.name.find('/');
    if (slash == std::string::npos || e.name.compare(slash, std::string::npos, "/data.pkl") != 0) continue;
    if (!prefix.empty()) throw Error(zip.name() + ": more than one ARCHIVE/data.pkl in the zip");
    prefix = e.name.substr(0, slash + 1);
  }
  if (prefix.empty()) throw Error(zip.name() + ": a zip without ARCHIVE/data.pkl is not a torch.save file");
  if (zip.find(prefix + "constants.pkl"))
    throw Error(zip.name() + ": a TorchScript archive (torch.jit.save) is not supported; save the weights with "
                "torch.save(model.state_dict(), path)");
  return prefix;
}

bool has_prefix(const std::string& s, const std::string& p) { return s.compare(0, p.size(), p) == 0; }

}  // namespace

const std::vector<std::string>& state_dict_keys() {
  static const std::vector<std::string> keys = {"state_dict", "model_state_dict", "model"};
  return keys;
}

LoadedWeights load_torch_zip(std::vector<uint8_t> raw, const std::string& name) {
  const ZipReader zip(std::move(raw), name);
  TorchArchive ar{zip, archive_prefix(zip), false, {}};
  if (const ZipEntry* bo = zip.find(ar.prefix + "byteorder")) {
    const std::vector<uint8_t> b = zip.read(*bo);
    const std::string order(b.begin(), b.end());
    if (order != "little" && order != "big") throw Error(name + ": byteorder is neither 'little' nor 'big'");
    ar.big_endian = order == "big";
  }
  const std::vector<uint8_t> pkl = zip.read(ar.prefix + "data.pkl");
  const Pickle p = unpickle(pkl.data(), pkl.size(), name + ": " + ar.prefix + "data.pkl");
  if (p[p.root].kind != PyKind::dict)
    throw Error(name + ": data.pkl holds " + describe(p, p.root) + ", not a dict of tensors");

  LoadedWeights out;
  out.format = "torch";
  std::vector<PickleLeaf> tensors, others;
  flatten(p, p.root, "", tensors, others, name);
  for (const std::string& k : state_dict_keys()) {  // a training checkpoint: take its model's state dict
    for (auto& [key, value] : p[p.root].entries)
      if (p[key].kind == PyKind::string && p[key].text == k && p[value].kind == PyKind::dict)
        for (const PickleLeaf& t : tensors)
          if (has_prefix(t.key, k + ".")) out.state_dict_key = k;
    if (!out.state_dict_key.empty()) break;
  }
  const std::string sd = out.state_dict_key.empty() ? "" : out.state_dict_key + ".";
  for (const PickleLeaf& t : tensors) {
    const TensorInfo& info = p[t.value].tensor;
    if (!has_prefix(t.key, sd)) {
      out.skipped.push_back({t.key, describe(p, t.value) + " outside '" + out.state_dict_key + "'"});
      continue;
    }
    const std::string key = t.key.substr(sd.size());
    out.tensors.push_back({key, ar.materialise(p, key, info), st_dtype(info.dtype)});
  }
  for (const PickleLeaf& o : others) out.skipped.push_back({o.key, describe(p, o.value)});
  return out;
}

LoadedWeights load_weights(const std::string& path) {
  unsigned char head[4] = {0, 0, 0, 0};
  {
    std::ifstream f(path, std::ios::binary);
    if (!f) throw Error(path + ": cannot open: " + std::strerror(errno));
    f.read((char*)head, 4);
  }
  if (looks_like_zip(head, 4)) return load_torch_zip(read_file_bytes(path), path);
  if (head[0] == 0x80 && head[1] >= 2 && head[1] <= 5)
    throw Error(path + ": legacy (pre-1.6) torch.save format is not supported; re-save it with "
                "torch.save(obj, path) from PyTorch ≥ 1.6");
  LoadedWeights out;
  out.format = "safetensors";
  SafetensorsFile f = load_safetensors(path);
  out.tensors = std::move(f.tensors);
  out.metadata = std::move(f.metadata);
  return out;
}

}  // namespace ctg::interop
