// `--data DIR|CACHE` for train: a cohort folder is preprocessed once into
// DIR/ctgrad_cache_<size>.bin (DIR/ctgrad_cache_<size>_seed<S>.bin for a
// split seed S ≠ 0, with data::selection_tag's suffix for a non-default
// --negative/--positive or a --per-class), plus its .split.csv, and reused by
// later runs with the same settings (delete it to rebuild); a cache file is
// used as it is, after checking that its labels follow the mapping.
//
// Two steps so that every check comes before any work: plan_data() looks at
// the folder or cache (cheap: a directory scan, or the cache's header and
// index) and throws for bad input; prepare_data() then runs the
// preprocessing if the cache does not exist yet.
#pragma once
#include <cstdint>
#include <functional>
#include <memory>
#include <string>

#include <nlohmann/json.hpp>

#include "data/cache.h"

namespace ctg::train {

struct DataPlan {
  std::string data;        // as given
  bool folder = false;
  int64_t size = 0;        // the slice side the run will use
  uint64_t split_seed = 0;
  data::ClassMapping mapping;
  int64_t per_class = 0;
  std::string cache_path;  // absolute
  bool needs_prep = false;
};

struct DataSource {
  std::shared_ptr<const data::Cache> cache;
  std::string cache_path, split_csv;  // absolute
};

// size 0: the cache's own side (512 for a folder). Errors name --data,
// --size, --negative/--positive or --per-class: no such path, an empty
// folder, a class with no (or fewer than per_class) patients, a folder where
// the cache cannot be written, a cache of another side or whose labels follow
// another mapping, a split without both classes (AUC needs them).
DataPlan plan_data(const std::string& data, int64_t size, uint64_t split_seed,
                   const data::ClassMapping& mapping = {}, int64_t per_class = 0);
DataSource prepare_data(const DataPlan& plan, int workers,
                        const std::function<void(int64_t, int64_t)>& progress = {});

// {"train": [ids], "val": [...], "test": [...]}: the patients of each split
// (recorded in RUN/config.json and compared on resume and eval).
nlohmann::json split_lists(const data::Cache& c);

// The cache path a folder uses at a size, split seed and selection.
std::string folder_cache_path(const std::string& dir, int64_t size, uint64_t split_seed = 0,
                              const data::ClassMapping& mapping = {}, int64_t per_class = 0);

}  // namespace ctg::train
