// read_scores_csv (metrics.h): (score, label) pairs from any CSV whose header
// names a `score` and a `label` column, e.g. `ctgrad eval`'s scores_<split>.csv.
// Every error is one line, "FILE: line N: what is wrong".
#include <algorithm>
#include <cerrno>
#include <cmath>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <string>
#include <utility>
#include <vector>

#include "base/csv.h"
#include "engine/tensor.h"
#include "metrics/metrics.h"

namespace ctg::eval {

namespace {

// A whole field as a double (strtod must consume all of it); false if not.
bool parse_double(const std::string& s, double& v) {
  if (s.empty()) return false;
  char* end = nullptr;
  errno = 0;
  v = std::strtod(s.c_str(), &end);
  return end == s.c_str() + s.size();
}

}  // namespace

std::vector<Scored> read_scores_csv(const std::string& path) {
  std::ifstream in(path);
  if (!in) throw Error(path + ": cannot open: " + std::strerror(errno));
  std::string line;
  if (!std::getline(in, line)) throw Error(path + ": line 1: empty file; expected a header with columns score,label");
  if (line.compare(0, 3, "\xEF\xBB\xBF") == 0) line.erase(0, 3);  // a UTF-8 byte-order mark
  if (!line.empty() && line.back() == '\r') line.pop_back();
  const auto header = split_csv_line(line, path + ": line 1");
  int score_col = -1, label_col = -1;
  for (size_t c = 0; c < header.size(); ++c) {
    for (auto [name, col] : {std::pair<const char*, int*>{"score", &score_col}, {"label", &label_col}}) {
      if (header[c] != name) continue;
      if (*col >= 0) throw Error(path + ": line 1: the header names column '" + name + "' twice");
      *col = (int)c;
    }
  }
  for (auto [name, col] : {std::pair<const char*, int>{"score", score_col}, {"label", label_col}})
    if (col < 0) throw Error(path + ": line 1: no '" + name + "' column in the header '" + trim_blanks(line) + "'");
  const size_t needed = (size_t)std::max(score_col, label_col) + 1;

  std::vector<Scored> out;
  int64_t counts[2] = {0, 0};
  for (int64_t lineno = 2; std::getline(in, line); ++lineno) {
    if (!line.empty() && line.back() == '\r') line.pop_back();  // CRLF files
    if (trim_blanks(line).empty()) continue;  // blank lines (e.g. a trailing one) carry no row
    const std::string where = path + ": line " + std::to_string(lineno);
    const auto f = split_csv_line(line, where);
    if (f.size() < needed)
      throw Error(where + ": " + std::to_string(f.size()) + " field(s), but the header puts score in column " +
                  std::to_string(score_col + 1) + " and label in column " + std::to_string(label_col + 1));
    Scored s;
    const std::string& sc = f[(size_t)score_col];
    if (!parse_double(sc, s.score)) throw Error(where + ": score '" + sc + "' is not a number");
    if (!std::isfinite(s.score)) throw Error(where + ": score '" + sc + "' is not finite");
    // A label is 0 or 1; written as an integer or as a float ("1.0", as pandas may write it).
    const std::string& lb = f[(size_t)label_col];
    double l = -1;
    if (!parse_double(lb, l) || (l != 0 && l != 1)) throw Error(where + ": label '" + lb + "' is not 0 or 1");
    s.label = (int)l;
    counts[s.label]++;
    out.push_back(s);
  }
  if (out.empty()) throw Error(path + ": no data rows after the header (line 1)");
  if (counts[0] == 0 || counts[1] == 0) {
    const std::string rows = out.size() == 1 ? "the only row has" : "all " + std::to_string(out.size()) + " rows have";
    throw Error(path + ": " + rows + " label " + (counts[0] == 0 ? "1" : "0") +
                " (one class only); AUC and the thresholds need both classes");
  }
  return out;
}

}  // namespace ctg::eval
