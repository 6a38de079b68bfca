// Text for the pictures: stb_easy_font (Debian's libstb-dev) turns a string
// into axis-aligned quads on integer coordinates (glyphs ~5×7 px, 12-px
// lines); each quad is filled as a rectangle, scaled by `scale`. The font
// covers ASCII 32-126 only, so common symbols in titles are spelled in ASCII
// first (− → -, × → x, ² → ^2, ...), and anything else becomes '?'.
#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <utility>

#include "insight/image.h"

#if defined(__GNUC__)
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wunused-function"
#pragma GCC diagnostic ignored "-Wsign-compare"
#pragma GCC diagnostic ignored "-Wmissing-field-initializers"
#endif
#include <stb/stb_easy_font.h>
#if defined(__GNUC__)
#pragma GCC diagnostic pop
#endif

namespace ctg::insight {

namespace {

// UTF-8 symbols the titles use, in ASCII.
const std::pair<const char*, const char*> kSpelled[] = {
    {"\u2212", "-"},  {"\u00d7", "x"},  {"\u00b2", "^2"}, {"\u00b3", "^3"},   {"\u2202", "d"},
    {"\u03b1", "a"},  {"\u03a3", "sum"}, {"\u2211", "sum"}, {"\u2265", ">="},  {"\u2264", "<="},
    {"\u2192", "->"}, {"\u2013", "-"},  {"\u2014", "-"},  {"\u2032", "'"},    {"\u00b7", "*"},
    {"\u2248", "~"},  {"\u00b0", " deg"}, {"\u2026", "..."}, {"\u2080", "0"}, {"\u2081", "1"},
    {"\u2082", "2"},  {"\u2083", "3"},  {"\u03bc", "u"},  {"\u2019", "'"},    {"\u201c", "\""},
    {"\u201d", "\""}, {"\u00b1", "+-"}};

std::string to_ascii(const std::string& s) {
  std::string out;
  for (size_t i = 0; i < s.size();) {
    const unsigned char c = (unsigned char)s[i];
    if (c >= 32 && c < 127) {
      out += (char)c, ++i;
      continue;
    }
    if (c < 128) {  // control characters (tabs, newlines): a space
      out += ' ', ++i;
      continue;
    }
    bool done = false;
    for (const auto& [utf8, ascii] : kSpelled) {
      const size_t n = std::char_traits<char>::length(utf8);
      if (s.compare(i, n, utf8) == 0) {
        out += ascii, i += n, done = true;
        break;
      }
    }
    if (done) continue;
    // Skip one unknown UTF-8 sequence (lead byte and its continuation bytes).
    ++i;
    while (i < s.size() && ((unsigned char)s[i] & 0xC0) == 0x80) ++i;
    out += '?';
  }
  return out;
}

}  // namespace

void fill_rect(Image& img, int x0, int y0, int x1, int y1, std::array<uint8_t, 3> colour) {
  x0 = std::max(x0, 0), y0 = std::max(y0, 0);
  x1 = std::min(x1, img.width), y1 = std::min(y1, img.height);
  for (int y = y0; y < y1; ++y)
    for (int x = x0; x < x1; ++x) {
      uint8_t* p = &img.rgb[((size_t)y * img.width + x) * 3];
      p[0] = colour[0], p[1] = colour[1], p[2] = colour[2];
    }
}

int text_width(const std::string& text, int scale) {
  std::string a = to_ascii(text);
  return scale * stb_easy_font_width(a.data());
}

int draw_text(Image& img, int x, int y, const std::string& text, int scale, std::array<uint8_t, 3> colour) {
  std::string a = to_ascii(text);
  if (a.empty()) return 0;
  // Up to ~18 quads a glyph (the font's worst case is well under), 64 bytes a quad.
  std::vector<char> buf(a.size() * 24 * 64 + 64);
  const int quads = stb_easy_font_print(0, 0, a.data(), nullptr, buf.data(), (int)buf.size());
  for (int q = 0; q < quads; ++q) {
    float xs[4], ys[4];
    for (int v = 0; v < 4; ++v) {
      const char* p = buf.data() + (size_t)(q * 4 + v) * 16;
      std::memcpy(&xs[v], p, 4), std::memcpy(&ys[v], p + 4, 4);
    }
    const float qx0 = *std::min_element(xs, xs + 4), qx1 = *std::max_element(xs, xs + 4);
    const float qy0 = *std::min_element(ys, ys + 4), qy1 = *std::max_element(ys, ys + 4);
    fill_rect(img, x + (int)std::lround(qx0 * scale), y + (int)std::lround(qy0 * scale),
              x + (int)std::lround(qx1 * scale), y + (int)std::lround(qy1 * scale), colour);
  }
  return scale * stb_easy_font_width(a.data());
}

std::vector<std::string> wrap_text(const std::string& text, int max_width, int scale) {
  std::vector<std::string> lines;
  std::string line, word;
  auto flush_word = [&] {
    if (word.empty()) return;
    const std::string candidate = line.empty() ? word : line + " " + word;
    if (!line.empty() && text_width(candidate, scale) > max_width) {
      lines.push_back(line);
      line = word;
    } else {
      line = candidate;
    }
    word.clear();
  };
  for (char c : text) {
    if (c == ' ' || c == '\n') {
      flush_word();
      if (c == '\n') lines.push_back(line), line.clear();
    } else {
      word += c;
    }
  }
  flush_word();
  if (!line.empty() || lines.empty()) lines.push_back(line);
  return lines;
}

std::string format_value(double v) {
  if (v == 0 || !std::isfinite(v)) return v == 0 ? "0" : (std::isnan(v) ? "nan" : (v > 0 ? "inf" : "-inf"));
  char b[32];
  const double a = std::fabs(v);
  std::snprintf(b, sizeof b, (a < 0.01 || a >= 1e4) ? "%.2e" : "%.3g", v);
  return b;
}

}  // namespace ctg::insight
