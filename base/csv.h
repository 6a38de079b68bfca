// One CSV record (RFC 4180, one line): the splitter every CSV reader of
// ctgrad can share.
#pragma once
#include <string>
#include <vector>

namespace ctg {

// What happens to blanks around a field.
//   trim: unquoted fields are trimmed of blanks (spaces, tabs, '\r', '\n'), and
//         blanks may stand before an opening or after a closing quote; for
//         files people may edit by hand (scores, metrics, timing tables).
//   keep: every character of an unquoted field is kept, and a quote opens a
//         quoted field only as its very first character; for files whose
//         fields are names or paths that may end in a blank (split.csv), read
//         exactly as written. The caller strips the line's '\r'.
enum class CsvBlanks { trim, keep };

// The fields of one line: commas separate, a field in double quotes may hold
// commas, and "" inside quotes is one quote (RFC 4180). A quoted field cannot
// span lines. Errors (an unterminated quote, text after a closing quote) are
// a ctg::Error starting with `where` (e.g. "FILE: line N").
std::vector<std::string> split_csv_line(const std::string& line, const std::string& where,
                                        CsvBlanks blanks = CsvBlanks::trim);

// `s` without its leading and trailing blanks (spaces, tabs, '\r', '\n').
std::string trim_blanks(const std::string& s);

}  // namespace ctg
