// Cohort scan, class mapping, stratified patient split, split.csv.
#include "data/cohort.h"

#include <algorithm>
#include <cmath>
#include <filesystem>
#include <fstream>
#include <map>
#include <set>
#include <sstream>

#include "base/atomic_file.h"
#include "base/csv.h"
#include "engine/tensor.h"

namespace ctg::data {

namespace fs = std::filesystem;

const char* split_name(Split s) {
  switch (s) {
    case Split::train: return "train";
    case Split::val: return "val";
    case Split::test: return "test";
  }
  return "?";
}

Split parse_split(const std::string& s, const std::string& flag) {
  if (s == "train") return Split::train;
  if (s == "val" || s == "validation") return Split::val;
  if (s == "test") return Split::test;
  throw Error(flag + ": expected train, val or test, got '" + s + "'");
}

int ClassMapping::label_of(int grade) const {
  if (std::find(negative.begin(), negative.end(), grade) != negative.end()) return 0;
  if (std::find(positive.begin(), positive.end(), grade) != positive.end()) return 1;
  return -1;
}

std::string grade_list(const std::vector<int>& grades) {
  std::string s;
  for (int g : grades) s += (s.empty() ? "CT-" : ",CT-") + std::to_string(g);
  return s;
}

static std::vector<int> parse_grades(const std::string& value, const std::string& flag) {
  std::vector<int> out;
  std::stringstream ss(value);
  std::string tok;
  while (std::getline(ss, tok, ',')) {
    tok.erase(0, tok.find_first_not_of(" \t"));
    tok.erase(tok.find_last_not_of(" \t") + 1);
    std::string digits = tok;
    if (digits.size() > 3 && (digits.compare(0, 3, "CT-") == 0 || digits.compare(0, 3, "ct-") == 0)) digits = digits.substr(3);
    if (digits.size() != 1 || digits[0] < '0' || digits[0] >= '0' + kNumGrades)
      throw Error(flag + ": unknown grade '" + tok + "' (expected CT-0 … CT-4)");
    const int g = digits[0] - '0';
    if (std::find(out.begin(), out.end(), g) != out.end()) throw Error(flag + ": grade CT-" + digits + " listed twice");
    out.push_back(g);
  }
  if (out.empty()) throw Error(flag + ": no grades given (e.g. " + flag + " CT-0,CT-1)");
  return out;
}

ClassMapping parse_class_mapping(const std::string& negative, const std::string& positive) {
  ClassMapping m;
  m.negative = parse_grades(negative, "--negative");
  m.positive = parse_grades(positive, "--positive");
  // In grade order, so "CT-1,CT-0" and "CT-0,CT-1" are the same mapping everywhere.
  std::sort(m.negative.begin(), m.negative.end());
  std::sort(m.positive.begin(), m.positive.end());
  for (int g : m.negative)
    if (std::find(m.positive.begin(), m.positive.end(), g) != m.positive.end())
      throw Error("--negative/--positive: grade CT-" + std::to_string(g) + " is in both classes");
  return m;
}

static bool is_volume(const fs::path& p, std::string* id) {
  const std::string name = p.filename().string();
  for (const char* ext : {".nii.gz", ".nii"}) {
    const size_t n = std::char_traits<char>::length(ext);
    if (name.size() > n && name.compare(name.size() - n, n, ext) == 0) {
      *id = name.substr(0, name.size() - n);
      return true;
    }
  }
  return false;
}

std::vector<Patient> scan_cohort(const std::string& dir, const ClassMapping& mapping) {
  const fs::path studies = fs::path(dir) / "studies";
  std::error_code ec;
  if (!fs::is_directory(studies, ec))
    throw Error("--data " + dir + ": no studies/ folder (expected the MosMedData layout DIR/studies/CT-0 … CT-4/*.nii.gz)");
  std::vector<Patient> out;
  std::map<std::string, std::string> seen;  // id -> path, to refuse a study filed under two grades
  int64_t found = 0;
  for (int g = 0; g < kNumGrades; ++g) {
    const fs::path sub = studies / ("CT-" + std::to_string(g));
    if (!fs::is_directory(sub, ec)) continue;
    for (const auto& e : fs::directory_iterator(sub)) {
      std::string id;
      if (!e.is_regular_file(ec) || !is_volume(e.path(), &id)) continue;
      ++found;
      const int label = mapping.label_of(g);
      if (label < 0) continue;
      auto [it, fresh] = seen.emplace(id, e.path().string());
      if (!fresh) throw Error("--data " + dir + ": patient '" + id + "' appears twice: " + it->second + " and " + e.path().string());
      out.push_back({id, g, label, Split::train, e.path().string()});
    }
  }
  if (found == 0) throw Error("--data " + dir + ": no .nii/.nii.gz volumes under " + studies.string() + "/CT-0 … CT-4");
  for (int label : {0, 1}) {
    const bool any = std::any_of(out.begin(), out.end(), [&](const Patient& p) { return p.label == label; });
    if (!any) {
      const auto& grades = label == 0 ? mapping.negative : mapping.positive;
      throw Error(std::string(label == 0 ? "--negative" : "--positive") + " " + grade_list(grades) +
                  ": no patients in these grades under " + studies.string());
    }
  }
  std::sort(out.begin(), out.end(), [](const Patient& a, const Patient& b) { return a.id < b.id; });
  return out;
}

uint64_t uniform_below(uint64_t& state, uint64_t n) {
  // Lemire's rejection: the low part below `threshold` would over-weight small values.
  const uint64_t threshold = (0 - n) % n;
  for (;;) {
    const unsigned __int128 m = (unsigned __int128)splitmix64(state) * n;
    if ((uint64_t)m >= threshold) return (uint64_t)(m >> 64);
  }
}

void shuffle_indices(std::vector<int64_t>& v, uint64_t& state) {
  for (size_t i = v.size(); i > 1; --i) std::swap(v[i - 1], v[(size_t)uniform_below(state, i)]);
}

void assign_splits(std::vector<Patient>& patients, uint64_t seed, const SplitFractions& f) {
  if (f.train < 0 || f.val < 0 || f.test < 0 || std::fabs(f.train + f.val + f.test - 1.0) > 1e-9)
    throw Error("split fractions must be non-negative and sum to 1");
  for (int label : {0, 1}) {
    std::vector<int64_t> idx;
    for (size_t i = 0; i < patients.size(); ++i)
      if (patients[i].label == label) idx.push_back((int64_t)i);
    // Order by id first so the assignment depends on the seed, not the caller's order.
    std::sort(idx.begin(), idx.end(), [&](int64_t a, int64_t b) { return patients[a].id < patients[b].id; });
    uint64_t state = mix_seed(seed, (uint64_t)label, 0x5911ull);
    shuffle_indices(idx, state);
    const int64_t n = (int64_t)idx.size();
    const int64_t n_train = std::min(n, (int64_t)std::llround(f.train * (double)n));
    const int64_t n_val = std::min(n - n_train, (int64_t)std::llround(f.val * (double)n));
    for (int64_t k = 0; k < n; ++k)
      patients[idx[k]].split = k < n_train ? Split::train : k < n_train + n_val ? Split::val : Split::test;
  }
}

std::vector<Patient> select_per_class(const std::vector<Patient>& patients, int64_t n, uint64_t seed,
                                      const ClassMapping& mapping) {
  if (n < 0) throw Error("--per-class: must be ≥ 0 (0 keeps every patient), got " + std::to_string(n));
  std::vector<Patient> sorted = patients;
  std::sort(sorted.begin(), sorted.end(), [](const Patient& a, const Patient& b) { return a.id < b.id; });
  if (n == 0) return sorted;
  std::vector<Patient> out;
  for (int label : {0, 1}) {
    const auto& grades = label == 0 ? mapping.negative : mapping.positive;
    std::vector<std::vector<int64_t>> by_grade(kNumGrades);  // indices into sorted, id order
    for (size_t i = 0; i < sorted.size(); ++i)
      if (sorted[i].label == label && sorted[i].grade >= 0 && sorted[i].grade < kNumGrades)
        by_grade[(size_t)sorted[i].grade].push_back((int64_t)i);
    int64_t total = 0;
    std::string counts;
    for (int g : grades) {
      total += (int64_t)by_grade[(size_t)g].size();
      counts += (counts.empty() ? "" : ", ") + std::string("CT-") + std::to_string(g) + ": " +
                std::to_string(by_grade[(size_t)g].size());
    }
    if (total < n)
      throw Error("--per-class " + std::to_string(n) + ": the " + (label == 0 ? "mild" : "severe") + " class (" +
                  (label == 0 ? "--negative " : "--positive ") + grade_list(grades) + ") has only " +
                  std::to_string(total) + " patients (" + counts + ")");
    // Largest remainders: quota_g = n·c_g/total, floors first, then one more
    // to the grades with the largest fractional parts (n·c_g mod total).
    std::vector<int64_t> quota(kNumGrades, 0);
    std::vector<std::pair<int64_t, int>> rest;  // (remainder, grade)
    int64_t given = 0;
    for (int g : grades) {
      const int64_t c = (int64_t)by_grade[(size_t)g].size();
      quota[(size_t)g] = n * c / total;
      given += quota[(size_t)g];
      rest.push_back({n * c % total, g});
    }
    std::stable_sort(rest.begin(), rest.end(), [](const auto& a, const auto& b) {
      return a.first != b.first ? a.first > b.first : a.second < b.second;
    });
    for (size_t k = 0; given < n; ++k, ++given) quota[(size_t)rest[k % rest.size()].second]++;
    for (int g : grades) {
      auto idx = by_grade[(size_t)g];
      uint64_t state = mix_seed(seed, (uint64_t)g, 0x5e1ec7ull);
      shuffle_indices(idx, state);
      for (int64_t k = 0; k < quota[(size_t)g]; ++k) out.push_back(sorted[(size_t)idx[(size_t)k]]);
    }
  }
  std::sort(out.begin(), out.end(), [](const Patient& a, const Patient& b) { return a.id < b.id; });
  return out;
}

std::string selection_tag(const ClassMapping& mapping, int64_t per_class) {
  std::string tag;
  if (mapping != ClassMapping{}) {
    tag += "_neg";
    for (size_t i = 0; i < mapping.negative.size(); ++i) tag += (i ? "-" : "") + std::to_string(mapping.negative[i]);
    tag += "_pos";
    for (size_t i = 0; i < mapping.positive.size(); ++i) tag += (i ? "-" : "") + std::to_string(mapping.positive[i]);
  }
  if (per_class > 0) tag += "_n" + std::to_string(per_class);
  return tag;
}

SplitCounts count_splits(const std::vector<Patient>& patients) {
  SplitCounts c;
  for (const auto& p : patients)
    if (p.label == 0 || p.label == 1) c.n[(int)p.split][p.label]++;
  return c;
}

std::string csv_field(const std::string& s) {
  if (s.find_first_of(",\"\n\r") == std::string::npos) return s;
  std::string q = "\"";
  for (char c : s) q += c == '"' ? std::string("\"\"") : std::string(1, c);
  return q + "\"";
}

void write_split_csv(const std::string& path, const std::vector<Patient>& patients) {
  std::string text = "patient,grade,label,split,path\n";
  for (const auto& p : patients)
    text += csv_field(p.id) + "," + std::to_string(p.grade) + "," + std::to_string(p.label) + "," +
            split_name(p.split) + "," + csv_field(p.path) + "\n";
  write_file_atomic(path, text);
}

static int parse_small_int(const std::string& s, int lo, int hi, const std::string& where) {
  if (s.size() != 1 || s[0] < '0' + lo || s[0] > '0' + hi)
    throw Error(where + ": expected " + std::to_string(lo) + ".." + std::to_string(hi) + ", got '" + s + "'");
  return s[0] - '0';
}

std::vector<Patient> read_split_csv(const std::string& path) {
  std::ifstream in(path);
  if (!in) throw Error(path + ": cannot open split file");
  std::string line;
  if (!std::getline(in, line)) throw Error(path + ": empty split file");
  if (!line.empty() && line.back() == '\r') line.pop_back();
  if (line != "patient,grade,label,split,path")
    throw Error(path + ": line 1: header: expected 'patient,grade,label,split,path', got '" + line + "'");
  std::vector<Patient> out;
  std::set<std::string> ids;
  for (int64_t lineno = 2; std::getline(in, line); ++lineno) {
    if (!line.empty() && line.back() == '\r') line.pop_back();
    if (line.empty()) continue;
    const std::string where = path + ": line " + std::to_string(lineno);
    // Fields as written (ids and paths are kept to the byte; quoted fields
    // may not span lines: ids and paths never hold newlines).
    auto f = split_csv_line(line, where, CsvBlanks::keep);
    if (f.size() != 5) throw Error(where + ": expected 5 fields, got " + std::to_string(f.size()));
    Patient p;
    p.id = f[0];
    if (p.id.empty()) throw Error(where + ": patient: empty");
    p.grade = parse_small_int(f[1], 0, kNumGrades - 1, where + ": grade");
    p.label = parse_small_int(f[2], 0, 1, where + ": label");
    p.split = parse_split(f[3], where + ": split");
    p.path = f[4];
    if (!ids.insert(p.id).second) throw Error(where + ": patient '" + p.id + "' appears twice");
    out.push_back(std::move(p));
  }
  if (out.empty()) throw Error(path + ": no patients");
  return out;
}

}  // namespace ctg::data
