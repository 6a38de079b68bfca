// DIR/report.html of `ctgrad study`: the learning-rate comparison per family
// (Slika 3–5), Table 1, and Figures 6–8 for the best run of each family
// (render_report), from the study's run folders.
#pragma once
#include <string>

#include "train/study.h"

namespace ctg::report {

// Loads every run of the outcome (validation scores are enough for the
// family figures; the best runs have test scores), computes Table 1 at the
// study's input side (measure_saved: also the engine's saved-for-backward
// bytes, one batch-1 step per net), writes OUT/report.html atomically and
// returns its path.
std::string build_study_report(const train::StudyOutcome& study, bool measure_saved = true);

}  // namespace ctg::report
