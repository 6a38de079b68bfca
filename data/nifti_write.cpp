// The NIfTI writer: a header from NiftiWriteSpec (geometry from one affine),
// the voxels in the requested byte order, optional gzip, and an atomic
// temp-file-then-rename so that a reader (or a crash) never sees half a file.
#include <zlib.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <limits>

#include "base/atomic_file.h"
#include "data/nifti.h"
#include "engine/tensor.h"

namespace ctg::data {

namespace {

constexpr bool kHostLittleEndian = __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__;

[[noreturn]] void bad_spec(const std::string& what) { throw Error("write_nifti: " + what); }

bool ends_with(const std::string& s, const std::string& tail) {
  return s.size() >= tail.size() && s.compare(s.size() - tail.size(), tail.size(), tail) == 0;
}

// Atomically (base/atomic_file.h: temporary beside the target, fsync, rename,
// fsync of the directory). Its errors start with "PATH: "; the writer's own
// say "PATH: write: ..." (what callers and tests look for), so the tag is put
// after the path.
void write_file_atomically(const std::string& path, const std::vector<uint8_t>& bytes) {
  try {
    AtomicFile f(path);
    f.write(bytes.data(), bytes.size());
    f.commit();
  } catch (const Error& e) {
    const std::string what = e.what(), prefix = path + ": ";
    throw Error(prefix + "write: " + (what.compare(0, prefix.size(), prefix) == 0 ? what.substr(prefix.size()) : what));
  }
}

}  // namespace

namespace detail {

std::vector<uint8_t> gzip_compress(const uint8_t* data, size_t size, int level) {
  z_stream zs;
  std::memset(&zs, 0, sizeof zs);
  if (deflateInit2(&zs, level, Z_DEFLATED, 16 + MAX_WBITS, 8, Z_DEFAULT_STRATEGY) != Z_OK)
    throw Error("gzip: cannot initialise zlib (level " + std::to_string(level) + ")");
  std::vector<uint8_t> out(deflateBound(&zs, size) + 64);
  size_t in_pos = 0, out_pos = 0;
  // zlib counts in 32-bit units, so feed and drain in pieces of at most 1 GiB.
  constexpr size_t kPiece = 1u << 30;
  for (;;) {
    if (zs.avail_in == 0 && in_pos < size) {
      const size_t piece = std::min(size - in_pos, kPiece);
      zs.next_in = const_cast<Bytef*>(data + in_pos);
      zs.avail_in = (uInt)piece;
      in_pos += piece;
    }
    if (out_pos == out.size()) out.resize(out.size() * 2);
    const size_t room = std::min(out.size() - out_pos, kPiece);
    zs.next_out = out.data() + out_pos;
    zs.avail_out = (uInt)room;
    const int rc = deflate(&zs, in_pos == size ? Z_FINISH : Z_NO_FLUSH);
    out_pos += room - zs.avail_out;
    if (rc == Z_STREAM_END) break;
    if (rc != Z_OK && rc != Z_BUF_ERROR) {
      deflateEnd(&zs);
      throw Error("gzip: compression failed (zlib error " + std::to_string(rc) + ")");
    }
  }
  deflateEnd(&zs);
  out.resize(out_pos);
  return out;
}

}  // namespace detail

std::vector<uint8_t> encode_nifti(const NiftiWriteSpec& s, int datatype, const void* voxels, bool gzip) {
  if (s.format != 1 && s.format != 2) bad_spec("format must be 1 or 2, not " + std::to_string(s.format));
  const int bytes = nifti_datatype_bytes(datatype);
  if (bytes == 0) bad_spec(std::string("cannot write datatype ") + nifti_datatype_name(datatype));
  // NIfTI-1 keeps sizes and codes in int16.
  const int64_t max_dim = s.format == 1 ? 32767 : std::numeric_limits<int64_t>::max();
  const int64_t sizes[4] = {s.nx, s.ny, s.nz, s.volumes};
  int64_t count = 1;
  for (int i = 0; i < 4; ++i) {
    if (sizes[i] < 1 || sizes[i] > max_dim)
      bad_spec("size " + std::to_string(sizes[i]) + " (dim[" + std::to_string(i + 1) + "]) is out of range for NIfTI-" +
               std::to_string(s.format));
    if (__builtin_mul_overflow(count, sizes[i], &count)) bad_spec("the sizes overflow");
  }
  int64_t data_bytes;
  if (__builtin_mul_overflow(count, (int64_t)bytes, &data_bytes)) bad_spec("the sizes overflow");
  if (s.qform_code < 0 || s.qform_code > 32767 || s.sform_code < 0 || s.sform_code > 32767)
    bad_spec("qform_code and sform_code must be 0..32767");
  if (!std::isfinite(s.scl_slope) || s.scl_slope == 0 || !std::isfinite(s.scl_inter))
    bad_spec("scl_slope must be finite and non-zero, scl_inter finite (1 and 0 mean no scaling)");
  if (voxels == nullptr) bad_spec("no voxel data");

  detail::RawHeader h;
  h.format = s.format;
  h.byte_order = s.byte_order;
  h.dim = {s.volumes > 1 ? 4 : 3, s.nx, s.ny, s.nz, s.volumes, 1, 1, 1};
  // The geometry: voxel sizes and qfac come from the affine even when only an
  // sform is written, so pixdim always agrees with it.
  const Quatern q = affine_to_quatern(s.affine);
  h.pixdim = {q.qfac, q.dx, q.dy, q.dz, 1, 1, 1, 1};
  h.datatype = datatype;
  h.bitpix = 8 * bytes;
  const int header = s.format == 1 ? 348 : 540;
  h.vox_offset = header + 4;  // the header, then four zero bytes: "no extensions"
  h.scl_slope = s.scl_slope;
  h.scl_inter = s.scl_inter;
  h.qform_code = s.qform_code;
  h.sform_code = s.sform_code;
  if (s.qform_code > 0) h.quatern = {q.b, q.c, q.d, q.qx, q.qy, q.qz};
  if (s.sform_code > 0)
    for (int r = 0; r < 3; ++r)
      for (int c = 0; c < 4; ++c) h.srow[r][c] = s.affine[r][c];
  h.xyzt_units = 2 | (s.volumes > 1 ? 8 : 0);  // millimetres (and seconds for 4-D)
  h.descrip = s.descrip;

  std::vector<uint8_t> file((size_t)(header + 4 + data_bytes), 0);
  detail::encode_header(h, file.data());
  uint8_t* dst = file.data() + header + 4;
  std::memcpy(dst, voxels, (size_t)data_bytes);
  if ((s.byte_order == ByteOrder::little) != kHostLittleEndian && bytes > 1)
    for (int64_t i = 0; i < count; ++i) std::reverse(dst + i * bytes, dst + (i + 1) * bytes);
  if (!gzip) return file;
  return detail::gzip_compress(file.data(), file.size(), s.gzip_level);
}

namespace {
void write_typed(const std::string& path, const NiftiWriteSpec& spec, int datatype, const void* voxels) {
  std::vector<uint8_t> bytes;
  try {
    bytes = encode_nifti(spec, datatype, voxels, ends_with(path, ".gz"));
  } catch (const Error& e) {
    throw Error(path + ": " + e.what());  // name the file the caller asked for
  }
  write_file_atomically(path, bytes);
}
}  // namespace

void write_nifti(const std::string& path, const NiftiWriteSpec& spec, const int16_t* voxels) {
  write_typed(path, spec, kNiftiInt16, voxels);
}

void write_nifti(const std::string& path, const NiftiWriteSpec& spec, const float* voxels) {
  write_typed(path, spec, kNiftiFloat32, voxels);
}

}  // namespace ctg::data
