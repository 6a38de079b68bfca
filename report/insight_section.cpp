// The Insight section (see report/insight_section.h). Grouping: one <h3> per
// run (explain.json's "run", else the folder above explain/), then one block
// per case in the study's order — input-independent pictures (filters)
// first, then tp, fp, fn, tn, mild, severe, then anything else — each block
// saying which input it explains (file, slice, patient, label, score).
#include "report/insight_section.h"

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <map>
#include <nlohmann/json.hpp>
#include <set>
#include <sstream>

#include "engine/tensor.h"
#include "report/svg.h"

namespace ctg::report {

namespace fs = std::filesystem;

namespace {

std::string slurp(const std::string& path) {
  std::ifstream f(path, std::ios::binary);
  if (!f) throw Error(path + ": cannot read it");
  std::stringstream ss;
  ss << f.rdbuf();
  return ss.str();
}

nlohmann::json read_json_file(const std::string& path) {
  try {
    return nlohmann::json::parse(slurp(path));
  } catch (const nlohmann::json::exception& e) {
    throw Error(path + ": malformed JSON: " + e.what());
  }
}

std::string canonical_or(const std::string& p) {
  std::error_code ec;
  const fs::path c = fs::weakly_canonical(p, ec);
  return ec ? fs::path(p).lexically_normal().string() : c.string();
}

// One <figure> with the PNG at dir/file embedded; the file is checked to be
// a PNG inside dir (no absolute paths, no "..").
std::string embed(const std::string& dir, const nlohmann::json& pic, const std::string& json_path) {
  if (!pic.is_object() || !pic.contains("file") || !pic["file"].is_string())
    throw Error(json_path + ": each entry of \"pictures\" needs a \"file\" string");
  const std::string file = pic["file"].get<std::string>();
  const fs::path rel(file);
  if (rel.is_absolute() || file.find("..") != std::string::npos)
    throw Error(json_path + ": picture \"" + file + "\" must be a path inside its folder");
  const std::string path = (fs::path(dir) / rel).string();
  if (!fs::exists(path)) throw Error(json_path + ": picture " + path + " is listed but missing");
  const std::string bytes = slurp(path);
  if (bytes.compare(0, 8, "\x89PNG\r\n\x1a\n") != 0) throw Error(json_path + ": picture " + path + " is not a PNG");
  const std::string caption = pic.contains("caption") && pic["caption"].is_string() ? pic["caption"].get<std::string>() : file;
  return "<figure class=\"insight\"><img src=\"data:image/png;base64," + base64(bytes) + "\" alt=\"" + escape(caption) +
         "\"><figcaption>" + escape(caption) + " <small>(" + escape(file) + ")</small></figcaption></figure>\n";
}

std::string str_or(const nlohmann::json& j, const char* key, const std::string& fallback = "") {
  return j.is_object() && j.contains(key) && j[key].is_string() ? j[key].get<std::string>() : fallback;
}

int case_rank(const std::string& c) {
  static const char* order[] = {"", "tp", "fp", "fn", "tn", "mild", "severe"};
  for (int i = 0; i < 7; ++i)
    if (c == order[i]) return i;
  return 7;
}

std::string case_heading(const std::string& c) {
  if (c.empty()) return "Input-independent (filters) and the given input";
  if (c == "tp") return "True positive: the most confident severe test patient";
  if (c == "fp") return "False positive: the highest-scoring mild test patient";
  if (c == "fn") return "False negative: the lowest-scoring severe test patient";
  if (c == "tn") return "True negative";
  if (c == "mild" || c == "severe") return "Example: a " + c + " test patient";
  return "Case " + c;
}

// "file study_0041.nii.gz, slice 17, patient 0041, label 1 (severe), score 0.931".
std::string input_line(const nlohmann::json& j) {
  if (!j.is_object() || !j.contains("input") || !j["input"].is_object()) return "";
  const auto& in = j["input"];
  std::string s;
  auto add = [&](const std::string& part) { s += (s.empty() ? "" : ", ") + part; };
  if (in.contains("file") && in["file"].is_string()) add("file <code>" + escape(in["file"].get<std::string>()) + "</code>");
  if (in.contains("slice") && in["slice"].is_number()) add("slice " + std::to_string(in["slice"].get<long long>()));
  if (in.contains("patient") && in["patient"].is_string()) add("patient " + escape(in["patient"].get<std::string>()));
  if (in.contains("label") && in["label"].is_number())
    add("label " + std::to_string(in["label"].get<int>()) + (in["label"].get<int>() ? " (severe)" : " (mild)"));
  if (in.contains("score") && in["score"].is_number()) add("score " + fmt(in["score"].get<double>(), 3));
  std::string extra;
  if (j.contains("target") && j["target"].is_string()) extra += "; target: " + escape(j["target"].get<std::string>());
  if (j.contains("device") && j["device"].is_string()) extra += "; device: " + escape(j["device"].get<std::string>());
  if (j.contains("ig_delta") && j["ig_delta"].is_number())
    extra += "; IG convergence delta " + fmt(j["ig_delta"].get<double>(), 6);
  return s.empty() && extra.empty() ? "" : "<p class=\"caption\">Input: " + s + extra + ".</p>\n";
}

struct Block {
  std::string dir, json_path, run, net, kase;
  nlohmann::json j;
};

}  // namespace

std::string base64(const std::string& bytes) {
  static const char* a = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
  std::string out;
  out.reserve((bytes.size() + 2) / 3 * 4);
  size_t i = 0;
  for (; i + 2 < bytes.size(); i += 3) {
    const uint32_t v = ((uint32_t)(uint8_t)bytes[i] << 16) | ((uint32_t)(uint8_t)bytes[i + 1] << 8) | (uint8_t)bytes[i + 2];
    out += a[v >> 18], out += a[(v >> 12) & 63], out += a[(v >> 6) & 63], out += a[v & 63];
  }
  if (i + 1 == bytes.size()) {
    const uint32_t v = (uint32_t)(uint8_t)bytes[i] << 16;
    out += a[v >> 18], out += a[(v >> 12) & 63], out += "==";
  } else if (i + 2 == bytes.size()) {
    const uint32_t v = ((uint32_t)(uint8_t)bytes[i] << 16) | ((uint32_t)(uint8_t)bytes[i + 1] << 8);
    out += a[v >> 18], out += a[(v >> 12) & 63], out += a[(v >> 6) & 63], out += '=';
  }
  return out;
}

std::vector<std::string> find_explain_dirs(const std::string& root) {
  std::vector<std::string> out;
  std::error_code ec;
  if (!fs::is_directory(root, ec)) return out;
  if (fs::exists(fs::path(root) / "explain.json")) out.push_back(root);
  for (fs::recursive_directory_iterator it(root, ec), end; !ec && it != end; it.increment(ec))
    if (it->is_regular_file(ec) && it->path().filename() == "explain.json" && it->path().parent_path() != fs::path(root))
      out.push_back(it->path().parent_path().string());
  std::sort(out.begin(), out.end());
  return out;
}

std::string insight_section(const std::vector<RunData>& runs, const std::vector<std::string>& explain_dirs,
                            const std::vector<std::string>& predict_dirs) {
  std::vector<std::string> dirs;
  for (const RunData& r : runs)
    for (const auto& d : find_explain_dirs((fs::path(r.dir) / "explain").string())) dirs.push_back(d);
  for (const auto& root : explain_dirs) {
    if (!fs::is_directory(root)) throw Error("--explain: " + root + ": no such folder");
    const auto found = find_explain_dirs(root);
    if (found.empty()) throw Error("--explain: " + root + ": no explain.json in it or below it (ctgrad explain --out writes one)");
    dirs.insert(dirs.end(), found.begin(), found.end());
  }
  std::set<std::string> seen;
  std::vector<Block> blocks;
  for (const auto& d : dirs) {
    if (!seen.insert(canonical_or(d)).second) continue;
    Block b;
    b.dir = d, b.json_path = (fs::path(d) / "explain.json").string();
    b.j = read_json_file(b.json_path);
    if (!b.j.is_object()) throw Error(b.json_path + ": expected a JSON object");
    // The run: explain.json's "run", else the folder holding explain/ (RUN/explain/<case>).
    fs::path guess = fs::path(d);
    while (!guess.empty() && guess.filename() != "explain" && guess.has_parent_path() && guess != guess.parent_path())
      guess = guess.parent_path();
    b.run = str_or(b.j, "run", guess.filename() == "explain" ? guess.parent_path().string() : d);
    b.net = str_or(b.j, "net");
    b.kase = str_or(b.j, "case");
    blocks.push_back(std::move(b));
  }
  std::stable_sort(blocks.begin(), blocks.end(), [](const Block& x, const Block& y) {
    if (x.run != y.run) return x.run < y.run;
    if (case_rank(x.kase) != case_rank(y.kase)) return case_rank(x.kase) < case_rank(y.kase);
    return x.kase != y.kase ? x.kase < y.kase : x.dir < y.dir;
  });
  std::string h;
  std::string run;
  for (const Block& b : blocks) {
    if (b.run != run || &b == &blocks.front()) {
      run = b.run;
      h += "<h3>" + escape(fs::path(run).filename().string()) + (b.net.empty() ? "" : " (" + escape(b.net) + ")") +
           " <small><code>" + escape(run) + "</code></small></h3>\n";
    }
    h += "<h4>" + escape(case_heading(b.kase)) + "</h4>\n" + input_line(b.j);
    if (!b.j.contains("pictures") || !b.j["pictures"].is_array() || b.j["pictures"].empty()) {
      h += "<p class=\"note\">No pictures listed in <code>" + escape(b.json_path) + "</code>.</p>\n";
      continue;
    }
    h += "<div class=\"grid\">\n";
    for (const auto& pic : b.j["pictures"]) h += embed(b.dir, pic, b.json_path);
    h += "</div>\n";
  }
  for (const auto& d : predict_dirs) {
    const std::string jp = (fs::path(d) / "predict.json").string();
    if (!fs::exists(jp)) throw Error("--predict: " + jp + ": not found (ctgrad predict --out DIR writes it)");
    const nlohmann::json j = read_json_file(jp);
    h += "<h3>Own-scan check: <code>" + escape(str_or(j, "scan", d)) + "</code></h3>\n";
    if (j.contains("runs") && j["runs"].is_array()) {
      h += "<p class=\"caption\">";
      for (const auto& r : j["runs"])
        if (r.is_object() && r.contains("score") && r.contains("threshold") && r["score"].is_number() && r["threshold"].is_number())
          h += escape(str_or(r, "net")) + " (<code>" + escape(str_or(r, "run")) + "</code>): score " +
               fmt(r["score"].get<double>(), 3) + ", threshold " + fmt(r["threshold"].get<double>(), 3) + ", " +
               escape(str_or(r, "verdict")) + ". ";
      h += "</p>\n";
    }
    if (!j.contains("pictures") || !j["pictures"].is_array()) throw Error(jp + ": no \"pictures\" list");
    h += "<div class=\"grid\">\n";
    for (const auto& pic : j["pictures"]) h += embed(d, pic, jp);
    h += "</div>\n";
  }
  if (h.empty()) return "";
  return "<h2>Insight: what the networks look at (section 5)</h2>\n<p class=\"note\">Pictures written by "
         "<code>ctgrad explain</code> (filters, feature maps, head maps; saliency, occlusion and integrated gradients as "
         "Captum defines them) and <code>ctgrad predict --out</code>, embedded in this page. Colour bars give each map's "
         "value range; signed maps use a blue-white-red scale centred on 0.</p>\n"
         "<style>figure.insight img{display:block;max-width:100%;height:auto}figure.insight{max-width:100%}</style>\n" + h;
}

}  // namespace ctg::report
