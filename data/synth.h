// A synthetic MosMedData-like cohort: one chest phantom per patient, written
// as DIR/studies/CT-<grade>/study_NNNN.nii.gz (int16 Hounsfield units).
//
// The phantom (data/phantom.cpp) is built in millimetres in a patient frame,
// so it looks the same at any matrix size:
//   X: patient's right → left   (image column, radiological display)
//   Y: anterior → posterior     (image row, anterior up)
//   Z: inferior → superior      (slice index)
// and then stored in one of a few voxel layouts (data/synth.cpp), each with
// the affine that maps it back to the same anatomy, so that readers must
// honour the header (orient_axial does).
//
// Everything is deterministic: each patient draws from its own random stream,
// seeded from (cohort seed, study id), so the bytes do not depend on the
// number of worker threads or the order in which patients are generated.
#pragma once
#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "data/nifti.h"

namespace ctg::data {

// The involvement ranges of the MosMedData grades, as fractions of lung
// volume: CT-0 none, CT-1 (0, 25 %), CT-2 [25, 50 %), CT-3 [50, 75 %),
// CT-4 [75 %, 100 %]. A patient's target is drawn uniformly inside its range
// (CT-1 from 3 %, CT-4 up to 95 %), so neighbouring grades meet at the
// boundaries and the binary task is learnable but not trivial.
struct GradeRange {
  double lo, hi;
};
GradeRange grade_involvement_range(int grade);

// One patient's volume in the patient frame: hu[(z · size + row) · size + col].
struct SynthVolume {
  int64_t size = 0, slices = 0;
  double pixel_mm = 0, slice_mm = 0;  // in-plane spacing, slice thickness (= spacing)
  int grade = 0;
  double target_involvement = 0;  // drawn from the grade's range
  double involvement = 0;         // achieved: lesion-covered fraction of lung volume
  int64_t lung_first = 0, lung_last = 0;  // slices that contain lung (inclusive)
  std::vector<int16_t> hu;
};
// Throws unless 16 ≤ size ≤ 4096, 3 ≤ slices ≤ 2048 and size²·slices ≤ 2³⁰.
void synth_check_size(int64_t size, int64_t slices);
// Deterministic in (seed, study_id, grade, size, slices).
SynthVolume synth_phantom(uint64_t seed, int64_t study_id, int grade, int64_t size, int64_t slices);
// The same into *out, reusing its buffer (the cohort's workers do, to spare
// a fresh 20 MB allocation, its page faults and zeroing per patient).
void synth_phantom(uint64_t seed, int64_t study_id, int grade, int64_t size, int64_t slices, SynthVolume* out);

// Voxel layouts a volume is stored in. Layout 0 keeps the patient frame
// (i = column, j = row, k = slice; affine diag(−px, −px, +dz), the way many
// DICOM converters leave CT); the others flip and/or transpose axes.
constexpr int kSynthLayouts = 4;
const char* synth_layout_name(int layout);  // e.g. "LPS", "RAS", "PLI", "LAI"
// The stored voxels (x fastest) and the header that maps them to the
// patient frame. The world origin is the volume's centre.
NiftiWriteSpec synth_store(const SynthVolume& v, int layout, std::vector<int16_t>* stored);
// The header alone (what synth_store returns, without the voxels).
NiftiWriteSpec synth_spec(const SynthVolume& v, int layout);

struct SynthOptions {
  int64_t patients_per_grade = 20;
  int64_t size = 512;
  int64_t slices = 40;
  uint64_t seed = 1;
  int workers = 0;       // 0: std::thread::hardware_concurrency()
  int gzip_level = 1;    // zlib level of the .nii.gz files (run-length strategy, see synth.cpp)
  // Probability of a layout other than 0, drawn per patient from its stream.
  double reoriented_fraction = 0.5;
};

struct SynthPatient {
  int64_t study_id = 0;  // NNNN, unique across grades (CT-0 first, as in MosMedData)
  int grade = 0;
  int layout = 0;
  double involvement = 0, target_involvement = 0;
  std::string path;      // relative to the output directory
  uint64_t bytes = 0;    // size of the written file
};

// Writes the cohort under `dir` with opt.workers threads, plus `dir/synth.csv`
// (study, grade, layout, target and achieved involvement, path). `progress`
// (may be empty) is called once per written file, from worker threads but
// never concurrently, with the number done so far. Throws ctg::Error on the
// first failure (the other workers stop after their current patient).
std::vector<SynthPatient> synth_cohort(const std::string& dir, const SynthOptions& opt,
                                       const std::function<void(int64_t done, int64_t total,
                                                                const SynthPatient&)>& progress = {});

}  // namespace ctg::data
