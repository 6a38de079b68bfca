// NIfTI pieces shared by the reader and the writer: the byte layout of both
// header formats (one table, so reading and writing cannot disagree), the
// datatype table and the qform/sform geometry (the statistics behind
// `ctgrad nifti-info` are in data/nifti_info.cpp).
#include "data/nifti.h"

#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <limits>

#include "engine/tensor.h"

namespace ctg::data {

const char* byte_order_name(ByteOrder o) { return o == ByteOrder::little ? "little" : "big"; }

Affine identity_affine() {
  Affine a{};
  for (int i = 0; i < 4; ++i) a[i][i] = 1;
  return a;
}

namespace {

struct DatatypeInfo {
  int code;
  const char* name;
  int bytes;  // 0: known to NIfTI but not decoded by ctgrad
};
constexpr DatatypeInfo kDatatypes[] = {
    {kNiftiUint8, "uint8", 1},     {kNiftiInt8, "int8", 1},       {kNiftiInt16, "int16", 2},
    {kNiftiUint16, "uint16", 2},   {kNiftiInt32, "int32", 4},     {kNiftiUint32, "uint32", 4},
    {kNiftiInt64, "int64", 8},     {kNiftiUint64, "uint64", 8},   {kNiftiFloat32, "float32", 4},
    {kNiftiFloat64, "float64", 8}, {1, "binary", 0},              {32, "complex64", 0},
    {128, "rgb24", 0},             {1536, "float128", 0},         {1792, "complex128", 0},
    {2048, "complex256", 0},       {2304, "rgba32", 0},
};

const DatatypeInfo* find_datatype(int code) {
  for (const auto& d : kDatatypes)
    if (d.code == code) return &d;
  return nullptr;
}

// Byte offsets of every field ctgrad uses. A "real" is float32 in NIfTI-1 and
// float64 in NIfTI-2; the NIfTI-1 vox_offset is a float, the NIfTI-2 one an int64.
struct Layout {
  int size;
  int dim, dim_w;
  int datatype, bitpix;  // int16 in both formats
  int real_w;
  int pixdim, vox_offset, scl_slope, scl_inter;
  int qform_code, sform_code, code_w;
  int quatern, srow;  // 6 and 12 consecutive reals
  int xyzt_units, xyzt_w;
  int descrip;        // char[80] in both
  int magic;
  const char* magic_bytes;
  int magic_len;
};
constexpr Layout kNifti1{348, 40, 2, 70, 72, 4, 76, 108, 112, 116, 252, 254, 2,
                         256, 280, 123, 1, 148, 344, "n+1\0", 4};
constexpr Layout kNifti2{540, 16, 8, 12, 14, 8, 104, 168, 176, 184, 344, 348, 4,
                         352, 400, 500, 4, 240, 4, "n+2\0\r\n\x1a\n", 8};

uint64_t load_bits(const uint8_t* p, int w, ByteOrder o) {
  uint64_t v = 0;
  for (int i = 0; i < w; ++i) v |= (uint64_t)p[o == ByteOrder::little ? i : w - 1 - i] << (8 * i);
  return v;
}
void store_bits(uint8_t* p, uint64_t v, int w, ByteOrder o) {
  for (int i = 0; i < w; ++i) p[o == ByteOrder::little ? i : w - 1 - i] = (uint8_t)(v >> (8 * i));
}
int64_t load_int(const uint8_t* p, int w, ByteOrder o) {
  uint64_t v = load_bits(p, w, o);
  if (w == 1) return (int64_t)v;                     // chars (xyzt_units) are unsigned
  if (w < 8 && (v >> (8 * w - 1)) & 1) v |= ~0ull << (8 * w);  // sign-extend
  return (int64_t)v;
}
double load_real(const uint8_t* p, int w, ByteOrder o) {
  uint64_t bits = load_bits(p, w, o);
  if (w == 4) {
    uint32_t b32 = (uint32_t)bits;
    float f;
    std::memcpy(&f, &b32, 4);
    return f;
  }
  double d;
  std::memcpy(&d, &bits, 8);
  return d;
}
void store_real(uint8_t* p, double v, int w, ByteOrder o) {
  if (w == 4) {
    // Values outside float range saturate to ±inf (a plain cast would be UB).
    float f = v > std::numeric_limits<float>::max()    ? std::numeric_limits<float>::infinity()
              : v < -std::numeric_limits<float>::max() ? -std::numeric_limits<float>::infinity()
                                                        : (float)v;
    uint32_t b32;
    std::memcpy(&b32, &f, 4);
    store_bits(p, b32, 4, o);
  } else {
    uint64_t b64;
    std::memcpy(&b64, &v, 8);
    store_bits(p, b64, 8, o);
  }
}

// The magic as text for messages: printable bytes kept, others as \xNN.
std::string printable(const uint8_t* p, int n) {
  std::string s;
  for (int i = 0; i < n; ++i) {
    if (p[i] >= 32 && p[i] < 127) {
      s += (char)p[i];
    } else {
      char buf[8];
      std::snprintf(buf, sizeof buf, "\\x%02x", p[i]);
      s += buf;
    }
  }
  return s;
}

}  // namespace

const char* nifti_datatype_name(int code) {
  const DatatypeInfo* d = find_datatype(code);
  return d ? d->name : "unknown";
}
int nifti_datatype_bytes(int code) {
  const DatatypeInfo* d = find_datatype(code);
  return d ? d->bytes : 0;
}

namespace detail {

int header_size_from_prefix(const uint8_t* first4, ByteOrder* order) {
  for (ByteOrder o : {ByteOrder::little, ByteOrder::big}) {
    int64_t v = load_int(first4, 4, o);
    if (v == 348 || v == 540) {
      *order = o;
      return (int)v;
    }
  }
  return 0;
}

RawHeader decode_header(const uint8_t* b, int size, ByteOrder o, const std::string& name) {
  const Layout& L = size == 540 ? kNifti2 : kNifti1;
  RawHeader h;
  h.format = size == 540 ? 2 : 1;
  h.byte_order = o;
  const uint8_t* m = b + L.magic;
  h.magic = printable(m, L.magic_len);
  if (std::memcmp(m, L.magic_bytes, (size_t)L.magic_len) != 0) {
    // "ni1"/"ni2" is a legal NIfTI, but a two-file one (.hdr + .img).
    if (m[0] == 'n' && m[1] == 'i' && (m[2] == '1' || m[2] == '2'))
      throw Error(name + ": magic: \"" + h.magic +
                  "\" marks a .hdr/.img pair; only single-file .nii is supported");
    throw Error(name + ": magic: expected \"" + printable((const uint8_t*)L.magic_bytes, L.magic_len) +
                "\" for a " + std::to_string(size) + "-byte header, found \"" + h.magic + "\"");
  }
  for (int i = 0; i < 8; ++i) {
    h.dim[i] = load_int(b + L.dim + i * L.dim_w, L.dim_w, o);
    h.pixdim[i] = load_real(b + L.pixdim + i * L.real_w, L.real_w, o);
  }
  h.datatype = (int)load_int(b + L.datatype, 2, o);
  h.bitpix = (int)load_int(b + L.bitpix, 2, o);
  h.vox_offset = h.format == 1 ? load_real(b + L.vox_offset, 4, o) : (double)load_int(b + L.vox_offset, 8, o);
  h.scl_slope = load_real(b + L.scl_slope, L.real_w, o);
  h.scl_inter = load_real(b + L.scl_inter, L.real_w, o);
  h.qform_code = (int)load_int(b + L.qform_code, L.code_w, o);
  h.sform_code = (int)load_int(b + L.sform_code, L.code_w, o);
  for (int i = 0; i < 6; ++i) h.quatern[i] = load_real(b + L.quatern + i * L.real_w, L.real_w, o);
  for (int r = 0; r < 3; ++r)
    for (int c = 0; c < 4; ++c) h.srow[r][c] = load_real(b + L.srow + (r * 4 + c) * L.real_w, L.real_w, o);
  h.xyzt_units = (int)load_int(b + L.xyzt_units, L.xyzt_w, o);
  const char* d = (const char*)b + L.descrip;
  h.descrip.assign(d, strnlen(d, 80));
  return h;
}

void encode_header(const RawHeader& h, uint8_t* b) {
  const Layout& L = h.format == 2 ? kNifti2 : kNifti1;
  const ByteOrder o = h.byte_order;
  std::memset(b, 0, (size_t)L.size);
  store_bits(b, (uint64_t)L.size, 4, o);
  std::memcpy(b + L.magic, L.magic_bytes, (size_t)L.magic_len);
  for (int i = 0; i < 8; ++i) {
    store_bits(b + L.dim + i * L.dim_w, (uint64_t)h.dim[i], L.dim_w, o);
    store_real(b + L.pixdim + i * L.real_w, h.pixdim[i], L.real_w, o);
  }
  store_bits(b + L.datatype, (uint64_t)h.datatype, 2, o);
  store_bits(b + L.bitpix, (uint64_t)h.bitpix, 2, o);
  if (h.format == 1)
    store_real(b + L.vox_offset, h.vox_offset, 4, o);
  else
    store_bits(b + L.vox_offset, (uint64_t)(int64_t)h.vox_offset, 8, o);
  store_real(b + L.scl_slope, h.scl_slope, L.real_w, o);
  store_real(b + L.scl_inter, h.scl_inter, L.real_w, o);
  store_bits(b + L.qform_code, (uint64_t)h.qform_code, L.code_w, o);
  store_bits(b + L.sform_code, (uint64_t)h.sform_code, L.code_w, o);
  for (int i = 0; i < 6; ++i) store_real(b + L.quatern + i * L.real_w, h.quatern[i], L.real_w, o);
  for (int r = 0; r < 3; ++r)
    for (int c = 0; c < 4; ++c) store_real(b + L.srow + (r * 4 + c) * L.real_w, h.srow[r][c], L.real_w, o);
  store_bits(b + L.xyzt_units, (uint64_t)h.xyzt_units, L.xyzt_w, o);
  std::memcpy(b + L.descrip, h.descrip.data(), std::min<size_t>(h.descrip.size(), 79));
}

}  // namespace detail

// NIfTI-1 method 2: a unit quaternion (a, b, c, d) with a = √(1 − b² − c² − d²)
// gives the rotation R; the affine is R · diag(dx, dy, qfac·dz) plus the offsets.
// When b² + c² + d² reaches 1 (float rounding), a is taken as 0 and (b, c, d)
// renormalised: a 180° rotation.
Affine quatern_to_affine(double b, double c, double d, double qx, double qy, double qz,
                         double dx, double dy, double dz, double qfac) {
  double a = 1.0 - (b * b + c * c + d * d);
  if (a < 1e-7) {
    const double n = 1.0 / std::sqrt(b * b + c * c + d * d);
    b *= n, c *= n, d *= n;
    a = 0;
  } else {
    a = std::sqrt(a);
  }
  const double sx = dx > 0 ? dx : 1, sy = dy > 0 ? dy : 1, sz = (dz > 0 ? dz : 1) * (qfac < 0 ? -1 : 1);
  const double R[3][3] = {{a * a + b * b - c * c - d * d, 2 * (b * c - a * d), 2 * (b * d + a * c)},
                          {2 * (b * c + a * d), a * a + c * c - b * b - d * d, 2 * (c * d - a * b)},
                          {2 * (b * d - a * c), 2 * (c * d + a * b), a * a + d * d - c * c - b * b}};
  Affine m = identity_affine();
  const double s[3] = {sx, sy, sz}, off[3] = {qx, qy, qz};
  for (int r = 0; r < 3; ++r) {
    for (int col = 0; col < 3; ++col) m[r][col] = R[r][col] * s[col];
    m[r][3] = off[r];
  }
  return m;
}

namespace {
using M3 = std::array<std::array<double, 3>, 3>;
double det3(const M3& m) {
  return m[0][0] * (m[1][1] * m[2][2] - m[1][2] * m[2][1]) - m[0][1] * (m[1][0] * m[2][2] - m[1][2] * m[2][0]) +
         m[0][2] * (m[1][0] * m[2][1] - m[1][1] * m[2][0]);
}
// (M⁻¹)ᵀ = cofactor matrix / det.
M3 inverse_transpose(const M3& m, double det) {
  M3 r;
  for (int i = 0; i < 3; ++i)
    for (int j = 0; j < 3; ++j) {
      const int i1 = (i + 1) % 3, i2 = (i + 2) % 3, j1 = (j + 1) % 3, j2 = (j + 2) % 3;
      r[i][j] = (m[i1][j1] * m[i2][j2] - m[i1][j2] * m[i2][j1]) / det;
    }
  return r;
}
}  // namespace

Quatern affine_to_quatern(const Affine& a) {
  Quatern q;
  q.qx = a[0][3], q.qy = a[1][3], q.qz = a[2][3];
  M3 R;
  double len[3];
  for (int c = 0; c < 3; ++c) {
    len[c] = std::sqrt(a[0][c] * a[0][c] + a[1][c] * a[1][c] + a[2][c] * a[2][c]);
    if (!(len[c] > 0) || !std::isfinite(len[c]))
      throw Error("affine: column " + std::to_string(c) + " has length 0 or is not finite; cannot derive a qform");
    for (int r = 0; r < 3; ++r) R[r][c] = a[r][c] / len[c];
  }
  q.dx = len[0], q.dy = len[1], q.dz = len[2];
  // A sheared affine has no exact quaternion; the nearest rotation is its
  // orthogonal polar factor, which Newton's iteration X ← (X + X⁻ᵀ)/2 reaches
  // in a few steps from any non-singular start.
  for (int it = 0; it < 100; ++it) {
    const double det = det3(R);
    if (!(std::fabs(det) > 1e-12)) throw Error("affine: the 3×3 part is singular; cannot derive a qform");
    const M3 inv_t = inverse_transpose(R, det);
    double change = 0;
    for (int r = 0; r < 3; ++r)
      for (int c = 0; c < 3; ++c) {
        const double next = 0.5 * (R[r][c] + inv_t[r][c]);
        change = std::max(change, std::fabs(next - R[r][c]));
        R[r][c] = next;
      }
    if (change < 1e-15) break;
  }
  // A reflection cannot be a quaternion: NIfTI stores it as qfac = −1, a flip of the third axis.
  if (det3(R) < 0) {
    q.qfac = -1;
    for (int r = 0; r < 3; ++r) R[r][2] = -R[r][2];
  }
  // Quaternion from a rotation matrix, branching on the largest diagonal term
  // so the division is by a number well away from 0.
  const double trace = R[0][0] + R[1][1] + R[2][2];
  double qa, qb, qc, qd;
  if (trace + 1.0 > 0.5) {
    qa = 0.5 * std::sqrt(trace + 1.0);
    qb = 0.25 * (R[2][1] - R[1][2]) / qa;
    qc = 0.25 * (R[0][2] - R[2][0]) / qa;
    qd = 0.25 * (R[1][0] - R[0][1]) / qa;
  } else if (R[0][0] >= R[1][1] && R[0][0] >= R[2][2]) {
    qb = 0.5 * std::sqrt(1.0 + R[0][0] - R[1][1] - R[2][2]);
    qc = 0.25 * (R[0][1] + R[1][0]) / qb;
    qd = 0.25 * (R[0][2] + R[2][0]) / qb;
    qa = 0.25 * (R[2][1] - R[1][2]) / qb;
  } else if (R[1][1] >= R[2][2]) {
    qc = 0.5 * std::sqrt(1.0 + R[1][1] - R[0][0] - R[2][2]);
    qb = 0.25 * (R[0][1] + R[1][0]) / qc;
    qd = 0.25 * (R[1][2] + R[2][1]) / qc;
    qa = 0.25 * (R[0][2] - R[2][0]) / qc;
  } else {
    qd = 0.5 * std::sqrt(1.0 + R[2][2] - R[0][0] - R[1][1]);
    qb = 0.25 * (R[0][2] + R[2][0]) / qd;
    qc = 0.25 * (R[1][2] + R[2][1]) / qd;
    qa = 0.25 * (R[1][0] - R[0][1]) / qd;
  }
  // q and −q are the same rotation; NIfTI stores the one with a ≥ 0.
  if (qa < 0) qb = -qb, qc = -qc, qd = -qd;
  q.b = qb, q.c = qc, q.d = qd;
  return q;
}

Affine nifti_affine(const NiftiVolume& v) {
  if (v.sform_code > 0) return v.sform;
  if (v.qform_code > 0) return v.qform;
  Affine m = identity_affine();
  for (int i = 0; i < 3; ++i) {
    const double p = v.pixdim[i + 1];
    m[i][i] = (p > 0 && std::isfinite(p)) ? p : 1.0;
  }
  return m;
}

}  // namespace ctg::data
