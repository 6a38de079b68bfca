#include "train/predict.h"

#include <fcntl.h>
#include <spawn.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cmath>
#include <filesystem>
#include <fstream>

#include <nlohmann/json.hpp>

#include "base/atomic_file.h"
#include "data/nifti.h"
#include "data/preprocess.h"
#include "engine/autograd.h"
#include "metrics/metrics.h"
#include "insight/image.h"
#include "insight/npy.h"
#include "train/evaluate.h"
#include "train/run.h"

extern char** environ;

namespace ctg::train {

ScanSlices scan_slices(const std::string& nifti, int64_t size, const std::vector<int64_t>& chosen) {
  ScanSlices out;
  out.path = nifti;
  out.size = size;
  const data::OrientedVolume v = data::orient_axial(data::read_nifti(nifti));
  out.depth = v.depth;
  data::PreprocessOptions pre;
  pre.size = size;
  std::vector<data::PreprocessedSlice> slices;
  for (int64_t z = 0; z < v.depth; ++z) slices.push_back(data::preprocess_slice(v.slice(z), v.width, v.height, pre));
  for (const auto& s : slices) out.usable += s.usable ? 1 : 0;
  if (!chosen.empty()) {
    for (int64_t z : chosen)
      if (z < 0 || z >= v.depth)
        throw Error("--slices: slice " + std::to_string(z) + " is outside " + nifti + " (0.." +
                    std::to_string(v.depth - 1) + ")");
    out.z = chosen;
  } else {
    if (out.usable == 0)
      throw Error(nifti + ": no slice shows enough lung (lung/body area ≥ " + std::to_string(pre.min_lung_fraction) +
                  "); is it a chest CT in Hounsfield units?");
    out.z = data::choose_slices(slices).ten;
  }
  for (int64_t z : out.z) {
    const auto& sl = slices[(size_t)z];
    if ((int64_t)sl.pixels.size() != size * size)
      throw Error("--slices: slice " + std::to_string(z) + " of " + nifti + " shows no body to crop to");
    if (!sl.usable)
      std::fprintf(stderr, "predict: slice %lld shows little lung (%.0f%% of the body); scoring it as asked\n",
                   (long long)z, 100 * sl.lung_fraction);
    out.pixels.push_back(sl.pixels);
  }
  return out;
}

Prediction predict_run(const std::string& run, const ScanSlices& scan, const std::string& device) {
  const Device dev = parse_device(device);
  LoadedRun r = load_run(run, dev);
  if (r.options.size != scan.size)
    throw Error("predict: " + run + " takes " + std::to_string(r.options.size) + "² slices, the scan was prepared at " +
                std::to_string(scan.size) + "²");
  const std::string val = run_file(run, scores_name("val", false));
  struct stat st;
  if (::stat(val.c_str(), &st) != 0)
    throw Error(val + ": not found; run `ctgrad eval --run " + run + " --split val` to choose the threshold");
  Prediction p;
  p.run = run;
  p.net = r.options.net;
  p.negative = r.options.negative;
  p.positive = r.options.positive;
  p.threshold = eval::summarize(eval::read_scores_csv(val)).threshold_f1;
  const int64_t n = (int64_t)scan.pixels.size(), s = scan.size;
  Tensor x = Tensor::empty({n, 1, s, s});
  float* px = x.data<float>();
  for (int64_t i = 0; i < n; ++i) std::copy(scan.pixels[(size_t)i].begin(), scan.pixels[(size_t)i].end(), px + i * s * s);
  autograd::NoGradGuard ng;
  const std::vector<double> logits = (*r.net)(x.to(dev)).to_vector();
  double sum = 0;
  for (double l : logits) {
    p.slice_scores.push_back(1.0 / (1.0 + std::exp(-l)));
    sum += p.slice_scores.back();
  }
  p.score = sum / (double)n;
  return p;
}

namespace {

// A run's short name in titles: its folder's name (runs/demo/64px/cnn2 → cnn2).
std::string run_label(const Prediction& p) {
  std::string n = std::filesystem::path(p.run).lexically_normal().filename().string();
  if (n.empty() || n == ".") n = std::filesystem::path(p.run).lexically_normal().parent_path().filename().string();
  return n.empty() ? p.net : n;
}

std::string fixed(double v, int decimals) {
  char b[48];
  std::snprintf(b, sizeof b, "%.*f", decimals, v);
  return b;
}

}  // namespace

std::vector<std::string> write_predict_outputs(const std::string& out_dir, const std::string& scan_label,
                                               const ScanSlices& scan, const std::vector<Prediction>& preds) {
  namespace fs = std::filesystem;
  std::error_code ec;
  fs::create_directories(out_dir, ec);
  if (ec) throw Error("--out: " + out_dir + ": cannot create the folder: " + ec.message());
  const int64_t n = (int64_t)scan.pixels.size(), s = scan.size;
  if (n == 0 || (int64_t)scan.z.size() != n) throw Error("predict: no slices to draw");
  auto path = [&](const std::string& f) { return (fs::path(out_dir) / f).string(); };
  const std::string name = fs::path(scan_label).filename().string();

  // Slika 10: the slices as the nets saw them, on the input's [0, 1] grey scale.
  std::vector<insight::Image> panels;
  for (int64_t i = 0; i < n; ++i) {
    insight::MapStyle st;
    st.cmap = insight::ColorMap::grey;
    st.have_range = true, st.lo = 0, st.hi = 1;
    st.colorbar = false;
    st.pixels_per_cell = std::max<int>(1, (int)std::lround(192.0 / (double)s));
    st.title = "z = " + std::to_string(scan.z[(size_t)i]);
    for (const Prediction& p : preds)
      if (p.slice_scores.size() == (size_t)n) st.title += "  " + run_label(p) + " " + fixed(p.slice_scores[(size_t)i], 2);
    panels.push_back(insight::render_map(scan.pixels[(size_t)i].data(), (int)s, (int)s, st));
  }
  insight::Image grid = insight::compose_grid(
      panels, (int)std::min<int64_t>(n, 5),
      "The " + std::to_string(n) + " slices scored of " + name + " (preprocessed, " + std::to_string(s) + "x" +
          std::to_string(s) + "), with each net's slice score");
  grid = insight::append_right(grid, insight::render_colorbar(insight::ColorMap::grey, 0, 1, false, 192));
  insight::write_png(path("slices.png"), grid);
  std::vector<float> stack((size_t)(n * s * s));
  for (int64_t i = 0; i < n; ++i) std::copy(scan.pixels[(size_t)i].begin(), scan.pixels[(size_t)i].end(), stack.begin() + i * s * s);
  insight::write_npy(path("slices.npy"), stack.data(), {n, s, s});

  // Slika 11: score − threshold per run.
  insight::BarChart chart;
  chart.title = "Score - threshold per net: " + name;
  chart.negative_label = "mild (" + preds.front().negative + ") expected";
  chart.positive_label = "severe (" + preds.front().positive + ") expected";
  chart.axis_caption = "patient score - the run's threshold (max F1 on validation)";
  for (const Prediction& p : preds) {
    chart.labels.push_back(run_label(p) + (p.severe() ? " (severe)" : " (mild)"));
    chart.values.push_back((float)(p.score - p.threshold));
  }
  insight::write_png(path("score_minus_threshold.png"), insight::render_bar_chart(chart));

  std::string csv = "run,net,score,threshold,score_minus_threshold,verdict\n";
  nlohmann::json runs = nlohmann::json::array();
  for (const Prediction& p : preds) {
    const char* verdict = p.severe() ? "severe" : "mild";
    csv += p.run + "," + p.net + "," + fixed(p.score, 6) + "," + fixed(p.threshold, 6) + "," +
           fixed(p.score - p.threshold, 6) + "," + verdict + "\n";
    runs.push_back({{"run", p.run}, {"net", p.net}, {"score", p.score}, {"threshold", p.threshold},
                    {"score_minus_threshold", p.score - p.threshold}, {"verdict", verdict},
                    {"slice_scores", p.slice_scores}});
  }
  nlohmann::json j = {
      {"scan", scan_label},
      {"size", s},
      {"z", scan.z},
      {"runs", runs},
      {"pictures",
       {{{"file", "slices.png"},
         {"caption", "Slika 10: the " + std::to_string(n) + " slices of " + name +
                         " that were scored, after the study's preprocessing (lung window, body mask, crop, " +
                         std::to_string(s) + "x" + std::to_string(s) + "); each titled with its z and each net's sigmoid "
                         "score for it."}},
        {{"file", "score_minus_threshold.png"},
         {"caption", "Slika 11: patient score minus the threshold each run chose on its validation patients (max F1); "
                     "below 0 (blue) the net expects mild (" + preds.front().negative + "), at or above 0 (red) severe (" +
                         preds.front().positive + ")."}}}},
      {"arrays", nlohmann::json::array({{{"file", "slices.npy"}, {"shape", {n, s, s}}}})}};
  write_file_atomic(path("predict.csv"), csv);
  write_file_atomic(path("predict.json"), j.dump(2) + "\n");
  return {"slices.png", "score_minus_threshold.png"};
}

std::string dicom_to_nifti(const std::string& dicom_dir, const std::string& tmp_dir) {
  std::string exe;
  const char* path = std::getenv("PATH");
  std::string dirs = path ? path : "/usr/bin:/bin";
  for (size_t a = 0; a <= dirs.size();) {
    size_t b = dirs.find(':', a);
    if (b == std::string::npos) b = dirs.size();
    const std::string cand = dirs.substr(a, b - a) + "/dcm2niix";
    if (::access(cand.c_str(), X_OK) == 0) {
      exe = cand;
      break;
    }
    a = b + 1;
  }
  if (exe.empty())
    throw Error(dicom_dir + ": a DICOM folder needs dcm2niix to convert it (apt-get install dcm2niix), "
                "or convert it yourself and pass the .nii.gz");
  std::filesystem::create_directories(tmp_dir);
  // No shell: the paths go to dcm2niix as they are.
  std::vector<std::string> args = {exe, "-z", "y", "-b", "n", "-f", "scan", "-o", tmp_dir, dicom_dir};
  std::vector<char*> argv;
  for (auto& a : args) argv.push_back(a.data());
  argv.push_back(nullptr);
  posix_spawn_file_actions_t fa;
  posix_spawn_file_actions_init(&fa);
  // Its chatter goes to a log; the last line of it explains a failure.
  const std::string log = tmp_dir + "/dcm2niix.log";
  posix_spawn_file_actions_addopen(&fa, 1, log.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
  posix_spawn_file_actions_adddup2(&fa, 1, 2);
  pid_t pid = 0;
  const int rc = posix_spawn(&pid, exe.c_str(), &fa, nullptr, argv.data(), environ);
  posix_spawn_file_actions_destroy(&fa);
  if (rc != 0) throw Error(exe + ": cannot start it");
  int status = 0;
  ::waitpid(pid, &status, 0);
  std::vector<std::string> made;
  for (const auto& e : std::filesystem::directory_iterator(tmp_dir)) {
    const std::string n = e.path().filename().string();
    if (n.size() > 7 && n.compare(n.size() - 7, 7, ".nii.gz") == 0) made.push_back(e.path().string());
  }
  if (!WIFEXITED(status) || WEXITSTATUS(status) != 0 || made.empty()) {
    std::ifstream in(log);
    std::string line, last;
    bool error_seen = false;  // its "Error: ..." line when there is one, else its last line
    while (std::getline(in, line))
      if (!line.empty() && !error_seen) last = line, error_seen = line.rfind("Error", 0) == 0;
    throw Error(dicom_dir + ": dcm2niix found no convertible DICOM series (exit status " +
                std::to_string(WIFEXITED(status) ? WEXITSTATUS(status) : -1) + (last.empty() ? "" : ": " + last) + ")");
  }
  std::sort(made.begin(), made.end());
  if (made.size() > 1)
    std::fprintf(stderr, "predict: %s holds %zu series; using %s\n", dicom_dir.c_str(), made.size(), made[0].c_str());
  return made[0];
}

std::vector<int64_t> parse_slice_list(const std::string& s) {
  std::vector<int64_t> out;
  size_t a = 0;
  while (a <= s.size()) {
    size_t b = s.find(',', a);
    if (b == std::string::npos) b = s.size();
    const std::string t = s.substr(a, b - a);
    char* end = nullptr;
    const long long v = std::strtoll(t.c_str(), &end, 10);
    if (t.empty() || *end != '\0' || v < 0) throw Error("--slices: '" + t + "' is not a slice index (expected e.g. 3,7,12)");
    out.push_back(v);
    a = b + 1;
  }
  return out;
}

}  // namespace ctg::train
