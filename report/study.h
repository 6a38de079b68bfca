// The study's own sections of the report (`ctgrad study`): per family of
// networks the learning-rate comparison (the study's Slika 3–5) and Table 1.
// The page around them, with Figures 6–8 for the best run of each family,
// is render_report's (report/report.h).
#pragma once
#include <string>
#include <vector>

#include "nets/summary.h"
#include "report/report.h"

namespace ctg::report {

// One family (Dense, CNN, ResNet18, ResNet18*) and its runs, each an
// ordinary run folder read by load_run (validation scores are enough).
struct StudyFamily {
  std::string name;           // "Dense", "CNN", "ResNet18", "ResNet18*"
  std::vector<RunData> runs;
  int best = -1;              // index of the run with the highest validation AUC
};

// Per family (Slika 3, 4, 5, and one more for ResNet18*): validation AUC
// against epoch, one line per run (net, learning rate and optimiser in the
// legend, the best epoch ringed), and parameters against training time on log
// axes (one dot per run, the family's best run a larger dot); then a table of
// every run. HTML fragment with its own <h2> headings.
std::string study_figures(const std::vector<StudyFamily>& families);

// Table 1 as an HTML table (nets/summary.h's definitions), with a caption.
std::string table1_html(const std::vector<nets::Table1Row>& rows);

// "5e-3", "1e-4", "2.5e-4": a learning rate as the legends and run names write it.
std::string lr_text(double lr);

}  // namespace ctg::report
