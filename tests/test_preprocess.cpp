// Preprocessing (data/preprocess.h): the lung window, body and lung masks on
// a hand-drawn slice with known areas, crop and resize, orientation from the
// header on volumes written with different affines, and slice choice.
#include <doctest/doctest.h>
#include <unistd.h>

#include <algorithm>
#include <cmath>
#include <filesystem>
#include <set>

#include "data/nifti.h"
#include "data/preprocess.h"
#include "tests/test_util.h"

using namespace ctg::data;
namespace fs = std::filesystem;

namespace {

using ctg::test::TempDir;

bool in_ellipse(double x, double y, double cx, double cy, double a, double b) {
  const double u = (x - cx) / a, v = (y - cy) / b;
  return u * u + v * v <= 1;
}

// 256 × 256: air; a soft-tissue body ellipse (centre 128,110; semi-axes
// 100 × 70) with two lung ellipses (30 × 45) at x = 83 and 173; a table
// (+100 HU, rows 190..197) below the body's lowest row (180), 9 rows of air apart.
constexpr int64_t W = 256, H = 256;
std::vector<float> drawn_slice() {
  std::vector<float> hu((size_t)(W * H), -1000.f);
  for (int64_t y = 0; y < H; ++y)
    for (int64_t x = 0; x < W; ++x) {
      float& v = hu[(size_t)(y * W + x)];
      if (in_ellipse(x, y, 128, 110, 100, 70)) v = 40;
      if (in_ellipse(x, y, 83, 110, 30, 45) || in_ellipse(x, y, 173, 110, 30, 45)) v = -850;
      if (y >= 190 && y <= 197 && x >= 20 && x < 236) v = 100;
    }
  return hu;
}

}  // namespace

TEST_CASE("preprocess: lung window maps -1350..150 HU onto 0..1") {
  CHECK(lung_window(-1350) == 0.f);
  CHECK(lung_window(150) == 1.f);
  CHECK(lung_window(-315) == doctest::Approx(0.69).epsilon(1e-6));
  CHECK(lung_window(-600) == doctest::Approx(0.5).epsilon(1e-6));
  CHECK(lung_window(-3000) == 0.f);
  CHECK(lung_window(3000) == 1.f);
  CHECK(lung_window(std::nanf("")) == 0.f);
}

TEST_CASE("preprocess: on a drawn slice the body mask leaves out the table and lung fraction and crop and masking are right") {
  const std::vector<float> hu = drawn_slice();
  PreprocessOptions opt;
  std::vector<float> win(hu.size());
  for (size_t i = 0; i < hu.size(); ++i) win[i] = lung_window(hu[i], opt);
  const BodyMasks m = body_masks(win.data(), W, H, opt);
  REQUIRE(m.found);
  // The table is a component of its own, smaller than the body: not in any mask.
  bool table_in_body = false;
  for (int64_t y = 190; y <= 197; ++y)
    for (int64_t x = 20; x < 236; ++x) table_in_body |= m.body[(size_t)(y * W + x)] != 0;
  CHECK_FALSE(table_in_body);
  // Body = the ellipse (π·100·70 ≈ 21 991 px; closing a convex shape adds nothing).
  CHECK(m.body_area == doctest::Approx(M_PI * 100 * 70).epsilon(0.01));
  CHECK(m.lung_area == doctest::Approx(2 * M_PI * 30 * 45).epsilon(0.02));
  // Bounding box of the ellipse's pixel centres, half-open: x 28..228, y 40..180.
  CHECK(m.x0 == 28);
  CHECK(m.x1 == 229);
  CHECK(m.y0 == 40);
  CHECK(m.y1 == 181);

  opt.size = 128;
  const PreprocessedSlice s = preprocess_slice(hu.data(), W, H, opt);
  const double want = (2 * 30.0 * 45) / (100.0 * 70);  // area ratio of the ellipses: 0.3857
  CHECK(s.lung_fraction == doctest::Approx(want).epsilon(0.03));
  CHECK(s.usable);
  CHECK(s.crop_x0 == 8);
  CHECK(s.crop_x1 == 249);
  CHECK(s.crop_y0 == 20);
  CHECK(s.crop_y1 == 201);
  REQUIRE(s.pixels.size() == (size_t)(128 * 128));
  // Outside the body is 0: the crop's corners, and the table (input row 193
  // lies at output row (193 − 20 + 0.5)·128/181 − 0.5 ≈ 122).
  CHECK(s.pixels[0] == 0.f);
  CHECK(s.pixels[127] == 0.f);
  CHECK(s.pixels[127 * 128] == 0.f);
  CHECK(s.pixels[127 * 128 + 127] == 0.f);
  CHECK(std::all_of(&s.pixels[122 * 128], &s.pixels[123 * 128], [](float p) { return p == 0.f; }));
  // Inside: soft tissue between the lungs keeps its windowed value (40 HU → 0.9267),
  // the lungs theirs (−850 HU → 0.3333).
  CHECK(s.pixels[(size_t)(64 * 128 + 64)] == doctest::Approx(1390.0 / 1500).epsilon(1e-5));
  const int64_t lung_col = (int64_t)std::lround((83 - 8 + 0.5) * 128 / 241.0 - 0.5);
  CHECK(s.pixels[(size_t)(64 * 128 + lung_col)] == doctest::Approx(500.0 / 1500).epsilon(1e-5));
  CHECK(std::all_of(s.pixels.begin(), s.pixels.end(), [](float p) { return p >= 0.f && p <= 1.f; }));
}

TEST_CASE("preprocess: vessels inside a lung count as lung and slices without body or lungs are unusable") {
  std::vector<float> hu = drawn_slice();
  // A bright vessel disc inside the left lung, not touching its wall.
  for (int64_t y = 0; y < H; ++y)
    for (int64_t x = 0; x < W; ++x)
      if (in_ellipse(x, y, 83, 110, 5, 5)) hu[(size_t)(y * W + x)] = 60;
  PreprocessOptions opt;
  opt.size = 64;
  const PreprocessedSlice with_vessel = preprocess_slice(hu.data(), W, H, opt);
  CHECK(with_vessel.lung_fraction == doctest::Approx(2 * 30.0 * 45 / (100.0 * 70)).epsilon(0.03));

  SUBCASE("an all-air slice has no body and is unusable") {
    const std::vector<float> air((size_t)(W * H), -1024.f);
    const PreprocessedSlice s = preprocess_slice(air.data(), W, H, opt);
    CHECK_FALSE(s.usable);
    CHECK(s.lung_fraction == 0);
    CHECK(s.crop_x1 == 0);
    REQUIRE(s.pixels.size() == (size_t)(64 * 64));
    CHECK(std::all_of(s.pixels.begin(), s.pixels.end(), [](float p) { return p == 0.f; }));
  }
  SUBCASE("a body without lungs (an abdomen) has a body but is unusable") {
    std::vector<float> belly((size_t)(W * H), -1024.f);
    for (int64_t y = 0; y < H; ++y)
      for (int64_t x = 0; x < W; ++x)
        if (in_ellipse(x, y, 128, 128, 90, 60)) belly[(size_t)(y * W + x)] = 50;
    const PreprocessedSlice s = preprocess_slice(belly.data(), W, H, opt);
    CHECK_FALSE(s.usable);
    CHECK(s.lung_fraction == 0);
    CHECK(s.crop_x1 > s.crop_x0);
  }
  SUBCASE("specks of tissue in the air are no body") {
    std::vector<float> specks((size_t)(W * H), -1024.f);
    for (int64_t i = 0; i < W * H; i += 97) specks[(size_t)i] = 100;
    const PreprocessedSlice s = preprocess_slice(specks.data(), W, H, opt);
    CHECK_FALSE(s.usable);
    CHECK(s.crop_x1 == 0);
  }
}

TEST_CASE("preprocess: a real chest CT slice (LIDC fixture) gives a body and a plausible lung fraction") {
  const NiftiVolume v = read_nifti(std::string(CTGRAD_SOURCE_DIR) + "/../shared/fixtures/ct/lidc_chest_2slice.nii.gz");
  const OrientedVolume o = orient_axial(v);
  REQUIRE(o.width == 512);
  REQUIRE(o.height == 512);
  PreprocessOptions opt;
  opt.size = 256;
  const PreprocessedSlice s = preprocess_slice(o.slice(0), o.width, o.height, opt);
  CHECK(s.usable);
  CHECK(s.lung_fraction > 0.2);
  CHECK(s.lung_fraction < 0.6);
  CHECK(s.crop_x1 - s.crop_x0 > 250);  // a chest, not a bit of the table
  CHECK(s.crop_y1 - s.crop_y0 > 180);
}

TEST_CASE("preprocess: resize averages areas when shrinking and interpolates when enlarging") {
  const std::vector<float> sq = {1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16};
  const std::vector<float> half = resize_image(sq.data(), 4, 4, 2, 2);
  CHECK(half == std::vector<float>{3.5f, 5.5f, 11.5f, 13.5f});  // means of the 2×2 blocks
  const std::vector<float> third = resize_image(sq.data(), 4, 1, 3, 1);  // windows of 4/3 pixels
  CHECK(third[0] == doctest::Approx((1 + 2 / 3.0) * 0.75));
  CHECK(third[1] == doctest::Approx((2 * 2 / 3.0 + 3 * 2 / 3.0) * 0.75));
  const std::vector<float> ramp = {0, 1};
  CHECK(resize_image(ramp.data(), 2, 1, 4, 1) == std::vector<float>{0.f, 0.25f, 0.75f, 1.f});
  CHECK(resize_image(sq.data(), 4, 4, 4, 4) == sq);  // same size: identity
  // A non-square image is stretched to the square, keeping a constant constant.
  const std::vector<float> flat(30 * 7, 0.4f);
  for (float p : resize_image(flat.data(), 30, 7, 16, 16)) CHECK(p == doctest::Approx(0.4f));
}

TEST_CASE("orient_axial: the same anatomy under two affines gives the same upright slices") {
  // A world grid (RAS+ mm): x = x0 + i (12 points), y = y0 + j (10), z = z0 + 2k (6),
  // and a value that names the grid point, f = i + 12 j + 120 k, plus a marker
  // of 5000 at the patient's anterior-right corner of slice k = 2 (largest x: right;
  // largest y: anterior).
  const double x0 = -40, y0 = 25, z0 = -100;
  auto f = [](int i, int j, int k) { return (float)(i + 12 * j + 120 * k + (i == 11 && j == 9 && k == 2 ? 5000 : 0)); };
  TempDir tmp;

  // Volume 1: stored in RAS order with an sform.
  NiftiWriteSpec s1;
  s1.nx = 12, s1.ny = 10, s1.nz = 6;
  s1.affine = identity_affine();
  s1.affine[2][2] = 2;
  s1.affine[0][3] = x0, s1.affine[1][3] = y0, s1.affine[2][3] = z0;
  std::vector<int16_t> v1(12 * 10 * 6);
  for (int k = 0; k < 6; ++k)
    for (int j = 0; j < 10; ++j)
      for (int i = 0; i < 12; ++i) v1[(size_t)((k * 10 + j) * 12 + i)] = (int16_t)f(i, j, k);
  write_nifti(tmp / "ras.nii.gz", s1, v1.data());

  // Volume 2: axis 0 runs down the body (superior → inferior), axis 1 from the
  // patient's right to left, axis 2 from back to front; only a qform.
  NiftiWriteSpec s2;
  s2.nx = 6, s2.ny = 12, s2.nz = 10;
  s2.sform_code = 0, s2.qform_code = 1;
  s2.affine = identity_affine();
  const double cols[3][3] = {{0, 0, -2}, {-1, 0, 0}, {0, 1, 0}};  // world step of each stored axis
  for (int r = 0; r < 3; ++r)
    for (int c = 0; c < 3; ++c) s2.affine[r][c] = cols[c][r];
  s2.affine[0][3] = x0 + 11, s2.affine[1][3] = y0, s2.affine[2][3] = z0 + 10;
  std::vector<int16_t> v2(v1.size());
  for (int a2 = 0; a2 < 10; ++a2)
    for (int a1 = 0; a1 < 12; ++a1)
      for (int a0 = 0; a0 < 6; ++a0) v2[(size_t)((a2 * 12 + a1) * 6 + a0)] = (int16_t)f(11 - a1, a2, 5 - a0);
  write_nifti(tmp / "sip.nii.gz", s2, v2.data());

  const NiftiVolume r1 = read_nifti(tmp / "ras.nii.gz"), r2 = read_nifti(tmp / "sip.nii.gz");
  REQUIRE(r2.sform_code == 0);
  const OrientedVolume o1 = orient_axial(r1), o2 = orient_axial(r2);
  for (const OrientedVolume* o : {&o1, &o2}) {
    CHECK(o->width == 12);
    CHECK(o->height == 10);
    CHECK(o->depth == 6);
    CHECK(o->col_mm == doctest::Approx(1));
    CHECK(o->row_mm == doctest::Approx(1));
    CHECK(o->slice_mm == doctest::Approx(2));
  }
  CHECK(o1.hu == o2.hu);
  // Radiological display: column c is x = x0 + 11 − c (towards the patient's
  // left), row r is y = y0 + 9 − r (anterior at the top), slice z is z0 + 2z.
  bool all = true;
  for (int z = 0; z < 6; ++z)
    for (int r = 0; r < 10; ++r)
      for (int c = 0; c < 12; ++c) all &= o1.slice(z)[r * 12 + c] == f(11 - c, 9 - r, z);
  CHECK(all);
  CHECK(o1.slice(2)[0] >= 5000);  // the anterior-right marker sits at the top left
  CHECK(o2.slice(2)[0] >= 5000);

  // A few degrees of obliquity pair the axes the same way.
  NiftiWriteSpec s3 = s1;
  const double t = 4 * M_PI / 180;
  s3.affine[0][0] = std::cos(t), s3.affine[0][1] = -std::sin(t);
  s3.affine[1][0] = std::sin(t), s3.affine[1][1] = std::cos(t);
  write_nifti(tmp / "oblique.nii", s3, v1.data());
  CHECK(orient_axial(read_nifti(tmp / "oblique.nii")).hu == o1.hu);
}

TEST_CASE("choose_slices: central slice and ten evenly spaced over the middle of the lung-bearing range") {
  auto pattern = [](int64_t n, const std::set<int64_t>& usable) {
    std::vector<PreprocessedSlice> s((size_t)n);
    for (int64_t z : usable) s[(size_t)z].usable = true;
    return s;
  };
  std::set<int64_t> all;
  for (int64_t z = 0; z < 50; ++z) all.insert(z);

  // 50 usable slices: range [0, 49], midpoint 24.5 (tie → 24), middle 60 % = [9.8, 39.2].
  SliceChoice c = choose_slices(pattern(50, all));
  CHECK(c.central == 24);
  CHECK(c.ten == std::vector<int64_t>{10, 13, 16, 20, 23, 26, 29, 33, 36, 39});

  // Unusable ends are outside the range: usable 8..41 → range [8, 41], midpoint
  // 24.5 (→ 24), middle 60 % = [14.6, 34.4].
  std::set<int64_t> mid;
  for (int64_t z = 8; z <= 41; ++z) mid.insert(z);
  c = choose_slices(pattern(50, mid));
  CHECK(c.central == 24);
  REQUIRE(c.ten.size() == 10);
  CHECK(c.ten.front() == 15);
  CHECK(c.ten.back() == 34);

  // A hole at the midpoint: the nearest usable slice (tie → the lower one).
  std::set<int64_t> holed;
  for (int64_t z = 5; z <= 30; ++z)
    if (z != 17 && z != 18) holed.insert(z);
  c = choose_slices(pattern(40, holed));
  CHECK(c.central == 16);
  REQUIRE(c.ten.size() == 10);
  for (int64_t z : c.ten) CHECK(holed.count(z) == 1);
  CHECK(std::adjacent_find(c.ten.begin(), c.ten.end(), [](int64_t a, int64_t b) { return a >= b; }) == c.ten.end());

  // Too few usable slices in the middle: the whole range supplies them.
  std::set<int64_t> ends = {0, 1, 2, 3, 4, 5, 44, 45, 46, 47, 48, 49};
  c = choose_slices(pattern(50, ends));
  REQUIRE(c.ten.size() == 10);
  for (int64_t z : c.ten) CHECK(ends.count(z) == 1);
  CHECK(std::set<int64_t>(c.ten.begin(), c.ten.end()).size() == 10);

  // Fewer than `count` usable slices: all of them.
  c = choose_slices(pattern(20, {3, 7, 9}));
  CHECK(c.central == 7);
  CHECK(c.ten == std::vector<int64_t>{3, 7, 9});
  // One asked for: the central slice.
  CHECK(choose_slices(pattern(50, all), 1).ten == std::vector<int64_t>{24});
  // None usable.
  c = choose_slices(pattern(20, {}));
  CHECK(c.central == -1);
  CHECK(c.ten.empty());
}
