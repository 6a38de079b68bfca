// Number formatting, ticks, scales, and the frame and legend every chart
// shares. The charts themselves are in svg_charts.cpp.
#include "report/svg.h"

#include <algorithm>
#include <cmath>
#include <cstdio>

#include "engine/tensor.h"
#include "report/svg_frame.h"

namespace ctg::report {

std::string escape(const std::string& s) {
  std::string out;
  out.reserve(s.size());
  for (char c : s) {
    switch (c) {
      case '&': out += "&amp;"; break;
      case '<': out += "&lt;"; break;
      case '>': out += "&gt;"; break;
      case '"': out += "&quot;"; break;
      case '\'': out += "&#39;"; break;
      default: out += c;
    }
  }
  return out;
}

std::string fmt(double v, int decimals) {
  if (std::isnan(v)) return "nan";
  if (std::isinf(v)) return v > 0 ? "inf" : "-inf";
  char buf[64];
  std::snprintf(buf, sizeof buf, "%.*f", std::max(0, std::min(decimals, 12)), v);
  std::string s = buf;
  // "-0.00" is zero: print it as such, so output does not depend on rounding sign.
  if (s[0] == '-' && s.find_first_not_of("-0.") == std::string::npos) s.erase(0, 1);
  return s;
}

namespace {
// Heckbert's "nice number": 1, 2, 5 or 10 times a power of ten near x.
double nice_number(double x, bool round) {
  const double e = std::floor(std::log10(x)), f = x / std::pow(10.0, e);
  double nf;
  if (round) nf = f < 1.5 ? 1 : f < 3 ? 2 : f < 7 ? 5 : 10;
  else nf = f <= 1 ? 1 : f <= 2 ? 2 : f <= 5 ? 5 : 10;
  return nf * std::pow(10.0, e);
}
}  // namespace

Ticks nice_ticks(double lo, double hi, int target) {
  if (!std::isfinite(lo) || !std::isfinite(hi) || lo > hi) throw Error("report/svg: axis range [" + fmt(lo, 6) + ", " + fmt(hi, 6) + "] is not a finite interval");
  if (lo == hi) {  // one value: widen around it so it sits inside the axis
    const double d = lo != 0 ? std::fabs(lo) * 0.1 : 1;
    lo -= d, hi += d;
  }
  target = std::max(target, 2);
  Ticks t;
  t.step = nice_number(nice_number(hi - lo, false) / (target - 1), true);
  // The epsilon keeps 0.6/0.2 = 2.9999… from widening the axis by a step.
  const double a = std::floor(lo / t.step + 1e-9), b = std::ceil(hi / t.step - 1e-9);
  t.lo = a * t.step, t.hi = b * t.step;
  t.decimals = std::max(0, (int)-std::floor(std::log10(t.step) + 1e-9));
  for (double k = a; k <= b + 0.5; k += 1) t.values.push_back(k * t.step == 0 ? 0 : k * t.step);
  return t;
}

double probit(double p) {
  if (!(p > 0 && p < 1)) throw Error("report/svg: probit of " + fmt(p, 6) + " (needs 0 < p < 1)");
  // Acklam's algorithm: a rational approximation in the centre and in each tail.
  static const double a[] = {-3.969683028665376e+01, 2.209460984245205e+02, -2.759285104469687e+02,
                             1.383577518672690e+02, -3.066479806614716e+01, 2.506628277459239e+00};
  static const double b[] = {-5.447609879822406e+01, 1.615858368580409e+02, -1.556989798598866e+02,
                             6.680131188771972e+01, -1.328068155288572e+01};
  static const double c[] = {-7.784894002430293e-03, -3.223964580411365e-01, -2.400758277161838e+00,
                             -2.549732539343734e+00, 4.374664141464968e+00, 2.938163982698783e+00};
  static const double d[] = {7.784695709041462e-03, 3.224671290700398e-01, 2.445134137142996e+00,
                             3.754408661907416e+00};
  const double lo = 0.02425;
  if (p < lo || p > 1 - lo) {
    const double q = std::sqrt(-2 * std::log(p < lo ? p : 1 - p));
    const double x = (((((c[0] * q + c[1]) * q + c[2]) * q + c[3]) * q + c[4]) * q + c[5]) /
                     ((((d[0] * q + d[1]) * q + d[2]) * q + d[3]) * q + 1);
    return p < lo ? x : -x;
  }
  const double q = p - 0.5, r = q * q;
  return (((((a[0] * r + a[1]) * r + a[2]) * r + a[3]) * r + a[4]) * r + a[5]) * q /
         (((((b[0] * r + b[1]) * r + b[2]) * r + b[3]) * r + b[4]) * r + 1);
}

const std::string& palette(size_t i) {
  static const std::vector<std::string> colors = {"#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd",
                                                  "#8c564b", "#e377c2", "#7f7f7f", "#bcbd22", "#17becf"};
  return colors[i % colors.size()];
}

namespace detail {

std::string px(double v) {
  if (!std::isfinite(v)) throw Error("report/svg: non-finite pixel coordinate");
  return fmt(v, 2);
}

double Mapper::t(double v) const {
  switch (scale) {
    case Scale::log10: return std::log10(v);
    case Scale::probit: return probit(v);
    default: return v;
  }
}

bool Mapper::valid(double v) const { return std::isfinite(v) && (scale != Scale::log10 || v > 0); }

double Mapper::operator()(double v) const {
  v = std::min(std::max(v, lo), hi);
  return p0 + (t(v) - t(lo)) / (t(hi) - t(lo)) * (p1 - p0);
}

Mapper make_mapper(const Axis& a, const std::vector<double>& data, double p0, double p1) {
  Mapper m;
  m.scale = a.scale, m.p0 = p0, m.p1 = p1;
  const bool fixed = a.lo < a.hi;
  double dlo = INFINITY, dhi = -INFINITY;
  for (double v : data)
    if (m.valid(v)) dlo = std::min(dlo, v), dhi = std::max(dhi, v);
  if (a.scale == Scale::probit) {
    // The DET convention: ±3 normal deviates; rates of 0 and 1 sit on the edges.
    m.lo = fixed ? a.lo : 0.00135, m.hi = fixed ? a.hi : 0.99865;
    if (!(m.lo > 0 && m.hi < 1)) throw Error("report/svg: probit axis range must lie inside (0, 1)");
    for (double v : {0.001, 0.01, 0.05, 0.2, 0.5, 0.8, 0.95, 0.99, 0.999})
      if (v >= m.lo && v <= m.hi) m.ticks.push_back(v), m.labels.push_back(fmt(v * 100, v < 0.01 || v > 0.99 ? 1 : 0) + "%");
  } else if (a.scale == Scale::log10) {
    if (fixed && a.lo <= 0) throw Error("report/svg: log axis range must be positive");
    m.lo = fixed ? a.lo : dlo <= dhi ? std::pow(10.0, std::floor(std::log10(dlo))) : 0.1;
    m.hi = fixed ? a.hi : dlo <= dhi ? std::pow(10.0, std::ceil(std::log10(dhi))) : 1;
    if (m.hi <= m.lo) m.hi = m.lo * 10;
    const bool fine = std::log10(m.hi / m.lo) <= 2.01;  // few decades: 1-2-5 ticks, else decades
    for (int e = (int)std::floor(std::log10(m.lo)); e <= (int)std::ceil(std::log10(m.hi)); ++e)
      for (double f : fine ? std::vector<double>{1, 2, 5} : std::vector<double>{1}) {
        const double v = f * std::pow(10.0, e);
        if (v >= m.lo * (1 - 1e-9) && v <= m.hi * (1 + 1e-9)) m.ticks.push_back(v), m.labels.push_back(fmt(v, std::max(0, -e)));
      }
  } else {
    const Ticks t = fixed ? nice_ticks(a.lo, a.hi) : dlo <= dhi ? nice_ticks(dlo, dhi) : nice_ticks(0, 1);
    m.lo = fixed ? a.lo : t.lo, m.hi = fixed ? a.hi : t.hi;
    const double eps = (m.hi - m.lo) * 1e-9;
    for (double v : t.values)
      if (v >= m.lo - eps && v <= m.hi + eps) m.ticks.push_back(v), m.labels.push_back(fmt(v, t.decimals));
  }
  return m;
}

std::string svg_open(double width, double height, const std::string& title) {
  return "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"" + px(width) + "\" height=\"" + px(height) +
         "\" viewBox=\"0 0 " + px(width) + " " + px(height) +
         "\" font-family=\"DejaVu Sans, Helvetica, Arial, sans-serif\" font-size=\"11\" role=\"img\" aria-label=\"" +
         escape(title) + "\">\n";
}

std::string draw_frame(const Frame& f, const std::string& title, const Mapper& mx, const Mapper& my,
                       const std::string& x_label, const std::string& y_label) {
  std::string s;
  s += "<rect x=\"0\" y=\"0\" width=\"" + px(f.width) + "\" height=\"" + px(f.height) + "\" fill=\"#ffffff\"/>\n";
  s += "<text x=\"" + px(f.width / 2.0) + "\" y=\"20\" text-anchor=\"middle\" font-size=\"13\" font-weight=\"bold\">" +
       escape(title) + "</text>\n";
  for (size_t i = 0; i < mx.ticks.size(); ++i) {
    const std::string x = px(mx(mx.ticks[i]));
    s += "<line x1=\"" + x + "\" y1=\"" + px(f.y1()) + "\" x2=\"" + x + "\" y2=\"" + px(f.y0()) + "\" stroke=\"#e6e6e6\"/>\n";
    s += "<line x1=\"" + x + "\" y1=\"" + px(f.y0()) + "\" x2=\"" + x + "\" y2=\"" + px(f.y0() + 4) + "\" stroke=\"#444444\"/>\n";
    s += "<text x=\"" + x + "\" y=\"" + px(f.y0() + 16) + "\" text-anchor=\"middle\" fill=\"#333333\">" + escape(mx.labels[i]) + "</text>\n";
  }
  for (size_t i = 0; i < my.ticks.size(); ++i) {
    const std::string y = px(my(my.ticks[i]));
    s += "<line x1=\"" + px(f.x0()) + "\" y1=\"" + y + "\" x2=\"" + px(f.x1()) + "\" y2=\"" + y + "\" stroke=\"#e6e6e6\"/>\n";
    s += "<line x1=\"" + px(f.x0() - 4) + "\" y1=\"" + y + "\" x2=\"" + px(f.x0()) + "\" y2=\"" + y + "\" stroke=\"#444444\"/>\n";
    s += "<text x=\"" + px(f.x0() - 7) + "\" y=\"" + y + "\" dy=\"0.35em\" text-anchor=\"end\" fill=\"#333333\">" + escape(my.labels[i]) + "</text>\n";
  }
  s += "<rect x=\"" + px(f.x0()) + "\" y=\"" + px(f.y1()) + "\" width=\"" + px(f.x1() - f.x0()) + "\" height=\"" +
       px(f.y0() - f.y1()) + "\" fill=\"none\" stroke=\"#444444\"/>\n";
  s += "<text x=\"" + px((f.x0() + f.x1()) / 2) + "\" y=\"" + px(f.y0() + 36) + "\" text-anchor=\"middle\" font-size=\"12\">" +
       escape(x_label) + "</text>\n";
  const std::string cy = px((f.y0() + f.y1()) / 2);
  s += "<text x=\"16\" y=\"" + cy + "\" text-anchor=\"middle\" font-size=\"12\" transform=\"rotate(-90 16 " + cy + ")\">" +
       escape(y_label) + "</text>\n";
  return s;
}

namespace {
// Display width of UTF-8 text in "characters" (continuation bytes don't count).
size_t text_chars(const std::string& s) {
  size_t n = 0;
  for (unsigned char c : s) n += (c & 0xC0) != 0x80;
  return n;
}
}  // namespace

std::string draw_legend(const std::vector<LegendItem>& items, int width, double top, double& height) {
  if (items.empty()) return "";
  // 11px DejaVu Sans averages ~6.6 px a character; a column is as wide as its longest entry.
  size_t longest = 0;
  for (const auto& it : items) longest = std::max(longest, text_chars(it.text));
  const double item_w = 34 + 6.6 * (double)longest, row_h = 17;
  const int cols = std::max(1, std::min((int)items.size(), (int)((width - 20) / item_w)));
  const int rows = ((int)items.size() + cols - 1) / cols;
  const double col_w = (width - 20.0) / cols;
  std::string s;
  for (size_t i = 0; i < items.size(); ++i) {
    const auto& it = items[i];
    const double x = 12 + col_w * (double)(i % cols), y = top + 10 + row_h * (double)(i / cols);
    if (it.kind == LegendItem::box)
      s += "<rect x=\"" + px(x + 4) + "\" y=\"" + px(y - 5) + "\" width=\"14\" height=\"10\" fill=\"" + it.color +
           "\" fill-opacity=\"0.45\" stroke=\"" + it.color + "\"/>\n";
    else
      s += "<line x1=\"" + px(x) + "\" y1=\"" + px(y) + "\" x2=\"" + px(x + 22) + "\" y2=\"" + px(y) + "\" stroke=\"" +
           it.color + "\" stroke-width=\"2\"" + (it.dashed ? " stroke-dasharray=\"5 3\"" : "") + "/>\n";
    if (it.kind == LegendItem::marker)
      s += "<circle cx=\"" + px(x + 11) + "\" cy=\"" + px(y) + "\" r=\"3.5\" fill=\"#ffffff\" stroke=\"" + it.color + "\" stroke-width=\"2\"/>\n";
    s += "<text x=\"" + px(x + 28) + "\" y=\"" + px(y) + "\" dy=\"0.35em\">" + escape(it.text) + "</text>\n";
  }
  height += row_h * rows + 8;
  return s;
}

}  // namespace detail
}  // namespace ctg::report
