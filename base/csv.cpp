// split_csv_line (csv.h): a small state machine over one line.
#include "base/csv.h"

#include "base/error.h"

namespace ctg {

std::string trim_blanks(const std::string& s) {
  const char* ws = " \t\r\n";
  const size_t a = s.find_first_not_of(ws);
  if (a == std::string::npos) return "";
  return s.substr(a, s.find_last_not_of(ws) - a + 1);
}

std::vector<std::string> split_csv_line(const std::string& line, const std::string& where, CsvBlanks blanks) {
  const bool trimmed = blanks == CsvBlanks::trim;
  auto skip_blanks = [&](size_t& i) {
    while (trimmed && i < line.size() && (line[i] == ' ' || line[i] == '\t')) ++i;
  };
  std::vector<std::string> fields;
  size_t i = 0;
  while (true) {
    std::string f;
    skip_blanks(i);
    if (i < line.size() && line[i] == '"') {
      for (++i;; ++i) {
        if (i >= line.size()) throw Error(where + ": unterminated quoted field");
        if (line[i] == '"') {
          if (i + 1 < line.size() && line[i + 1] == '"') f += '"', ++i;
          else break;
        } else {
          f += line[i];
        }
      }
      ++i;  // past the closing quote; only blanks (when trimmed) may follow before the comma
      skip_blanks(i);
      if (i < line.size() && line[i] != ',')
        throw Error(where + ": unexpected text after a quoted field, at column " + std::to_string(i + 1));
    } else {
      const size_t end = line.find(',', i);
      f = line.substr(i, end == std::string::npos ? std::string::npos : end - i);
      if (trimmed) f = trim_blanks(f);
      i = end == std::string::npos ? line.size() : end;
    }
    fields.push_back(f);
    if (i >= line.size()) return fields;
    ++i;  // the comma
  }
}

}  // namespace ctg
