// The timing study's outputs (train/timing.h measures): the table of medians
// and the study's Figure 2, from the rows of one or several timing.csv files
// (several machines: the `machine` column tells them apart).
#pragma once
#include <string>
#include <vector>

#include "train/timing.h"

namespace ctg::report {

// One line of the figure and the table: a machine × device × source ×
// pin_memory × num_workers combination, with the median of its steps.
struct TimingGroup {
  std::string machine, device, source, net;
  bool pin_memory = false;
  int workers = 0, threads = 0;
  int64_t batch = 0, size = 0, steps_per_epoch = 0;
  int steps = 0;  // timed steps behind the medians
  double step_ms = 0, data_wait_ms = 0, h2d_ms = 0, forward_ms = 0, backward_ms = 0, optimizer_ms = 0;
  double images_per_s = 0;
  double epoch_s() const { return step_ms * (double)steps_per_epoch / 1000.0; }
  // "AMD EPYC, 2 cores; GPU none · cpu · cache · pin off": the legend of its
  // line (without the machine when the figure has only one).
  std::string line_name(bool with_machine = true) const;
};
// Groups in first-seen order of their line, workers ascending within a line.
std::vector<TimingGroup> timing_groups(const std::vector<train::TimingRow>& rows);

// timing.md: one Markdown table row per group (medians; phase shares of the step).
std::string timing_markdown(const std::vector<TimingGroup>& groups);
// Figure 2 as one SVG: time per epoch and per step against num_workers (one
// line per machine × device × source × pin_memory), and the phases of the
// step as stacked shares for every group.
std::string timing_svg(const std::vector<TimingGroup>& groups);
// The report section (heading, caption, the SVG, the table as HTML).
std::string timing_section_html(const std::vector<TimingGroup>& groups);

// Reads the CSVs and writes DIR/timing.md and DIR/timing.svg (atomically).
void write_timing_outputs(const std::vector<train::TimingRow>& rows, const std::string& dir);

}  // namespace ctg::report
