#include "train/predict.h"

#include <fcntl.h>
#include <spawn.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cmath>
#include <filesystem>
#include <fstream>

#include "data/nifti.h"
#include "data/preprocess.h"
#include "engine/autograd.h"
#include "eval/metrics.h"
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
