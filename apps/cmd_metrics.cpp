// ctgrad metrics FILE.csv [--curves DIR]: the study's measures (metrics/metrics.h)
// of any CSV of per-patient scores, as `key: value` lines; with --curves also
// the ROC, precision–recall, DET and per-threshold CSVs.
#include <cstdio>
#include <filesystem>
#include <memory>
#include <string>
#include <vector>

#include "apps/commands.h"
#include "metrics/metrics.h"

namespace ctg::apps {

namespace {

struct MetricsArgs {
  std::string file, curves;
};

void run_metrics(const MetricsArgs& a) {
  const auto data = eval::read_scores_csv(a.file);
  const eval::Summary s = eval::summarize(data);
  // Curves first, so that a folder that cannot be written fails before any output.
  std::vector<std::string> written;
  if (!a.curves.empty()) written = eval::write_curves(data, a.curves);
  std::fputs(eval::format_summary(s).c_str(), stdout);
  // One more key per file written: roc_csv, pr_csv, det_csv, thresholds_csv.
  for (const std::string& p : written) std::printf("%s_csv: %s\n", std::filesystem::path(p).stem().c_str(), p.c_str());
}

}  // namespace

static Registrar reg([](CLI::App& app) {
  auto* cmd = app.add_subcommand(
      "metrics",
      "Read a CSV whose header has columns `score` and `label` (0 mild, 1 severe; other columns ignored) and print "
      "`key: value` lines: n, positives, negatives, auc, average_precision, threshold_f1 (the threshold that "
      "maximises F1, the lowest among equal F1), at that threshold tp, fp, tn, fn, tpr, tnr, ppv, npv, fpr, fnr, "
      "accuracy, balanced_accuracy (½(TPR+TNR)), f1, fowlkes_mallows (√(TPR·PPV)), mcc, youden_j, and "
      "threshold_youden, threshold_mcc, threshold_fm (max Fowlkes–Mallows) and threshold_ba (max balanced accuracy; "
      "equal to threshold_youden since BA = (J+1)/2), all with ties → lowest. Conventions as scikit-learn's: a score at or above the "
      "threshold is positive, the thresholds are the distinct scores, AUC counts ties as half, MCC is 0 when "
      "undefined.");
  auto a = std::make_shared<MetricsArgs>();
  cmd->add_option("FILE", a->file, "CSV with a header naming `score` and `label` columns")->required();
  cmd->add_option("--curves", a->curves,
                  "also write DIR/roc.csv (fpr,tpr,threshold; first threshold inf), DIR/pr.csv "
                  "(precision,recall,threshold; last point 1,0,nan), DIR/det.csv (fpr,fnr,threshold) and "
                  "DIR/thresholds.csv (threshold,f1,fowlkes_mallows,balanced_accuracy,mcc,youden_j,tpr,tnr)");
  cmd->callback([a]() { run_metrics(*a); });
});

}  // namespace ctg::apps
