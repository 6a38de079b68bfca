// build_study_report (report/study_report.h).
#include "report/study_report.h"

#include <filesystem>

#include "base/atomic_file.h"
#include "report/study.h"
#include "report/svg.h"
#include "train/predict.h"

namespace ctg::report {

namespace {

// The own-scan check (SEED_NOTES section 7): the scan through the same
// preprocessing and slice choice, scored by each family's best run against
// that run's validation-chosen threshold; negative score − threshold = mild.
std::string own_scan_section(const train::StudyOutcome& study) {
  const auto& o = study.options;
  if (o.own_scan.empty())
    return "<p class=\"note\">No own-scan check: <code>ctgrad study … --own-scan SCAN.nii.gz</code> adds one "
           "(<code>ctgrad predict</code> does it for any runs).</p>\n";
  const train::ScanSlices scan = train::scan_slices(o.own_scan, o.size);
  std::string s = "<table class=\"summary\">\n<thead><tr><th>family</th><th>best run</th><th>score</th>"
                  "<th>threshold<br><small>max F1 on val</small></th><th>score − threshold</th><th>verdict</th>"
                  "</tr></thead>\n<tbody>\n";
  for (const auto& [family, i] : study.best) {
    const auto& r = study.runs[i].run;
    const train::Prediction p = train::predict_run(r.dir, scan, o.device);
    s += "<tr><td>" + escape(family) + "</td><td class=\"name\">" + escape(r.name) + "</td><td class=\"num\">" +
         fmt(p.score, 3) + "</td><td class=\"num\">" + fmt(p.threshold, 3) + "</td><td class=\"num\">" +
         fmt(p.score - p.threshold, 3) + "</td><td>" +
         (p.severe() ? "severe (" + data::grade_list(r.options.mapping().positive) + ")"
                     : "mild (" + data::grade_list(r.options.mapping().negative) + ")") +
         "</td></tr>\n";
  }
  std::string zs;
  for (int64_t z : scan.z) zs += (zs.empty() ? "" : ", ") + std::to_string(z);
  return s + "</tbody>\n</table>\n<p class=\"caption\"><b>Own-scan check</b> of <code>" + escape(o.own_scan) +
         "</code>: slices " + zs + " (of " + std::to_string(scan.depth) + ") preprocessed as the cohort's, each best "
         "run's patient score (the mean of the slices' scores) against the threshold it chose on its validation "
         "patients; a negative difference means mild.</p>\n";
}

}  // namespace

std::string build_study_report(const train::StudyOutcome& study, bool measure_saved) {
  const auto& o = study.options;
  std::vector<StudyFamily> families;
  std::vector<RunData> best;
  for (const auto& [family, best_index] : study.best) {
    StudyFamily f;
    f.name = family;
    for (size_t i = 0; i < study.runs.size(); ++i) {
      if (study.runs[i].run.family != family) continue;
      if (i == best_index) f.best = (int)f.runs.size();
      f.runs.push_back(load_run(study.runs[i].run.dir));
    }
    best.push_back(f.runs[(size_t)f.best]);
    families.push_back(std::move(f));
  }
  if (best.empty()) throw Error("study: no runs to report");
  const auto table1 = nets::table1(o.size, measure_saved);

  std::string lrs, opts, nets;
  for (double lr : o.lrs) lrs += (lrs.empty() ? "" : ", ") + lr_text(lr);
  for (const auto& x : o.optimizers) opts += (opts.empty() ? "" : ", ") + x;
  for (const auto& x : o.nets) nets += (nets.empty() ? "" : ", ") + x;
  ReportExtras ex;
  ex.title = "ctgrad study";
  ex.intro_html = "<p>" + std::to_string(study.runs.size()) + " runs: nets " + escape(nets) +
                  (o.init_resnet18.empty() ? std::string() : " (and ResNet18* from " + escape(o.init_resnet18) + ")") +
                  " × learning rates " + escape(lrs) + " × optimisers " + escape(opts) + "; " + std::to_string(o.epochs) +
                  " epochs, batch " + std::to_string(o.batch) + ", " + std::to_string(o.size) + "² inputs, lr × " +
                  fmt(o.lr_decay, 3) + " per epoch, weight decay " + lr_text(o.weight_decay) + ". Data: <code>" +
                  escape(o.data) + "</code>. Each run is chosen at its best epoch by validation AUC (per patient, the "
                  "mean of ten slice scores), and each family's best run by the same AUC; only those best runs are "
                  "compared on the test patients (Figures 6–8), at the threshold that maximises F1 on validation.</p>\n";
  ex.before_html = study_figures(families) + "<h2>Table 1: the networks</h2>\n" + table1_html(table1) +
                   "<h2>Own-scan check</h2>\n" + own_scan_section(study);
  ex.runs_heading = "The best run of each family (Figures 6–8)";
  const std::string html = render_report(best, ex);
  const std::string path = (std::filesystem::path(o.out) / "report.html").string();
  write_file_atomic(path, html);
  return path;
}

}  // namespace ctg::report
