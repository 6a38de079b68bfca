// ctgrad report: one self-contained HTML page comparing trained runs (the
// study's Figures 6–8), from their run directories (train/run.h).
#include <cstdio>

#include "apps/commands.h"
#include "engine/tensor.h"
#include "report/report.h"
#include "report/timing_figure.h"

namespace ctg::apps {

namespace {
struct ReportArgs {
  std::vector<std::string> runs, explain, predict, timing;
  std::string out;
};
}  // namespace

static Registrar reg([](CLI::App& app) {
  auto* cmd = app.add_subcommand(
      "report",
      "Write OUT/report.html: one self-contained page (inline SVG, no scripts, no network) with the summary table "
      "(AUC, F1, MCC, sensitivity, specificity, params, training time), ROC, precision-recall and DET curves, F1/FM/"
      "balanced accuracy against threshold, score histograms, confusion matrices, central-slice vs 10-slice ROC and "
      "the training curves of every RUN, and an Insight section with the pictures of `ctgrad explain` (RUN/explain/**, "
      "--explain) and `ctgrad predict --out` (--predict), embedded so the page stays one file. Threshold-dependent numbers use the max-F1 threshold of the validation "
      "scores, applied to test. Each RUN needs config.json, summary.json, metrics.csv (ctgrad train) and "
      "scores_val.csv, scores_test.csv (ctgrad eval); scores_test_central.csv is optional.");
  auto a = std::make_shared<ReportArgs>();
  cmd->add_option("runs", a->runs, "run directories (ctgrad train --out); none with --timing alone");
  cmd->add_option("--out", a->out, "output directory (created if needed); the page is OUT/report.html")->required();
  cmd->add_option("--explain", a->explain,
                  "a folder of `ctgrad explain` outputs (searched for explain.json, itself and below; repeatable): its "
                  "pictures go into the Insight section, embedded. RUN/explain/ of every RUN is searched anyway")
      ->allow_extra_args(false);
  cmd->add_option("--predict", a->predict,
                  "a `ctgrad predict --out` folder (repeatable): its pictures (Slika 10-11) go into the Insight section")
      ->allow_extra_args(false);
  cmd->add_option("--timing", a->timing,
                  "timing.csv files of `ctgrad bench timing` (repeatable, several machines merge into one figure): "
                  "the timing study's section (Figure 2); also written as OUT/timing.md and OUT/timing.svg")
      ->allow_extra_args(false);
  cmd->callback([a]() {
    if (a->runs.empty() && a->timing.empty()) throw ctg::Error("report: give run directories, --timing CSV files, or both");
    report::ReportExtras extras;
    extras.explain_dirs = a->explain, extras.predict_dirs = a->predict;
    if (!a->timing.empty()) {
      std::vector<train::TimingRow> rows;
      for (const std::string& f : a->timing) {
        const auto r = train::read_timing_csv(f);
        rows.insert(rows.end(), r.begin(), r.end());
      }
      if (rows.empty()) throw ctg::Error("--timing: the CSV files have no rows");
      extras.before_html += report::timing_section_html(report::timing_groups(rows));
      if (a->runs.empty()) extras.title = "ctgrad timing study";
      report::write_timing_outputs(rows, a->out);
    }
    std::printf("%s\n", report::build_report(a->runs, a->out, extras).c_str());
  });
});

}  // namespace ctg::apps
