// One CSV record (RFC 4180, one line): the splitter every CSV reader of
// ctgrad can share.
#pragma once
#include <string>
#include <vector>

namespace ctg {

// The fields of one line: commas separate, a field in double quotes may hold
// commas, and "" inside quotes is one quote; unquoted fields are trimmed of
// blanks (spaces, tabs, '\r'). A quoted field cannot span lines. Errors
// (an unterminated quote, text after a closing quote) are a ctg::Error
// starting with `where` (e.g. "FILE: line N").
std::vector<std::string> split_csv_line(const std::string& line, const std::string& where);

}  // namespace ctg
