// Test helpers for the PyTorch interop: a minimal zip writer (stored or
// deflate entries, optional zip64 records, PyTorch's data-descriptor flag)
// and a pickle writer for hand-made torch.save files, so the tests can build
// exactly the archive they need (big-endian, strided, hostile, ...).
#pragma once
#include <zlib.h>

#include <cstdint>
#include <fstream>
#include <iterator>
#include <map>
#include <string>
#include <vector>

namespace ctg::test {

inline std::string weights_fixture(const std::string& name) {
  return std::string(CTGRAD_SOURCE_DIR) + "/../shared/fixtures/weights/" + name;
}
inline std::string read_file(const std::string& path) {
  std::ifstream f(path, std::ios::binary);
  return std::string(std::istreambuf_iterator<char>(f), {});
}
inline std::vector<uint8_t> bytes_of(const std::string& s) { return std::vector<uint8_t>(s.begin(), s.end()); }

inline void put_le(std::string& b, uint64_t v, int n) {
  for (int i = 0; i < n; ++i) b += char((v >> (8 * i)) & 0xff);
}

struct ZipItem {
  std::string name, data;
  bool deflate = false;
};

// Raw deflate (no zlib header), as zip stores it.
inline std::string raw_deflate(const std::string& in) {
  z_stream z{};
  deflateInit2(&z, 6, Z_DEFLATED, -MAX_WBITS, 8, Z_DEFAULT_STRATEGY);
  std::string out(deflateBound(&z, in.size()) + 16, '\0');
  z.next_in = (Bytef*)in.data(), z.avail_in = (uInt)in.size();
  z.next_out = (Bytef*)out.data(), z.avail_out = (uInt)out.size();
  deflate(&z, Z_FINISH);
  out.resize(z.total_out);
  deflateEnd(&z);
  return out;
}

// Local headers with flag bit 3 and zero sizes (as PyTorch writes them), the
// central directory, and the end record (zip64 records too when asked: then
// every central entry's sizes and offset live in a 0x0001 extra field).
inline std::string make_zip(const std::vector<ZipItem>& items, bool zip64 = false) {
  std::string out, central;
  for (const ZipItem& it : items) {
    const std::string body = it.deflate ? raw_deflate(it.data) : it.data;
    const uint32_t crc = (uint32_t)crc32(0, (const Bytef*)it.data.data(), (uInt)it.data.size());
    const uint64_t offset = out.size();
    put_le(out, 0x04034b50, 4), put_le(out, 20, 2), put_le(out, 8, 2), put_le(out, it.deflate ? 8 : 0, 2);
    put_le(out, 0, 4), put_le(out, 0, 4), put_le(out, 0, 4), put_le(out, 0, 4);
    put_le(out, it.name.size(), 2), put_le(out, 0, 2);
    out += it.name + body;
    put_le(out, 0x08074b50, 4), put_le(out, crc, 4), put_le(out, body.size(), 4), put_le(out, it.data.size(), 4);
    put_le(central, 0x02014b50, 4), put_le(central, 45, 2), put_le(central, 20, 2), put_le(central, 8, 2);
    put_le(central, it.deflate ? 8 : 0, 2), put_le(central, 0, 4), put_le(central, crc, 4);
    put_le(central, zip64 ? 0xFFFFFFFF : body.size(), 4), put_le(central, zip64 ? 0xFFFFFFFF : it.data.size(), 4);
    put_le(central, it.name.size(), 2), put_le(central, zip64 ? 28 : 0, 2), put_le(central, 0, 2);
    put_le(central, 0, 2), put_le(central, 0, 2), put_le(central, 0, 4);
    put_le(central, zip64 ? 0xFFFFFFFF : offset, 4);
    central += it.name;
    if (zip64) {
      put_le(central, 0x0001, 2), put_le(central, 24, 2);
      put_le(central, it.data.size(), 8), put_le(central, body.size(), 8), put_le(central, offset, 8);
    }
  }
  const uint64_t cd_offset = out.size(), n = items.size();
  out += central;
  if (zip64) {
    const uint64_t z = out.size();
    put_le(out, 0x06064b50, 4), put_le(out, 44, 8), put_le(out, 45, 2), put_le(out, 45, 2);
    put_le(out, 0, 4), put_le(out, 0, 4), put_le(out, n, 8), put_le(out, n, 8);
    put_le(out, central.size(), 8), put_le(out, cd_offset, 8);
    put_le(out, 0x07064b50, 4), put_le(out, 0, 4), put_le(out, z, 8), put_le(out, 1, 4);
  }
  put_le(out, 0x06054b50, 4), put_le(out, 0, 2), put_le(out, 0, 2);
  put_le(out, zip64 ? 0xFFFF : n, 2), put_le(out, zip64 ? 0xFFFF : n, 2);
  put_le(out, zip64 ? 0xFFFFFFFF : central.size(), 4), put_le(out, zip64 ? 0xFFFFFFFF : cd_offset, 4);
  put_le(out, 0, 2);
  return out;
}

// Pickle opcodes as torch.save (protocol 2) emits them.
struct PickleWriter {
  std::string b = std::string("\x80\x02", 2);
  PickleWriter& op(int c) { return b += char(c), *this; }
  PickleWriter& str(const std::string& s) { op('X'), put_le(b, s.size(), 4), b += s; return *this; }
  PickleWriter& integer(int64_t v) {
    if (v >= 0 && v < 256) op('K'), put_le(b, (uint64_t)v, 1);
    else if (v >= 0 && v < 65536) op('M'), put_le(b, (uint64_t)v, 2);
    else op('J'), put_le(b, (uint64_t)v, 4);
    return *this;
  }
  PickleWriter& global(const std::string& module, const std::string& name) { op('c'), b += module + "\n" + name + "\n"; return *this; }
  PickleWriter& tuple(const std::vector<int64_t>& v) {
    op('(');
    for (int64_t x : v) integer(x);
    return op('t');
  }
  // _rebuild_tensor_v2(('storage', torch.<type>, key, location, numel), offset, size, stride, False, OrderedDict())
  PickleWriter& tensor(const std::string& storage_type, const std::string& key, int64_t numel, int64_t offset,
                       const std::vector<int64_t>& size, const std::vector<int64_t>& stride,
                       const std::string& location = "cpu") {
    global("torch._utils", "_rebuild_tensor_v2").op('(').op('(').str("storage").global("torch", storage_type);
    str(key).str(location).integer(numel).op('t').op('Q').integer(offset).tuple(size).tuple(stride);
    return op(0x89).global("collections", "OrderedDict").op(')').op('R').op('t').op('R');
  }
};

// A torch.save archive: ARCHIVE/data.pkl, ARCHIVE/byteorder, ARCHIVE/data/<key>, ARCHIVE/version.
inline std::string torch_zip(const std::string& pickle, const std::map<std::string, std::string>& storages,
                             const std::string& byteorder = "little", const std::string& archive = "archive") {
  std::vector<ZipItem> items = {{archive + "/data.pkl", pickle}};
  if (!byteorder.empty()) items.push_back({archive + "/byteorder", byteorder});
  for (auto& [k, v] : storages) items.push_back({archive + "/data/" + k, v});
  items.push_back({archive + "/version", "3\n"});
  return make_zip(items);
}

template <typename T>
std::string raw_bytes(const std::vector<T>& v) {
  return std::string((const char*)v.data(), v.size() * sizeof(T));
}

}  // namespace ctg::test
