// Cache and NIfTI datasets.
#include "data/dataset.h"

#include <cstring>

#include "engine/tensor.h"

namespace ctg::data {

std::vector<SliceRef> slice_refs(const Cache& cache, const std::vector<int64_t>& records) {
  std::vector<SliceRef> out;
  out.reserve(records.size());
  for (int64_t i : records) {
    const CacheRecord& r = cache.record(i);
    out.push_back({r.patient, r.source, r.z, r.label, r.grade, r.split, r.in_ten, r.central, i});
  }
  return out;
}

std::vector<SliceRef> slice_refs(const std::vector<Patient>& patients, const Split* split) {
  std::vector<SliceRef> out;
  for (const auto& p : patients)
    if (!split || p.split == *split) out.push_back({p.id, p.path, -1, p.label, p.grade, p.split, false, true, -1});
  return out;
}

CacheDataset::CacheDataset(std::shared_ptr<const Cache> cache, const std::vector<int64_t>& records)
    : cache_(std::move(cache)) {
  items_ = slice_refs(*cache_, records);
  side_ = cache_->side();
}

std::shared_ptr<CacheDataset> CacheDataset::of_split(std::shared_ptr<const Cache> cache, Split split, CacheView view) {
  const auto records = select_records(*cache, split, view);
  if (records.empty()) throw Error(cache->path() + ": no " + split_name(split) + " records");
  return std::make_shared<CacheDataset>(std::move(cache), records);
}

void CacheDataset::load(int64_t i, float* out) const { cache_->read_slice(item(i).record, out); }

std::string CacheDataset::describe() const {
  return "cache " + cache_->path() + " (" + std::to_string(size()) + " slices, " + std::to_string(side_) + "², " +
         slice_dtype_name(cache_->dtype()) + ")";
}

NiftiDataset::NiftiDataset(std::vector<SliceRef> items, const PreprocessOptions& pre) : pre_(pre) {
  items_ = std::move(items);
  side_ = pre.size;
  if (side_ <= 0) throw Error("NiftiDataset: size must be positive, got " + std::to_string(side_));
}

void NiftiDataset::load(int64_t i, float* out) const {
  const SliceRef& r = item(i);
  try {
    // The full cost on purpose: decode the whole file and orient the whole
    // volume for one slice, as a loader reading raw studies would.
    const OrientedVolume vol = orient_axial(read_nifti(r.path));
    const int64_t z = r.z < 0 ? vol.depth / 2 : r.z;
    if (z >= vol.depth)
      throw Error("slice " + std::to_string(z) + " is past the volume's " + std::to_string(vol.depth) + " slices");
    const PreprocessedSlice s = preprocess_slice(vol.slice(z), vol.width, vol.height, pre_);
    if (s.pixels.size() != (size_t)(side_ * side_))
      throw Error("preprocessing gave " + std::to_string(s.pixels.size()) + " pixels, expected " +
                  std::to_string(side_ * side_));
    std::memcpy(out, s.pixels.data(), s.pixels.size() * sizeof(float));
  } catch (const std::exception& e) {
    const std::string w = e.what();
    throw Error(w.compare(0, r.path.size(), r.path) == 0 ? w : r.path + ": " + w);
  }
}

std::string NiftiDataset::describe() const {
  return "nifti (" + std::to_string(size()) + " slices decoded and preprocessed per load, " + std::to_string(side_) + "²)";
}

}  // namespace ctg::data
