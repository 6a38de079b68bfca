// The picture and array layer of `ctgrad explain` (insight/npy.h, insight/image.h):
// .npy headers byte for byte as NumPy's format 1.0 defines them, round trips,
// PNGs that decode back (stb_image) to the stated size, colour map ends and
// the diverging map's centre, and render_map's colours at known pixels.
#include <doctest/doctest.h>

#include <cmath>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <sstream>

#include "insight/image.h"
#include "insight/npy.h"
#include "test_util.h"

using namespace ctg;
using namespace ctg::insight;
using ctg::test::error_of;
using ctg::test::TempDir;

namespace {

using ctg::test::slurp;

std::array<uint8_t, 3> pixel(const Image& img, int x, int y) {
  const uint8_t* p = &img.rgb[((size_t)y * img.width + x) * 3];
  return {p[0], p[1], p[2]};
}

}  // namespace

TEST_CASE("insight: npy header bytes are NumPy format 1.0, data 64-byte aligned") {
  TempDir t;
  const std::vector<float> v = {1.5f, -2.f, 3.25f, 0.f, 1e-7f, -0.f};
  write_npy(t / "a.npy", v.data(), {2, 3});
  const std::string b = slurp(t / "a.npy");
  const std::string dict = "{'descr': '<f4', 'fortran_order': False, 'shape': (2, 3), }";
  REQUIRE(b.size() > 10);
  CHECK(b.substr(0, 6) == std::string("\x93NUMPY", 6));
  CHECK((int)(uint8_t)b[6] == 1);
  CHECK((int)(uint8_t)b[7] == 0);
  const size_t len = (uint8_t)b[8] | ((size_t)(uint8_t)b[9] << 8);
  CHECK((10 + len) % 64 == 0);
  CHECK(len == 118);  // 10 + 59 (dict) + 58 spaces + '\n' = 128
  CHECK(b.substr(10, dict.size()) == dict);
  CHECK(b[10 + len - 1] == '\n');
  CHECK(b.substr(10 + dict.size(), len - dict.size() - 1) == std::string(len - dict.size() - 1, ' '));
  REQUIRE(b.size() == 10 + len + v.size() * 4);
  float back[6];
  std::memcpy(back, &b[10 + len], sizeof back);
  for (int i = 0; i < 6; ++i) CHECK(std::memcmp(&back[i], &v[i], 4) == 0);
  // Other ranks: Python's tuple reprs.
  CHECK(npy_header({5}).find("'shape': (5,), }") != std::string::npos);
  CHECK(npy_header({}).find("'shape': (), }") != std::string::npos);
  CHECK(npy_header({64, 7, 7}).find("'shape': (64, 7, 7), }") != std::string::npos);
  for (auto shape : std::vector<std::vector<int64_t>>{{}, {5}, {3, 4}, {64, 7, 7}, {1, 2, 3, 4, 5, 6, 7, 8}})
    CHECK(npy_header(shape).size() % 64 == 0);
}

TEST_CASE("insight: npy round trip, and bad files named") {
  TempDir t;
  std::vector<float> v(3 * 5 * 7);
  for (size_t i = 0; i < v.size(); ++i) v[i] = std::sin((float)i) * (float)i;
  write_npy(t / "f.npy", v.data(), {3, 5, 7});
  const NpyArray a = read_npy(t / "f.npy");
  CHECK(a.shape == std::vector<int64_t>{3, 5, 7});
  CHECK(a.data == v);
  // A file NumPy wrote with a 1-D shape and a 16-aligned header (older NumPy) reads too.
  {
    std::string dict = "{'descr': '<f4', 'fortran_order': False, 'shape': (2,), }";
    while ((10 + dict.size() + 1) % 16) dict += ' ';
    dict += '\n';
    std::string b = std::string("\x93NUMPY\x01\x00", 8) + (char)dict.size() + '\0' + dict;
    const float two[2] = {4.f, -1.f};
    b.append((const char*)two, 8);
    std::ofstream(t / "old.npy", std::ios::binary) << b;
    const NpyArray o = read_npy(t / "old.npy");
    CHECK(o.shape == std::vector<int64_t>{2});
    CHECK(o.data == std::vector<float>{4.f, -1.f});
    // '<f8' is refused, naming the file and the descr.
    std::string d8 = b;
    d8.replace(d8.find("<f4"), 3, "<f8");
    std::ofstream(t / "f8.npy", std::ios::binary) << d8;
    const std::string e = error_of([&] { read_npy(t / "f8.npy"); });
    CHECK(e.find(t / "f8.npy") != std::string::npos);
    CHECK(e.find("<f8") != std::string::npos);
    // Truncated data.
    std::ofstream(t / "short.npy", std::ios::binary) << b.substr(0, b.size() - 2);
    CHECK(error_of([&] { read_npy(t / "short.npy"); }).find("needs 8") != std::string::npos);
  }
  std::ofstream(t / "junk.npy") << "hello";
  CHECK(error_of([&] { read_npy(t / "junk.npy"); }).find("not a .npy") != std::string::npos);
  CHECK(error_of([&] { read_npy(t / "none.npy"); }).find("none.npy") != std::string::npos);
  CHECK(error_of([&] { write_npy(t / "no/such/dir/x.npy", v.data(), {3}); }).find("x.npy") != std::string::npos);
}

TEST_CASE("insight: numpy.load reads the .npy (when python3 has numpy)") {
  if (std::system("python3 -c 'import numpy' > /dev/null 2>&1") != 0) {
    MESSAGE("python3 with numpy not found: numpy.load check skipped (the C++ header checks above still ran)");
    return;
  }
  TempDir t;
  const std::vector<float> v = {0.5f, -1.f, 2.f, 8.f, 1e-6f, -3.f};
  write_npy(t / "p.npy", v.data(), {3, 2});
  const std::string cmd = "python3 -c \"import numpy as np; a = np.load('" + (t / "p.npy") +
                          "'); assert a.shape == (3, 2) and a.dtype == np.float32 and a[1, 1] == 8 and a[2, 1] == -3\"";
  CHECK(std::system(cmd.c_str()) == 0);
}

TEST_CASE("insight: colour map ends and the diverging centre") {
  using C = std::array<uint8_t, 3>;
  CHECK(colormap_rgb(ColorMap::grey, 0) == C{0, 0, 0});
  CHECK(colormap_rgb(ColorMap::grey, 1) == C{255, 255, 255});
  CHECK(colormap_rgb(ColorMap::grey, 0.5f) == C{128, 128, 128});
  CHECK(colormap_rgb(ColorMap::viridis, 0) == C{0x44, 0x01, 0x54});  // matplotlib's viridis: #440154 … #fde725
  CHECK(colormap_rgb(ColorMap::viridis, 1) == C{0xFD, 0xE7, 0x25});
  CHECK(colormap_rgb(ColorMap::viridis, 0.5f) == C{0x21, 0x90, 0x8C});
  CHECK(colormap_rgb(ColorMap::inferno, 0) == C{0x00, 0x00, 0x04});  // inferno: #000004 … #fcffa4
  CHECK(colormap_rgb(ColorMap::inferno, 1) == C{0xFC, 0xFF, 0xA4});
  CHECK(colormap_rgb(ColorMap::diverging, 0.5f) == C{255, 255, 255});
  const C lo = colormap_rgb(ColorMap::diverging, 0), hi = colormap_rgb(ColorMap::diverging, 1);
  CHECK(lo[2] > lo[0]);  // blue end
  CHECK(hi[0] > hi[2]);  // red end
  CHECK(colormap_rgb(ColorMap::viridis, -3) == colormap_rgb(ColorMap::viridis, 0));  // clamped
  CHECK(colormap_rgb(ColorMap::viridis, 7) == colormap_rgb(ColorMap::viridis, 1));
  // Viridis gets lighter monotonically (perceptual: luminance rises with t).
  double prev = -1;
  for (int i = 0; i <= 32; ++i) {
    const C c = colormap_rgb(ColorMap::viridis, i / 32.f);
    const double y = 0.2126 * c[0] + 0.7152 * c[1] + 0.0722 * c[2];
    CHECK(y > prev);
    prev = y;
  }
}

TEST_CASE("insight: render_map puts the right colours at the right pixels") {
  // 2×3 map, 10 px a cell, no title or bar: the map starts at (8, 8 + 8) (margin, bar offset).
  const float v[6] = {0.f, 1.f, 2.f, 3.f, 4.f, 8.f};
  MapStyle s;
  s.cmap = ColorMap::grey, s.pixels_per_cell = 10, s.colorbar = false;
  const Image img = render_map(v, 2, 3, s);
  CHECK(img.width == 30 + 16);
  int x0 = -1, y0 = -1;  // the map's top-left: the first black pixel (value 0 = t 0)
  for (int y = 0; y < img.height && x0 < 0; ++y)
    for (int x = 0; x < img.width; ++x)
      if (pixel(img, x, y) == std::array<uint8_t, 3>{0, 0, 0}) {
        x0 = x, y0 = y;
        break;
      }
  REQUIRE(x0 == 8);
  auto at = [&](int row, int col) { return pixel(img, x0 + col * 10 + 5, y0 + row * 10 + 5)[0]; };
  CHECK(at(0, 0) == 0);
  CHECK(at(0, 1) == 32);   // round(255 · 1/8)
  CHECK(at(0, 2) == 64);   // round(255 · 2/8) = 63.75
  CHECK(at(1, 0) == 96);   // 95.6
  CHECK(at(1, 1) == 128);  // 127.5 → 128
  CHECK(at(1, 2) == 255);
  CHECK(pixel(img, x0 + 9, y0 + 9)[0] == 0);     // cells are exact 10-px squares
  CHECK(pixel(img, x0 + 10, y0 + 9)[0] == 32);
  CHECK(pixel(img, x0 + 9, y0 + 10)[0] == 96);

  // Diverging, symmetric about 0: −2 is the blue end, 0 white, +1 halfway to red.
  const float d[3] = {-2.f, 0.f, 1.f};
  MapStyle ds;
  ds.cmap = ColorMap::diverging, ds.pixels_per_cell = 4, ds.colorbar = false;
  const Image di = render_map(d, 1, 3, ds);
  const int yd = 8 + 8;  // 7·2/2 + 1 = 8 px bar offset below the margin
  CHECK(pixel(di, 8 + 1, yd + 1) == colormap_rgb(ColorMap::diverging, 0));
  CHECK(pixel(di, 8 + 5, yd + 1) == std::array<uint8_t, 3>{255, 255, 255});
  CHECK(pixel(di, 8 + 9, yd + 1) == colormap_rgb(ColorMap::diverging, 0.75f));
  const MapRange r = map_range(d, 3, ds);
  CHECK(r.lo == -2.f);
  CHECK(r.hi == 2.f);

  // Shared range and log scale.
  const float l[3] = {1e-4f, 1e-2f, 1.f};
  MapStyle ls;
  ls.log_scale = true, ls.cmap = ColorMap::grey, ls.pixels_per_cell = 4, ls.colorbar = false;
  const Image li = render_map(l, 1, 3, ls);
  CHECK(pixel(li, 8 + 5, yd + 1)[0] == 128);  // log10: −4, −2, 0 → t = 0.5
  MapStyle rs = s;
  rs.have_range = true, rs.lo = 0, rs.hi = 16;
  const Image ri = render_map(v, 2, 3, rs);
  CHECK(pixel(ri, x0 + 2 * 10 + 5, y0 + 15)[0] == 128);  // 8 on [0, 16]
  CHECK(error_of([&] { render_map(v, 0, 3, s); }).find("empty") != std::string::npos);
}

TEST_CASE("insight: PNGs decode back to the stated size, titles and bars fit") {
  TempDir t;
  std::vector<float> v(24 * 32);
  for (size_t i = 0; i < v.size(); ++i) v[i] = std::cos(0.1f * (float)i) * 1e-5f;
  MapStyle s;
  s.cmap = ColorMap::diverging;
  s.title = "A long title that has to be wrapped onto more than one line: d score / d pixel x 1e-5";
  const Image img = render_map(v.data(), 24, 32, s);
  CHECK(img.width >= 256 + 16);  // ~256 px map (8 px a cell) plus margins and bar
  write_png(t / "m.png", img);
  const Image back = read_png(t / "m.png");
  CHECK(back.width == img.width);
  CHECK(back.height == img.height);
  CHECK(back.rgb == img.rgb);
  // No label clipped: the image's outermost columns and rows stay white.
  for (int y = 0; y < img.height; ++y) {
    CHECK(pixel(img, 0, y) == std::array<uint8_t, 3>{255, 255, 255});
    CHECK(pixel(img, img.width - 1, y) == std::array<uint8_t, 3>{255, 255, 255});
  }
  for (int x = 0; x < img.width; ++x) CHECK(pixel(img, x, img.height - 1) == std::array<uint8_t, 3>{255, 255, 255});
  // The grid holds its panels and a title.
  const Image grid = compose_grid({img, img, img}, 2, "Three panels");
  CHECK(grid.width == 2 * img.width);
  CHECK(grid.height > 2 * img.height);
  write_png(t / "g.png", grid);
  CHECK(read_png(t / "g.png").height == grid.height);
  CHECK(format_value(1.234e-5) == "1.23e-05");
  CHECK(format_value(0.5) == "0.5");
  CHECK(format_value(0) == "0");
  CHECK(text_width("ab") > 0);
  CHECK(text_width("\u2202y/\u2202x") == text_width("dy/dx"));
  CHECK(error_of([&] { write_png(t / "no/dir/x.png", img); }).find("x.png") != std::string::npos);
  CHECK(error_of([&] { read_png(t / "none.png"); }).find("none.png") != std::string::npos);
}

TEST_CASE("insight: bar chart draws negative bars left in blue, positive right in red") {
  BarChart c;
  c.title = "score - threshold";
  c.labels = {"cnn2", "resnet18"};
  c.values = {-0.3f, 0.2f};
  c.negative_label = "mild", c.positive_label = "severe";
  const Image img = render_bar_chart(c);
  int blue = 0, red = 0;
  for (int y = 0; y < img.height; ++y)
    for (int x = 0; x < img.width; ++x) {
      const auto p = pixel(img, x, y);
      if (p == std::array<uint8_t, 3>{0x43, 0x93, 0xC3}) ++blue;
      if (p == std::array<uint8_t, 3>{0xD6, 0x60, 0x4D}) ++red;
    }
  CHECK(blue > 0);
  CHECK(red > 0);
  CHECK(blue > red);  // 0.3 is longer than 0.2 (labels add a little of each colour)
  c.values.pop_back();
  CHECK(error_of([&] { render_bar_chart(c); }).find("labels") != std::string::npos);
}
