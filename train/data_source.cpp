#include "train/data_source.h"

#include <unistd.h>

#include <cstdio>
#include <filesystem>

#include "data/cohort.h"
#include "data/prep.h"
#include "engine/tensor.h"

namespace ctg::train {

namespace fs = std::filesystem;

std::string folder_cache_path(const std::string& dir, int64_t size, uint64_t split_seed,
                              const data::ClassMapping& mapping, int64_t per_class) {
  std::string name = "ctgrad_cache_" + std::to_string(size);
  if (split_seed != 0) name += "_seed" + std::to_string(split_seed);
  name += data::selection_tag(mapping, per_class);
  return (fs::absolute(dir) / (name + ".bin")).lexically_normal().string();
}

nlohmann::json split_lists(const data::Cache& c) {
  nlohmann::json j = {{"train", nlohmann::json::array()}, {"val", nlohmann::json::array()},
                      {"test", nlohmann::json::array()}};
  std::string last;
  for (const auto& r : c.records())
    if (r.patient != last) j[data::split_name(r.split)].push_back(r.patient), last = r.patient;
  return j;
}

namespace {

// Every split needs patients of both classes: training needs both to learn,
// validation and test need both for an AUC.
void check_classes(const data::Cache& c) {
  int64_t n[data::kNumSplits][2] = {};
  std::string last;
  for (const auto& r : c.records())
    if (r.patient != last) n[(int)r.split][r.label ? 1 : 0]++, last = r.patient;
  for (int s = 0; s < data::kNumSplits; ++s)
    for (int l = 0; l < 2; ++l)
      if (n[s][l] == 0)
        throw Error("--data: " + c.path() + ": the " + data::split_name((data::Split)s) + " split has no " +
                    (l ? "severe (label 1)" : "mild (label 0)") + " patients; use a larger cohort");
}

// The cache's labels must be the mapping's (a run records its mapping, and
// predict's verdict follows it), and with --per-class no class may hold more
// than N patients (a cache prepared without that selection would).
void check_selection(const data::Cache& c, const data::ClassMapping& mapping, int64_t per_class) {
  int64_t n[2] = {};
  std::string last;
  for (const auto& r : c.records()) {
    if (mapping.label_of(r.grade) != r.label)
      throw Error("--negative/--positive " + data::grade_list(mapping.negative) + " / " +
                  data::grade_list(mapping.positive) + ": the cache " + c.path() + " labels its CT-" +
                  std::to_string(r.grade) + " patients " + std::to_string(r.label) +
                  " (it was prepared with another mapping; give prep's --negative/--positive)");
    if (r.patient != last) n[r.label ? 1 : 0]++, last = r.patient;
  }
  // At most N: prep may have skipped a selected patient (too few usable slices).
  if (per_class > 0 && (n[0] > per_class || n[1] > per_class))
    throw Error("--per-class " + std::to_string(per_class) + ": the cache " + c.path() + " holds " +
                std::to_string(n[0]) + " mild and " + std::to_string(n[1]) +
                " severe patients (prepare it with `ctgrad prep --per-class`)");
}

std::shared_ptr<const data::Cache> open_checked(const std::string& path, int64_t size, const data::ClassMapping& mapping,
                                                int64_t per_class) {
  auto cache = data::Cache::open(path);
  if (size != 0 && cache->side() != size)
    throw Error("--size: " + std::to_string(size) + " but the cache " + path + " holds " +
                std::to_string(cache->side()) + "² slices");
  check_selection(*cache, mapping, per_class);
  check_classes(*cache);
  return cache;
}

}  // namespace

DataPlan plan_data(const std::string& data, int64_t size, uint64_t split_seed, const data::ClassMapping& mapping,
                   int64_t per_class) {
  DataPlan p;
  p.data = data;
  p.split_seed = split_seed;
  p.mapping = mapping;
  p.per_class = per_class;
  std::error_code ec;
  if (!fs::exists(data, ec)) throw Error("--data: " + data + ": no such file or folder");
  p.folder = fs::is_directory(data, ec);
  if (!p.folder) {
    p.cache_path = fs::absolute(data).lexically_normal().string();
    p.size = open_checked(p.cache_path, size, mapping, per_class)->side();
    return p;
  }
  p.size = size == 0 ? 512 : size;
  p.cache_path = folder_cache_path(data, p.size, split_seed, mapping, per_class);
  if (fs::exists(p.cache_path, ec)) {
    open_checked(p.cache_path, p.size, mapping, per_class);
    return p;
  }
  // The cohort must hold both classes, and per_class patients in each
  // (scan_cohort and select_per_class name the flag, class and counts).
  try {
    data::select_per_class(data::scan_cohort(data, mapping), per_class, split_seed, mapping);
  } catch (const Error& e) {
    const std::string m = e.what();
    if (m.rfind("--negative", 0) == 0 || m.rfind("--positive", 0) == 0)
      throw Error("--data " + data + ": no " +
                  (m.rfind("--negative", 0) == 0 ? "mild (" + data::grade_list(mapping.negative)
                                                 : "severe (" + data::grade_list(mapping.positive)) +
                  ") patients: both classes are needed");
    throw;
  }
  if (::access(data.c_str(), W_OK) != 0)
    throw Error("--data " + data + ": cannot write its slice cache there; run `ctgrad prep --data " + data +
                " --out CACHE --size " + std::to_string(p.size) + "` and train with --data CACHE");
  p.needs_prep = true;
  return p;
}

DataSource prepare_data(const DataPlan& plan, int workers, const std::function<void(int64_t, int64_t)>& progress) {
  DataSource out;
  out.cache_path = plan.cache_path;
  if (plan.needs_prep && !fs::exists(plan.cache_path)) {
    data::PrepOptions p;
    p.data_dir = plan.data;
    p.out = plan.cache_path;
    p.size = plan.size;
    p.workers = workers;
    p.seed = plan.split_seed;
    p.mapping = plan.mapping;
    p.per_class = plan.per_class;
    std::fprintf(stderr, "preprocessing %s into %s (once; later runs reuse it)\n", plan.data.c_str(),
                 plan.cache_path.c_str());
    const auto r = data::prep_cache(p, progress);
    for (const auto& s : r.skipped)
      std::fprintf(stderr, "  skipped %s (%s): %s\n", s.patient.c_str(), data::split_name(s.split), s.reason.c_str());
  }
  out.cache = open_checked(out.cache_path, plan.size, plan.mapping, plan.per_class);
  out.split_csv = data::split_csv_path(out.cache_path);
  return out;
}

}  // namespace ctg::train
