// The zip reader (format and checks: torch_zip.h). Offsets are u64 and every
// comparison is written so that it cannot overflow: `a + n <= limit` is
// tested as `n <= limit && a <= limit - n`.
#include "interop/torch_zip.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zlib.h>

#include <cerrno>
#include <cstring>
#include <set>

#include "engine/tensor.h"

namespace ctg::interop {
namespace {

constexpr uint32_t kLocalSig = 0x04034b50, kCentralSig = 0x02014b50, kEocdSig = 0x06054b50;
constexpr uint32_t kZip64EocdSig = 0x06064b50, kZip64LocatorSig = 0x07064b50;
constexpr uint64_t kMaxDeflateRatio = 1032;  // deflate cannot expand 1 byte into more than ~1032

bool fits(uint64_t at, uint64_t n, uint64_t limit) { return n <= limit && at <= limit - n; }

}  // namespace

bool looks_like_zip(const uint8_t* data, size_t size) {
  if (size < 4) return false;
  const uint32_t sig = (uint32_t)data[0] | (uint32_t)data[1] << 8 | (uint32_t)data[2] << 16 | (uint32_t)data[3] << 24;
  return sig == kLocalSig || sig == kEocdSig;
}

std::vector<uint8_t> read_file_bytes(const std::string& path) {
  const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) throw Error(path + ": cannot open: " + std::strerror(errno));
  struct stat st;
  if (::fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
    ::close(fd);
    throw Error(path + ": not a regular file");
  }
  std::vector<uint8_t> bytes((size_t)st.st_size);
  size_t done = 0;
  while (done < bytes.size()) {
    const ssize_t got = ::read(fd, bytes.data() + done, bytes.size() - done);
    if (got < 0 && errno == EINTR) continue;
    if (got <= 0) {
      const std::string err = got < 0 ? std::strerror(errno) : "file shrank while reading";
      ::close(fd);
      throw Error(path + ": cannot read: " + err);
    }
    done += (size_t)got;
  }
  ::close(fd);
  return bytes;
}

ZipReader::ZipReader(std::vector<uint8_t> bytes, std::string name) : bytes_(std::move(bytes)), name_(std::move(name)) {
  parse();
}

ZipReader ZipReader::open(const std::string& path) { return ZipReader(read_file_bytes(path), path); }

const ZipEntry* ZipReader::find(const std::string& entry_name) const {
  for (const ZipEntry& e : entries_)
    if (e.name == entry_name) return &e;
  return nullptr;
}

void ZipReader::parse() {
  const uint8_t* b = bytes_.data();
  const uint64_t size = bytes_.size();
  auto fail = [&](const std::string& what) -> void { throw Error(name_ + ": zip: " + what); };
  // Little-endian field readers; callers have checked the bounds.
  auto u16 = [&](uint64_t at) { return (uint16_t)(b[at] | b[at + 1] << 8); };
  auto u32 = [&](uint64_t at) { return (uint32_t)u16(at) | (uint32_t)u16(at + 2) << 16; };
  auto u64 = [&](uint64_t at) { return (uint64_t)u32(at) | (uint64_t)u32(at + 4) << 32; };

  if (size < 22) fail("file is " + std::to_string(size) + " bytes, too short for a zip (truncated?)");
  // The EOCD is the last 22 bytes plus a comment of up to 65535 bytes.
  uint64_t eocd = UINT64_MAX;
  const uint64_t lowest = size - 22 > 65535 ? size - 22 - 65535 : 0;
  for (uint64_t p = size - 22 + 1; p-- > lowest;)
    if (u32(p) == kEocdSig && fits(p + 22, u16(p + 20), size)) { eocd = p; break; }
  if (eocd == UINT64_MAX) fail("no end-of-central-directory record (not a zip, or truncated)");

  uint64_t disk = u16(eocd + 4), cd_disk = u16(eocd + 6), n_disk = u16(eocd + 8), n_total = u16(eocd + 10);
  uint64_t cd_size = u32(eocd + 12), cd_offset = u32(eocd + 16);
  uint64_t records_end = eocd;  // where the central directory must end
  if (eocd >= 20 && u32(eocd - 20) == kZip64LocatorSig) {
    const uint64_t z = u64(eocd - 20 + 8);
    if (!fits(z, 56, eocd - 20) || u32(z) != kZip64EocdSig)
      fail("zip64 locator points at byte " + std::to_string(z) + ", where there is no zip64 end record");
    disk = u32(z + 16), cd_disk = u32(z + 20), n_disk = u64(z + 24), n_total = u64(z + 32);
    cd_size = u64(z + 40), cd_offset = u64(z + 48);
    records_end = z;
  } else if (n_total == 0xFFFF || cd_size == 0xFFFFFFFF || cd_offset == 0xFFFFFFFF) {
    fail("end record defers to zip64 but there is no zip64 locator (truncated?)");
  }
  if (disk != 0 || cd_disk != 0 || n_disk != n_total) fail("multi-disk archives are not supported");
  if (!fits(cd_offset, cd_size, records_end))
    fail("central directory (offset " + std::to_string(cd_offset) + ", " + std::to_string(cd_size) +
         " bytes) does not lie within the file before its end record (truncated?)");
  if (n_total > cd_size / 46)
    fail(std::to_string(n_total) + " entries cannot fit in a " + std::to_string(cd_size) + "-byte central directory");

  const uint64_t cd_end = cd_offset + cd_size;
  std::set<std::string> names;
  uint64_t p = cd_offset;
  for (uint64_t i = 0; i < n_total; ++i) {
    const std::string at = "central entry " + std::to_string(i);
    if (!fits(p, 46, cd_end) || u32(p) != kCentralSig) fail(at + ": bad signature at byte " + std::to_string(p));
    const uint16_t flags = u16(p + 8), name_len = u16(p + 28), extra_len = u16(p + 30), comment_len = u16(p + 32);
    ZipEntry e;
    e.method = u16(p + 10);
    e.crc32 = u32(p + 16);
    e.compressed_size = u32(p + 20), e.size = u32(p + 24);
    e.local_offset = u32(p + 42);
    const uint64_t var = (uint64_t)name_len + extra_len + comment_len;
    if (!fits(p + 46, var, cd_end)) fail(at + ": name/extra/comment run past the central directory");
    e.name.assign((const char*)b + p + 46, name_len);
    const std::string where = "entry '" + e.name + "'";
    // Zip64 extended information: only the fields saturated above, in this order.
    for (uint64_t x = p + 46 + name_len, xend = x + extra_len; x + 4 <= xend;) {
      const uint16_t id = u16(x), len = u16(x + 2);
      if (!fits(x + 4, len, xend)) fail(where + ": extra field runs past its entry");
      if (id == 0x0001) {
        uint64_t q = x + 4, qend = q + len;
        for (uint64_t* field : {&e.size, &e.compressed_size, &e.local_offset}) {
          if (*field != 0xFFFFFFFF) continue;
          if (q + 8 > qend) fail(where + ": zip64 extra field is too short");
          *field = u64(q), q += 8;
        }
      }
      x += 4 + (uint64_t)len;
    }
    p += 46 + var;
    if (flags & 1) fail(where + ": encrypted entries are not supported");
    if (e.method != 0 && e.method != 8)
      fail(where + ": compression method " + std::to_string(e.method) + " is not supported (stored or deflate only)");
    if (e.method == 0 && e.compressed_size != e.size)
      fail(where + ": stored entry with compressed size " + std::to_string(e.compressed_size) + " != size " +
           std::to_string(e.size));
    if (!names.insert(e.name).second) fail(where + ": duplicate entry name");

    // The local header and the data must lie before the central directory.
    const uint64_t lo = e.local_offset;
    if (!fits(lo, 30, cd_offset) || u32(lo) != kLocalSig)
      fail(where + ": no local header at byte " + std::to_string(lo));
    const uint16_t lname = u16(lo + 26), lextra = u16(lo + 28);
    if (!fits(lo + 30, (uint64_t)lname + lextra, cd_offset) || lname != name_len ||
        std::memcmp(b + lo + 30, e.name.data(), name_len) != 0)
      fail(where + ": local header name does not match the central directory");
    e.data_offset = lo + 30 + lname + lextra;
    if (!fits(e.data_offset, e.compressed_size, cd_offset))
      fail(where + ": data (" + std::to_string(e.compressed_size) + " bytes at byte " + std::to_string(e.data_offset) +
           ") runs past the central directory (truncated?)");
    entries_.push_back(std::move(e));
  }
}

std::vector<uint8_t> ZipReader::read(const ZipEntry& e) const {
  const std::string where = name_ + ": zip: entry '" + e.name + "': ";
  const uint8_t* src = bytes_.data() + e.data_offset;
  std::vector<uint8_t> out;
  if (e.method == 0) {
    out.assign(src, src + e.size);
  } else {
    if (e.size > e.compressed_size * kMaxDeflateRatio + 64)
      throw Error(where + "declares " + std::to_string(e.size) + " bytes from " + std::to_string(e.compressed_size) +
                  " compressed, more than deflate can produce");
    out.resize((size_t)e.size);
    z_stream z{};
    if (inflateInit2(&z, -MAX_WBITS) != Z_OK) throw Error(where + "zlib inflateInit2 failed");
    uint8_t dummy = 0;  // zlib wants a non-null output pointer even for 0 bytes
    uint64_t in_left = e.compressed_size, out_left = e.size;
    z.next_in = const_cast<Bytef*>(src);
    z.next_out = out.empty() ? &dummy : out.data();
    if (out.empty()) z.avail_out = 1;  // room for one byte that must not appear
    int rc = Z_OK;
    while (rc == Z_OK) {  // chunks: avail_in/out are 32-bit
      if (z.avail_in == 0) z.avail_in = (uInt)std::min<uint64_t>(in_left, 1u << 30), in_left -= z.avail_in;
      if (z.avail_out == 0) z.avail_out = (uInt)std::min<uint64_t>(out_left, 1u << 30), out_left -= z.avail_out;
      rc = inflate(&z, Z_NO_FLUSH);
      if (rc == Z_BUF_ERROR && (z.avail_in || in_left) && (z.avail_out || out_left)) rc = Z_OK;
    }
    const uint64_t produced = z.total_out;
    const std::string msg = z.msg ? z.msg : "";
    inflateEnd(&z);
    if (rc != Z_STREAM_END || produced != e.size)
      throw Error(where + "deflate data is corrupt (" +
                  (msg.empty() ? "inflated " + std::to_string(produced) + " bytes, expected " + std::to_string(e.size)
                               : msg) + ")");
  }
  const uint32_t crc = (uint32_t)crc32_z(0, out.data(), out.size());
  if (crc != e.crc32) throw Error(where + "CRC-32 mismatch (corrupt data)");
  return out;
}

std::vector<uint8_t> ZipReader::read(const std::string& entry_name) const {
  const ZipEntry* e = find(entry_name);
  if (!e) throw Error(name_ + ": zip: no entry '" + entry_name + "'");
  return read(*e);
}

}  // namespace ctg::interop
