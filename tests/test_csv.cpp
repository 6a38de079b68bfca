// base/csv.h: the one CSV line splitter, in both of its blank modes (trim for
// scores, metrics and timing tables; keep for split.csv's ids and paths).
#include <doctest/doctest.h>

#include <string>
#include <vector>

#include "base/csv.h"
#include "base/error.h"

using ctg::CsvBlanks;
using ctg::split_csv_line;
using V = std::vector<std::string>;

namespace {
std::string error_of(const std::string& line, CsvBlanks b) {
  try {
    split_csv_line(line, "f.csv: line 2", b);
  } catch (const ctg::Error& e) {
    return e.what();
  }
  return "";
}
}  // namespace

TEST_CASE("csv: RFC 4180 quoting in both blank modes") {
  for (CsvBlanks b : {CsvBlanks::trim, CsvBlanks::keep}) {
    CHECK(split_csv_line("a,b,c", "", b) == V{"a", "b", "c"});
    CHECK(split_csv_line("\"x,y\",\"say \"\"hi\"\"\",z", "", b) == V{"x,y", "say \"hi\"", "z"});
    CHECK(split_csv_line("a,,", "", b) == V{"a", "", ""});
    CHECK(split_csv_line("", "", b) == V{""});
    CHECK(split_csv_line("\"\"", "", b) == V{""});
    CHECK(error_of("a,\"b", b) == "f.csv: line 2: unterminated quoted field");
    CHECK(error_of("\"b\"c,d", b) == "f.csv: line 2: unexpected text after a quoted field, at column 4");
  }
}

TEST_CASE("csv: trim drops blanks around fields, keep reads them as written") {
  // Blanks (and a line's '\r') around unquoted fields, blanks around quotes.
  CHECK(split_csv_line(" a ,\tb,c \r", "", CsvBlanks::trim) == V{"a", "b", "c"});
  CHECK(split_csv_line("  \" q \"  ,x", "", CsvBlanks::trim) == V{" q ", "x"});
  CHECK(split_csv_line(" a ,\tb,c \r", "", CsvBlanks::keep) == V{" a ", "\tb", "c \r"});
  // keep: a quote opens a quoted field only as its first character.
  CHECK(split_csv_line(" \"q\",x", "", CsvBlanks::keep) == V{" \"q\"", "x"});
  CHECK(split_csv_line("a\"b,c", "", CsvBlanks::keep) == V{"a\"b", "c"});
  CHECK(error_of("\"q\" ,x", CsvBlanks::keep) == "f.csv: line 2: unexpected text after a quoted field, at column 4");
  CHECK(ctg::trim_blanks(" \t x y \r\n") == "x y");
  CHECK(ctg::trim_blanks(" \r\n") == "");
}
