// The report page: the summary table (the study's Figure 7), the sections of
// figures (figures.cpp), and writing report.html atomically.
#include "report/report.h"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <functional>

#include "base/atomic_file.h"
#include "engine/tensor.h"
#include "report/figures.h"
#include "report/insight_section.h"
#include "report/svg.h"

namespace ctg::report {

namespace fig {

std::string figure(const std::string& svg, const std::string& caption, int width) {
  return "<figure>\n" + svg + "<figcaption style=\"max-width:" + std::to_string(width) + "px\">" + caption +
         "</figcaption>\n</figure>\n";
}

std::string thousands(int64_t n) {
  if (n < 0) return "–";
  std::string s = std::to_string(n), out;
  for (size_t i = 0; i < s.size(); ++i) {
    if (i > 0 && (s.size() - i) % 3 == 0) out += ',';
    out += s[i];
  }
  return out;
}

std::string duration(double seconds) {
  if (!std::isfinite(seconds) || seconds < 0) return "–";
  if (seconds < 60) return fmt(seconds, 1) + " s";
  const int64_t s = std::llround(seconds);
  char buf[48];
  if (s < 3600) std::snprintf(buf, sizeof buf, "%lld min %02lld s", (long long)(s / 60), (long long)(s % 60));
  else std::snprintf(buf, sizeof buf, "%lld h %02lld min", (long long)(s / 3600), (long long)(s % 3600 / 60));
  return buf;
}

std::string summary_table(const std::vector<Run>& runs) {
  // Columns where higher is better get the best run's cell in bold.
  struct Col { const char* head; std::function<double(const Run&)> value; int decimals; };
  const std::vector<Col> cols = {
      {"AUC", [](const Run& r) { return r.m.test.auc; }, 3},
      {"AP", [](const Run& r) { return r.m.test.average_precision; }, 3},
      {"F1", [](const Run& r) { return r.m.at_threshold.f1; }, 3},
      {"MCC", [](const Run& r) { return r.m.at_threshold.mcc; }, 3},
      {"sensitivity", [](const Run& r) { return r.m.at_threshold.tpr; }, 3},
      {"specificity", [](const Run& r) { return r.m.at_threshold.tnr; }, 3},
      {"balanced acc.", [](const Run& r) { return r.m.at_threshold.balanced_accuracy; }, 3},
  };
  std::string s = "<table class=\"summary\">\n<thead><tr><th>run</th><th>net</th><th>params</th><th>training time</th>"
                  "<th>best epoch (val AUC)</th><th>threshold<br><small>max F1 on val</small></th>";
  for (const auto& c : cols) s += std::string("<th>") + c.head + "</th>";
  s += "<th>TP / FP / TN / FN</th></tr></thead>\n<tbody>\n";
  std::vector<double> best(cols.size(), -INFINITY);
  for (const auto& r : runs)
    for (size_t k = 0; k < cols.size() && r.data->has_test; ++k)
      best[k] = std::max(best[k], std::stod(fmt(cols[k].value(r), cols[k].decimals)));
  const Run* tested = nullptr;  // the first run with test scores: its counts go into the caption
  for (const auto& r : runs) {
    const auto& d = *r.data;
    const auto& c = r.m.at_threshold;
    if (!tested && d.has_test) tested = &r;
    s += "<tr><td class=\"name\"><span class=\"swatch\" style=\"background:" + r.color + "\"></span>" + escape(d.name) +
         "</td><td>" + escape(d.net) + "</td><td class=\"num\">" + thousands(d.params) + "</td><td class=\"num\">" +
         duration(d.train_seconds) + "</td><td class=\"num\">" + std::to_string(d.best_epoch) + " (" + fmt(d.best_val_auc, 3) +
         ")</td><td class=\"num\">" + fmt(r.m.threshold, 3) + "</td>";
    if (!d.has_test) {  // compared on validation only (a learning-rate sweep): no test columns
      s += "<td class=\"num\" colspan=\"" + std::to_string(cols.size() + 1) + "\">no test scores (validation only)</td></tr>\n";
      continue;
    }
    for (size_t k = 0; k < cols.size(); ++k) {
      const std::string v = fmt(cols[k].value(r), cols[k].decimals);
      s += runs.size() > 1 && std::stod(v) == best[k] ? "<td class=\"num best\">" + v + "</td>" : "<td class=\"num\">" + v + "</td>";
    }
    s += "<td class=\"num\">" + std::to_string(c.tp) + " / " + std::to_string(c.fp) + " / " + std::to_string(c.tn) + " / " +
         std::to_string(c.fn) + "</td></tr>\n";
  }
  s += "</tbody>\n</table>\n<p class=\"caption\"><b>Key measures on the test split</b>";
  if (tested)
    s += " (" + std::to_string(tested->m.test.n) + " patients: " + std::to_string(tested->m.test.positives) +
         " severe, " + std::to_string(tested->m.test.negatives) + " mild)";
  s += ". AUC and AP need no threshold. F1, MCC, sensitivity (TPR), specificity (TNR), balanced accuracy "
       "(½(TPR + TNR)) and the counts are at each run's threshold chosen as the maximum-F1 threshold of its "
       "<em>validation</em> scores (lowest among ties) and then applied to test, so no test label informs it. "
       "Bold: the best run per column. Training time is the wall time of <code>ctgrad train</code> (summary.json).</p>\n";
  return s;
}

}  // namespace fig

namespace {

const char* kStyle = R"(body{font-family:"DejaVu Sans",Helvetica,Arial,sans-serif;margin:24px auto;max-width:1400px;color:#111;background:#f6f6f6;padding:0 16px}
h1{font-size:24px;margin:0 0 4px}h2{font-size:18px;margin:28px 0 8px;border-bottom:1px solid #ccc;padding-bottom:4px}
p{max-width:1000px;line-height:1.4}.note{color:#444}
.grid{display:flex;flex-wrap:wrap;gap:16px;align-items:flex-start}
figure{margin:0;background:#fff;border:1px solid #ddd;padding:8px}
figure svg{display:block}
figcaption{font-size:12.5px;color:#333;line-height:1.35;margin-top:6px}
table.summary{border-collapse:collapse;background:#fff;font-size:13.5px}
table.summary th,table.summary td{border:1px solid #ccc;padding:5px 9px;text-align:left}
table.summary th{background:#eef2f7;vertical-align:bottom}
td.num{text-align:right;font-variant-numeric:tabular-nums}td.best{font-weight:bold;background:#eaf4ea}
td.name{white-space:nowrap}.swatch{display:inline-block;width:12px;height:12px;margin-right:6px;vertical-align:-1px}
.caption{font-size:13px;color:#333}code{font-size:12px;background:#eee;padding:0 3px}
)";

}  // namespace

std::string render_report(const std::vector<RunData>& runs, const ReportExtras& extras) {
  // No runs: a page of the extras alone (`report --timing A.csv`), else an error.
  if (runs.empty() && extras.before_html.empty()) throw Error("report: no runs to report");
  std::vector<fig::Run> rs, tested;  // tested: the runs with test scores, which the test figures show
  for (size_t i = 0; i < runs.size(); ++i) rs.push_back({&runs[i], measure(runs[i]), palette(i)});
  for (const auto& r : rs)
    if (r.data->has_test) tested.push_back(r);
  std::string names;
  for (const auto& r : runs) names += (names.empty() ? "" : ", ") + escape(r.name) + " (" + escape(r.net) + ")";
  std::string h = "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n<title>" + escape(extras.title) + "</title>\n<style>\n";
  h += kStyle;
  h += "</style>\n</head>\n<body>\n<h1>" + escape(extras.title) + "</h1>\n";
  if (!extras.intro_html.empty()) h += extras.intro_html;
  else if (!runs.empty()) h += "<p>" + std::to_string(runs.size()) + " run(s): " + names + ". One score per patient (the mean of its slices' sigmoid outputs); a score at or above the threshold means "
       "severe. Every threshold-dependent number uses the threshold that maximises F1 on the <em>validation</em> "
       "patients, applied unchanged to the test patients.</p>\n";
  h += extras.before_html;
  if (runs.empty()) return h + "</body>\n</html>\n";
  if (!extras.runs_heading.empty()) h += "<h2 class=\"part\">" + escape(extras.runs_heading) + "</h2>\n";
  h += "<h2>Summary (Figure 7)</h2>\n" + fig::summary_table(rs);
  if (tested.empty()) {
    h += "<p class=\"note\">No run has test scores (<code>scores_test.csv</code>), so the test figures are left out; "
         "<code>ctgrad eval --split test</code> writes them.</p>\n";
  } else {
    h += "<h2>ROC, precision–recall and DET curves (Figure 6)</h2>\n" + fig::curves(tested);
    h += "<h2>F1, Fowlkes–Mallows and balanced accuracy against threshold</h2>\n" + fig::threshold_panels(tested);
    h += "<h2>Score histograms</h2>\n" + fig::histograms(tested);
    h += "<h2>Confusion matrices at the validation-chosen threshold</h2>\n" + fig::confusions(tested);
    h += "<h2>Central slice only vs all 10 slices (Figure 8)</h2>\n" + fig::central_vs_ten(tested);
  }
  h += "<h2>Training curves</h2>\n" + fig::training(rs);
  h += insight_section(runs, extras.explain_dirs, extras.predict_dirs);  // "" without explain/predict pictures
  h += "<p class=\"note\">Runs: ";
  for (size_t i = 0; i < runs.size(); ++i) h += (i ? ", " : "") + std::string("<code>") + escape(runs[i].dir) + "</code>";
  h += ". Written by <code>ctgrad report</code>; measures from <code>metrics/metrics.h</code> (scikit-learn's conventions).</p>\n";
  return h + "</body>\n</html>\n";
}

std::string build_report(const std::vector<std::string>& run_dirs, const std::string& out_dir, const ReportExtras& extras) {
  if (run_dirs.empty() && extras.before_html.empty()) throw Error("report: no run directories given");
  std::vector<RunData> runs;
  for (const auto& d : run_dirs) runs.push_back(load_run(d));
  const std::string html = render_report(runs, extras);  // before touching OUT_DIR: a failed report leaves nothing
  std::error_code ec;
  std::filesystem::create_directories(out_dir, ec);
  if (ec) throw Error("report: " + out_dir + ": cannot create the output directory: " + ec.message());
  const std::string path = (std::filesystem::path(out_dir) / "report.html").string();
  write_file_atomic(path, html);
  return path;
}

}  // namespace ctg::report
