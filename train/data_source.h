// `--data DIR|CACHE` for train/eval: a cohort folder is preprocessed once
// into DIR/ctgrad_cache_<size>.bin (+ .split.csv), reused by later runs at
// the same size (delete it to rebuild); a cache file is used as it is.
#pragma once
#include <cstdint>
#include <functional>
#include <memory>
#include <string>

#include "data/cache.h"

namespace ctg::train {

struct DataSource {
  std::shared_ptr<const data::Cache> cache;
  std::string cache_path, split_csv;
  bool built = false;  // prep ran now
};

// size 0: the cache's own side (512 for a folder). Errors name --data or
// --size: an empty folder, a class with no patients, a cache of another
// side, a split without both classes (AUC needs them).
DataSource resolve_data(const std::string& data, int64_t size, uint64_t split_seed, int workers,
                        const std::function<void(int64_t, int64_t)>& progress = {});

// The cache path a folder uses at a size.
std::string folder_cache_path(const std::string& dir, int64_t size);

}  // namespace ctg::train
