// Internals shared by the SVG charts (svg.cpp, svg_charts.cpp): the mapping
// from data to pixels, the axes frame and the legend. Not part of the API.
#pragma once
#include <string>
#include <vector>

#include "report/svg.h"

namespace ctg::report::detail {

// A pixel coordinate: two decimals, and a throw on NaN/inf so a bug can never
// write "nan" into a path.
std::string px(double v);

// One axis of a frame: data value ↦ pixel, in the scale's transformed space.
struct Mapper {
  Scale scale = Scale::linear;
  double lo = 0, hi = 1;      // data range shown
  double p0 = 0, p1 = 1;      // pixels of lo and hi
  std::vector<double> ticks;  // data values
  std::vector<std::string> labels;
  double t(double v) const;   // the scale's transform (probit, log10, identity)
  double operator()(double v) const;  // clamped into [lo, hi] first
  bool valid(double v) const;  // finite and representable (log: > 0)
};
// Range and ticks for an axis given the data values it must show.
Mapper make_mapper(const Axis& a, const std::vector<double>& data, double p0, double p1);

// The plotting area of a panel and its outer size.
struct Frame {
  int width = 420, height = 300;
  double left = 60, right = 18, top = 32, bottom = 46;
  double x0() const { return left; }
  double x1() const { return width - right; }
  double y0() const { return height - bottom; }  // bottom edge (y = lo)
  double y1() const { return top; }
};

// Title, grid, ticks, tick labels and axis labels, as SVG elements.
std::string draw_frame(const Frame& f, const std::string& title, const Mapper& mx, const Mapper& my,
                       const std::string& x_label, const std::string& y_label);

struct LegendItem {
  std::string text, color;
  enum Kind { line, box, marker } kind = line;
  bool dashed = false;
};
// Rows of legend entries below a panel of height `top`; returns the SVG and
// adds the height it needs to `height`.
std::string draw_legend(const std::vector<LegendItem>& items, int width, double top, double& height);

// The opening <svg> of a panel (fixed font family and size) and its role label.
std::string svg_open(double width, double height, const std::string& title);

}  // namespace ctg::report::detail
