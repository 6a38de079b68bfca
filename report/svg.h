// A small SVG plotting layer for `ctgrad report`: line and step plots with
// several series and a legend, histograms per class with threshold lines, and
// a heat-mapped 2×2 confusion matrix. Output is a self-contained <svg>
// element (no scripts, no external fonts) and deterministic: every number is
// printed with a fixed number of decimals, so the same data gives the same
// bytes. All text is XML-escaped.
#pragma once
#include <cstdint>
#include <string>
#include <vector>

namespace ctg::report {

// XML-escapes & < > " ' (for text content and attribute values alike).
std::string escape(const std::string& s);
// printf("%.*f") with "-0" printed as "0": deterministic, locale-free digits.
std::string fmt(double v, int decimals);

// "Nice" axis ticks (1, 2, 5 × 10^k steps) covering [lo, hi]: lo/hi are
// widened outwards to whole steps, `decimals` is enough to print every tick
// distinctly. A degenerate range (lo == hi) is widened around the value.
struct Ticks {
  double lo = 0, hi = 1, step = 0.2;
  int decimals = 1;
  std::vector<double> values;
};
Ticks nice_ticks(double lo, double hi, int target = 5);

// linear; log10 (ticks at powers of ten); probit: the normal-deviate axis of
// DET plots (x ↦ Φ⁻¹(x), rates in (0, 1)), ticks at the conventional rates.
enum class Scale { linear, log10, probit };
// Φ⁻¹(p) for p in (0, 1) (Acklam's rational approximation, |error| < 1.2e-9).
double probit(double p);

struct Axis {
  std::string label;
  Scale scale = Scale::linear;
  // Fixed range when lo < hi; otherwise taken (with nice ticks) from the data.
  double lo = 0, hi = 0;
};

// How consecutive points are joined: straight lines; "post": horizontal at
// y[i] up to x[i+1] (a PR curve); "pre": y[i+1] already over (x[i], x[i+1]]
// (a measure against threshold, which is constant between distinct scores).
enum class Step { none, pre, post };

struct Series {
  std::string name;  // legend text
  std::vector<double> x, y;  // non-finite points break the line
  std::string color = "#1f77b4";
  bool dashed = false;
  Step step = Step::none;
  // A ring at point mark_index, with max_label appended to the legend text;
  // or, with mark_max, at the first maximum of y, with max_label defaulting
  // to " (max Y at X)".
  int mark_index = -1;
  bool mark_max = false;
  std::string max_label;
  bool points = false;       // a small dot at every point (short curves)
  double point_radius = 2.2; // of those dots (a scatter plot's larger dot marks its best point)
};

// A vertical reference line at x (a threshold), labelled in the legend.
struct VLine {
  double x = 0;
  std::string name, color = "#333333";
  bool dashed = true;
};

struct Plot {
  std::string title;
  Axis x, y;
  std::vector<Series> series;
  std::vector<VLine> vlines;
  bool diagonal = false;  // the y = x chance line (ROC)
  int width = 420, height = 300;  // the plotting panel; the legend adds rows below
};
std::string line_plot(const Plot& p);

// Two overlaid histograms (negatives, positives) of scores over the same
// bins, with vertical threshold lines. Bins span [0, 1] when every score does,
// else the data's nice range.
struct Histogram {
  std::string title, x_label = "score";
  std::vector<double> negatives, positives;
  std::string negative_name = "mild (label 0)", positive_name = "severe (label 1)";
  std::vector<VLine> vlines;
  int bins = 20;
  int width = 420, height = 260;
};
std::string histogram(const Histogram& h);

// Rows: actual class (negative, positive); columns: predicted class — the
// layout of scikit-learn's confusion_matrix. Cells shaded by their share of
// their row (so both classes read alike whatever the prevalence).
struct ConfusionPlot {
  std::string title, subtitle;
  int64_t tn = 0, fp = 0, fn = 0, tp = 0;
  std::string negative_name = "mild", positive_name = "severe";
  int size = 300;
};
std::string confusion_matrix(const ConfusionPlot& c);

// The report's run colours (Tableau 10), cycled.
const std::string& palette(size_t i);

}  // namespace ctg::report
