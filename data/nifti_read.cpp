// The NIfTI reader. Bytes come from a forward-only Source (memory, a file, or
// a gzip stream over either), so one parser serves files and fuzzers alike.
// The order of work is what keeps hostile files harmless: decode the header,
// validate every field that sizes anything, check the data is really there
// (file size, or for gzip by decompressing into buffers that grow only with
// the bytes that arrive), and only then allocate the output.
#include <sys/stat.h>
#include <zlib.h>

#include <algorithm>
#include <cerrno>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <limits>
#include <memory>

#include "data/nifti.h"
#include "engine/tensor.h"

namespace ctg::data {

namespace {

[[noreturn]] void fail(const std::string& name, const std::string& field, const std::string& what) {
  throw Error(name + ": " + field + ": " + what);
}

constexpr bool kHostLittleEndian = __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__;

class Source {
 public:
  virtual ~Source() = default;
  // Up to n bytes into dst; fewer only when the data ends.
  virtual size_t read(uint8_t* dst, size_t n) = 0;
  // Bytes left, or −1 when unknown until decompressed (gzip).
  virtual int64_t remaining() const { return -1; }
};

class MemorySource final : public Source {
 public:
  MemorySource(const uint8_t* p, size_t n) : p_(p), n_(n) {}
  size_t read(uint8_t* dst, size_t n) override {
    n = std::min(n, n_ - pos_);
    if (n) std::memcpy(dst, p_ + pos_, n);
    pos_ += n;
    return n;
  }
  int64_t remaining() const override { return (int64_t)(n_ - pos_); }

 private:
  const uint8_t* p_;
  size_t n_, pos_ = 0;
};

class FileSource final : public Source {
 public:
  FileSource(std::FILE* f, int64_t size, const std::string& name) : f_(f), left_(size), name_(name) {}
  size_t read(uint8_t* dst, size_t n) override {
    size_t got = 0;
    while (got < n) {
      const size_t r = std::fread(dst + got, 1, n - got, f_);
      if (r == 0) {
        if (std::ferror(f_)) fail(name_, "read", std::strerror(errno));
        break;
      }
      got += r;
    }
    left_ = std::max<int64_t>(0, left_ - (int64_t)got);
    return got;
  }
  int64_t remaining() const override { return left_; }

 private:
  std::FILE* f_;
  int64_t left_;
  const std::string& name_;
};

// Inflates a gzip stream from another Source. Concatenated gzip members (as
// `cat a.gz b.gz` makes) are followed; other trailing bytes are ignored, as
// gzip(1) does. A stream that stops mid-way or fails its CRC is an error.
class GzipSource final : public Source {
 public:
  GzipSource(Source& in, const std::string& name) : in_(in), name_(name), buf_(1 << 16) {
    std::memset(&zs_, 0, sizeof zs_);
    if (inflateInit2(&zs_, 16 + MAX_WBITS) != Z_OK) fail(name, "gzip", "cannot initialise zlib");
  }
  ~GzipSource() override { inflateEnd(&zs_); }

  size_t read(uint8_t* dst, size_t n) override {
    size_t total = 0;
    while (total < n && !ended_) {
      const size_t want = std::min<size_t>(n - total, 1u << 30);  // avail_out is 32-bit
      zs_.next_out = dst + total;
      zs_.avail_out = (uInt)want;
      while (zs_.avail_out > 0 && !ended_) step();
      total += want - zs_.avail_out;
    }
    return total;
  }

  // Decompresses what is left, so that the CRC and length in the trailer are
  // checked even when the voxels ended before it. Returns the bytes skipped.
  uint64_t drain() {
    uint8_t scratch[1 << 14];
    uint64_t n = 0;
    while (!ended_) n += read(scratch, sizeof scratch);
    return n;
  }

 private:
  void step() {
    if (zs_.avail_in == 0 && !refill()) fail(name_, "gzip", "compressed stream ends early (truncated .gz file)");
    const int rc = inflate(&zs_, Z_NO_FLUSH);
    if (rc == Z_STREAM_END) {
      if (!next_member()) ended_ = true;
    } else if (rc != Z_OK && !(rc == Z_BUF_ERROR && zs_.avail_in == 0)) {
      fail(name_, "gzip", std::string("corrupt compressed data (") + (zs_.msg ? zs_.msg : "zlib error") + ")");
    }
  }
  bool refill() {
    zs_.next_in = buf_.data();
    zs_.avail_in = (uInt)in_.read(buf_.data(), buf_.size());
    return zs_.avail_in > 0;
  }
  // After a member's trailer: does another gzip member follow?
  bool next_member() {
    if (zs_.avail_in < 2) {  // top up, keeping a lone byte left from the last chunk
      const size_t have = zs_.avail_in;
      if (have) buf_[0] = *zs_.next_in;
      zs_.next_in = buf_.data();
      zs_.avail_in = (uInt)(have + in_.read(buf_.data() + have, buf_.size() - have));
    }
    if (zs_.avail_in < 2 || zs_.next_in[0] != 0x1f || zs_.next_in[1] != 0x8b) return false;
    return inflateReset(&zs_) == Z_OK;
  }

  Source& in_;
  const std::string& name_;
  std::vector<uint8_t> buf_;
  z_stream zs_;
  bool ended_ = false;
};

size_t skip(Source& src, uint64_t n) {
  uint8_t scratch[1 << 14];
  uint64_t done = 0;
  while (done < n) {
    const size_t want = (size_t)std::min<uint64_t>(n - done, sizeof scratch);
    const size_t got = src.read(scratch, want);
    done += got;
    if (got < want) break;
  }
  return (size_t)done;
}

int64_t checked_mul(int64_t a, int64_t b, const std::string& name, const char* field) {
  int64_t r;
  if (__builtin_mul_overflow(a, b, &r)) fail(name, field, "the sizes multiply past 2^63 (voxels or bytes)");
  return r;
}

// Turns a decoded header into a volume with every size-bearing field checked.
// Fills everything but the voxels.
NiftiVolume validate(const detail::RawHeader& h, int header_size, const std::string& name) {
  NiftiVolume v;
  v.path = name;
  v.format = h.format;
  v.byte_order = h.byte_order;
  if (h.dim[0] < 1 || h.dim[0] > 7)
    fail(name, "dim[0]", "is " + std::to_string(h.dim[0]) + "; the number of dimensions must be 1..7");
  v.ndim = (int)h.dim[0];
  v.dim[0] = h.dim[0];
  for (int i = 1; i < 8; ++i) {
    if (i > v.ndim) {
      v.dim[i] = 1;  // unused entries are often 0 or 1; they do not count
      continue;
    }
    if (h.dim[i] < 1)
      fail(name, "dim[" + std::to_string(i) + "]", "is " + std::to_string(h.dim[i]) + "; sizes must be at least 1");
    v.dim[i] = h.dim[i];
  }
  v.nx = v.dim[1], v.ny = v.dim[2], v.nz = v.dim[3];
  v.volumes = 1;
  for (int i = 4; i <= v.ndim; ++i) v.volumes = checked_mul(v.volumes, v.dim[i], name, "dim");
  checked_mul(checked_mul(checked_mul(v.nx, v.ny, name, "dim"), v.nz, name, "dim"), v.volumes, name, "dim");

  v.datatype = h.datatype;
  v.datatype_name = nifti_datatype_name(h.datatype);
  const int bytes = nifti_datatype_bytes(h.datatype);
  if (bytes == 0) {
    if (v.datatype_name == "unknown") fail(name, "datatype", "unknown datatype code " + std::to_string(h.datatype));
    fail(name, "datatype",
         "unsupported datatype " + v.datatype_name + " (code " + std::to_string(h.datatype) +
             "); ctgrad reads uint8, int8, int16, uint16, int32, uint32, int64, uint64, float32, float64");
  }
  v.bitpix = h.bitpix;
  if (h.bitpix != 8 * bytes)
    fail(name, "bitpix",
         "is " + std::to_string(h.bitpix) + " but datatype " + v.datatype_name + " has " + std::to_string(8 * bytes));

  // NIfTI-1 keeps vox_offset in a float; anything but a whole number of bytes
  // at or after the header (and below 2^53, where doubles stay exact) is bogus.
  const double off = h.vox_offset;
  if (!std::isfinite(off) || off < 0 || off != std::floor(off) || off > 9007199254740992.0)
    fail(name, "vox_offset", "is " + std::to_string(off) + "; must be a whole, non-negative byte offset");
  v.vox_offset = (int64_t)off;
  if (v.vox_offset < header_size)
    fail(name, "vox_offset",
         "is " + std::to_string(v.vox_offset) + ", inside the " + std::to_string(header_size) + "-byte header");

  v.pixdim = h.pixdim;
  v.xyzt_units = h.xyzt_units;
  v.scl_slope = h.scl_slope, v.scl_inter = h.scl_inter;
  v.scaled = std::isfinite(h.scl_slope) && h.scl_slope != 0;
  v.qform_code = h.qform_code, v.sform_code = h.sform_code;
  v.quatern_b = h.quatern[0], v.quatern_c = h.quatern[1], v.quatern_d = h.quatern[2];
  v.qoffset_x = h.quatern[3], v.qoffset_y = h.quatern[4], v.qoffset_z = h.quatern[5];
  v.qfac = h.pixdim[0] < 0 ? -1 : 1;
  v.qform = quatern_to_affine(v.quatern_b, v.quatern_c, v.quatern_d, v.qoffset_x, v.qoffset_y, v.qoffset_z,
                              v.pixdim[1], v.pixdim[2], v.pixdim[3], v.qfac);
  v.srow = h.srow;
  v.sform = identity_affine();
  for (int r = 0; r < 3; ++r)
    for (int c = 0; c < 4; ++c) v.sform[r][c] = h.srow[r][c];
  return v;
}

// float(x) is undefined behaviour for doubles outside float's range; saturate.
inline float to_float(double x) {
  constexpr double kMax = std::numeric_limits<float>::max();
  if (x > kMax) return std::numeric_limits<float>::infinity();
  if (x < -kMax) return -std::numeric_limits<float>::infinity();
  return (float)x;
}

// Raw voxels (file byte order) → scaled floats. Unscaled data uses slope 1 and
// intercept 0, which leave every double unchanged, so there is one loop.
template <typename T, typename U>
void convert(const uint8_t* src, size_t n, bool swap, double slope, double inter, float* out) {
  static_assert(sizeof(T) == sizeof(U), "U is T's same-width unsigned integer");
  for (size_t i = 0; i < n; ++i) {
    U bits;
    std::memcpy(&bits, src + i * sizeof(T), sizeof(T));
    if (swap) {
      U r = 0;
      for (size_t b = 0; b < sizeof(T); ++b) r = (U)((r << 8) | ((bits >> (8 * b)) & 0xff));
      bits = r;
    }
    T value;
    std::memcpy(&value, &bits, sizeof(T));
    out[i] = to_float((double)value * slope + inter);
  }
}

void convert_piece(int datatype, const uint8_t* p, size_t n, bool swap, double slope, double inter, float* out) {
  switch (datatype) {
    case kNiftiUint8: convert<uint8_t, uint8_t>(p, n, swap, slope, inter, out); break;
    case kNiftiInt8: convert<int8_t, uint8_t>(p, n, swap, slope, inter, out); break;
    case kNiftiInt16: convert<int16_t, uint16_t>(p, n, swap, slope, inter, out); break;
    case kNiftiUint16: convert<uint16_t, uint16_t>(p, n, swap, slope, inter, out); break;
    case kNiftiInt32: convert<int32_t, uint32_t>(p, n, swap, slope, inter, out); break;
    case kNiftiUint32: convert<uint32_t, uint32_t>(p, n, swap, slope, inter, out); break;
    case kNiftiInt64: convert<int64_t, uint64_t>(p, n, swap, slope, inter, out); break;
    case kNiftiUint64: convert<uint64_t, uint64_t>(p, n, swap, slope, inter, out); break;
    case kNiftiFloat32: convert<float, uint32_t>(p, n, swap, slope, inter, out); break;
    case kNiftiFloat64: convert<double, uint64_t>(p, n, swap, slope, inter, out); break;
    default: throw Error("nifti: convert_piece called with datatype " + std::to_string(datatype));  // validate() rules this out
  }
}

// `gz` is the source itself when the data is gzip-compressed, else null.
NiftiVolume parse(Source& src, GzipSource* gz, const std::string& name) {
  uint8_t hdr[540];
  const size_t got = src.read(hdr, 4);
  if (got < 4)
    fail(name, "sizeof_hdr", "the data is " + std::to_string(got) + " bytes long, too short for a NIfTI header");
  ByteOrder order;
  const int hsize = detail::header_size_from_prefix(hdr, &order);
  if (hsize == 0) {
    uint32_t le = (uint32_t)hdr[0] | (uint32_t)hdr[1] << 8 | (uint32_t)hdr[2] << 16 | (uint32_t)hdr[3] << 24;
    fail(name, "sizeof_hdr",
         "is " + std::to_string(le) + "; a NIfTI file starts with 348 (NIfTI-1) or 540 (NIfTI-2) in either byte order");
  }
  const size_t rest = src.read(hdr + 4, (size_t)hsize - 4);
  if (rest < (size_t)hsize - 4)
    fail(name, "header",
         "truncated: the data ends after " + std::to_string(4 + rest) + " of " + std::to_string(hsize) + " header bytes");
  const detail::RawHeader h = detail::decode_header(hdr, hsize, order, name);
  NiftiVolume v = validate(h, hsize, name);
  v.gzipped = gz != nullptr;

  const int bytes = nifti_datatype_bytes(v.datatype);
  const int64_t vol_voxels = v.nx * v.ny * v.nz;  // validate() proved these products fit
  const int64_t vol_bytes = checked_mul(vol_voxels, bytes, name, "dim");
  const int64_t all_bytes = checked_mul(vol_bytes, v.volumes, name, "dim");
  const int64_t after_header = v.vox_offset - hsize;
  if (src.remaining() >= 0) {  // a plain file: compare with its size before reading anything
    const int64_t size = hsize + src.remaining();
    if (v.vox_offset > size)
      fail(name, "vox_offset", "is " + std::to_string(v.vox_offset) + ", past the end of the " + std::to_string(size) +
                                   "-byte file");
    if (all_bytes > size - v.vox_offset)
      fail(name, "data",
           "truncated: the header declares " + std::to_string(all_bytes) + " bytes of voxels from vox_offset " +
               std::to_string(v.vox_offset) + ", the file holds " + std::to_string(size - v.vox_offset));
  }
  if ((int64_t)skip(src, (uint64_t)after_header) < after_header)
    fail(name, "vox_offset", "is " + std::to_string(v.vox_offset) + ", past the end of the decompressed data");

  // The first volume, read in 1 MiB pieces and converted as it comes, so the
  // raw bytes are never held whole. A plain file's size was checked above,
  // so its output is allocated at once; for gzip the output grows (doubling)
  // only as decompressed bytes actually arrive, so a lying header cannot make
  // us allocate more than about twice what the stream really holds.
  const double slope = v.scaled ? h.scl_slope : 1.0;
  const double inter = v.scaled && std::isfinite(h.scl_inter) ? h.scl_inter : 0.0;
  const bool swap = (order == ByteOrder::little) != kHostLittleEndian;
  const bool known_size = src.remaining() >= 0;
  if (known_size) v.voxels.reserve((size_t)vol_voxels);
  std::vector<uint8_t> piece((size_t)std::min<int64_t>(vol_bytes, 1 << 20));  // a multiple of any voxel size
  int64_t done = 0;  // voxels converted
  while (done < vol_voxels) {
    const int64_t n = std::min<int64_t>(vol_voxels - done, (int64_t)piece.size() / bytes);
    const size_t want = (size_t)(n * bytes);
    const size_t r = src.read(piece.data(), want);
    if (r < want)
      fail(name, "data",
           "truncated: the header declares " + std::to_string(all_bytes) + " bytes of voxels, the data ends after " +
               std::to_string(done * bytes + (int64_t)r));
    if (!known_size && v.voxels.capacity() < (size_t)(done + n))
      v.voxels.reserve((size_t)std::min<int64_t>(vol_voxels, std::max<int64_t>(2 * done, done + n)));
    v.voxels.resize((size_t)(done + n));
    convert_piece(v.datatype, piece.data(), (size_t)n, swap, slope, inter, v.voxels.data() + done);
    done += n;
  }
  if (gz) {
    // The later volumes are not kept, but a 4-D file missing them is broken;
    // and the drain checks the gzip trailer (CRC, length).
    const uint64_t later = (uint64_t)(all_bytes - vol_bytes);
    const uint64_t more = gz->drain();
    if (more < later)
      fail(name, "data",
           "truncated: the header declares " + std::to_string(all_bytes) + " bytes of voxels, the data ends after " +
               std::to_string((uint64_t)vol_bytes + more));
  }
  return v;
}

bool is_gzip(const uint8_t* p, size_t n) { return n >= 2 && p[0] == 0x1f && p[1] == 0x8b; }

}  // namespace

NiftiVolume read_nifti_buffer(const uint8_t* data, size_t size, const std::string& name) {
  MemorySource mem(data, size);
  if (!is_gzip(data, size)) return parse(mem, nullptr, name);
  GzipSource gz(mem, name);
  return parse(gz, &gz, name);
}

NiftiVolume read_nifti(const std::string& path) {
  std::unique_ptr<std::FILE, int (*)(std::FILE*)> f(std::fopen(path.c_str(), "rb"), &std::fclose);
  if (!f) fail(path, "open", std::strerror(errno));
  struct stat st;
  if (::fstat(fileno(f.get()), &st) != 0) fail(path, "open", std::strerror(errno));
  if (!S_ISREG(st.st_mode)) fail(path, "open", "not a regular file");
  uint8_t magic[2] = {0, 0};
  const size_t n = std::fread(magic, 1, 2, f.get());
  if (std::fseek(f.get(), 0, SEEK_SET) != 0) fail(path, "read", std::strerror(errno));
  FileSource file(f.get(), (int64_t)st.st_size, path);
  if (!is_gzip(magic, n)) return parse(file, nullptr, path);
  GzipSource gz(file, path);
  return parse(gz, &gz, path);
}

}  // namespace ctg::data
