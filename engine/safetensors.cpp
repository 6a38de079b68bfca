// safetensors reader and writer. The rules it follows are those of the
// reference implementation (the Rust crate behind the Python library):
//  - writer: tensors sorted by descending dtype (the crate's Dtype enum order,
//    which rises with alignment) then by name; data in that order; header keys
//    in that order with "__metadata__" first; compact JSON padded with spaces
//    to a multiple of 8 so the buffer starts 8-byte aligned.
//  - reader: header ≤ 100 MB; offsets sorted must tile the buffer exactly from
//    0 to its end (no overlap, no hole, no trailing bytes); each span must be
//    numel × element size. We are stricter in one way: duplicate keys, which
//    serde_json silently resolves to the last one, are an error here.
#include "engine/safetensors.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cmath>
#include <cstring>
#include <nlohmann/json.hpp>
#include <set>

#include "base/atomic_file.h"

// The file format is little-endian; we copy bytes straight into tensors.
#if !defined(__BYTE_ORDER__) || __BYTE_ORDER__ != __ORDER_LITTLE_ENDIAN__
#error "safetensors.cpp assumes a little-endian host"
#endif

namespace ctg {
namespace {

using ojson = nlohmann::ordered_json;  // keeps key order, both ways

constexpr uint64_t kMaxHeaderBytes = 100'000'000;  // the reference's limit

// Every known safetensors dtype, in the crate's enum order (used for sorting
// on write) — only some of them can be loaded into a ctgrad Tensor.
const char* const kKnownDtypes[] = {"BOOL", "F4",   "F6_E2M3", "F6_E3M2", "U8",  "I8",  "F8_E5M2",
                                    "F8_E4M3", "F8_E8M0", "I16", "U16", "F16", "BF16", "I32",
                                    "U32",  "F32",  "C64",     "F64",     "I64", "U64"};

int dtype_rank(const std::string& s) {
  for (size_t i = 0; i < std::size(kKnownDtypes); ++i)
    if (s == kKnownDtypes[i]) return (int)i;
  return -1;
}

const char* file_dtype(DType d) {
  switch (d) {
    case DType::f32: return "F32";
    case DType::f64: return "F64";
    case DType::i64: return "I64";
  }
  return "?";
}

// The loadable dtypes: bytes per element in the file and the ctgrad dtype.
bool loadable(const std::string& s, size_t* elem_bytes, DType* dt) {
  if (s == "F32") { *elem_bytes = 4; *dt = DType::f32; return true; }
  if (s == "F64") { *elem_bytes = 8; *dt = DType::f64; return true; }
  if (s == "I64") { *elem_bytes = 8; *dt = DType::i64; return true; }
  if (s == "F16" || s == "BF16") { *elem_bytes = 2; *dt = DType::f32; return true; }
  return false;
}

// IEEE binary16 -> binary32, exact (every half is representable as a float).
float half_to_float(uint16_t h) {
  const uint32_t sign = uint32_t(h >> 15) << 31, exp = (h >> 10) & 0x1f, mant = h & 0x3ff;
  if (exp == 0) {  // zero or subnormal: mant × 2^-24
    const float v = std::ldexp((float)mant, -24);
    return sign ? -v : v;
  }
  uint32_t bits = exp == 31 ? (sign | 0x7f800000u | (mant << 13))  // inf / NaN (payload kept)
                            : (sign | ((exp + 127 - 15) << 23) | (mant << 13));
  float f;
  std::memcpy(&f, &bits, 4);
  return f;
}

// bfloat16 is the top half of a float32.
float bf16_to_float(uint16_t h) {
  const uint32_t bits = uint32_t(h) << 16;
  float f;
  std::memcpy(&f, &bits, 4);
  return f;
}

[[noreturn]] void fail(const std::string& path, const std::string& what) {
  throw Error(path + ": " + what);
}

std::string errno_str() { return std::strerror(errno); }

// pread until `n` bytes are in; false on a short file (it shrank under us).
bool read_at(int fd, void* buf, size_t n, uint64_t offset) {
  char* p = static_cast<char*>(buf);
  while (n > 0) {
    ssize_t got = ::pread(fd, p, n, (off_t)offset);
    if (got < 0 && errno == EINTR) continue;
    if (got <= 0) return false;
    p += got, n -= (size_t)got, offset += (uint64_t)got;
  }
  return true;
}

// Closes the descriptor however we leave the scope.
struct Fd {
  int fd = -1;
  ~Fd() { if (fd >= 0) ::close(fd); }
};

// A non-negative JSON integer (shape dims, offsets); floats such as 2.0 are
// rejected because the reference parses these fields as usize.
bool as_u64(const ojson& v, uint64_t* out) {
  if (v.is_number_unsigned()) { *out = v.get<uint64_t>(); return true; }
  if (v.is_number_integer() && v.get<int64_t>() >= 0) { *out = (uint64_t)v.get<int64_t>(); return true; }
  return false;
}

// What the header says about one tensor, once checked.
struct Entry {
  std::string name, dtype;
  Shape shape;
  uint64_t begin = 0, end = 0;
  size_t elem_bytes = 0;
  DType dt = DType::f32;
};

Entry parse_entry(const std::string& path, const std::string& name, const ojson& v,
                  uint64_t buffer_bytes) {
  const std::string where = "tensor '" + name + "': ";
  if (!v.is_object()) fail(path, where + "entry is not a JSON object");
  for (const char* field : {"dtype", "shape", "data_offsets"})
    if (!v.contains(field)) fail(path, where + "missing field '" + field + "'");
  Entry e;
  e.name = name;
  if (!v["dtype"].is_string()) fail(path, where + "field 'dtype' is not a string");
  e.dtype = v["dtype"].get<std::string>();
  if (dtype_rank(e.dtype) < 0) fail(path, where + "unknown dtype '" + e.dtype + "'");
  if (!loadable(e.dtype, &e.elem_bytes, &e.dt))
    fail(path, where + "dtype " + e.dtype + " is not supported (ctgrad loads F32, F64, I64, F16, BF16)");

  const ojson& shape = v["shape"];
  if (!shape.is_array()) fail(path, where + "field 'shape' is not an array");
  uint64_t numel = 1;
  bool overflow = false;
  for (size_t i = 0; i < shape.size(); ++i) {
    uint64_t d;
    if (!as_u64(shape[i], &d))
      fail(path, where + "shape dim " + std::to_string(i) + " is " + shape[i].dump() +
                     "; dims must be non-negative integers");
    overflow |= __builtin_mul_overflow(numel, d, &numel) || d > (uint64_t)INT64_MAX;
    e.shape.push_back((int64_t)d);
  }

  const ojson& off = v["data_offsets"];
  if (!off.is_array() || off.size() != 2 || !as_u64(off[0], &e.begin) || !as_u64(off[1], &e.end))
    fail(path, where + "field 'data_offsets' is " + off.dump() +
                   "; expected [begin, end], two non-negative integers");
  const std::string span = "data_offsets [" + std::to_string(e.begin) + ", " + std::to_string(e.end) + "]";
  if (e.begin > e.end) fail(path, where + span + " has begin > end");
  if (e.end > buffer_bytes)
    fail(path, where + span + " ends beyond the " + std::to_string(buffer_bytes) + "-byte data buffer");
  uint64_t need;
  overflow |= __builtin_mul_overflow(numel, (uint64_t)e.elem_bytes, &need);
  if (overflow || e.end - e.begin != need)
    fail(path, where + span + " hold " + std::to_string(e.end - e.begin) + " bytes but shape " +
                   shape.dump() + " of " + e.dtype + " needs " +
                   (overflow ? std::string("more than 2^64") : std::to_string(need)) + " bytes");
  if (e.shape.size() > 4)
    fail(path, where + "has " + std::to_string(e.shape.size()) + " dims " + shape.dump() +
                   "; ctgrad tensors have at most 4");
  return e;
}

// Parse the header, rejecting duplicate keys in any object: the parser calls
// back on every key, and we keep one set of seen keys per open object.
ojson parse_header(const std::string& path, const std::string& text) {
  std::vector<std::set<std::string>> open_objects;
  std::string top_key, duplicate;
  auto on_event = [&](int /*depth*/, ojson::parse_event_t ev, ojson& parsed) {
    if (ev == ojson::parse_event_t::object_start) open_objects.emplace_back();
    else if (ev == ojson::parse_event_t::object_end) open_objects.pop_back();
    else if (ev == ojson::parse_event_t::key) {
      const std::string key = parsed.get<std::string>();
      if (open_objects.size() == 1) top_key = key;
      if (!open_objects.back().insert(key).second && duplicate.empty())
        duplicate = open_objects.size() == 1 ? "duplicate tensor name '" + key + "'"
                                             : "duplicate key '" + key + "' in '" + top_key + "'";
    }
    return true;
  };
  ojson header;
  try {
    header = ojson::parse(text, on_event);
  } catch (const ojson::exception& e) {
    // Drop nlohmann's "[json.exception.parse_error.101] " prefix.
    std::string msg = e.what();
    if (auto p = msg.find("] "); p != std::string::npos) msg = msg.substr(p + 2);
    // nlohmann quotes the bytes it choked on; keep the message printable.
    for (char& c : msg)
      if ((unsigned char)c < 0x20 || (unsigned char)c >= 0x7f) c = '?';
    fail(path, "header is not valid JSON: " + msg);
  }
  if (!duplicate.empty()) fail(path, "header has a " + duplicate);
  if (!header.is_object()) fail(path, "header is not a JSON object");
  return header;
}

}  // namespace

SafetensorsFile load_safetensors(const std::string& path) {
  Fd file;
  file.fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (file.fd < 0) fail(path, "cannot open: " + errno_str());
  struct stat st;
  if (::fstat(file.fd, &st) != 0) fail(path, "cannot stat: " + errno_str());
  if (!S_ISREG(st.st_mode)) fail(path, "not a regular file");
  const uint64_t file_bytes = (uint64_t)st.st_size;

  if (file_bytes < 8)
    fail(path, "file is " + std::to_string(file_bytes) + " bytes, shorter than the 8-byte header length");
  unsigned char len_bytes[8];
  if (!read_at(file.fd, len_bytes, 8, 0)) fail(path, "short read of the header length");
  uint64_t n = 0;
  for (int i = 7; i >= 0; --i) n = (n << 8) | len_bytes[i];
  if (n > kMaxHeaderBytes)
    fail(path, "header length " + std::to_string(n) + " exceeds the 100 MB limit (corrupt file?)");
  if (n > file_bytes - 8)
    fail(path, "header length " + std::to_string(n) + " exceeds the " +
                   std::to_string(file_bytes - 8) + " bytes that follow it (truncated file?)");
  std::string text(n, '\0');
  if (!read_at(file.fd, text.data(), n, 8)) fail(path, "short read of the header");
  const ojson header = parse_header(path, text);

  const uint64_t data_start = 8 + n, buffer_bytes = file_bytes - data_start;
  SafetensorsFile out;
  std::vector<Entry> entries;
  for (auto it = header.begin(); it != header.end(); ++it) {
    if (it.key() == "__metadata__") {
      if (!it.value().is_object()) fail(path, "'__metadata__' is not a JSON object");
      for (auto m = it.value().begin(); m != it.value().end(); ++m) {
        if (!m.value().is_string())
          fail(path, "'__metadata__' value for key '" + m.key() + "' is " + m.value().dump() +
                         ", not a string");
        out.metadata[m.key()] = m.value().get<std::string>();
      }
      continue;
    }
    entries.push_back(parse_entry(path, it.key(), it.value(), buffer_bytes));
  }

  // The spans, in offset order, must tile [0, buffer_bytes) exactly. Stable,
  // so zero-size tensors sharing an offset keep their header order.
  std::stable_sort(entries.begin(), entries.end(), [](const Entry& a, const Entry& b) {
    return a.begin != b.begin ? a.begin < b.begin : a.end < b.end;
  });
  uint64_t expected = 0;
  const Entry* prev = nullptr;
  for (const Entry& e : entries) {
    if (e.begin < expected)
      fail(path, "tensor '" + e.name + "' overlaps tensor '" + prev->name + "' (begins at byte " +
                     std::to_string(e.begin) + ", before " + std::to_string(expected) + ")");
    if (e.begin > expected)
      fail(path, "tensor '" + e.name + "' begins at byte " + std::to_string(e.begin) +
                     ", leaving a hole of " + std::to_string(e.begin - expected) +
                     " bytes in the data buffer");
    expected = e.end;
    prev = &e;
  }
  if (expected != buffer_bytes)
    fail(path, "data buffer has " + std::to_string(buffer_bytes - expected) +
                   " trailing bytes that no tensor covers");

  for (const Entry& e : entries) {
    Tensor t = Tensor::empty(e.shape, e.dt);
    const uint64_t bytes = e.end - e.begin;
    bool ok;
    if (e.elem_bytes == dtype_size(e.dt)) {
      ok = read_at(file.fd, t.raw_data(), bytes, data_start + e.begin);
    } else {  // F16 / BF16: read the 16-bit words, widen to float32
      std::vector<uint16_t> half((size_t)t.numel());
      ok = read_at(file.fd, half.data(), bytes, data_start + e.begin);
      float* dst = t.data<float>();
      for (size_t i = 0; i < half.size(); ++i)
        dst[i] = e.dtype == "F16" ? half_to_float(half[i]) : bf16_to_float(half[i]);
    }
    if (!ok) fail(path, "tensor '" + e.name + "': short read (file changed while loading?)");
    out.tensors.push_back({e.name, t, e.dtype});
  }
  return out;
}

void save_safetensors(const std::string& path, const std::vector<NamedTensor>& tensors,
                      const std::map<std::string, std::string>& metadata) {
  std::set<std::string> names;
  for (const NamedTensor& nt : tensors) {
    const std::string where = "tensor '" + nt.name + "': ";
    if (nt.name.empty()) fail(path, "a tensor has an empty name");
    if (nt.name == "__metadata__") fail(path, "'__metadata__' is reserved and cannot name a tensor");
    if (!names.insert(nt.name).second) fail(path, "duplicate tensor name '" + nt.name + "'");
    if (!nt.tensor.defined()) fail(path, where + "undefined tensor");
    if (nt.tensor.device() != Device::cpu) fail(path, where + "is on cuda; copy it to the cpu first");
  }

  // The Python writer's order: larger dtype first (I64, F64, then F32), then name.
  std::vector<const NamedTensor*> order;
  for (const NamedTensor& nt : tensors) order.push_back(&nt);
  std::sort(order.begin(), order.end(), [](const NamedTensor* a, const NamedTensor* b) {
    int ra = dtype_rank(file_dtype(a->tensor.dtype())), rb = dtype_rank(file_dtype(b->tensor.dtype()));
    return ra != rb ? ra > rb : a->name < b->name;
  });

  // Field order inside an entry (dtype, shape, data_offsets) matches the
  // reference's struct, hence ordered_json rather than a sorted json object.
  ojson header = ojson::object();
  if (!metadata.empty()) {
    ojson meta = ojson::object();
    for (const auto& [k, v] : metadata) meta[k] = v;
    header["__metadata__"] = meta;
  }
  uint64_t offset = 0;
  for (const NamedTensor* nt : order) {
    ojson entry = ojson::object();
    entry["dtype"] = file_dtype(nt->tensor.dtype());
    entry["shape"] = ojson::array();
    for (int64_t d : nt->tensor.shape()) entry["shape"].push_back((uint64_t)d);
    entry["data_offsets"] = {offset, offset + nt->tensor.nbytes()};
    offset += nt->tensor.nbytes();
    header[nt->name] = entry;
  }
  std::string text;
  try {
    text = header.dump();  // compact, UTF-8 kept as is, like serde_json
  } catch (const ojson::exception& e) {
    fail(path, std::string("cannot encode the header (names and metadata must be UTF-8): ") + e.what());
  }
  text.append((8 - text.size() % 8) % 8, ' ');
  unsigned char len_bytes[8];
  for (int i = 0; i < 8; ++i) len_bytes[i] = (unsigned char)((uint64_t)text.size() >> (8 * i));

  // Write a temporary beside the target and rename it over (base/atomic_file.h,
  // fsync'ed): a crash leaves either the old file or the new one, never a torn
  // checkpoint. Its errors name the target ("PATH: cannot create temporary
  // file ...", "PATH: cannot rename ... over it: ...").
  AtomicFile file(path);
  file.write(len_bytes, 8);
  file.write(text.data(), text.size());
  for (const NamedTensor* nt : order) file.write(nt->tensor.raw_data(), nt->tensor.nbytes());
  file.commit();
}

}  // namespace ctg
