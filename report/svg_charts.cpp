// The charts: line/step plots, class histograms, the confusion matrix.
#include <algorithm>
#include <cmath>
#include <cstdio>

#include "engine/tensor.h"
#include "report/svg.h"
#include "report/svg_frame.h"

namespace ctg::report {

using detail::px;

namespace {

// The curve as one path; non-finite points end a piece and start the next.
std::string series_path(const Series& s, const detail::Mapper& mx, const detail::Mapper& my) {
  std::string d;
  bool open = false;
  double px_prev = 0, py_prev = 0;
  for (size_t i = 0; i < s.x.size() && i < s.y.size(); ++i) {
    if (!mx.valid(s.x[i]) || !my.valid(s.y[i])) {
      open = false;
      continue;
    }
    const double X = mx(s.x[i]), Y = my(s.y[i]);
    if (!open) d += "M" + px(X) + " " + px(Y);
    else if (s.step == Step::post) d += " L" + px(X) + " " + px(py_prev) + " L" + px(X) + " " + px(Y);
    else if (s.step == Step::pre) d += " L" + px(px_prev) + " " + px(Y) + " L" + px(X) + " " + px(Y);
    else d += " L" + px(X) + " " + px(Y);
    open = true, px_prev = X, py_prev = Y;
  }
  return d;
}

std::string dash(bool dashed) { return dashed ? " stroke-dasharray=\"6 4\"" : ""; }

// The first maximum of y (the lowest threshold among ties, when x increases).
int first_max(const Series& s) {
  int best = -1;
  for (size_t i = 0; i < s.x.size() && i < s.y.size(); ++i)
    if (std::isfinite(s.x[i]) && std::isfinite(s.y[i]) && (best < 0 || s.y[i] > s.y[(size_t)best])) best = (int)i;
  return best;
}

std::string vline(const VLine& v, const detail::Mapper& mx, const detail::Frame& f) {
  const std::string x = px(mx(v.x)), ends = "\" y1=\"" + px(f.y1()) + "\" x2=\"" + x + "\" y2=\"" + px(f.y0()) + "\"";
  // A white halo under the line keeps it visible over dark bars and curves.
  return "<line x1=\"" + x + ends + " stroke=\"#ffffff\" stroke-opacity=\"0.8\" stroke-width=\"4\"/>\n<line x1=\"" + x + ends +
         " stroke=\"" + v.color + "\" stroke-width=\"1.6\"" + dash(v.dashed) + "/>\n";
}

// A nested <svg> viewport over the plotting area clips what is drawn inside
// it (no clipPath ids, which would have to be unique across the page).
std::string clip_open(const detail::Frame& f) {
  const std::string w = px(f.x1() - f.x0()), h = px(f.y0() - f.y1());
  return "<svg x=\"" + px(f.x0()) + "\" y=\"" + px(f.y1()) + "\" width=\"" + w + "\" height=\"" + h + "\" viewBox=\"" +
         px(f.x0()) + " " + px(f.y1()) + " " + w + " " + h + "\" overflow=\"hidden\">\n";
}

}  // namespace

std::string line_plot(const Plot& p) {
  detail::Frame f;
  f.width = p.width, f.height = p.height;
  std::vector<double> xs, ys;
  for (const auto& s : p.series) xs.insert(xs.end(), s.x.begin(), s.x.end()), ys.insert(ys.end(), s.y.begin(), s.y.end());
  for (const auto& v : p.vlines) xs.push_back(v.x);
  const auto mx = detail::make_mapper(p.x, xs, f.x0(), f.x1());
  const auto my = detail::make_mapper(p.y, ys, f.y0(), f.y1());
  std::string body = detail::draw_frame(f, p.title, mx, my, p.x.label, p.y.label);
  std::vector<detail::LegendItem> legend;
  body += clip_open(f);
  if (p.diagonal) {
    const double lo = std::max(mx.lo, my.lo), hi = std::min(mx.hi, my.hi);
    body += "<line x1=\"" + px(mx(lo)) + "\" y1=\"" + px(my(lo)) + "\" x2=\"" + px(mx(hi)) + "\" y2=\"" + px(my(hi)) +
            "\" stroke=\"#999999\" stroke-dasharray=\"3 3\"/>\n";
    legend.push_back({"chance", "#999999", detail::LegendItem::line, true});
  }
  for (const auto& v : p.vlines) body += vline(v, mx, f);
  std::string markers;
  for (const auto& s : p.series) {
    const std::string d = series_path(s, mx, my);
    if (!d.empty())
      body += "<path d=\"" + d + "\" fill=\"none\" stroke=\"" + s.color + "\" stroke-width=\"1.8\" stroke-linejoin=\"round\"" +
              dash(s.dashed) + "/>\n";
    if (s.points)
      for (size_t i = 0; i < s.x.size() && i < s.y.size(); ++i)
        if (mx.valid(s.x[i]) && my.valid(s.y[i]))
          body += "<circle cx=\"" + px(mx(s.x[i])) + "\" cy=\"" + px(my(s.y[i])) + "\" r=\"" + px(s.point_radius) + "\" fill=\"" + s.color + "\"/>\n";
    std::string text = s.name;
    const int m = s.mark_index >= 0 && (size_t)s.mark_index < std::min(s.x.size(), s.y.size()) &&
                          mx.valid(s.x[(size_t)s.mark_index]) && my.valid(s.y[(size_t)s.mark_index])
                      ? s.mark_index
                  : s.mark_max ? first_max(s)
                               : -1;
    if (m >= 0) {
      // Drawn after the viewport closes, so a maximum on the frame edge shows whole.
      markers += "<circle cx=\"" + px(mx(s.x[(size_t)m])) + "\" cy=\"" + px(my(s.y[(size_t)m])) +
                 "\" r=\"4.5\" fill=\"#ffffff\" stroke=\"" + s.color + "\" stroke-width=\"2\"/>\n";
      text += s.max_label.empty() && m != s.mark_index ? " (max " + fmt(s.y[(size_t)m], 3) + " at " + fmt(s.x[(size_t)m], 3) + ")"
                                                       : s.max_label;
    }
    legend.push_back({text, s.color, m >= 0 ? detail::LegendItem::marker : detail::LegendItem::line, s.dashed});
  }
  body += "</svg>\n" + markers;
  for (const auto& v : p.vlines) legend.push_back({v.name, v.color, detail::LegendItem::line, v.dashed});
  double height = p.height;
  body += detail::draw_legend(legend, p.width, p.height, height);
  return detail::svg_open(p.width, height, p.title) + body + "</svg>\n";
}

std::string histogram(const Histogram& h) {
  if (h.bins < 1) throw Error("report/svg: histogram needs at least one bin");
  detail::Frame f;
  f.width = h.width, f.height = h.height;
  double lo = INFINITY, hi = -INFINITY;
  for (const auto* v : {&h.negatives, &h.positives})
    for (double s : *v)
      if (std::isfinite(s)) lo = std::min(lo, s), hi = std::max(hi, s);
  if (!(lo <= hi)) lo = 0, hi = 1;
  // Sigmoid scores: bins on [0, 1], so histograms of different nets compare.
  Axis ax{h.x_label};
  if (lo >= 0 && hi <= 1) ax.lo = 0, ax.hi = 1;
  else { const Ticks t = nice_ticks(lo, hi); ax.lo = t.lo, ax.hi = t.hi; }
  const double width = (ax.hi - ax.lo) / h.bins;
  auto count = [&](const std::vector<double>& v) {
    std::vector<int64_t> c((size_t)h.bins, 0);
    for (double s : v)
      if (std::isfinite(s)) c[(size_t)std::min<int64_t>(h.bins - 1, std::max<int64_t>(0, (int64_t)std::floor((s - ax.lo) / width)))]++;
    return c;
  };
  const auto neg = count(h.negatives), pos = count(h.positives);
  int64_t top = 1;
  for (int b = 0; b < h.bins; ++b) top = std::max({top, neg[(size_t)b], pos[(size_t)b]});
  // Counts: whole-number ticks only.
  Ticks ty = nice_ticks(0, 1.1 * (double)top);  // headroom: the tallest bar stays below the frame
  Axis ay{"patients", Scale::linear, 0, std::max(ty.hi, 1.0)};
  const auto mx = detail::make_mapper(ax, {}, f.x0(), f.x1());
  auto my = detail::make_mapper(ay, {}, f.y0(), f.y1());
  if (ty.step < 1) {
    my.ticks.clear(), my.labels.clear();
    for (int64_t k = 0; k <= (int64_t)ay.hi; ++k) my.ticks.push_back((double)k), my.labels.push_back(std::to_string(k));
  }
  std::string body = detail::draw_frame(f, h.title, mx, my, h.x_label, "patients");
  const std::string neg_color = "#1f77b4", pos_color = "#d62728";
  for (const auto& [c, color] : {std::make_pair(&neg, neg_color), std::make_pair(&pos, pos_color)})
    for (int b = 0; b < h.bins; ++b) {
      if ((*c)[(size_t)b] == 0) continue;
      const double x0 = mx(ax.lo + b * width), x1 = mx(ax.lo + (b + 1) * width), y = my((double)(*c)[(size_t)b]);
      body += "<rect x=\"" + px(x0) + "\" y=\"" + px(y) + "\" width=\"" + px(x1 - x0) + "\" height=\"" + px(f.y0() - y) +
              "\" fill=\"" + color + "\" fill-opacity=\"0.45\" stroke=\"" + color + "\"/>\n";
    }
  for (const auto& v : h.vlines) body += vline(v, mx, f);
  std::vector<detail::LegendItem> legend = {
      {h.negative_name + ", n = " + std::to_string(h.negatives.size()), neg_color, detail::LegendItem::box},
      {h.positive_name + ", n = " + std::to_string(h.positives.size()), pos_color, detail::LegendItem::box}};
  for (const auto& v : h.vlines) legend.push_back({v.name, v.color, detail::LegendItem::line, v.dashed});
  double height = h.height;
  body += detail::draw_legend(legend, h.width, h.height, height);
  return detail::svg_open(h.width, height, h.title) + body + "</svg>\n";
}

namespace {
// White → dark blue by `share` in [0, 1] (matplotlib's "Blues", two ends).
std::string blues(double share) {
  share = std::min(1.0, std::max(0.0, share));
  const int r = (int)std::lround(247 + (8 - 247) * share), g = (int)std::lround(251 + (81 - 251) * share),
            b = (int)std::lround(255 + (156 - 255) * share);
  char buf[8];
  std::snprintf(buf, sizeof buf, "#%02x%02x%02x", r, g, b);
  return buf;
}
}  // namespace

std::string confusion_matrix(const ConfusionPlot& c) {
  const double cell = (c.size - 110) / 2.0, left = 100, top = 84;
  const double height = top + 2 * cell + 14;
  std::string s = detail::svg_open(c.size, height, c.title);
  s += "<rect x=\"0\" y=\"0\" width=\"" + px(c.size) + "\" height=\"" + px(height) + "\" fill=\"#ffffff\"/>\n";
  s += "<text x=\"" + px(c.size / 2.0) + "\" y=\"20\" text-anchor=\"middle\" font-size=\"13\" font-weight=\"bold\">" +
       escape(c.title) + "</text>\n";
  s += "<text x=\"" + px(c.size / 2.0) + "\" y=\"37\" text-anchor=\"middle\" fill=\"#555555\">" + escape(c.subtitle) + "</text>\n";
  s += "<text x=\"" + px(left + cell) + "\" y=\"" + px(top - 22) + "\" text-anchor=\"middle\" fill=\"#555555\">predicted</text>\n";
  const std::string names[2] = {c.negative_name, c.positive_name};
  for (int k = 0; k < 2; ++k) {
    s += "<text x=\"" + px(left + cell * (k + 0.5)) + "\" y=\"" + px(top - 7) + "\" text-anchor=\"middle\" font-weight=\"bold\">" +
         escape(names[k]) + "</text>\n";
    s += "<text x=\"" + px(left - 8) + "\" y=\"" + px(top + cell * (k + 0.5)) + "\" dy=\"0.35em\" text-anchor=\"end\" font-weight=\"bold\">" +
         escape(names[k]) + "</text>\n";
  }
  const std::string cy = px(top + cell);
  s += "<text x=\"22\" y=\"" + cy + "\" text-anchor=\"middle\" fill=\"#555555\" transform=\"rotate(-90 22 " + cy + ")\">actual</text>\n";
  const int64_t counts[2][2] = {{c.tn, c.fp}, {c.fn, c.tp}};
  const char* tags[2][2] = {{"TN", "FP"}, {"FN", "TP"}};
  for (int r = 0; r < 2; ++r) {
    const int64_t row = counts[r][0] + counts[r][1];
    for (int k = 0; k < 2; ++k) {
      const double share = row > 0 ? (double)counts[r][k] / (double)row : 0;
      const double x = left + cell * k, y = top + cell * r;
      const std::string ink = share > 0.55 ? "#ffffff" : "#111111";
      s += "<rect x=\"" + px(x) + "\" y=\"" + px(y) + "\" width=\"" + px(cell) + "\" height=\"" + px(cell) + "\" fill=\"" +
           blues(share) + "\" stroke=\"#ffffff\" stroke-width=\"2\"/>\n";
      s += "<text x=\"" + px(x + cell / 2) + "\" y=\"" + px(y + cell / 2 - 2) + "\" text-anchor=\"middle\" font-size=\"22\" font-weight=\"bold\" fill=\"" +
           ink + "\">" + std::to_string(counts[r][k]) + "</text>\n";
      s += "<text x=\"" + px(x + cell / 2) + "\" y=\"" + px(y + cell / 2 + 17) + "\" text-anchor=\"middle\" fill=\"" + ink + "\">" +
           tags[r][k] + " · " + fmt(100 * share, 0) + "% of row</text>\n";
    }
  }
  return s + "</svg>\n";
}

}  // namespace ctg::report
