#include "train/data_source.h"

#include <sys/stat.h>

#include <cstdio>

#include "data/prep.h"
#include "engine/tensor.h"

namespace ctg::train {

std::string folder_cache_path(const std::string& dir, int64_t size) {
  return dir + "/ctgrad_cache_" + std::to_string(size) + ".bin";
}

namespace {

bool is_dir(const std::string& p) {
  struct stat st;
  return ::stat(p.c_str(), &st) == 0 && S_ISDIR(st.st_mode);
}
bool exists(const std::string& p) {
  struct stat st;
  return ::stat(p.c_str(), &st) == 0;
}

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

}  // namespace

DataSource resolve_data(const std::string& data, int64_t size, uint64_t split_seed, int workers,
                        const std::function<void(int64_t, int64_t)>& progress) {
  DataSource out;
  if (is_dir(data)) {
    if (size == 0) size = 512;
    out.cache_path = folder_cache_path(data, size);
    if (!exists(out.cache_path)) {
      data::PrepOptions p;
      p.data_dir = data;
      p.out = out.cache_path;
      p.size = size;
      p.workers = workers;
      p.seed = split_seed;
      std::fprintf(stderr, "preprocessing %s into %s (once; later runs reuse it)\n", data.c_str(),
                   out.cache_path.c_str());
      const auto r = data::prep_cache(p, progress);
      for (const auto& s : r.skipped)
        std::fprintf(stderr, "  skipped %s (%s): %s\n", s.patient.c_str(), data::split_name(s.split),
                     s.reason.c_str());
      out.built = true;
    }
  } else {
    out.cache_path = data;
  }
  out.cache = data::Cache::open(out.cache_path);
  if (size != 0 && out.cache->side() != size)
    throw Error("--size: " + std::to_string(size) + " but the cache " + out.cache_path + " holds " +
                std::to_string(out.cache->side()) + "² slices");
  out.split_csv = data::split_csv_path(out.cache_path);
  check_classes(*out.cache);
  return out;
}

}  // namespace ctg::train
