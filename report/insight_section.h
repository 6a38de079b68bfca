// The report's Insight section (issue 11): the pictures of `ctgrad explain`
// (the study's section 5: filters, feature maps, head maps, saliency,
// occlusion, integrated gradients for the TP / FP / FN cases) and of
// `ctgrad predict --out` (Slika 10-11), embedded in the page as
// data:image/png;base64 URIs so that report.html stays one self-contained
// file, each with its caption, grouped by run and case.
//
// Sources: every folder holding an explain.json under RUN/explain/ of each
// reported run, every such folder under each --explain DIR (DIR itself
// included), and each --predict DIR's predict.json. Both JSON files list
// their pictures as "pictures": [{"file": "x.png", "caption": "..."}] with
// paths relative to the JSON's folder.
#pragma once
#include <string>
#include <vector>

#include "report/report.h"

namespace ctg::report {

// RFC 4648 base64 (with '=' padding), for data: URIs.
std::string base64(const std::string& bytes);

// The folders at or under `root` that hold an explain.json, sorted by path
// (none when root does not exist).
std::vector<std::string> find_explain_dirs(const std::string& root);

// The section's HTML, "" when there is nothing to show. Errors (ctg::Error)
// name the JSON file: malformed, a picture missing or not a PNG, a path that
// leaves the folder.
std::string insight_section(const std::vector<RunData>& runs, const std::vector<std::string>& explain_dirs,
                            const std::vector<std::string>& predict_dirs);

}  // namespace ctg::report
