// The horizontal bar chart of Slika 11 (score − threshold per net). Bars
// start at the zero line; a value v is drawn |v| · scale px long, to the left
// in blue when negative (mild expected) and to the right in red when positive
// (severe), scale chosen so the largest |v| (at least 0.05, so a near-zero
// value is not blown up to full width) fills half of the plot area. Each bar
// carries its value; the axis has ticks at −m, −m/2, 0, m/2, m.
#include <algorithm>
#include <cmath>

#include "engine/tensor.h"
#include "insight/image.h"

namespace ctg::insight {

Image render_bar_chart(const BarChart& chart) {
  if (chart.labels.size() != chart.values.size())
    throw Error("bar chart: " + std::to_string(chart.labels.size()) + " labels for " + std::to_string(chart.values.size()) + " values");
  constexpr int kPad = 10, kScale = 2, kBar = 28, kGap = 12, kHalf = 220;
  const int lh = text_line_height(kScale), glyph = 7 * kScale;
  const std::array<uint8_t, 3> blue = {0x43, 0x93, 0xC3}, red = {0xD6, 0x60, 0x4D}, grey = {120, 120, 120};
  float m = 0.05f;
  for (float v : chart.values)
    if (std::isfinite(v)) m = std::max(m, std::fabs(v));
  // Round m up to 1, 2 or 5 × 10^k so the ticks are round numbers.
  const double p = std::pow(10.0, std::floor(std::log10((double)m)));
  const double step = m / p <= 1 ? 1 : m / p <= 2 ? 2 : m / p <= 5 ? 5 : 10;
  const float axis_max = (float)(step * p);
  int label_w = 0;
  for (const std::string& l : chart.labels) label_w = std::max(label_w, text_width(l, kScale));
  const int value_room = text_width("-0.000", kScale) + 6;  // a value label beyond the bar's end
  // The zero line far enough right for the bar labels, the left half, the
  // "<- negative" text and half the centred caption; the width then takes
  // the right half, the positive text and the caption's other half.
  const std::string neg = chart.negative_label.empty() ? "" : "<- " + chart.negative_label;
  const std::string pos = chart.positive_label.empty() ? "" : chart.positive_label + " ->";
  const int w_neg = text_width(neg, kScale), w_pos = text_width(pos, kScale), w_cap = text_width(chart.axis_caption, kScale);
  const int x_label = kPad;
  const int x_zero = std::max({kPad + label_w + 12 + value_room + kHalf, kPad + 8 + w_neg, kPad + (w_cap + 1) / 2});
  const int title_h = chart.title.empty() ? 0 : lh + 8;
  const int n = (int)chart.values.size();
  const int y_plot = kPad + title_h, plot_h = std::max(1, n) * (kBar + kGap) + kGap;
  const int width = std::max({x_zero + kHalf + value_room + kPad, x_zero + 8 + w_pos + kPad,
                              x_zero + (w_cap + 1) / 2 + kPad, text_width(chart.title, kScale) + 2 * kPad});
  const int height = y_plot + plot_h + 8 + lh + 4 + 2 * lh + kPad;
  Image img = blank_image(width, height);
  if (!chart.title.empty()) draw_text(img, kPad, kPad, chart.title, kScale);
  // The axis line at the bottom of the plot, its ticks and their values.
  const int y_axis = y_plot + plot_h;
  fill_rect(img, x_zero - kHalf, y_axis, x_zero + kHalf + 1, y_axis + 1, grey);
  for (int k = -2; k <= 2; ++k) {
    const int x = x_zero + k * kHalf / 2;
    fill_rect(img, x, y_axis, x + 1, y_axis + 6, grey);
    const std::string t = format_value(axis_max * k / 2.0);
    draw_text(img, x - text_width(t, kScale) / 2, y_axis + 8, t, kScale);
  }
  fill_rect(img, x_zero, y_plot, x_zero + 1, y_axis, {0, 0, 0});  // the zero line
  for (int i = 0; i < n; ++i) {
    const float v = chart.values[i];
    const int y = y_plot + kGap + i * (kBar + kGap);
    draw_text(img, x_label, y + (kBar - glyph) / 2, chart.labels[i], kScale);
    if (!std::isfinite(v)) {
      draw_text(img, x_zero + 6, y + (kBar - glyph) / 2, "n/a", kScale, grey);
      continue;
    }
    const int len = (int)std::lround(std::fabs(v) / axis_max * kHalf);
    const std::string t = format_value(v);
    if (v < 0) {
      fill_rect(img, x_zero - len, y, x_zero, y + kBar, blue);
      draw_text(img, x_zero - len - 6 - text_width(t, kScale), y + (kBar - glyph) / 2, t, kScale);
    } else {
      fill_rect(img, x_zero + 1, y, x_zero + 1 + len, y + kBar, red);
      draw_text(img, x_zero + len + 7, y + (kBar - glyph) / 2, t, kScale);
    }
  }
  const int y_text = y_axis + 8 + lh + 4;
  if (!neg.empty()) draw_text(img, x_zero - 8 - w_neg, y_text, neg, kScale, blue);
  if (!pos.empty()) draw_text(img, x_zero + 8, y_text, pos, kScale, red);
  if (!chart.axis_caption.empty()) draw_text(img, x_zero - w_cap / 2, y_text + lh, chart.axis_caption, kScale);
  return img;
}

}  // namespace ctg::insight
