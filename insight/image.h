// RGB pictures for the study's figures (section 5 and Slika 1, 9-11): maps
// in a colour map with a labelled colour bar, titled panels composed into
// grids, bar charts, PNG in and out (Debian's libstb-dev: stb_image_write,
// stb_image; text is stb_easy_font's 7-pixel glyphs rasterised at 2x).
// Implemented in insight/image.cpp (maps, grids, PNG), insight/colormap.cpp,
// insight/text.cpp and insight/chart.cpp.
#pragma once
#include <array>
#include <cstdint>
#include <string>
#include <vector>

namespace ctg::insight {

struct Image {
  int width = 0, height = 0;
  std::vector<uint8_t> rgb;  // row-major, 3 bytes a pixel
};
enum class ColorMap { grey, viridis, inferno, diverging };  // diverging: blue-white-red centred on 0

struct MapStyle {
  ColorMap cmap = ColorMap::viridis;
  std::string title;            // drawn above the panel
  bool symmetric = false;       // range [-m, m], m = max |v| (diverging maps)
  bool have_range = false;      // use [lo, hi] instead of the data's min/max (shared scales)
  float lo = 0, hi = 1;
  bool log_scale = false;       // log10 of positive values (saliency on a log scale)
  int pixels_per_cell = 0;      // 0 = choose so the panel is ~256 px wide
  bool colorbar = true;         // a colour bar with its value range labelled
};

// One titled panel: values (row-major h × w) drawn cell by cell, each cell a
// pixels_per_cell square, coloured by
//   t = (v − lo) / (hi − lo)   (v, lo, hi as log10 on a log scale)
// clamped to [0, 1]. The range is the data's finite min/max unless have_range;
// `symmetric` makes it [−m, m]; a diverging map is always centred on 0
// (m = max(|lo|, |hi|)) so that white means 0. NaN cells are drawn mid grey;
// on a log scale values ≤ 0 take the lowest colour. A flat range (lo = hi)
// maps to the centre of a diverging map and the low end of the others.
Image render_map(const float* values, int h, int w, const MapStyle& style);
// Panels laid out in `columns` columns (row-major), with an overall title on top.
Image compose_grid(const std::vector<Image>& panels, int columns, const std::string& title);
void write_png(const std::string& path, const Image& img);  // atomic; ctg::Error naming the path

// ---- Added beyond the contract ----

// Decodes a PNG file as RGB (stb_image; the one STB_IMAGE_IMPLEMENTATION in
// the project is in insight/image.cpp, so tests decode through this).
Image read_png(const std::string& path);
// The PNG bytes write_png writes (for embedding without a file).
std::string encode_png(const Image& img);

// The colour of t ∈ [0, 1] (clamped; NaN gives mid grey).
std::array<uint8_t, 3> colormap_rgb(ColorMap cmap, float t);

// The value range render_map uses for these values and this style, in value
// units (not log10), after `symmetric`, have_range and diverging centring.
struct MapRange {
  float lo = 0, hi = 0;
};
MapRange map_range(const float* values, size_t n, const MapStyle& style);

// A stand-alone vertical colour bar (`height` px of gradient) with its labels
// (hi at the top, lo at the bottom, 0 between when lo < 0 < hi), for a grid
// of panels that share one scale (filters): draw them with colorbar = false
// and have_range, then put this beside the grid with append_right.
Image render_colorbar(ColorMap cmap, float lo, float hi, bool log_scale, int height);
// b to the right of a (top-aligned, white fill, a gap of `gap` px).
Image append_right(const Image& a, const Image& b, int gap = 8);

// A blank image filled with one colour.
Image blank_image(int width, int height, std::array<uint8_t, 3> fill = {255, 255, 255});

// Text (stb_easy_font, ASCII; common non-ASCII symbols such as − × ² ∂ α Σ
// are spelled in ASCII). `scale` multiplies the font's 12-px line height.
// Returns the width drawn. Pixels outside the image are skipped.
int draw_text(Image& img, int x, int y, const std::string& text, int scale = 2,
              std::array<uint8_t, 3> colour = {0, 0, 0});
int text_width(const std::string& text, int scale = 2);
inline int text_line_height(int scale = 2) { return 12 * scale; }
// Words wrapped to lines no wider than max_width px (a word wider than that
// gets a line of its own).
std::vector<std::string> wrap_text(const std::string& text, int max_width, int scale = 2);
// A value label: 3 significant digits, scientific notation for |v| < 0.01 or
// ≥ 1e4 (saliency values are often ~1e-5), "0" for zero.
std::string format_value(double v);

// Fills the rectangle [x0, x1) × [y0, y1), clipped to the image.
void fill_rect(Image& img, int x0, int y0, int x1, int y1, std::array<uint8_t, 3> colour);

// A horizontal bar chart (Slika 11: score − threshold per net): one bar per
// label from a zero line, negative to the left in blue, positive to the
// right in red, each with its value; an x axis with ticks; a title on top
// and an axis caption below.
struct BarChart {
  std::string title, axis_caption;
  std::string negative_label, positive_label;  // e.g. "mild" / "severe", under each side
  std::vector<std::string> labels;
  std::vector<float> values;
};
Image render_bar_chart(const BarChart& chart);

}  // namespace ctg::insight
