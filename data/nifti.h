// NIfTI-1 / NIfTI-2 volumes: a reader that survives hostile files and a small
// writer for the synthetic cohort and the tests.
//
// Reading: single-file .nii (magic "n+1" / "n+2"), plain or gzip-compressed
// (detected from the first bytes, not the extension), either byte order
// (detected from sizeof_hdr: 348/540 or their byte swaps). Voxels come back
// as float after scl_slope/scl_inter, in file order (x fastest, then y, z).
// Only the first volume of a 4-D (or higher) file is decoded; `volumes` says
// how many the header declares, and the reader checks they are all present.
//
// Every check the header needs before memory is trusted to it is done before
// allocating: dims in range, no overflow, data present in the file (for gzip,
// buffers grow only as decompressed bytes actually arrive). A bad file throws
// ctg::Error "<file>: <field>: <what is wrong>".
#pragma once
#include <array>
#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

namespace ctg::data {

enum class ByteOrder : uint8_t { little, big };
const char* byte_order_name(ByteOrder o);  // "little" / "big"

// Row-major 4×4: a[row][col]. Maps voxel (i, j, k, 1) to scanner mm (x, y, z, 1).
using Affine = std::array<std::array<double, 4>, 4>;
Affine identity_affine();

// NIfTI datatype codes that ctgrad decodes. RGB, complex, binary and
// float128 are known but refused ("unsupported datatype").
enum NiftiDatatype : int {
  kNiftiUint8 = 2, kNiftiInt16 = 4, kNiftiInt32 = 8, kNiftiFloat32 = 16, kNiftiFloat64 = 64,
  kNiftiInt8 = 256, kNiftiUint16 = 512, kNiftiUint32 = 768, kNiftiInt64 = 1024, kNiftiUint64 = 1280,
};
// "int16", "float32", ..., "rgb24" for refused codes, "unknown" otherwise.
const char* nifti_datatype_name(int code);
// Bytes per voxel of a decodable datatype; 0 for anything else.
int nifti_datatype_bytes(int code);

struct NiftiVolume {
  std::string path;             // the name used in error messages
  int format = 1;               // 1: NIfTI-1 (348-byte header), 2: NIfTI-2 (540)
  ByteOrder byte_order = ByteOrder::little;
  bool gzipped = false;
  int ndim = 3;                      // dim[0]
  std::array<int64_t, 8> dim{};      // dim[0..7] as declared; entries past dim[0] are 1
  int64_t nx = 1, ny = 1, nz = 1;    // dim[1..3]; 1 where dim[0] is smaller (2-D = one slice)
  int64_t volumes = 1;               // product of dim[4..dim[0]]; > 1: only the first was read
  std::array<double, 8> pixdim{};    // pixdim[0] is qfac's sign, [1..3] voxel size
  int datatype = 0;
  std::string datatype_name;
  int bitpix = 0;
  int64_t vox_offset = 0;
  int xyzt_units = 0;
  // As stored in the header. `scaled` says whether they were applied: slope
  // 0 or non-finite means "no scaling" (and then the values are raw).
  double scl_slope = 0, scl_inter = 0;
  bool scaled = false;
  int qform_code = 0, sform_code = 0;
  double quatern_b = 0, quatern_c = 0, quatern_d = 0;
  double qoffset_x = 0, qoffset_y = 0, qoffset_z = 0;
  double qfac = 1;                   // −1 when pixdim[0] < 0 (left-handed qform)
  std::array<std::array<double, 4>, 3> srow{};  // srow_x, srow_y, srow_z
  Affine qform{};                    // from the quaternion, pixdim and qfac
  Affine sform{};                    // srow_x/y/z plus the row 0 0 0 1
  std::vector<float> voxels;         // nx·ny·nz values of the first volume, x fastest

  int64_t voxel_count() const { return nx * ny * nz; }
  float at(int64_t x, int64_t y, int64_t z) const { return voxels[(size_t)((z * ny + y) * nx + x)]; }
};

// Reads a .nii or .nii.gz file (gzip is recognised by its magic bytes).
NiftiVolume read_nifti(const std::string& path);
// The same parser over bytes in memory (plain or gzip); `name` is used in
// error messages. This is the fuzzers' entry point.
NiftiVolume read_nifti_buffer(const uint8_t* data, size_t size, const std::string& name);

// The NIfTI rule for "the" orientation: the sform if sform_code > 0, else the
// qform if qform_code > 0, else a diagonal of pixdim[1..3] (non-positive or
// non-finite sizes count as 1).
Affine nifti_affine(const NiftiVolume& v);

// The quaternion form (NIfTI-1 "method 2"). dx, dy, dz ≤ 0 count as 1;
// qfac < 0 flips the third axis.
Affine quatern_to_affine(double b, double c, double d, double qx, double qy, double qz,
                         double dx, double dy, double dz, double qfac);
struct Quatern {
  double b = 0, c = 0, d = 0, qx = 0, qy = 0, qz = 0;
  double dx = 1, dy = 1, dz = 1, qfac = 1;
};
// The inverse: voxel sizes are the column lengths of the 3×3 part, the
// rotation its nearest orthogonal matrix. Throws if a column has length 0.
Quatern affine_to_quatern(const Affine& a);

// Over the decoded (scaled) values; NaN/inf are counted, not summed.
struct NiftiStats {
  double min = 0, max = 0, mean = 0, sum = 0;
  int64_t count = 0, nonfinite = 0;
};
NiftiStats nifti_stats(const NiftiVolume& v);
// The `key: value` lines `ctgrad nifti-info` prints.
std::string format_nifti_info(const NiftiVolume& v);

// What write_nifti puts in the header. The affine is the single source of
// truth for geometry: pixdim[1..3] are its column lengths, the qform is its
// rotation part (when qform_code > 0), srow its rows (when sform_code > 0).
struct NiftiWriteSpec {
  int64_t nx = 0, ny = 0, nz = 1, volumes = 1;
  Affine affine = identity_affine();
  int qform_code = 1;   // 0: leave the quaternion unset. 1 = scanner, 2 = aligned, ...
  int sform_code = 1;   // 0: leave srow unset
  double scl_slope = 1, scl_inter = 0;  // value = stored · slope + inter
  std::string descrip;                  // up to 79 characters are kept
  // The writer's defaults are what the cohort needs (NIfTI-1, little-endian);
  // the others exist so tests and fuzzers can make every kind of file.
  int format = 1;
  ByteOrder byte_order = ByteOrder::little;
  int gzip_level = 6;   // zlib level for .gz (1 is ~3× faster, a little larger)
};

// Writes nx·ny·nz·volumes voxels (x fastest) as int16 or float32; gzip when
// the path ends in ".gz". Atomic: a temporary beside the target, then rename.
void write_nifti(const std::string& path, const NiftiWriteSpec& spec, const int16_t* voxels);
void write_nifti(const std::string& path, const NiftiWriteSpec& spec, const float* voxels);
// The file image in memory for any decodable datatype; `voxels` holds native
// values of that type. gzip = true compresses it as write_nifti does for .gz.
std::vector<uint8_t> encode_nifti(const NiftiWriteSpec& spec, int datatype, const void* voxels,
                                  bool gzip = false);

namespace detail {
// Header fields in a format-neutral form, shared by the reader and writer so
// that the byte layout of each format lives in one table (nifti.cpp).
struct RawHeader {
  int format = 1;
  ByteOrder byte_order = ByteOrder::little;
  std::array<int64_t, 8> dim{};
  std::array<double, 8> pixdim{};
  int datatype = 0, bitpix = 0;
  double vox_offset = 0;  // NIfTI-1 stores a float, NIfTI-2 an int64: validated by the reader
  double scl_slope = 0, scl_inter = 0;
  int qform_code = 0, sform_code = 0;
  std::array<double, 6> quatern{};  // b, c, d, qoffset_x, qoffset_y, qoffset_z
  std::array<std::array<double, 4>, 3> srow{};
  int xyzt_units = 0;
  std::string descrip;
  std::string magic;  // as read (up to the first NUL, printable)
};
// 348 or 540 from the first four bytes, with the byte order they imply; 0 if neither.
int header_size_from_prefix(const uint8_t* first4, ByteOrder* order);
// `bytes` holds header_size_from_prefix() bytes. Throws on a wrong magic.
RawHeader decode_header(const uint8_t* bytes, int size, ByteOrder order, const std::string& name);
// Writes a full header (348 or 540 bytes) into `out`.
void encode_header(const RawHeader& h, uint8_t* out);
std::vector<uint8_t> gzip_compress(const uint8_t* data, size_t size, int level);
}  // namespace detail

}  // namespace ctg::data
