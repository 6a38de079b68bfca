// Reading a run directory (train/run.h) for the report, and the measures
// shown for it. Every error names the file it is about.
#include <cmath>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>

#include "base/csv.h"
#include "data/run_layout.h"
#include "engine/tensor.h"
#include "report/report.h"

namespace ctg::report {

namespace {

std::string need_file(const std::string& dir, const std::string& name, const std::string& made_by) {
  const std::string path = data::run_file(dir, name);
  if (!std::filesystem::is_regular_file(path)) throw Error("report: " + path + ": no such file (" + made_by + ")");
  return path;
}

nlohmann::json read_json(const std::string& path) {
  std::ifstream in(path);
  if (!in) throw Error("report: " + path + ": cannot open");
  try {
    return nlohmann::json::parse(in);
  } catch (const nlohmann::json::exception& e) {
    throw Error("report: " + path + ": not valid JSON: " + e.what());
  }
}

// The value of `key` in a JSON object, checked for type; errors name file and key.
const nlohmann::json& field(const nlohmann::json& j, const std::string& key, const std::string& path,
                            nlohmann::json::value_t type) {
  if (!j.is_object()) throw Error("report: " + path + ": not a JSON object");
  const auto it = j.find(key);
  if (it == j.end()) throw Error("report: " + path + ": missing key \"" + key + "\"");
  const bool ok = type == nlohmann::json::value_t::string ? it->is_string() : it->is_number();
  if (!ok) throw Error("report: " + path + ": \"" + key + "\" is not a " + (type == nlohmann::json::value_t::string ? "string" : "number"));
  return *it;
}

// An empty cell or "nan" reads as NaN (an epoch without validation); other
// text that is not a number is an error.
double number(const std::string& cell, const std::string& where) {
  if (cell.empty() || cell == "nan" || cell == "NaN") return NAN;
  char* end = nullptr;
  const double v = std::strtod(cell.c_str(), &end);
  if (end == cell.c_str() || *end != '\0') throw Error("report: " + where + ": '" + cell + "' is not a number");
  return v;
}

std::vector<Epoch> read_metrics(const std::string& path) {
  std::ifstream in(path);
  if (!in) throw Error("report: " + path + ": cannot open");
  std::string line;
  if (!std::getline(in, line)) throw Error("report: " + path + ": empty (no header)");
  const auto header = split_csv_line(line, "report: " + path + ":1");
  auto column = [&](const std::string& name) {
    for (size_t i = 0; i < header.size(); ++i)
      if (header[i] == name) return i;
    throw Error("report: " + path + ": no column '" + name + "' in the header");
  };
  const size_t c_epoch = column("epoch"), c_tl = column("train_loss"), c_vl = column("val_loss"), c_auc = column("val_auc");
  std::vector<Epoch> out;
  for (int lineno = 2; std::getline(in, line); ++lineno) {
    if (line.empty() || line == "\r") continue;
    const std::string where = path + ":" + std::to_string(lineno);
    const auto cells = split_csv_line(line, "report: " + where);
    if (cells.size() < header.size()) throw Error("report: " + where + ": " + std::to_string(cells.size()) + " fields, the header has " + std::to_string(header.size()));
    Epoch e;
    const double ep = number(cells[c_epoch], where);
    if (!std::isfinite(ep)) throw Error("report: " + where + ": epoch is empty");
    e.epoch = (int64_t)ep;
    e.train_loss = number(cells[c_tl], where), e.val_loss = number(cells[c_vl], where), e.val_auc = number(cells[c_auc], where);
    out.push_back(e);
  }
  return out;
}

std::vector<eval::Scored> read_scores(const std::string& path) {
  try {
    return eval::read_scores_csv(path);
  } catch (const Error& e) {
    const std::string what = e.what();
    // eval's messages name the file already; keep them as they are.
    throw Error(what.find(path) != std::string::npos ? "report: " + what : "report: " + path + ": " + what);
  }
}

}  // namespace

RunData load_run(const std::string& dir) {
  if (!std::filesystem::is_directory(dir)) throw Error("report: " + dir + ": no such run directory");
  RunData r;
  r.dir = dir;
  const auto str = nlohmann::json::value_t::string, num = nlohmann::json::value_t::number_float;
  const std::string config = need_file(dir, "config.json", "written by ctgrad train");
  const auto c = read_json(config);
  r.name = field(c, "name", config, str).get<std::string>();
  r.net = field(c, "net", config, str).get<std::string>();
  if (c.contains("params")) r.params = field(c, "params", config, num).get<int64_t>();
  if (c.contains("optimizer")) r.optimizer = field(c, "optimizer", config, str).get<std::string>();
  if (c.contains("lr")) r.lr = field(c, "lr", config, num).get<double>();
  const std::string summary = need_file(dir, "summary.json", "written by ctgrad train");
  const auto s = read_json(summary);
  r.train_seconds = field(s, "train_seconds", summary, num).get<double>();
  r.best_epoch = field(s, "best_epoch", summary, num).get<int64_t>();
  r.best_val_auc = field(s, "best_val_auc", summary, num).get<double>();
  r.epochs = read_metrics(need_file(dir, "metrics.csv", "written by ctgrad train"));
  r.val = read_scores(need_file(dir, data::scores_name("val", false), "run ctgrad eval --split val"));
  const std::string test = data::run_file(dir, data::scores_name("test", false));
  r.has_test = std::filesystem::is_regular_file(test);
  if (r.has_test) r.test = read_scores(test);
  const std::string central = data::run_file(dir, data::scores_name("test", true));
  r.has_central = std::filesystem::is_regular_file(central);
  if (r.has_central) r.test_central = read_scores(central);
  return r;
}

RunMeasures measure(const RunData& r) {
  RunMeasures m;
  try {
    m.val = eval::summarize(r.val);
  } catch (const Error& e) {
    throw Error("report: " + data::run_file(r.dir, data::scores_name("val", false)) + ": " + e.what());
  }
  m.threshold = m.val.threshold_f1;
  if (!r.has_test) return m;
  try {
    m.test = eval::summarize(r.test);
  } catch (const Error& e) {
    throw Error("report: " + data::run_file(r.dir, data::scores_name("test", false)) + ": " + e.what());
  }
  m.at_threshold = eval::confusion_at(r.test, m.threshold);
  if (r.has_central) m.central_auc = eval::roc_auc(r.test_central);
  return m;
}

}  // namespace ctg::report
