// The timing study's table and Figure 2 (see timing_figure.h).
#include "report/timing_figure.h"

#include <algorithm>
#include <cmath>
#include <filesystem>
#include <map>

#include "base/atomic_file.h"
#include "engine/tensor.h"
#include "report/svg.h"
#include "report/svg_frame.h"

namespace ctg::report {

namespace {
double median(std::vector<double> v) {
  if (v.empty()) return NAN;
  std::sort(v.begin(), v.end());
  const size_t n = v.size();
  return n % 2 ? v[n / 2] : 0.5 * (v[n / 2 - 1] + v[n / 2]);
}

// The five phases, in step order, with their colours.
struct Phase {
  const char* name;
  const char* color;
  double TimingGroup::*ms;
};
const Phase kPhases[] = {{"data wait", "#7f7f7f", &TimingGroup::data_wait_ms},
                         {"host→device copy", "#bcbd22", &TimingGroup::h2d_ms},
                         {"forward", "#1f77b4", &TimingGroup::forward_ms},
                         {"backward", "#d62728", &TimingGroup::backward_ms},
                         {"optimizer", "#2ca02c", &TimingGroup::optimizer_ms}};

// Places a panel's <svg> at (x, y) inside the figure.
std::string place(const std::string& panel, double x, double y) {
  const size_t at = panel.find("<svg ");
  if (at == std::string::npos) return panel;
  return panel.substr(0, at) + "<svg x=\"" + detail::px(x) + "\" y=\"" + detail::px(y) + "\" " + panel.substr(at + 5);
}
double svg_height(const std::string& panel) {
  const size_t at = panel.find("height=\"");
  return at == std::string::npos ? 0 : std::stod(panel.substr(at + 8));
}

// Horizontal 100 % bars: each group's median phases as shares of its step.
std::string phase_bars(const std::vector<TimingGroup>& groups, int width, bool with_machine) {
  std::vector<std::string> labels;
  size_t longest = 0;
  for (const TimingGroup& g : groups) {
    labels.push_back(g.line_name(with_machine) + " · " + std::to_string(g.workers) + " workers");
    longest = std::max(longest, labels.back().size());
  }
  // ~6.3 px a character at font-size 11; the bars keep at least 300 px.
  const double label_w = std::min((double)width - 360, 12 + 6.3 * (double)longest), bar_h = 14, gap = 6, top = 34;
  const double x0 = label_w, x1 = width - 60;
  double height = top + (double)groups.size() * (bar_h + gap) + 24;
  std::string body = "<rect x=\"0\" y=\"0\" width=\"" + detail::px(width) + "\" height=\"" + detail::px(height) +
                     "\" fill=\"#ffffff\"/>\n<text x=\"" + detail::px(width / 2.0) +
                     "\" y=\"20\" text-anchor=\"middle\" font-size=\"13\" font-weight=\"bold\">Where a step's time "
                     "goes (median phases, share of the step)</text>\n";
  for (size_t i = 0; i < groups.size(); ++i) {
    const TimingGroup& g = groups[i];
    const double y = top + (double)i * (bar_h + gap);
    body += "<text x=\"" + detail::px(label_w - 6) + "\" y=\"" + detail::px(y + bar_h - 3) +
            "\" text-anchor=\"end\">" + escape(labels[i]) + "</text>\n";
    double sum = 0;
    for (const Phase& p : kPhases) sum += g.*(p.ms);
    double x = x0;
    for (const Phase& p : kPhases) {
      const double w = sum > 0 ? (x1 - x0) * (g.*(p.ms)) / sum : 0;
      if (w > 0.05)
        body += "<rect x=\"" + detail::px(x) + "\" y=\"" + detail::px(y) + "\" width=\"" + detail::px(w) +
                "\" height=\"" + detail::px(bar_h) + "\" fill=\"" + p.color + "\"><title>" + escape(p.name) + ": " +
                fmt(g.*(p.ms), 2) + " ms</title></rect>\n";
      x += w;
    }
    body += "<text x=\"" + detail::px(x1 + 4) + "\" y=\"" + detail::px(y + bar_h - 3) + "\">" + fmt(g.step_ms, 1) +
            " ms</text>\n";
  }
  std::vector<detail::LegendItem> legend;
  for (const Phase& p : kPhases) legend.push_back({p.name, p.color, detail::LegendItem::box});
  body += detail::draw_legend(legend, width, height - 24, height);
  return detail::svg_open(width, height, "phases of a training step") + body + "</svg>\n";
}

Plot against_workers(const std::vector<TimingGroup>& groups, bool per_epoch, bool with_machine) {
  Plot p;
  p.title = per_epoch ? "Time per epoch against num_workers" : "Time per step against num_workers";
  p.x = Axis{"DataLoader num_workers"};
  p.y = Axis{per_epoch ? "seconds per epoch (log)" : "ms per step (log)", Scale::log10};
  p.width = 440, p.height = 300;
  std::map<std::string, size_t> line_of;
  for (const TimingGroup& g : groups) {
    const std::string name = g.line_name(with_machine);
    if (!line_of.count(name)) {
      line_of[name] = p.series.size();
      Series s;
      s.name = name;
      s.color = palette(p.series.size());
      s.dashed = g.source == "cache";
      s.points = true;
      p.series.push_back(s);
    }
    Series& s = p.series[line_of[name]];
    s.x.push_back(g.workers);
    s.y.push_back(per_epoch ? g.epoch_s() : g.step_ms);
  }
  return p;
}
}  // namespace

std::string TimingGroup::line_name(bool with_machine) const {
  return (with_machine ? machine + " · " : "") + device + " · " + source + " · pin " + (pin_memory ? "on" : "off");
}

std::vector<TimingGroup> timing_groups(const std::vector<train::TimingRow>& rows) {
  std::vector<std::string> order;  // lines in first-seen order
  std::map<std::pair<std::string, int>, std::vector<const train::TimingRow*>> by;
  for (const auto& r : rows) {
    TimingGroup key;
    key.machine = r.machine, key.device = r.device, key.source = r.source, key.pin_memory = r.pin_memory;
    const std::string line = key.line_name() + "|" + r.net + "|" + std::to_string(r.batch) + "|" + std::to_string(r.size);
    if (std::find(order.begin(), order.end(), line) == order.end()) order.push_back(line);
    by[{line, r.workers}].push_back(&r);
  }
  std::vector<TimingGroup> out;
  for (const std::string& line : order)
    for (const auto& [key, rs] : by) {
      if (key.first != line) continue;
      const train::TimingRow& r0 = *rs.front();
      TimingGroup g;
      g.machine = r0.machine, g.device = r0.device, g.source = r0.source, g.net = r0.net;
      g.pin_memory = r0.pin_memory, g.workers = r0.workers, g.threads = r0.threads;
      g.batch = r0.batch, g.size = r0.size, g.steps_per_epoch = r0.steps_per_epoch, g.steps = (int)rs.size();
      auto med = [&](double train::TimingRow::*f) {
        std::vector<double> v;
        for (const auto* r : rs) v.push_back(r->*f);
        return median(v);
      };
      g.step_ms = med(&train::TimingRow::step_ms), g.data_wait_ms = med(&train::TimingRow::data_wait_ms);
      g.h2d_ms = med(&train::TimingRow::h2d_ms), g.forward_ms = med(&train::TimingRow::forward_ms);
      g.backward_ms = med(&train::TimingRow::backward_ms), g.optimizer_ms = med(&train::TimingRow::optimizer_ms);
      g.images_per_s = med(&train::TimingRow::images_per_s);
      out.push_back(g);
    }
  return out;
}

std::string timing_markdown(const std::vector<TimingGroup>& groups) {
  std::string s =
      "| machine | device | net | batch | size | source | pin_memory | workers | threads | steps | step ms | "
      "epoch s | images/s | data wait | h2d | forward | backward | optimizer |\n"
      "|---|---|---|---:|---:|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|\n";
  for (const TimingGroup& g : groups) {
    auto share = [&](double ms) { return fmt(ms, 1) + " (" + fmt(g.step_ms > 0 ? 100 * ms / g.step_ms : 0, 0) + " %)"; };
    s += "| " + g.machine + " | " + g.device + " | " + g.net + " | " + std::to_string(g.batch) + " | " +
         std::to_string(g.size) + " | " + g.source + " | " + (g.pin_memory ? "on" : "off") + " | " +
         std::to_string(g.workers) + " | " + std::to_string(g.threads) + " | " + std::to_string(g.steps) + " | " +
         fmt(g.step_ms, 1) + " | " + fmt(g.epoch_s(), 1) + " | " + fmt(g.images_per_s, 1) + " | " +
         share(g.data_wait_ms) + " | " + share(g.h2d_ms) + " | " + share(g.forward_ms) + " | " +
         share(g.backward_ms) + " | " + share(g.optimizer_ms) + " |\n";
  }
  return s + "\nMedians over the timed steps of each combination; phases in ms (share of the step). "
             "Time per epoch = median step × steps per epoch.\n";
}

std::string timing_svg(const std::vector<TimingGroup>& groups) {
  if (groups.empty()) throw ctg::Error("timing figure: no timing rows");
  bool one_machine = true;
  for (const TimingGroup& g : groups) one_machine = one_machine && g.machine == groups.front().machine;
  const std::string a = line_plot(against_workers(groups, true, !one_machine)),
                    b = line_plot(against_workers(groups, false, !one_machine));
  const int wide = 900;
  const std::string bars = phase_bars(groups, wide, !one_machine);
  const double h1 = std::max(svg_height(a), svg_height(b)), h = h1 + 10 + svg_height(bars);
  std::string machine_line;
  if (one_machine)
    machine_line = "<text x=\"" + detail::px(wide / 2.0) + "\" y=\"" + detail::px(h1 + 4) +
                   "\" text-anchor=\"middle\" font-size=\"11\" fill=\"#444\">" + escape(groups.front().machine) +
                   "</text>\n";
  return detail::svg_open(wide, h + (one_machine ? 6 : 0), "Figure 2: the timing study") + place(a, 0, 0) +
         place(b, 455, 0) + machine_line + place(bars, 0, h1 + 10 + (one_machine ? 6 : 0)) + "</svg>\n";
}

std::string timing_section_html(const std::vector<TimingGroup>& groups) {
  std::string rows;
  for (const TimingGroup& g : groups)
    rows += "<tr><td>" + escape(g.line_name()) + "</td><td>" + std::to_string(g.workers) + "</td><td>" +
            fmt(g.step_ms, 1) + "</td><td>" + fmt(g.epoch_s(), 1) + "</td><td>" + fmt(g.images_per_s, 1) +
            "</td><td>" + fmt(g.data_wait_ms, 1) + "</td><td>" + fmt(g.h2d_ms, 1) + "</td><td>" +
            fmt(g.forward_ms, 1) + "</td><td>" + fmt(g.backward_ms, 1) + "</td><td>" + fmt(g.optimizer_ms, 1) +
            "</td></tr>\n";
  return "<section id=\"timing\"><h2>The timing study (Figure 2)</h2>\n<figure>" + timing_svg(groups) +
         "<figcaption>Training steps of " + escape(groups.front().net) + " at batch " +
         std::to_string(groups.front().batch) + ", " + std::to_string(groups.front().size) +
         "² inputs, against the DataLoader's num_workers: one line per machine, device, data source (solid: "
         "NIfTI decoded and preprocessed per load; dashed: the preprocessed cache) and pin_memory; below, where "
         "each step's time goes.</figcaption></figure>\n<table><thead><tr><th>line</th><th>workers</th><th>step "
         "ms</th><th>epoch s</th><th>images/s</th><th>data wait</th><th>h2d</th><th>forward</th><th>backward</th>"
         "<th>optimizer</th></tr></thead><tbody>\n" +
         rows + "</tbody></table></section>\n";
}

void write_timing_outputs(const std::vector<train::TimingRow>& rows, const std::string& dir) {
  const std::vector<TimingGroup> groups = timing_groups(rows);
  std::filesystem::create_directories(dir);
  write_file_atomic(dir + "/timing.md", timing_markdown(groups));
  write_file_atomic(dir + "/timing.svg", timing_svg(groups));
}

}  // namespace ctg::report
