// The report's figures: each is SVG from report/svg.h plus a caption saying
// what it shows and where its threshold came from. Measures come from
// metrics/metrics.h only.
#include "report/figures.h"

#include <cmath>

#include "report/svg.h"

namespace ctg::report::fig {

namespace {

const std::string kChosen = "max F1 on validation";

// Series/Axis by function rather than brace-init (which -Wextra flags for the omitted members).
Series series(const std::string& name, const std::string& color, bool dashed = false, Step step = Step::none) {
  Series s;
  s.name = name, s.color = color, s.dashed = dashed, s.step = step;
  return s;
}
Axis axis(const std::string& label, double lo = 0, double hi = 0, Scale scale = Scale::linear) {
  Axis a;
  a.label = label, a.lo = lo, a.hi = hi, a.scale = scale;
  return a;
}

bool in_unit(const std::vector<eval::Scored>& d) {
  for (const auto& s : d)
    if (s.score < 0 || s.score > 1) return false;
  return true;
}

Series roc_series(const std::vector<eval::Scored>& d, const std::string& name, const std::string& color, bool dashed) {
  Series s = series(name, color, dashed);
  for (const auto& p : eval::roc_curve(d)) s.x.push_back(p.fpr), s.y.push_back(p.tpr);
  return s;
}

Plot roc_plot(const std::string& title) {
  Plot p;
  p.title = title;
  p.x = axis("false positive rate (1 − specificity)", 0, 1);
  p.y = axis("true positive rate (sensitivity)", 0, 1);
  p.diagonal = true;
  return p;
}

std::string threshold_line_name(double t) { return "threshold " + fmt(t, 3) + " (" + kChosen + ")"; }

}  // namespace

std::string curves(const std::vector<Run>& runs) {
  Plot roc = roc_plot("ROC on test");
  Plot pr;
  pr.title = "Precision–recall on test";
  pr.x = axis("recall (sensitivity)", 0, 1);
  pr.y = axis("precision (PPV)", 0, 1);
  Plot det;
  det.title = "DET on test";
  det.x = axis("false positive rate (probit scale)", 0, 0, Scale::probit);
  det.y = axis("false negative rate (probit scale)", 0, 0, Scale::probit);
  for (const auto& r : runs) {
    const auto& d = r.data->test;
    roc.series.push_back(roc_series(d, r.data->name + " (AUC " + fmt(r.m.test.auc, 3) + ")", r.color, false));
    // The operating point the run's decisions use: (FPR, TPR) on test at the
    // validation-chosen threshold, a ring on (or, between scores, at a corner of) the curve.
    Series op = series(r.data->name + " at threshold " + fmt(r.m.threshold, 3) + ": TPR " + fmt(r.m.at_threshold.tpr, 3) +
                           ", FPR " + fmt(r.m.at_threshold.fpr, 3),
                       r.color);
    op.x = {r.m.at_threshold.fpr}, op.y = {r.m.at_threshold.tpr}, op.mark_index = 0;
    roc.series.push_back(op);
    Series s = series(r.data->name + " (AP " + fmt(r.m.test.average_precision, 3) + ")", r.color, false, Step::post);
    for (const auto& p : eval::pr_curve(d)) s.x.push_back(p.recall), s.y.push_back(p.precision);
    pr.series.push_back(s);
    Series e = series(r.data->name, r.color);
    for (const auto& p : eval::det_curve(d)) e.x.push_back(p.fpr), e.y.push_back(p.fnr);
    det.series.push_back(e);
  }
  // A random classifier's precision is the prevalence (the same test set for every run).
  const auto& t = runs.front().m.test;
  const double prevalence = (double)t.positives / (double)t.n;
  Series chance = series("prevalence " + fmt(prevalence, 3) + " (chance)", "#999999", true);
  chance.x = {0, 1}, chance.y = {prevalence, prevalence};
  pr.series.push_back(chance);
  std::string out = "<div class=\"grid\">\n";
  out += figure(line_plot(roc), "<b>ROC</b> of every run on the test patients (a patient's score is the mean of its slices' "
                "sigmoid outputs). Dashed diagonal: chance. AUC in the legend; it needs no threshold. Ring: the run's "
                "operating point at its threshold chosen as " + kChosen + ".", roc.width);
  out += figure(line_plot(pr), "<b>Precision against recall</b> on test, drawn as steps (as scikit-learn does). AP: "
                "average precision. Dashed: the share of severe patients, a random classifier's precision.", pr.width);
  out += figure(line_plot(det), "<b>DET</b>: false negative against false positive rate on test, both on "
                "normal-deviate (probit) axes, where a binormal classifier is a straight line; lower-left is better. "
                "Rates of 0 and 1 are drawn on the frame edges.", det.width);
  return out + "</div>\n";
}

std::string threshold_panels(const std::vector<Run>& runs) {
  std::string out = "<div class=\"grid\">\n";
  for (const auto& r : runs) {
    const auto& d = r.data->test;
    const auto sweep = eval::threshold_sweep(d);
    if (sweep.empty()) continue;
    Plot p;
    p.title = r.data->name + ": measures vs threshold (test)";
    const bool unit = in_unit(d);
    p.x = axis("threshold (score ≥ threshold ⇒ severe)", 0, unit ? 1 : 0);
    p.y = axis("value", 0, 1);
    Series f1 = series("F1", "#1f77b4", false, Step::pre), fm = series("Fowlkes–Mallows", "#ff7f0e", false, Step::pre),
           ba = series("balanced accuracy", "#2ca02c", false, Step::pre);
    auto add = [&](double x, const eval::Confusion& c) {
      f1.x.push_back(x), f1.y.push_back(c.f1);
      fm.x.push_back(x), fm.y.push_back(c.fowlkes_mallows);
      ba.x.push_back(x), ba.y.push_back(c.balanced_accuracy);
    };
    // Every threshold up to the lowest score predicts all patients severe, so
    // the first row holds from the axis' left end; past the highest score all
    // are predicted mild (evaluated, not assumed).
    if (unit) add(0, sweep.front());
    for (const auto& c : sweep) add(c.threshold, c);
    if (unit && sweep.back().threshold < 1) add(1, eval::confusion_at(d, std::nextafter(sweep.back().threshold, INFINITY)));
    for (Series* s : {&f1, &fm, &ba}) {
      // The maximum over the sweep's rows (the lowest threshold among ties).
      const size_t first = unit ? 1 : 0;
      size_t best = first;
      for (size_t i = first; i < first + sweep.size(); ++i)
        if (s->y[i] > s->y[best]) best = i;
      s->mark_index = (int)best;
      s->max_label = " (max " + fmt(s->y[best], 3) + " at " + fmt(s->x[best], 3) + ")";
    }
    p.series = {f1, fm, ba};
    p.vlines.push_back({r.m.threshold, threshold_line_name(r.m.threshold), "#222222", true});
    out += figure(line_plot(p), "<b>F1, Fowlkes–Mallows (√(TPR·PPV)) and balanced accuracy (½(TPR + TNR))</b> of " +
                  escape(r.data->name) + "'s test scores against the threshold. Rings: each measure's maximum on test. "
                  "Dashed: the threshold chosen as " + kChosen + ", which the table and confusion matrix use.", p.width);
  }
  return out + "</div>\n";
}

std::string histograms(const std::vector<Run>& runs) {
  std::string out = "<div class=\"grid\">\n";
  for (const auto& r : runs) {
    Histogram h;
    h.title = r.data->name + ": test scores per class";
    for (const auto& s : r.data->test) (s.label ? h.positives : h.negatives).push_back(s.score);
    // The three candidate thresholds of the study, each the maximum of its
    // measure on the validation scores (ties → lowest); F1's is the one used.
    const auto& v = r.m.val;
    h.vlines.push_back({v.threshold_f1, "max F1 on validation: " + fmt(v.threshold_f1, 3) + " (chosen)", "#222222", false});
    h.vlines.push_back({v.threshold_fm, "max Fowlkes–Mallows on validation: " + fmt(v.threshold_fm, 3), "#ff7f0e", true});
    h.vlines.push_back({v.threshold_ba, "max balanced accuracy on validation: " + fmt(v.threshold_ba, 3), "#2ca02c", true});
    out += figure(histogram(h), "<b>Score histograms</b> of " + escape(r.data->name) + "'s test patients by true class (" +
                  std::to_string(h.bins) + " bins), with the thresholds that maximise F1 (solid, the one used), "
                  "Fowlkes–Mallows and balanced accuracy (½(TPR + TNR)) on the <em>validation</em> patients. The study "
                  "chose F1's because it was the lowest of the three (fewer missed severe patients).", h.width);
  }
  return out + "</div>\n";
}

std::string confusions(const std::vector<Run>& runs) {
  std::string out = "<div class=\"grid\">\n";
  for (const auto& r : runs) {
    const auto& c = r.m.at_threshold;
    ConfusionPlot p;
    p.title = r.data->name + " (" + r.data->net + ")";
    p.subtitle = "test, threshold " + fmt(r.m.threshold, 3) + " (" + kChosen + ")";
    p.tn = c.tn, p.fp = c.fp, p.fn = c.fn, p.tp = c.tp;
    out += figure(confusion_matrix(p), "<b>Confusion matrix</b> of " + escape(r.data->name) +
                  " on the test patients at the threshold chosen as " + kChosen + " (" + fmt(r.m.threshold, 3) +
                  "). Rows: actual class; columns: predicted. Shading: share of the row. Sensitivity " +
                  fmt(c.tpr, 3) + ", specificity " + fmt(c.tnr, 3) + ".", p.size);
  }
  return out + "</div>\n";
}

std::string central_vs_ten(const std::vector<Run>& runs) {
  Plot p = roc_plot("ROC on test: central slice vs all 10");
  std::string missing;
  for (const auto& r : runs) {
    if (!r.data->has_central) {
      missing += (missing.empty() ? "" : ", ") + r.data->name;
      continue;
    }
    p.series.push_back(roc_series(r.data->test, r.data->name + ", 10 slices (AUC " + fmt(r.m.test.auc, 3) + ")", r.color, false));
    p.series.push_back(roc_series(r.data->test_central, r.data->name + ", central slice (AUC " + fmt(r.m.central_auc, 3) + ")",
                                  r.color, true));
  }
  const std::string how = "<code>ctgrad eval --split test --slices central</code> writes <code>scores_test_central.csv</code>";
  if (p.series.empty())
    return "<p class=\"note\">No run has <code>scores_test_central.csv</code>, so there is no central-slice comparison. " + how + ".</p>\n";
  std::string caption = "<b>ROC of each run on test</b> scoring each patient by its 10 slices' mean (solid) and by its "
                        "central slice only (dashed, same colour).";
  if (!missing.empty()) caption += " Not shown (no <code>scores_test_central.csv</code>): " + escape(missing) + "; " + how + ".";
  return "<div class=\"grid\">\n" + figure(line_plot(p), caption, p.width) + "</div>\n";
}

std::string training(const std::vector<Run>& runs) {
  Plot loss, auc;
  loss.title = "Loss per epoch";
  loss.x = axis("epoch"), loss.y = axis("binary cross-entropy");
  auc.title = "Validation AUC per epoch";
  auc.x = axis("epoch"), auc.y = axis("validation AUC");
  for (const auto& r : runs) {
    Series tl = series(r.data->name + " train", r.color), vl = series(r.data->name + " val", r.color, true),
           va = series(r.data->name + " (best " + fmt(r.data->best_val_auc, 3) + ", epoch " + std::to_string(r.data->best_epoch) + ")",
                       r.color);
    for (const auto& e : r.data->epochs) {
      tl.x.push_back((double)e.epoch), tl.y.push_back(e.train_loss);
      vl.x.push_back((double)e.epoch), vl.y.push_back(e.val_loss);
      if (e.epoch == r.data->best_epoch) va.mark_index = (int)va.x.size();
      va.x.push_back((double)e.epoch), va.y.push_back(e.val_auc);
    }
    tl.points = vl.points = va.points = r.data->epochs.size() <= 30;
    loss.series.push_back(tl), loss.series.push_back(vl), auc.series.push_back(va);
  }
  // A validation loss in the hundreds (BatchNorm's running statistics before
  // they settle, in a first epoch) flattens every other curve: log scale then.
  double lo = 1e300, hi = 0;
  for (const auto& s : loss.series)
    for (double v : s.y)
      if (v > 0 && std::isfinite(v)) lo = std::min(lo, v), hi = std::max(hi, v);
  const bool log_loss = hi > 0 && hi / lo > 100;
  if (log_loss) loss.y.scale = Scale::log10, loss.y.label += " (log scale)";
  std::string out = "<div class=\"grid\">\n";
  out += figure(line_plot(loss), "<b>Training curves</b> from each run's <code>metrics.csv</code>: mean training loss "
                "per epoch (solid) and mean validation slice loss (dashed)" +
                std::string(log_loss ? ", on a log scale (the losses span more than 100×)." : "."), loss.width);
  out += figure(line_plot(auc), "<b>Validation AUC</b> per epoch (patients scored by their slices' mean). Ring: the best "
                "epoch from <code>summary.json</code>, whose weights were evaluated.", auc.width);
  return out + "</div>\n";
}

}  // namespace ctg::report::fig
