// Test patients for the pictures: TP/FP/FN/TN cases and mild/severe examples
// (insight/cases.h).
#include "insight/cases.h"

#include <sys/stat.h>

#include <cstdlib>
#include <fstream>
#include <sstream>

#include "base/csv.h"
#include "data/cache.h"
#include "data/run_layout.h"
#include "engine/tensor.h"
#include "metrics/metrics.h"

namespace ctg::insight {

namespace {

double number(const std::string& s, const std::string& where) {
  char* end = nullptr;
  const double v = std::strtod(s.c_str(), &end);
  if (s.empty() || *end != '\0') throw Error(where + ": '" + s + "' is not a number");
  return v;
}

bool file_exists(const std::string& p) {
  struct stat st;
  return ::stat(p.c_str(), &st) == 0;
}

}  // namespace

std::vector<ScoredPatient> read_patient_scores(const std::string& path) {
  std::ifstream in(path);
  if (!in) throw Error(path + ": cannot open");
  std::string line;
  if (!std::getline(in, line)) throw Error(path + ": empty file");
  const std::vector<std::string> head = split_csv_line(line, path + ": line 1");
  int col[5] = {-1, -1, -1, -1, -1};
  const char* names[5] = {"patient", "label", "score", "slices", "slice_scores"};
  for (size_t i = 0; i < head.size(); ++i)
    for (int k = 0; k < 5; ++k)
      if (head[i] == names[k]) col[k] = (int)i;
  for (int k = 0; k < 5; ++k)
    if (col[k] < 0) throw Error(path + ": line 1: no column '" + names[k] + "' (not a `ctgrad eval` scores file?)");
  std::vector<ScoredPatient> out;
  for (int ln = 2; std::getline(in, line); ++ln) {
    if (line.empty() || line == "\r") continue;
    const std::string where = path + ": line " + std::to_string(ln);
    const std::vector<std::string> f = split_csv_line(line, where);
    if (f.size() < head.size()) throw Error(where + ": " + std::to_string(f.size()) + " fields, expected " +
                                            std::to_string(head.size()));
    ScoredPatient p;
    p.patient = f[(size_t)col[0]];
    const double label = number(f[(size_t)col[1]], where);
    if (label != 0 && label != 1) throw Error(where + ": label must be 0 or 1");
    p.label = (int)label;
    p.score = number(f[(size_t)col[2]], where);
    std::istringstream zs(f[(size_t)col[3]]), ss(f[(size_t)col[4]]);
    std::string t;
    while (zs >> t) p.slices.push_back((int64_t)number(t, where));
    while (ss >> t) p.slice_scores.push_back(number(t, where));
    if (p.slices.empty() || p.slices.size() != p.slice_scores.size())
      throw Error(where + ": 'slices' and 'slice_scores' must list the same number of values");
    out.push_back(std::move(p));
  }
  if (out.empty()) throw Error(path + ": no patients");
  return out;
}

double validation_threshold(const std::string& run) {
  const std::string val = data::run_file(run, data::scores_name("val", false));
  if (!file_exists(val))
    throw Error(val + ": not found; run `ctgrad eval --run " + run + " --split val` to choose the threshold");
  return eval::summarize(eval::read_scores_csv(val)).threshold_f1;
}

static std::vector<std::string> parse_kinds(const std::string& s, const std::string& flag,
                                            const std::vector<std::string>& allowed) {
  std::vector<std::string> out;
  std::string allowed_list;
  for (const auto& a : allowed) allowed_list += (allowed_list.empty() ? "" : ", ") + a;
  std::istringstream in(s);
  std::string k;
  while (std::getline(in, k, ',')) {
    bool ok = false;
    for (const auto& a : allowed) ok = ok || a == k;
    if (!ok) throw Error(flag + ": '" + k + "' is not one of " + allowed_list);
    for (const auto& o : out)
      if (o == k) throw Error(flag + ": '" + k + "' is given twice");
    out.push_back(k);
  }
  if (out.empty()) throw Error(flag + ": give at least one of " + allowed_list);
  return out;
}

std::vector<std::string> parse_case_list(const std::string& s) { return parse_kinds(s, "--cases", {"tp", "fp", "fn", "tn"}); }
std::vector<std::string> parse_example_list(const std::string& s) {
  return parse_kinds(s, "--examples", {"mild", "severe"});
}

std::vector<PickedCase> pick_cases(const std::vector<ScoredPatient>& patients, double threshold,
                                   const std::vector<std::string>& kinds) {
  std::vector<PickedCase> out;
  for (const std::string& kind : kinds) {
    const int label = kind == "tp" || kind == "fn" ? 1 : 0;
    const bool positive = kind == "tp" || kind == "fp";  // predicted positive
    const bool highest = positive;                       // tp/fp: highest score; fn/tn: lowest
    const ScoredPatient* best = nullptr;
    for (const auto& p : patients) {
      if (p.label != label || (p.score >= threshold) != positive) continue;
      if (!best || (highest ? p.score > best->score : p.score < best->score)) best = &p;
    }
    PickedCase c;
    c.kind = kind;
    if (!best) {
      const char* what = kind == "tp" ? "true positive" : kind == "fp" ? "false positive"
                         : kind == "fn" ? "false negative" : "true negative";
      char buf[64];
      std::snprintf(buf, sizeof buf, "%.6g", threshold);
      c.missing = std::string("no ") + what + " among the test patients at threshold " + buf;
      out.push_back(c);
      continue;
    }
    c.found = true;
    c.patient = best->patient;
    c.label = best->label;
    c.score = best->score;
    c.have_score = true;
    size_t at = 0;
    for (size_t i = 1; i < best->slices.size(); ++i)
      if (highest ? best->slice_scores[i] > best->slice_scores[at] : best->slice_scores[i] < best->slice_scores[at])
        at = i;
    c.z = best->slices[at];
    c.slice_score = best->slice_scores[at];
    c.have_slice_score = true;
    c.slice_rule = highest ? "the patient's highest-scoring of its evaluated slices"
                           : "the patient's lowest-scoring of its evaluated slices";
    out.push_back(c);
  }
  return out;
}

CachedSlice cached_test_slice(const std::string& cache_path, const std::string& patient, int64_t z) {
  auto cache = data::Cache::open(cache_path);
  for (int64_t i = 0; i < cache->size(); ++i) {
    const data::CacheRecord& r = cache->record(i);
    if (r.split != data::Split::test || r.patient != patient || r.z != z) continue;
    CachedSlice s;
    s.side = cache->side();
    s.pixels.resize((size_t)(s.side * s.side));
    cache->read_slice(i, s.pixels.data());
    s.source = r.source;
    s.grade = r.grade;
    return s;
  }
  throw Error(cache_path + ": no test slice " + std::to_string(z) + " of patient " + patient +
              " (was the cache rebuilt after `ctgrad eval`?)");
}

std::vector<PickedCase> pick_examples(const std::string& cache_path, const std::vector<std::string>& kinds,
                                      const std::vector<ScoredPatient>& patients) {
  auto cache = data::Cache::open(cache_path);
  std::vector<PickedCase> out;
  for (const std::string& kind : kinds) {
    const int label = kind == "severe" ? 1 : 0;
    const data::CacheRecord* best = nullptr;
    for (const auto& r : cache->records()) {
      if (r.split != data::Split::test || r.label != label || !r.central) continue;
      if (!best || (label ? r.grade > best->grade : r.grade < best->grade)) best = &r;
    }
    PickedCase c;
    c.kind = kind;
    if (!best) {
      c.missing = std::string("no ") + (label ? "severe" : "mild") + " test patient in " + cache_path;
      out.push_back(c);
      continue;
    }
    c.found = true;
    c.patient = best->patient;
    c.label = label;
    c.grade = best->grade;
    c.z = best->z;
    c.slice_rule = label ? "the central slice of the first test patient of the highest severe grade"
                         : "the central slice of the first test patient of the lowest mild grade";
    for (const auto& p : patients) {
      if (p.patient != c.patient) continue;
      c.have_score = true;
      c.score = p.score;
      for (size_t i = 0; i < p.slices.size(); ++i)
        if (p.slices[i] == c.z) c.slice_score = p.slice_scores[i], c.have_slice_score = true;
    }
    out.push_back(c);
  }
  return out;
}

}  // namespace ctg::insight
