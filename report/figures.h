// The report's figures and table as HTML fragments (report.cpp assembles the
// page). Internal to report/.
#pragma once
#include <string>
#include <vector>

#include "report/report.h"

namespace ctg::report::fig {

// One run as the figures see it: its data, its measures and its colour.
struct Run {
  const RunData* data = nullptr;
  RunMeasures m;
  std::string color;
};

// <figure> holding one SVG and its caption.
std::string figure(const std::string& svg, const std::string& caption, int width);

std::string summary_table(const std::vector<Run>& runs);       // Figure 7
std::string curves(const std::vector<Run>& runs);              // ROC, PR, DET (Figure 6)
std::string threshold_panels(const std::vector<Run>& runs);    // F1, FM, BA vs threshold
std::string histograms(const std::vector<Run>& runs);          // scores per class
std::string confusions(const std::vector<Run>& runs);          // at the val-chosen threshold
std::string central_vs_ten(const std::vector<Run>& runs);      // Figure 8
std::string training(const std::vector<Run>& runs);            // metrics.csv

// "11,177,025"; "–" for a negative count (unknown).
std::string thousands(int64_t n);
// "42.3 s", "12 min 05 s", "1 h 02 min".
std::string duration(double seconds);

}  // namespace ctg::report::fig
