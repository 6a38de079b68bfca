// `ctgrad prep`: the cohort's volumes → one preprocessed-slice cache
// (data/cache.h) plus the split it used.
//
// For each patient: read the volume, orient it (orient_axial), preprocess
// every slice (the lung fraction of all of them decides which are usable),
// choose slices (choose_slices), and keep the central slice for a train
// patient, the ten chosen slices and the central one for val/test. Patients
// run in parallel on worker threads; the main thread writes them to the cache
// in cohort order, so the file does not depend on thread timing.
//
// The split is written next to the cache as CACHE.split.csv (see
// split_csv_path); with `split_csv` set, that split is reused instead of a
// new one being drawn (rebuilding a cache at another size keeps the split).
#pragma once
#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "data/cache.h"
#include "data/cohort.h"
#include "data/preprocess.h"

namespace ctg::data {

struct PrepOptions {
  std::string data_dir;         // DIR/studies/CT-g/*.nii.gz (ignored with split_csv)
  std::string out;              // the cache file
  int64_t size = 512;           // slice side (overrides pre.size)
  int workers = 0;              // ≤ 0: one per hardware thread
  uint64_t seed = 0;            // the split's seed
  ClassMapping mapping;
  int64_t per_class = 0;        // > 0: N patients per class (select_per_class, seeded by `seed`)
  std::string split_csv;        // non-empty: use this split instead of drawing one
  SliceDType dtype = SliceDType::f32;
  PreprocessOptions pre;
  int64_t eval_slices = 10;     // slices per val/test patient
};

struct PrepSkip {
  std::string patient;
  Split split = Split::train;
  std::string reason;
};

struct PrepReport {
  int64_t patients = 0;         // in the split
  int64_t written = 0;          // patients in the cache
  int64_t records = 0;          // slices in the cache
  std::vector<PrepSkip> skipped;
  std::string split_csv;        // where the split was written
  int workers = 0;
  double seconds = 0;
};

// CACHE + ".split.csv".
std::string split_csv_path(const std::string& cache_path);

// Runs the whole preparation. `progress(done, total)` is called on the
// calling thread after each patient is written. A patient with too few usable
// slices is skipped and listed in the report; an unreadable volume stops the
// run with a ctg::Error naming the file (and no cache is left behind).
PrepReport prep_cache(const PrepOptions& opt, const std::function<void(int64_t, int64_t)>& progress = {});

// One patient's records and pixels (exposed for tests): `skip` is non-empty
// when the patient has too few usable slices.
struct PatientSlices {
  std::vector<CacheRecord> records;
  std::vector<std::vector<float>> pixels;
  std::string skip;
};
PatientSlices prepare_patient(const Patient& p, const PreprocessOptions& pre, int64_t eval_slices);

}  // namespace ctg::data
