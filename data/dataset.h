// Datasets of preprocessed slices: what the DataLoader (data/loader.h) draws
// from. Two sources with the same items and very different costs:
//   CacheDataset — slices from a `ctgrad prep` cache: a copy out of the
//                  memory mapping (~0.1–0.5 ms per 512² slice);
//   NiftiDataset — the raw volumes, each item read, decoded, oriented and
//                  preprocessed on every load (tens to hundreds of ms): the
//                  source that makes num_workers matter in the timing study.
#pragma once
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "data/cache.h"
#include "data/cohort.h"
#include "data/preprocess.h"

namespace ctg::data {

// One item: a slice of a patient's volume.
struct SliceRef {
  std::string patient;
  std::string path;     // the NIfTI volume
  int64_t z = -1;       // slice in the oriented volume; −1: its middle slice
  int label = 0, grade = 0;
  Split split = Split::train;
  bool in_ten = false, central = false;
  int64_t record = -1;  // the cache record, for items from a cache
};

// Items of a cache's records (in the given order).
std::vector<SliceRef> slice_refs(const Cache& cache, const std::vector<int64_t>& records);
// Items of a cohort's patients in `split` (all splits when `split` is null),
// one per patient, z = −1: without a prep pass the chosen slices are unknown,
// and the middle slice costs the same to load.
std::vector<SliceRef> slice_refs(const std::vector<Patient>& patients, const Split* split = nullptr);

class Dataset {
 public:
  virtual ~Dataset() = default;
  int64_t size() const { return (int64_t)items_.size(); }
  int64_t side() const { return side_; }  // images are side × side
  const SliceRef& item(int64_t i) const { return items_.at((size_t)i); }
  const std::vector<SliceRef>& items() const { return items_; }
  // Writes item i as side·side floats in [0, 1] to `out`. Thread-safe.
  // Throws ctg::Error naming the file when the item cannot be loaded.
  virtual void load(int64_t i, float* out) const = 0;
  virtual std::string describe() const = 0;  // one line for logs

 protected:
  std::vector<SliceRef> items_;
  int64_t side_ = 0;
};

class CacheDataset : public Dataset {
 public:
  CacheDataset(std::shared_ptr<const Cache> cache, const std::vector<int64_t>& records);
  // The records select_records(cache, split, view) picks.
  static std::shared_ptr<CacheDataset> of_split(std::shared_ptr<const Cache> cache, Split split,
                                                CacheView view = CacheView::ten);
  void load(int64_t i, float* out) const override;
  std::string describe() const override;
  const Cache& cache() const { return *cache_; }

 private:
  std::shared_ptr<const Cache> cache_;
};

class NiftiDataset : public Dataset {
 public:
  NiftiDataset(std::vector<SliceRef> items, const PreprocessOptions& pre);
  void load(int64_t i, float* out) const override;
  std::string describe() const override;

 private:
  PreprocessOptions pre_;
};

}  // namespace ctg::data
