// `ctgrad report`: one self-contained HTML page (inline SVG and CSS, no
// scripts, no network) comparing trained runs the way the study's Figures
// 6–8 do. Every measure comes from metrics/metrics.h; this module only reads run
// directories (train/run.h) and draws.
//
// The threshold of every threshold-dependent number (F1, MCC, sensitivity,
// specificity, the confusion matrices) is the F1-maximising threshold of the
// VALIDATION scores (eval::summarize(val).threshold_f1), applied to the TEST
// scores: choosing it on test would flatter the nets.
#pragma once
#include <cstdint>
#include <string>
#include <vector>

#include "metrics/metrics.h"

namespace ctg::report {

struct Epoch {
  int64_t epoch = 0;
  double train_loss = 0, val_loss = 0, val_auc = 0;  // NaN when the row left it empty
};

// Everything the report reads from one run directory.
struct RunData {
  std::string dir;             // as given
  std::string name, net;       // config.json
  int64_t params = -1;         // config.json "params"; -1 when absent
  double train_seconds = 0;    // summary.json
  int64_t best_epoch = 0;
  double best_val_auc = 0;
  std::vector<Epoch> epochs;   // metrics.csv
  std::vector<eval::Scored> val, test, test_central;  // scores_*.csv
  bool has_test = false;       // scores_test.csv exists (runs compared on validation only have none)
  bool has_central = false;    // scores_test_central.csv exists
  std::string optimizer;       // config.json "optimizer" ("" when absent)
  double lr = 0;               // config.json "lr" (0 when absent)
};

// Reads DIR/config.json, summary.json, metrics.csv, scores_val.csv and, when
// present, scores_test.csv and scores_test_central.csv. Errors (ctg::Error)
// name the file: missing, malformed JSON, missing keys, bad rows.
RunData load_run(const std::string& dir);

// The measures the report shows for one run (all from metrics/metrics.h).
struct RunMeasures {
  eval::Summary val, test;    // summarize() of each split (test: only with has_test)
  double threshold = 0;       // val.threshold_f1
  eval::Confusion at_threshold;  // confusion_at(test, threshold)
  double central_auc = -1;    // roc_auc(test_central); -1 without it
};
RunMeasures measure(const RunData& r);

// What a caller (`ctgrad study`) adds around the figures of the runs.
struct ReportExtras {
  std::string title = "ctgrad report";
  std::string intro_html;    // replaces the opening paragraph when non-empty
  std::string before_html;   // sections before the summary (the study's Slika 3–5, Table 1)
  std::string runs_heading;  // e.g. "The best run of each family"; a heading over the runs' sections
  // The Insight section (report/insight_section.h): `report --explain` and
  // `--predict` folders; every run's RUN/explain/** is searched anyway.
  std::vector<std::string> explain_dirs, predict_dirs;
};

// The page, as a string (deterministic for the same runs). Runs without
// test scores appear in the summary table (validation columns) and the
// training curves only.
std::string render_report(const std::vector<RunData>& runs, const ReportExtras& extras = {});

// Loads the runs, writes OUT_DIR/report.html atomically (creating OUT_DIR)
// and returns its path. Throws ctg::Error when no run is given or any fails to load.
std::string build_report(const std::vector<std::string>& run_dirs, const std::string& out_dir,
                         const ReportExtras& extras = {});

}  // namespace ctg::report
