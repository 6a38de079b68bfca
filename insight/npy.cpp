// .npy writer/reader (format 1.0, '<f4'); see insight/npy.h for the layout.
#include "insight/npy.h"

#include <cstring>
#include <fstream>
#include <sstream>

#include "base/atomic_file.h"
#include "engine/tensor.h"

namespace ctg::insight {

namespace {

constexpr char kMagic[6] = {'\x93', 'N', 'U', 'M', 'P', 'Y'};

bool little_endian() {
  const uint16_t one = 1;
  uint8_t b;
  std::memcpy(&b, &one, 1);
  return b == 1;
}

// Python's repr of a shape tuple: (), (5,), (3, 4).
std::string shape_repr(const std::vector<int64_t>& shape) {
  std::string s = "(";
  for (size_t i = 0; i < shape.size(); ++i) {
    if (i) s += ", ";
    s += std::to_string(shape[i]);
  }
  if (shape.size() == 1) s += ",";
  return s + ")";
}

}  // namespace

std::string npy_header(const std::vector<int64_t>& shape) {
  std::string dict = "{'descr': '<f4', 'fortran_order': False, 'shape': " + shape_repr(shape) + ", }";
  // magic (6) + version (2) + length (2) + dict + padding + '\n' ≡ 0 mod 64.
  const size_t unpadded = 10 + dict.size() + 1;
  dict.append((64 - unpadded % 64) % 64, ' ');
  dict += '\n';
  if (dict.size() > 65535) throw Error("npy: header too long for format 1.0 (" + std::to_string(shape.size()) + " dims)");
  std::string h(kMagic, 6);
  h += '\x01', h += '\x00';
  h += (char)(dict.size() & 0xff), h += (char)(dict.size() >> 8);
  return h + dict;
}

void write_npy(const std::string& path, const float* data, const std::vector<int64_t>& shape) {
  int64_t n = 1;
  for (int64_t d : shape) {
    if (d < 0) throw Error("npy: negative dimension in the shape of " + path);
    n *= d;
  }
  if (n > 0 && !data) throw Error("npy: no data to write to " + path);
  if (!little_endian()) throw Error("npy: big-endian hosts are not supported (writing " + path + ")");
  std::string bytes = npy_header(shape);
  const size_t head = bytes.size();
  bytes.resize(head + (size_t)n * sizeof(float));
  if (n > 0) std::memcpy(&bytes[head], data, (size_t)n * sizeof(float));
  try {
    write_file_atomic(path, bytes);
  } catch (const std::exception& e) {
    const std::string what = e.what();
    throw Error(what.find(path) != std::string::npos ? what : "npy: cannot write " + path + ": " + what);
  }
}

NpyArray read_npy(const std::string& path) {
  std::ifstream f(path, std::ios::binary);
  if (!f) throw Error("npy: cannot open " + path);
  std::stringstream ss;
  ss << f.rdbuf();
  const std::string b = ss.str();
  auto bad = [&](const std::string& why) { return Error("npy: " + path + ": " + why); };
  if (b.size() < 10 || b.compare(0, 6, std::string(kMagic, 6)) != 0) throw bad("not a .npy file (no \\x93NUMPY magic)");
  const int major = (uint8_t)b[6];
  size_t len = 0, start = 0;
  if (major == 1) {
    len = (uint8_t)b[8] | ((size_t)(uint8_t)b[9] << 8), start = 10;
  } else if (major == 2 || major == 3) {
    if (b.size() < 12) throw bad("truncated header");
    for (int i = 0; i < 4; ++i) len |= (size_t)(uint8_t)b[8 + i] << (8 * i);
    start = 12;
  } else {
    throw bad("unsupported format version " + std::to_string(major));
  }
  if (b.size() < start + len) throw bad("truncated header");
  const std::string h = b.substr(start, len);
  auto value_of = [&](const std::string& key) -> size_t {
    const size_t k = h.find("'" + key + "'");
    if (k == std::string::npos) throw bad("header has no '" + key + "'");
    const size_t c = h.find(':', k);
    if (c == std::string::npos) throw bad("header's '" + key + "' has no value");
    return h.find_first_not_of(' ', c + 1);
  };
  const size_t d = value_of("descr");
  if (h.compare(d, 5, "'<f4'") != 0) throw bad("only little-endian float32 ('<f4') is read, the header says " + h.substr(d, h.find(',', d) - d));
  const size_t fo = value_of("fortran_order");
  if (h.compare(fo, 5, "False") != 0) throw bad("only C order (fortran_order False) is read");
  size_t s = value_of("shape");
  if (s == std::string::npos || h[s] != '(') throw bad("header's shape is not a tuple");
  const size_t e = h.find(')', s);
  if (e == std::string::npos) throw bad("header's shape tuple is not closed");
  NpyArray a;
  int64_t n = 1;
  std::string num;
  for (size_t i = s + 1; i <= e; ++i) {
    const char c = h[i];
    if (c >= '0' && c <= '9') {
      num += c;
    } else if (c == ',' || c == ')' || c == ' ' || c == 'L') {
      if (!num.empty()) a.shape.push_back(std::stoll(num)), n *= a.shape.back(), num.clear();
    } else {
      throw bad("header's shape has an unexpected character '" + std::string(1, c) + "'");
    }
  }
  const size_t data_at = start + len, want = (size_t)n * sizeof(float);
  if (b.size() - data_at != want)
    throw bad("data has " + std::to_string(b.size() - data_at) + " bytes, the shape " + shape_repr(a.shape) + " needs " + std::to_string(want));
  if (!little_endian()) throw bad("big-endian hosts are not supported");
  a.data.resize((size_t)n);
  if (n > 0) std::memcpy(a.data.data(), &b[data_at], want);
  return a;
}

}  // namespace ctg::insight
