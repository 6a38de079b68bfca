// NIfTI reader/writer: third-party fixtures (expected values taken once with
// nibabel 5.0 and hard-coded), geometry, round trips through every datatype,
// byte order and format, and one crafted file per kind of damage.
#include <doctest/doctest.h>
#include <unistd.h>

#include <algorithm>
#include <cfloat>
#include <cmath>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <limits>
#include <random>

#include "data/nifti.h"
#include "engine/tensor.h"
#include "tests/test_util.h"

using namespace ctg;
using namespace ctg::data;
namespace fs = std::filesystem;

namespace {

std::string fixture(const std::string& rel) { return std::string(CTGRAD_SOURCE_DIR) + "/../shared/fixtures/" + rel; }

using ctg::test::TempDir;

void save(const std::string& path, const std::vector<uint8_t>& b) {
  std::ofstream(path, std::ios::binary).write((const char*)b.data(), (std::streamsize)b.size());
}

// Little-endian field patches for crafting damaged files.
void put(std::vector<uint8_t>& b, size_t off, uint64_t v, int w) {
  for (int i = 0; i < w; ++i) b[off + i] = (uint8_t)(v >> (8 * i));
}
void put_f32(std::vector<uint8_t>& b, size_t off, float f) {
  uint32_t u;
  std::memcpy(&u, &f, 4);
  put(b, off, u, 4);
}

// A 4×3×2 int16 volume with values i·37 − 300 (so negatives and byte order matter).
std::vector<uint8_t> tiny(int format = 1, ByteOrder order = ByteOrder::little, bool gzip = false) {
  NiftiWriteSpec s;
  s.nx = 4, s.ny = 3, s.nz = 2, s.format = format, s.byte_order = order;
  std::vector<int16_t> v(24);
  for (int i = 0; i < 24; ++i) v[i] = (int16_t)(i * 37 - 300);
  return encode_nifti(s, kNiftiInt16, v.data(), gzip);
}

void check_affine(const Affine& a, const std::vector<std::vector<double>>& want, double tol) {
  for (int r = 0; r < 3; ++r)
    for (int c = 0; c < 4; ++c) CHECK(a[r][c] == doctest::Approx(want[r][c]).epsilon(tol).scale(1.0));
  CHECK(a[3] == std::array<double, 4>{0, 0, 0, 1});
}

// An oblique, left-handed affine: rotations about z and x, a flipped x axis,
// unequal voxel sizes and offsets — nothing a sign or transpose bug survives.
Affine oblique_affine() {
  const double cz = std::cos(0.5), sz = std::sin(0.5), cx = std::cos(0.2), sx = std::sin(0.2);
  const double Rz[3][3] = {{cz, -sz, 0}, {sz, cz, 0}, {0, 0, 1}}, Rx[3][3] = {{1, 0, 0}, {0, cx, -sx}, {0, sx, cx}};
  const double scale[3] = {-0.7, 0.8, 2.5}, offset[3] = {-120.5, 88.25, -30};
  Affine a = identity_affine();
  for (int r = 0; r < 3; ++r) {
    for (int c = 0; c < 3; ++c) {
      double rot = 0;
      for (int k = 0; k < 3; ++k) rot += Rz[r][k] * Rx[k][c];
      a[r][c] = rot * scale[c];
    }
    a[r][3] = offset[r];
  }
  return a;
}

}  // namespace

TEST_CASE("nifti fixtures: header facts and voxel statistics match nibabel") {
  struct Fact {
    const char* file;
    int format;
    ByteOrder order;
    bool gz;
    int64_t nx, ny, nz, volumes;
    const char* datatype;
    double px, py, pz, slope, inter;
    int qcode, scode;
    int64_t vox_offset;
    double min, max, mean, sum;
    int64_t argmax;  // first index of the maximum in file order: pins the x-fastest layout
    double centre;   // value at (nx/2, ny/2, nz/2)
  };
  const ByteOrder L = ByteOrder::little, B = ByteOrder::big;
  const Fact facts[] = {
      {"nifti/anatomical.nii", 1, B, false, 33, 41, 25, 1, "int16", 2, 2, 2, 1, 0, 2, 2, 352, -610, 30393,
       8401.066725794532, 284166082, 776, 11881},
      {"nifti/example4d.nii.gz", 1, L, true, 128, 96, 24, 2, "int16", 2, 2, 2.199999, 1, 0, 1, 1, 416, 0, 1162,
       172.9139438205295, 50994397, 6336, 265},
      {"nifti/example_nifti2.nii.gz", 2, L, true, 32, 20, 12, 2, "int16", 2, 2, 2.199999094, 1, 0, 1, 1, 608, 49, 742,
       450.7484375, 3461748, 1869, 265},
      {"nifti/functional.nii", 1, L, false, 17, 21, 3, 20, "int16", 4, 4, 8, 0.07540696859359741, 3100.76171875, 2, 2,
       352, 762.5424194335938, 5538.06591796875, 3626.2806283076384, 3883746.5529174805, 568, 3865.765380859375},
      {"nifti/reoriented_anat_moved.nii", 1, B, false, 21, 26, 22, 1, "float32", 4, 4, 4, 1, 0, 2, 2, 352, 0,
       21199.935546875, 2725.588532230912, 32739769.449157715, 2511, 8117.22021484375},
      {"nifti/row_major.dconn.nii", 2, L, false, 1, 1, 1, 100, "float32", 1, 1, 1, 1, 0, 0, 0, 1488,
       0.1621823012828827, 0.1621823012828827, 0.1621823012828827, 0.1621823012828827, 0, 0.1621823012828827},
      {"nifti/someones_anatomy.nii.gz", 1, L, true, 57, 67, 56, 1, "uint8", 2.75, 2.75, 2.75, 0.35245904326438904,
       6.678363800048828, 4, 4, 352, 6.678363800048828, 96.555419921875, 45.98386415207876, 9834293.123020172, 52741,
       64.12918853759766},
      {"nifti/standard.nii.gz", 1, L, true, 4, 5, 7, 1, "uint8", 1, 3, 2, 1, 0, 0, 2, 352, 0, 255, 54.642857142857146,
       7650, 1, 0},
      {"ct/ct_cropped.nii.gz", 1, L, true, 122, 102, 112, 1, "int16", 1.5, 1.5, 1.5, 1, 0, 0, 2, 352, -1064, 3343,
       -206.55061102309776, -287875370, 896862, 434},
      {"ct/example_ct_sm.nii.gz", 1, L, true, 122, 101, 30, 1, "int16", 3, 3, 3, 1, 0, 0, 2, 352, -1100, 1207,
       -354.09530920305144, -130894872, 28977, 0},
      {"ct/lidc_chest_2slice.nii.gz", 1, L, true, 512, 512, 2, 1, "int16", 0.625, 0.625, 1, 1, 0, 1, 1, 352, -2048,
       1502, -648.601245880127, -340053850, 49428, 150},
  };
  for (const Fact& f : facts) {
    CAPTURE(f.file);
    const NiftiVolume v = read_nifti(fixture(f.file));
    CHECK(v.format == f.format);
    CHECK(v.byte_order == f.order);
    CHECK(v.gzipped == f.gz);
    CHECK(v.nx == f.nx);
    CHECK(v.ny == f.ny);
    CHECK(v.nz == f.nz);
    CHECK(v.volumes == f.volumes);
    CHECK(v.datatype_name == f.datatype);
    CHECK(v.pixdim[1] == doctest::Approx(f.px));
    CHECK(v.pixdim[2] == doctest::Approx(f.py));
    CHECK(v.pixdim[3] == doctest::Approx(f.pz));
    CHECK(v.scl_slope == doctest::Approx(f.slope).epsilon(1e-12));
    CHECK(v.scl_inter == doctest::Approx(f.inter).epsilon(1e-12));
    CHECK(v.qform_code == f.qcode);
    CHECK(v.sform_code == f.scode);
    CHECK(v.vox_offset == f.vox_offset);
    REQUIRE(v.voxels.size() == (size_t)(f.nx * f.ny * f.nz));
    const NiftiStats s = nifti_stats(v);
    CHECK(s.min == f.min);
    CHECK(s.max == f.max);
    CHECK(s.mean == doctest::Approx(f.mean).epsilon(1e-12));
    CHECK(s.sum == doctest::Approx(f.sum).epsilon(1e-12));
    CHECK(std::max_element(v.voxels.begin(), v.voxels.end()) - v.voxels.begin() == f.argmax);
    CHECK(v.at(f.nx / 2, f.ny / 2, f.nz / 2) == (float)f.centre);
  }
}

TEST_CASE("nifti fixtures: qform, sform and the affine rule match nibabel") {
  const NiftiVolume e4 = read_nifti(fixture("nifti/example4d.nii.gz"));
  CHECK(e4.qfac == -1);
  // Here 1 − b² − c² − d² = 1e-9, float32 rounding of a 180° turn. We follow
  // nifti_clib (a = 0 below 1e-7); nibabel takes a = √1e-9, which puts ~1e-4
  // into the off-diagonal terms. The sform (exact zeros there) sides with a = 0.
  check_affine(e4.qform,
               {{-1.999999995978187, 1.0282396754185892e-05, 0.00013905980362440367, 117.8551025390625},
                {-1.0282396754185892e-05, 1.9737114380364735, -0.3555282247524397, -35.72294235229492},
                {0.00012641805535562603, 0.32320761014906196, 2.1710816833341227, -7.248798370361328}},
               2e-4);
  CHECK(std::fabs(e4.qform[0][2]) < 1e-20);
  check_affine(nifti_affine(e4),  // both codes set: the sform wins
               {{-2.0, 6.714715653593746e-19, 9.081024511081715e-18, 117.8551025390625},
                {-6.714715653593746e-19, 1.9737114906311035, -0.35552823543548584, -35.72294235229492},
                {8.25548088896093e-18, 0.3232076168060303, 2.171081781387329, -7.248798370361328}},
               1e-12);
  // The big-endian file: its quaternion (0, 1, 0) is a 180° turn, the a = 0 branch.
  const NiftiVolume an = read_nifti(fixture("nifti/anatomical.nii"));
  check_affine(an.qform, {{-2, 0, 0, 32}, {0, 2, 0, -40}, {0, 0, 2, -16}}, 1e-12);
  check_affine(an.sform, {{-2, 0, 0, 32}, {0, 2, 0, -40}, {0, 0, 2, -16}}, 1e-12);
  const NiftiVolume lidc = read_nifti(fixture("ct/lidc_chest_2slice.nii.gz"));
  check_affine(lidc.qform, {{-0.625, 0, 0, 0}, {0, 0.625, 0, -319.375}, {0, 0, 1, 0}}, 1e-12);
  // sform only (qform_code 0): the sform, whatever the quaternion says.
  check_affine(nifti_affine(read_nifti(fixture("ct/ct_cropped.nii.gz"))),
               {{-1.5, 0, 0, 71.658203125}, {0, -1.5, 0, 255.658203125}, {0, 0, 1.5, 576.2000122070312}}, 1e-7);
  check_affine(nifti_affine(read_nifti(fixture("nifti/standard.nii.gz"))), {{1, 0, 0, 0}, {0, 3, 0, 0}, {0, 0, 2, 0}},
               1e-12);
  // No codes at all: pixdim scaling.
  check_affine(nifti_affine(read_nifti(fixture("nifti/row_major.dconn.nii"))),
               {{1, 0, 0, 0}, {0, 1, 0, 0}, {0, 0, 1, 0}}, 1e-12);
}

TEST_CASE("nifti-info text for the chest CT fixture") {
  NiftiVolume v = read_nifti(fixture("ct/lidc_chest_2slice.nii.gz"));
  v.path = "lidc.nii.gz";
  CHECK(format_nifti_info(v) ==
        "file: lidc.nii.gz\nformat: nifti1\nbyte_order: little\ncompression: gzip\ndim: 512 512 2\n"
        "datatype: int16\nbitpix: 16\npixdim: 0.625 0.625 1\nvox_offset: 352\nscl_slope: 1\nscl_inter: 0\n"
        "qform_code: 1\nsform_code: 1\nmin: -2048\nmax: 1502\nmean: -648.601245880127\nsum: -340053850\n");
  const std::string four_d = format_nifti_info(read_nifti(fixture("nifti/example4d.nii.gz")));
  CHECK(four_d.find("dim: 128 96 24 2\nvolumes: 2\n") != std::string::npos);
  CHECK(four_d.find("pixdim: 2 2 2.199999 2000\n") != std::string::npos);
}

TEST_CASE("nifti round trip: int16 and float32, .nii and .nii.gz, oblique affine") {
  TempDir tmp;
  NiftiWriteSpec s;
  s.nx = 7, s.ny = 5, s.nz = 3, s.affine = oblique_affine(), s.qform_code = 1, s.sform_code = 2;
  std::vector<int16_t> i16(105);
  std::vector<float> f32(105);
  for (int i = 0; i < 105; ++i) {
    i16[i] = (int16_t)((i * 977) % 4000 - 1024);
    f32[i] = (float)std::sin(i * 0.37) * 1e3f + (float)i * 1e-3f;
  }
  for (const char* ext : {".nii", ".nii.gz"}) {
    CAPTURE(ext);
    for (int codes = 0; codes < 3; ++codes) {  // both, qform only, neither
      s.qform_code = codes == 2 ? 0 : 1;
      s.sform_code = codes == 0 ? 2 : 0;
      write_nifti(tmp / (std::string("a") + ext), s, i16.data());
      write_nifti(tmp / (std::string("b") + ext), s, f32.data());
      const NiftiVolume a = read_nifti(tmp / (std::string("a") + ext)), b = read_nifti(tmp / (std::string("b") + ext));
      CHECK(a.gzipped == (std::string(ext) == ".nii.gz"));
      CHECK(a.datatype_name == "int16");
      CHECK(b.datatype_name == "float32");
      for (int i = 0; i < 105; ++i) {
        CHECK(a.voxels[i] == (float)i16[i]);
        CHECK(b.voxels[i] == f32[i]);
      }
      CHECK(a.pixdim[1] == doctest::Approx(0.7));
      CHECK(a.pixdim[3] == doctest::Approx(2.5));
      CHECK(a.qfac == -1);  // the flipped x axis makes it left-handed
      std::vector<std::vector<double>> want(3, std::vector<double>(4));
      for (int r = 0; r < 3; ++r)
        for (int c = 0; c < 4; ++c) want[r][c] = codes < 2 ? s.affine[r][c] : (r == c ? a.pixdim[r + 1] : 0.0);
      // srow is stored as float32: ~1e-7. The qform loses more: this rotation
      // is near 180°, where a = √(1 − b² − c² − d²) amplifies the rounding of b, c, d.
      const double tol = codes == 1 ? 2e-5 : 2e-6;
      check_affine(nifti_affine(a), want, tol);
      check_affine(nifti_affine(b), want, tol);
      if (codes < 2) check_affine(a.qform, want, 2e-5);
    }
  }
  // Overwriting is atomic and leaves no temporary behind.
  size_t entries = 0;
  for (const auto& e : fs::directory_iterator(tmp.dir)) entries += e.path().string().find(".tmp.") == std::string::npos;
  CHECK(entries == 4);
  CHECK_THROWS_WITH_AS(write_nifti(tmp / "no/such/dir.nii", s, i16.data()), doctest::Contains("dir.nii: write:"),
                       ctg::Error);
}

TEST_CASE("nifti every datatype, both byte orders, both formats, plain and gzip, with scaling") {
  auto check_type = [](int code, auto sample) {
    using T = decltype(sample);
    std::vector<T> vals = {T(0), T(1), T(100), std::numeric_limits<T>::max(), std::numeric_limits<T>::lowest(),
                           T(7), T(42), T(99), T(3), T(5), T(11), T(13)};
    for (int format : {1, 2})
      for (ByteOrder o : {ByteOrder::little, ByteOrder::big})
        for (bool gz : {false, true})
          for (double slope : {1.0, 0.5}) {
            CAPTURE(nifti_datatype_name(code));
            CAPTURE(format);
            CAPTURE(byte_order_name(o));
            CAPTURE(gz);
            NiftiWriteSpec s;
            s.nx = 3, s.ny = 2, s.nz = 2, s.format = format, s.byte_order = o, s.scl_slope = slope;
            s.scl_inter = slope == 1 ? 0 : -3;
            const std::vector<uint8_t> file = encode_nifti(s, code, vals.data(), gz);
            const NiftiVolume v = read_nifti_buffer(file.data(), file.size(), "typed");
            CHECK(v.format == format);
            CHECK(v.byte_order == o);
            CHECK(v.datatype == code);
            CHECK(v.scaled);
            for (size_t i = 0; i < vals.size(); ++i) {
              const double want = (double)vals[i] * slope + s.scl_inter;  // beyond float range: ±inf
              CHECK(v.voxels[i] == (std::fabs(want) > FLT_MAX ? std::copysign(INFINITY, want) : (float)want));
            }
          }
  };
  check_type(kNiftiUint8, uint8_t());
  check_type(kNiftiInt8, int8_t());
  check_type(kNiftiInt16, int16_t());
  check_type(kNiftiUint16, uint16_t());
  check_type(kNiftiInt32, int32_t());
  check_type(kNiftiUint32, uint32_t());
  check_type(kNiftiInt64, int64_t());
  check_type(kNiftiUint64, uint64_t());
  check_type(kNiftiFloat32, float());
  check_type(kNiftiFloat64, double());  // ±DBL_MAX saturate to ±inf in float
}

TEST_CASE("nifti quaternion <-> affine, including reflections, 180-degree turns and shear") {
  std::mt19937_64 rng(7);
  std::normal_distribution<double> n01;
  std::uniform_real_distribution<double> size(0.3, 4.0);
  for (int t = 0; t < 200; ++t) {
    double q[4] = {n01(rng), n01(rng), n01(rng), n01(rng)};
    if (t % 10 == 0) q[0] = 0;  // exact 180° rotations
    const double len = std::sqrt(q[0] * q[0] + q[1] * q[1] + q[2] * q[2] + q[3] * q[3]);
    const double sgn = q[0] < 0 ? -1 : 1;
    const Affine a = quatern_to_affine(sgn * q[1] / len, sgn * q[2] / len, sgn * q[3] / len, n01(rng), n01(rng),
                                       n01(rng), size(rng), size(rng), size(rng), t % 2 ? -1 : 1);
    const Quatern back = affine_to_quatern(a);
    const Affine b = quatern_to_affine(back.b, back.c, back.d, back.qx, back.qy, back.qz, back.dx, back.dy, back.dz,
                                       back.qfac);
    CHECK(back.qfac == (t % 2 ? -1 : 1));
    for (int r = 0; r < 4; ++r)
      for (int c = 0; c < 4; ++c) CHECK(b[r][c] == doctest::Approx(a[r][c]).epsilon(1e-9).scale(1.0));
  }
  // A sheared affine keeps its column lengths; the rotation becomes orthonormal.
  Affine shear = identity_affine();
  shear[0][1] = 0.2;
  const Quatern q = affine_to_quatern(shear);
  CHECK(q.dy == doctest::Approx(std::sqrt(1.04)));
  const Affine r = quatern_to_affine(q.b, q.c, q.d, 0, 0, 0, 1, 1, 1, q.qfac);
  for (int i = 0; i < 3; ++i)
    for (int j = 0; j < 3; ++j) {
      double dot = 0;
      for (int k = 0; k < 3; ++k) dot += r[k][i] * r[k][j];
      CHECK(dot == doctest::Approx(i == j ? 1.0 : 0.0).scale(1.0));
    }
  Affine flat = identity_affine();
  flat[2][2] = 0;
  CHECK_THROWS_WITH_AS(affine_to_quatern(flat), doctest::Contains("affine"), ctg::Error);
}

TEST_CASE("nifti odd but valid files: 2-D, big-endian NIfTI-2, multi-member and trailing bytes in gzip") {
  std::vector<uint8_t> flat = tiny();
  put(flat, 40, 2, 2);  // dim[0] = 2: dim[3] no longer counts
  NiftiVolume v = read_nifti_buffer(flat.data(), flat.size(), "2d");
  CHECK(v.ndim == 2);
  CHECK(v.nz == 1);
  CHECK(v.voxels.size() == 12);
  CHECK(v.voxels[11] == 11 * 37 - 300);
  for (int format : {1, 2})
    for (ByteOrder o : {ByteOrder::little, ByteOrder::big}) {
      const std::vector<uint8_t> b = tiny(format, o);
      v = read_nifti_buffer(b.data(), b.size(), "t");
      CHECK(v.at(3, 2, 1) == 23 * 37 - 300);
    }
  // `cat a.gz b.gz` is one valid gzip stream; bytes after the last member are ignored.
  const std::vector<uint8_t> raw = tiny();
  std::vector<uint8_t> two = detail::gzip_compress(raw.data(), 200, 6);
  const std::vector<uint8_t> second = detail::gzip_compress(raw.data() + 200, raw.size() - 200, 1);
  two.insert(two.end(), second.begin(), second.end());
  two.insert(two.end(), {0, 0, 0, 'x'});
  v = read_nifti_buffer(two.data(), two.size(), "multi");
  CHECK(v.voxels[23] == 23 * 37 - 300);
}

TEST_CASE("nifti malformed files: one clear error naming the file and the field") {
  TempDir tmp;
  int k = 0;
  auto expect = [&](const std::vector<uint8_t>& bytes, const std::string& field) {
    const std::string path = tmp / ("bad" + std::to_string(k++) + ".nii");
    save(path, bytes);
    CAPTURE(field);
    CHECK_THROWS_WITH_AS(read_nifti(path), doctest::Contains((path + ": " + field).c_str()), ctg::Error);
    CHECK_THROWS_WITH_AS(read_nifti_buffer(bytes.data(), bytes.size(), "mem"), doctest::Contains(("mem: " + field).c_str()),
                         ctg::Error);
  };
  auto gz = [](const std::vector<uint8_t>& b) { return detail::gzip_compress(b.data(), b.size(), 6); };
  auto patched = [](int format, auto&& edit) {
    std::vector<uint8_t> b = tiny(format);
    edit(b);
    return b;
  };
  const std::vector<uint8_t> good = tiny();
  expect({}, "sizeof_hdr");
  expect(patched(1, [](auto& b) { put(b, 0, 349, 4); }), "sizeof_hdr");
  expect(patched(1, [](auto& b) { std::memcpy(&b[344], "abc", 4); }), "magic");
  expect(patched(1, [](auto& b) { std::memcpy(&b[344], "ni1", 4); }), "magic");
  expect(patched(2, [](auto& b) { b[9] = 'X'; }), "magic");
  expect(std::vector<uint8_t>(good.begin(), good.begin() + 200), "header");
  expect(std::vector<uint8_t>(good.begin(), good.end() - 1), "data");
  expect(patched(1, [](auto& b) { put(b, 40, 0, 2); }), "dim[0]");
  expect(patched(1, [](auto& b) { put(b, 40, 8, 2); }), "dim[0]");
  expect(patched(1, [](auto& b) { put(b, 42, 0, 2); }), "dim[1]");
  expect(patched(1, [](auto& b) { put(b, 46, (uint64_t)-1, 2); }), "dim[3]");
  expect(patched(1, [](auto& b) { put(b, 42, 1000, 2); }), "data");
  expect(patched(2, [](auto& b) { put(b, 16 + 8, 1ull << 40, 8), put(b, 16 + 16, 1ull << 40, 8); }), "dim: ");
  expect(patched(2, [](auto& b) { put(b, 16 + 24, (uint64_t)-5, 8); }), "dim[3]");
  expect(patched(1, [](auto& b) { put(b, 70, 17, 2); }), "datatype: unknown");
  expect(patched(1, [](auto& b) { put(b, 70, 128, 2), put(b, 72, 24, 2); }), "datatype: unsupported datatype rgb24");
  expect(patched(1, [](auto& b) { put(b, 70, 32, 2), put(b, 72, 64, 2); }), "datatype: unsupported datatype complex64");
  expect(patched(1, [](auto& b) { put(b, 72, 8, 2); }), "bitpix");
  expect(patched(1, [](auto& b) { put_f32(b, 108, 100000); }), "vox_offset");
  expect(patched(1, [](auto& b) { put_f32(b, 108, 100); }), "vox_offset");
  expect(patched(1, [](auto& b) { put_f32(b, 108, 352.5f); }), "vox_offset");
  expect(patched(1, [](auto& b) { put_f32(b, 108, NAN); }), "vox_offset");
  expect(patched(2, [](auto& b) { put(b, 168, (uint64_t)-1, 8); }), "vox_offset");
  // The same damage inside a valid gzip stream, where sizes are only known by decompressing.
  expect(gz(std::vector<uint8_t>(good.begin(), good.end() - 1)), "data");
  expect(gz(patched(1, [](auto& b) { put_f32(b, 108, 100000); })), "vox_offset");
  // A header claiming 32767³ int16 voxels (70 TB) over a few bytes of data: the
  // reader must fail on the missing data, not try to allocate.
  expect(gz(patched(1, [](auto& b) { put(b, 42, 32767, 2), put(b, 44, 32767, 2), put(b, 46, 32767, 2); })), "data");
  expect(patched(1, [](auto& b) { put(b, 42, 32767, 2), put(b, 44, 32767, 2), put(b, 46, 32767, 2); }), "data");
  // Damage to the gzip stream itself.
  const std::vector<uint8_t> z = gz(good);
  expect(std::vector<uint8_t>(z.begin(), z.begin() + (long)z.size() / 2), "gzip");
  expect(std::vector<uint8_t>(z.begin(), z.end() - 3), "gzip");  // inside the trailer
  std::vector<uint8_t> crc = z;
  crc[crc.size() - 8] ^= 0xff;
  expect(crc, "gzip: corrupt");
  std::vector<uint8_t> block = z;
  block[10] = 0xff;  // first deflate byte: block type 3 does not exist
  expect(block, "gzip: corrupt");
  // Not files at all.
  CHECK_THROWS_WITH_AS(read_nifti(tmp / "missing.nii"), doctest::Contains("missing.nii: open"), ctg::Error);
  CHECK_THROWS_WITH_AS(read_nifti(tmp.dir.string()), doctest::Contains("open: not a regular file"), ctg::Error);
}
