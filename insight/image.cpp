// Maps, colour bars, grids and PNG files (see insight/image.h). Layout in
// pixels: every panel has an 8-px white margin, its title wrapped above the
// map in 2x text, the map framed by a 1-px grey line, and the colour bar to
// its right with its labels beside it, so no label is ever cut off: the
// panel grows to fit the widest title line and the bar's labels.
#include <algorithm>
#include <cmath>
#include <limits>

#include "base/atomic_file.h"
#include "engine/tensor.h"
#include "insight/image.h"

#if defined(__GNUC__)
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wunused-function"
#pragma GCC diagnostic ignored "-Wsign-compare"
#pragma GCC diagnostic ignored "-Wmissing-field-initializers"
#endif
#define STB_IMAGE_WRITE_IMPLEMENTATION
#define STB_IMAGE_WRITE_STATIC
#include <stb/stb_image_write.h>
#define STB_IMAGE_IMPLEMENTATION
#define STB_IMAGE_STATIC
#define STBI_ONLY_PNG
#include <stb/stb_image.h>
#if defined(__GNUC__)
#pragma GCC diagnostic pop
#endif

namespace ctg::insight {

namespace {

constexpr int kPad = 8, kScale = 2, kBarWidth = 16, kTick = 4;
constexpr std::array<uint8_t, 3> kFrame = {120, 120, 120}, kBlack = {0, 0, 0};

void blit(Image& dst, const Image& src, int x0, int y0) {
  for (int y = 0; y < src.height; ++y) {
    const int dy = y0 + y;
    if (dy < 0 || dy >= dst.height) continue;
    for (int x = 0; x < src.width; ++x) {
      const int dx = x0 + x;
      if (dx < 0 || dx >= dst.width) continue;
      std::copy_n(&src.rgb[((size_t)y * src.width + x) * 3], 3, &dst.rgb[((size_t)dy * dst.width + dx) * 3]);
    }
  }
}

void frame(Image& img, int x0, int y0, int x1, int y1) {  // 1 px just outside [x0,x1)×[y0,y1)
  fill_rect(img, x0 - 1, y0 - 1, x1 + 1, y0, kFrame);
  fill_rect(img, x0 - 1, y1, x1 + 1, y1 + 1, kFrame);
  fill_rect(img, x0 - 1, y0, x0, y1, kFrame);
  fill_rect(img, x1, y0, x1 + 1, y1, kFrame);
}

// t of a value in the range (see render_map's comment for the rules).
float value_t(float v, const MapRange& r, bool log_scale, ColorMap cmap) {
  if (std::isnan(v)) return std::numeric_limits<float>::quiet_NaN();
  if (log_scale) {
    if (!(v > 0) || !(r.lo > 0) || !(r.hi > r.lo)) return 0.f;
    return (float)((std::log10((double)v) - std::log10((double)r.lo)) /
                   (std::log10((double)r.hi) - std::log10((double)r.lo)));
  }
  if (!(r.hi > r.lo)) return cmap == ColorMap::diverging ? 0.5f : 0.f;
  return (float)(((double)v - r.lo) / ((double)r.hi - r.lo));
}

// Title lines wrapped to at least `width` px (or 240 for small maps).
std::vector<std::string> title_lines(const std::string& title, int width) {
  if (title.empty()) return {};
  return wrap_text(title, std::max(width, 240), kScale);
}

}  // namespace

Image blank_image(int width, int height, std::array<uint8_t, 3> fill) {
  Image img;
  img.width = std::max(width, 0), img.height = std::max(height, 0);
  img.rgb.resize((size_t)img.width * img.height * 3);
  for (size_t i = 0; i < img.rgb.size(); i += 3) img.rgb[i] = fill[0], img.rgb[i + 1] = fill[1], img.rgb[i + 2] = fill[2];
  return img;
}

MapRange map_range(const float* values, size_t n, const MapStyle& style) {
  MapRange r;
  float lo = std::numeric_limits<float>::infinity(), hi = -lo;
  for (size_t i = 0; i < n; ++i) {
    const float v = values[i];
    if (!std::isfinite(v) || (style.log_scale && !(v > 0))) continue;
    lo = std::min(lo, v), hi = std::max(hi, v);
  }
  if (style.have_range) {
    r.lo = style.lo, r.hi = style.hi;
    if (style.log_scale && !(r.lo > 0)) r.lo = lo <= hi ? lo : 0;  // a log scale starts above 0
  } else if (lo <= hi) {
    r.lo = lo, r.hi = hi;
  }
  if (!style.log_scale && (style.cmap == ColorMap::diverging || (style.symmetric && !style.have_range))) {
    const float m = std::max(std::fabs(r.lo), std::fabs(r.hi));
    r.lo = -m, r.hi = m;
  }
  return r;
}

Image render_colorbar(ColorMap cmap, float lo, float hi, bool log_scale, int height) {
  const int lh = text_line_height(kScale), glyph = 7 * kScale;
  const int bar_h = std::max(height, 3 * lh + 12);
  // Labels: the top (hi), the bottom (lo) and 0 where it lies strictly between.
  struct Label {
    int y;
    std::string text;
  };
  std::vector<Label> labels;
  const MapRange r{lo, hi};
  const bool flat = !(hi > lo);
  labels.push_back({0, format_value(hi)});
  if (!flat) labels.push_back({bar_h - 1, format_value(lo)});
  if (!flat && !log_scale && lo < 0 && hi > 0) {
    const int y0 = (int)std::lround((1.0 - value_t(0.f, r, false, cmap)) * (bar_h - 1));
    if (y0 - 3 * glyph / 2 > 0 && y0 + 3 * glyph / 2 < bar_h - 1) labels.push_back({y0, "0"});  // clear of both ends
  }
  int label_w = 0;
  for (const Label& l : labels) label_w = std::max(label_w, text_width(l.text, kScale));
  const std::string note = log_scale ? "log scale" : "";
  const int top = glyph / 2 + 1;  // room for the top label's upper half
  Image img = blank_image(kBarWidth + kTick + 4 + std::max(label_w, text_width(note, kScale)) + 2,
                          top + bar_h + glyph / 2 + 2 + (note.empty() ? 0 : lh + 2));
  for (int y = 0; y < bar_h; ++y) {
    // Row y shows the value at the centre of its interval, hi at the top.
    const float f = 1.f - ((float)y + 0.5f) / (float)bar_h;
    float t = f;
    if (flat) t = value_t(lo, r, log_scale, cmap);
    fill_rect(img, 1, top + y, 1 + kBarWidth, top + y + 1, colormap_rgb(cmap, t));
  }
  frame(img, 1, top, 1 + kBarWidth, top + bar_h);
  for (const Label& l : labels) {
    const int y = top + l.y;
    fill_rect(img, 1 + kBarWidth, y, 1 + kBarWidth + kTick, y + 1, kBlack);
    draw_text(img, 1 + kBarWidth + kTick + 3, y - glyph / 2, l.text, kScale);
  }
  if (!note.empty()) draw_text(img, 1, top + bar_h + glyph / 2 + 2, note, kScale);
  return img;
}

Image render_map(const float* values, int h, int w, const MapStyle& style) {
  if (h < 1 || w < 1) throw Error("render_map: empty map (" + std::to_string(h) + "x" + std::to_string(w) + ")");
  if (!values) throw Error("render_map: no values");
  const int ppc = style.pixels_per_cell > 0 ? style.pixels_per_cell
                                            : std::max(1, (int)std::lround(256.0 / std::max(w, h)));
  const int mw = w * ppc, mh = h * ppc;
  const MapRange r = map_range(values, (size_t)h * w, style);
  Image bar;
  if (style.colorbar) bar = render_colorbar(style.cmap, r.lo, r.hi, style.log_scale, mh);
  const int bar_top_offset = 7 * kScale / 2 + 1;  // the bar's gradient starts this far down its image
  const int body_w = mw + (style.colorbar ? 10 + bar.width : 0);
  const std::vector<std::string> lines = title_lines(style.title, body_w);
  int title_w = 0;
  for (const std::string& l : lines) title_w = std::max(title_w, text_width(l, kScale));
  const int title_h = lines.empty() ? 0 : (int)lines.size() * text_line_height(kScale) + 2;
  const int map_y = kPad + title_h + bar_top_offset;
  const int body_h = std::max(mh + bar_top_offset, style.colorbar ? bar.height : 0);
  Image img = blank_image(std::max(body_w, title_w) + 2 * kPad, kPad + title_h + body_h + kPad);
  for (size_t i = 0; i < lines.size(); ++i) draw_text(img, kPad, kPad + (int)i * text_line_height(kScale), lines[i], kScale);
  for (int y = 0; y < h; ++y)
    for (int x = 0; x < w; ++x) {
      const auto c = colormap_rgb(style.cmap, value_t(values[(size_t)y * w + x], r, style.log_scale, style.cmap));
      fill_rect(img, kPad + x * ppc, map_y + y * ppc, kPad + (x + 1) * ppc, map_y + (y + 1) * ppc, c);
    }
  frame(img, kPad, map_y, kPad + mw, map_y + mh);
  if (style.colorbar) blit(img, bar, kPad + mw + 10, map_y - bar_top_offset);
  return img;
}

Image append_right(const Image& a, const Image& b, int gap) {
  Image img = blank_image(a.width + gap + b.width, std::max(a.height, b.height));
  blit(img, a, 0, (img.height - a.height) / 2);
  blit(img, b, a.width + gap, (img.height - b.height) / 2);
  return img;
}

Image compose_grid(const std::vector<Image>& panels, int columns, const std::string& title) {
  const int n = (int)panels.size();
  columns = std::clamp(columns, 1, std::max(n, 1));
  const int rows = (n + columns - 1) / columns;
  std::vector<int> col_w(columns, 0), row_h(rows, 0);
  for (int i = 0; i < n; ++i) {
    col_w[i % columns] = std::max(col_w[i % columns], panels[i].width);
    row_h[i / columns] = std::max(row_h[i / columns], panels[i].height);
  }
  int grid_w = 0, grid_h = 0;
  for (int v : col_w) grid_w += v;
  for (int v : row_h) grid_h += v;
  // 3x titles over wide grids; a narrow grid (two small panels) gets 2x so
  // that its title does not run to many lines.
  const int kTitleScale = grid_w >= 700 ? 3 : 2;
  std::vector<std::string> lines;
  if (!title.empty()) lines = wrap_text(title, std::max(grid_w - 2 * kPad, 400), kTitleScale);
  int title_w = 0;
  for (const std::string& l : lines) title_w = std::max(title_w, text_width(l, kTitleScale));
  const int title_h = lines.empty() ? 0 : kPad + (int)lines.size() * text_line_height(kTitleScale);
  Image img = blank_image(std::max(grid_w, title_w + 2 * kPad), title_h + grid_h);
  for (size_t i = 0; i < lines.size(); ++i)
    draw_text(img, kPad, kPad + (int)i * text_line_height(kTitleScale), lines[i], kTitleScale);
  int y = title_h;
  for (int rr = 0; rr < rows; ++rr) {
    int x = 0;
    for (int c = 0; c < columns; ++c) {
      const int i = rr * columns + c;
      if (i < n) blit(img, panels[i], x, y);
      x += col_w[c];
    }
    y += row_h[rr];
  }
  return img;
}

std::string encode_png(const Image& img) {
  if (img.width < 1 || img.height < 1 || img.rgb.size() != (size_t)img.width * img.height * 3)
    throw Error("png: the image is empty or its pixels do not match " + std::to_string(img.width) + "x" +
                std::to_string(img.height));
  std::string out;
  auto sink = [](void* ctx, void* data, int size) { static_cast<std::string*>(ctx)->append((const char*)data, (size_t)size); };
  if (!stbi_write_png_to_func(sink, &out, img.width, img.height, 3, img.rgb.data(), img.width * 3))
    throw Error("png: stb_image_write failed to encode a " + std::to_string(img.width) + "x" + std::to_string(img.height) + " image");
  return out;
}

void write_png(const std::string& path, const Image& img) {
  std::string bytes;
  try {
    bytes = encode_png(img);
    write_file_atomic(path, bytes);
  } catch (const std::exception& e) {
    const std::string what = e.what();
    throw Error(what.find(path) != std::string::npos ? what : "cannot write " + path + ": " + what);
  }
}

Image read_png(const std::string& path) {
  int w = 0, h = 0, comp = 0;
  unsigned char* p = stbi_load(path.c_str(), &w, &h, &comp, 3);
  if (!p) throw Error("png: cannot read " + path + ": " + (stbi_failure_reason() ? stbi_failure_reason() : "unknown error"));
  Image img;
  img.width = w, img.height = h;
  img.rgb.assign(p, p + (size_t)w * h * 3);
  stbi_image_free(p);
  return img;
}

}  // namespace ctg::insight
