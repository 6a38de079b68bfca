// ctgrad predict: the study's own-scan check — one chest CT (NIfTI, or a
// DICOM folder through dcm2niix) scored by one or more trained runs.
#include <unistd.h>

#include <cstdio>
#include <filesystem>
#include <map>

#include "apps/commands.h"
#include "train/evaluate.h"
#include "train/predict.h"
#include "train/run.h"

namespace ctg::apps {

namespace {
struct PredictArgs {
  std::vector<std::string> runs;
  std::string scan, slices, device = "auto", out;
};

void run_predict(const PredictArgs& a) {
  // Every check before any work: the scan exists, the flags parse, each run
  // has its settings and its validation threshold.
  if (!std::filesystem::exists(a.scan)) throw Error("SCAN: " + a.scan + ": no such file or folder");
  const Device dev = parse_device(a.device);
  const std::vector<int64_t> chosen = a.slices.empty() ? std::vector<int64_t>{} : train::parse_slice_list(a.slices);
  if (!a.out.empty()) {  // the picture folder must be writable before any work
    std::error_code ec;
    std::filesystem::create_directories(a.out, ec);
    if (ec || !std::filesystem::is_directory(a.out)) throw Error("--out: " + a.out + ": cannot create the folder");
  }
  std::vector<int64_t> sizes;
  for (const auto& run : a.runs) {
    sizes.push_back(train::load_run(run, dev, /*with_net*/ false).options.size);
    const std::string val = train::run_file(run, train::scores_name("val", false));
    if (!std::filesystem::exists(val))
      throw Error(val + ": not found; run `ctgrad eval --run " + run + " --split val` to choose the threshold");
  }
  struct Cleanup {  // the DICOM conversion's folder, whatever happens
    std::string p;
    ~Cleanup() {
      std::error_code ec;
      if (!p.empty()) std::filesystem::remove_all(p, ec);
    }
  } tmp;
  std::string nifti = a.scan;
  if (std::filesystem::is_directory(a.scan)) {
    std::string templ = (std::filesystem::temp_directory_path() / "ctgrad_dicom_XXXXXX").string();
    if (!::mkdtemp(templ.data())) throw Error("predict: cannot create a temporary folder for the DICOM conversion");
    tmp.p = templ;
    nifti = train::dicom_to_nifti(a.scan, tmp.p);
    std::fprintf(stderr, "predict: converted %s to %s\n", a.scan.c_str(), nifti.c_str());
  }
  std::map<int64_t, train::ScanSlices> by_size;  // runs may differ in input size
  std::vector<train::Prediction> preds;
  for (size_t i = 0; i < a.runs.size(); ++i) {
    const std::string& run = a.runs[i];
    const int64_t size = sizes[i];
    if (!by_size.count(size)) {
      by_size[size] = train::scan_slices(nifti, size, chosen);
      const auto& s = by_size[size];
      std::fprintf(stderr, "predict: %lld of %lld slices usable; scoring z =", (long long)s.usable,
                   (long long)s.depth);
      for (int64_t z : s.z) std::fprintf(stderr, " %lld", (long long)z);
      std::fprintf(stderr, " at %lld²%s\n", (long long)size,
                   s.z.size() < 10 && chosen.empty() ? " (fewer than the study's ten: the scan is short)" : "");
    }
    preds.push_back(train::predict_run(run, by_size[size], a.device));
  }
  // The table only once every run has scored: an error leaves no half table.
  std::printf("scan: %s\n", a.scan.c_str());
  std::printf("%-28s %-10s %8s %10s %12s  %s\n", "run", "net", "score", "threshold", "score-thr", "verdict");
  for (const auto& p : preds)
    std::printf("%-28s %-10s %8.4f %10.4f %+12.4f  %s\n", p.run.c_str(), p.net.c_str(), p.score, p.threshold,
                p.score - p.threshold, p.verdict().c_str());
  if (!a.out.empty()) {
    // Slika 10 shows the slices at the first run's size (the nets' inputs differ only in size).
    const auto pngs = train::write_predict_outputs(a.out, a.scan, by_size.at(sizes.front()), preds);
    for (const auto& f : pngs) std::printf("wrote %s\n", (std::filesystem::path(a.out) / f).string().c_str());
    std::printf("wrote %s (numbers, pictures' captions), predict.csv, slices.npy\n",
                (std::filesystem::path(a.out) / "predict.json").string().c_str());
  }
}
}  // namespace

static Registrar reg([](CLI::App& app) {
  auto* cmd = app.add_subcommand(
      "predict",
      "Score one chest CT with trained runs, as the study's own-scan check: the same preprocessing, ten slices chosen "
      "as for a test patient (or --slices), the mean slice score per net against the threshold each run chose on its "
      "validation patients (max F1). SCAN is a .nii/.nii.gz file or a DICOM folder (converted with dcm2niix).");
  auto a = std::make_shared<PredictArgs>();
  cmd->add_option("--run", a->runs, "run folder (repeat for several nets)")->required()->allow_extra_args(false);
  cmd->add_option("scan", a->scan, "SCAN.nii[.gz] or a DICOM folder")->required();
  cmd->add_option("--slices", a->slices, "score these slices (z of the axially oriented volume, e.g. 3,7,12) "
                                         "instead of the study's ten");
  cmd->add_option("--device", a->device, "auto|cpu|cuda")->capture_default_str();
  cmd->add_option("--out", a->out, "also write pictures and numbers to this folder: slices.png (the scored slices, "
                                   "preprocessed, with each net's slice scores), score_minus_threshold.png (bars, the "
                                   "verdict named), predict.json, predict.csv, slices.npy");
  cmd->callback([a]() { run_predict(*a); });
});

}  // namespace ctg::apps
