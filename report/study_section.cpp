// The study's learning-rate comparison per family (Slika 3–5) and Table 1,
// as HTML fragments for the report page (report/study.h).
#include <cmath>
#include <cstdio>

#include "report/figures.h"
#include "report/study.h"
#include "report/svg.h"
#include "train/study.h"

namespace ctg::report {

std::string lr_text(double lr) { return train::lr_name(lr); }

namespace {

// A run in a family's legend: the net (a family may hold several), the
// learning rate and the optimiser.
std::string run_label(const RunData& r) {
  std::string s = r.net + ", lr " + lr_text(r.lr);
  if (!r.optimizer.empty()) s += ", " + r.optimizer;
  return s;
}

std::string auc_figure(const StudyFamily& f, const std::string& slika) {
  Plot p;
  p.title = f.name + ": validation AUC per epoch";
  p.x.label = "epoch";
  p.y.label = "validation AUC (per patient)";
  p.y.lo = 0, p.y.hi = 1;
  for (size_t i = 0; i < f.runs.size(); ++i) {
    const RunData& r = f.runs[i];
    Series s;
    s.name = run_label(r) + " (best " + fmt(r.best_val_auc, 3) + " at epoch " + std::to_string(r.best_epoch) + ")" +
             ((int)i == f.best ? " — best of the family" : "");
    s.color = palette(i);
    s.dashed = r.optimizer == "sgd";  // the optimiser as the line style, the run as the colour
    for (const auto& e : r.epochs) {
      if (e.epoch == r.best_epoch) s.mark_index = (int)s.x.size();
      s.x.push_back((double)e.epoch), s.y.push_back(e.val_auc);
    }
    s.points = r.epochs.size() <= 30;
    p.series.push_back(s);
  }
  return fig::figure(line_plot(p),
                     "<b>" + slika + ": " + escape(f.name) +
                         ", validation AUC against epoch</b>, one line per run (net, learning rate and optimiser in the "
                         "legend; dashed: SGD with momentum, solid: Adam). Ring: each run's best epoch, whose weights are "
                         "kept and evaluated. The family's best run has the highest of these AUCs.",
                     p.width);
}

std::string cost_figure(const StudyFamily& f, const std::string& slika) {
  Plot p;
  p.title = f.name + ": parameters against training time";
  p.x.label = "training time (s, log scale)";
  p.x.scale = Scale::log10;
  p.y.label = "parameters (millions, log scale)";
  p.y.scale = Scale::log10;
  for (size_t i = 0; i < f.runs.size(); ++i) {
    const RunData& r = f.runs[i];
    if (r.params <= 0 || !(r.train_seconds > 0)) continue;  // nothing to place on log axes
    Series s;
    s.name = run_label(r) + ": " + fig::duration(r.train_seconds) + ((int)i == f.best ? " — best" : "");
    s.color = palette(i);
    s.x = {r.train_seconds}, s.y = {(double)r.params / 1e6};
    s.points = true;
    s.point_radius = (int)i == f.best ? 7 : 3.5;
    p.series.push_back(s);
  }
  if (p.series.empty()) return "";
  return fig::figure(line_plot(p),
                     "<b>" + slika + ": " + escape(f.name) +
                         ", parameters against training time</b> (wall time of all epochs, summary.json), both on log "
                         "axes; one dot per run, the larger dot the family's best run by validation AUC.",
                     p.width);
}

std::string runs_table(const std::vector<StudyFamily>& families) {
  std::string s =
      "<table class=\"summary\">\n<thead><tr><th>family</th><th>run</th><th>net</th><th>optimiser</th><th>lr</th>"
      "<th>epochs</th><th>best epoch</th><th>best val AUC</th><th>test AUC</th><th>params</th><th>training time</th>"
      "</tr></thead>\n<tbody>\n";
  for (const auto& f : families)
    for (size_t i = 0; i < f.runs.size(); ++i) {
      const RunData& r = f.runs[i];
      const bool best = (int)i == f.best;
      std::string test = "–";
      if (r.has_test) {
        try {
          test = fmt(eval::roc_auc(r.test), 3);
        } catch (const Error&) {  // one class only: no AUC
        }
      }
      s += std::string("<tr><td>") + escape(f.name) + "</td><td class=\"name\">" + escape(r.name) + "</td><td>" +
           escape(r.net) + "</td><td>" + escape(r.optimizer) + "</td><td class=\"num\">" + lr_text(r.lr) +
           "</td><td class=\"num\">" + std::to_string(r.epochs.size()) + "</td><td class=\"num\">" +
           std::to_string(r.best_epoch) + "</td><td class=\"num" + (best ? " best" : "") + "\">" +
           fmt(r.best_val_auc, 3) + "</td><td class=\"num\">" + test + "</td><td class=\"num\">" +
           fig::thousands(r.params) + "</td><td class=\"num\">" + fig::duration(r.train_seconds) + "</td></tr>\n";
    }
  return s + "</tbody>\n</table>\n<p class=\"caption\"><b>Every run of the study.</b> Bold: the best run of each family "
             "by validation AUC (the earliest run in the table on ties), which the sections below evaluate on test. "
             "Test AUCs of the other runs are shown for reference only; none of them informed a choice.</p>\n";
}

}  // namespace

std::string study_figures(const std::vector<StudyFamily>& families) {
  std::string out;
  int number = 3;  // the study's Slika 3 (Dense), 4 (CNN), 5 (ResNet18); ResNet18* follows
  for (const auto& f : families) {
    if (f.runs.empty()) continue;
    const std::string slika = "Slika " + std::to_string(number++);
    out += "<h2>" + escape(f.name) + ": learning rates and optimisers (" + slika + ")</h2>\n<div class=\"grid\">\n";
    out += auc_figure(f, slika) + cost_figure(f, slika);
    out += "</div>\n";
  }
  out += "<h2>All runs</h2>\n" + runs_table(families);
  return out;
}

std::string table1_html(const std::vector<nets::Table1Row>& rows) {
  std::string s =
      "<table class=\"summary\">\n<thead><tr><th>net</th><th>params</th><th>params size (MB)</th>"
      "<th>forward/backward pass size</th><th>saved for backward (MB, measured)</th></tr></thead>\n<tbody>\n";
  for (const auto& r : rows) {
    const nets::Summary& m = r.summary;
    s += "<tr><td class=\"name\">" + escape(r.net) + "</td><td class=\"num\">" + fig::thousands(m.total_params) +
         "</td><td class=\"num\">" + fmt(m.params_mb(), 2) + "</td><td class=\"num\">" + escape(nets::pass_size_text(m)) +
         "</td><td class=\"num\">" +
         (m.saved_activation_bytes ? fmt((double)m.saved_activation_bytes / 1048576.0, 2) : std::string("–")) +
         "</td></tr>\n";
  }
  const int64_t side = rows.empty() ? 0 : rows.front().summary.input_size;
  return s + "</tbody>\n</table>\n<p class=\"caption\"><b>Table 1</b> at the study's input side (" +
         std::to_string(side) + " × " + std::to_string(side) +
         ", batch 1). Params, params size (params × 4 bytes / 2<sup>20</sup>) and the forward/backward pass size "
         "(2 × 4 bytes × the summed outputs of the layers torchsummary lists) follow torchsummary's rules "
         "(<code>nets/summary.h</code>); the last column is what this engine actually keeps for backward in one "
         "training step (activations only), measured on its autograd graph. ResNet18* has ResNet18's row.</p>\n";
}

}  // namespace ctg::report
