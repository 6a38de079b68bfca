// The synthetic cohort (data/synth.h): layout on disk, readable int16 NIfTI,
// determinism over seeds and worker counts, storage layouts that orient back
// to the same anatomy, involvement growing with the grade, and lungs (usable
// slices) in the middle of each volume.
#include <doctest/doctest.h>
#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <set>

#include "data/nifti.h"
#include "data/preprocess.h"
#include "data/synth.h"
#include "tests/test_util.h"

using namespace ctg::data;
namespace fs = std::filesystem;

namespace {

using ctg::test::TempDir;

using ctg::test::slurp;

SynthOptions tiny(uint64_t seed, int workers) {
  SynthOptions o;
  o.patients_per_grade = 2, o.size = 64, o.slices = 12, o.seed = seed, o.workers = workers;
  return o;
}

}  // namespace

TEST_CASE("synth: a tiny cohort is laid out like MosMedData and is readable and deterministic") {
  TempDir a, b, c;
  const std::vector<SynthPatient> pa = synth_cohort(a.dir.string(), tiny(7, 1));
  REQUIRE(pa.size() == 10);
  std::set<std::string> names;
  std::set<int> layouts;
  for (int g = 0; g <= 4; ++g) {
    int files = 0;
    for (const auto& e : fs::directory_iterator(a.dir / "studies" / ("CT-" + std::to_string(g)))) {
      ++files;
      names.insert(e.path().filename().string());
    }
    CHECK(files == 2);
  }
  CHECK(names.size() == 10);  // study numbers are unique across grades
  CHECK(names.count("study_0001.nii.gz") == 1);
  CHECK(names.count("study_0010.nii.gz") == 1);
  CHECK(fs::exists(a.dir / "synth.csv"));

  for (const SynthPatient& p : pa) {
    CAPTURE(p.path);
    const NiftiVolume v = read_nifti(a / p.path);
    CHECK(v.datatype == kNiftiInt16);
    CHECK(v.gzipped);
    CHECK(v.nx * v.ny * v.nz == 64 * 64 * 12);
    CHECK(v.qform_code == 1);
    CHECK(v.sform_code == 1);
    const OrientedVolume o = orient_axial(v);
    CHECK(o.width == 64);
    CHECK(o.depth == 12);
    // A 330–390 mm field of view; lungs (220–280 mm) over ~70 % of the slices.
    CHECK(o.col_mm * 64 == doctest::Approx(360).epsilon(0.09));
    CHECK(o.slice_mm * 12 * 0.7 == doctest::Approx(250).epsilon(0.15));
    const NiftiStats s = nifti_stats(v);
    CHECK(s.min >= -1024);
    CHECK(s.max <= 3071);
    // The reached involvement lies in (or within a blob of) the grade's range.
    const GradeRange r = grade_involvement_range(p.grade);
    CHECK(p.involvement >= r.lo - 0.03);
    CHECK(p.involvement <= r.hi + 0.05);
    if (p.grade == 0) CHECK(p.involvement == 0);
    layouts.insert(p.layout);
  }
  CHECK(layouts.size() >= 2);  // some volumes are stored reoriented

  // The same seed gives the same bytes with another number of workers; another seed does not.
  const std::vector<SynthPatient> pb = synth_cohort(b.dir.string(), tiny(7, 3));
  const std::vector<SynthPatient> pc = synth_cohort(c.dir.string(), tiny(8, 2));
  for (size_t i = 0; i < pa.size(); ++i) {
    CAPTURE(pa[i].path);
    const std::string bytes = slurp(a / pa[i].path);
    CHECK(bytes == slurp(b / pb[i].path));
    CHECK(bytes != slurp(c / pc[i].path));
  }
  CHECK(slurp(a / "synth.csv") == slurp(b / "synth.csv"));
}

TEST_CASE("synth: every storage layout orients back to the same upright anatomy") {
  const SynthVolume v = synth_phantom(3, 42, 3, 48, 8);
  TempDir tmp;
  for (int layout = 0; layout < kSynthLayouts; ++layout) {
    CAPTURE(synth_layout_name(layout));
    std::vector<int16_t> stored;
    const NiftiWriteSpec spec = synth_store(v, layout, &stored);
    write_nifti(tmp / "v.nii", spec, stored.data());
    const OrientedVolume o = orient_axial(read_nifti(tmp / "v.nii"));
    REQUIRE(o.hu.size() == v.hu.size());
    CHECK(std::equal(o.hu.begin(), o.hu.end(), v.hu.begin(), [](float x, int16_t y) { return x == (float)y; }));
    CHECK(o.col_mm == doctest::Approx(v.pixel_mm));
    CHECK(o.slice_mm == doctest::Approx(v.slice_mm));
  }
  // The phantom frame is the display: the table (bright, below the body) is in
  // the bottom rows, the spine's bone in the lower middle, air at the top corners.
  const int64_t n = 48, k = v.slices / 2;
  const int16_t* s = v.hu.data() + k * n * n;
  CHECK(s[0] < -900);
  int64_t bone_row = -1;
  for (int64_t r = 0; r < n; ++r)
    if (s[r * n + n / 2] > 250) bone_row = std::max(bone_row, r);
  CHECK(bone_row > n / 2);
}

TEST_CASE("synth: involvement grows with the grade and lungs fill the middle slices") {
  TempDir tmp;
  const std::vector<SynthPatient> patients = synth_cohort(tmp.dir.string(), tiny(11, 0));
  // Per grade: the fraction of lung-mask voxels in the lesion HU ranges,
  // ground glass [−700, −300] and consolidation [−100, 50].
  double lesion[5] = {0}, lung[5] = {0};
  PreprocessOptions opt;
  opt.size = 32;
  for (const SynthPatient& p : patients) {
    CAPTURE(p.path);
    const OrientedVolume o = orient_axial(read_nifti(tmp / p.path));
    std::vector<PreprocessedSlice> slices;
    std::vector<float> win((size_t)(o.width * o.height));
    for (int64_t z = 0; z < o.depth; ++z) {
      const float* hu = o.slice(z);
      slices.push_back(preprocess_slice(hu, o.width, o.height, opt));
      for (size_t i = 0; i < win.size(); ++i) win[i] = lung_window(hu[i], opt);
      const BodyMasks m = body_masks(win.data(), o.width, o.height, opt);
      for (size_t i = 0; i < win.size(); ++i) {
        if (!m.found || !m.lung[i]) continue;
        lung[p.grade] += 1;
        lesion[p.grade] += (hu[i] >= -700 && hu[i] <= -300) || (hu[i] >= -100 && hu[i] <= 50);
      }
    }
    // No lungs at the ends of the scan; usable lungs in its middle.
    CHECK_FALSE(slices.front().usable);
    CHECK_FALSE(slices.back().usable);
    CHECK(slices[5].usable);
    CHECK(slices[6].usable);
    const SliceChoice c = choose_slices(slices);
    CHECK(c.central >= 4);
    CHECK(c.central <= 7);
  }
  double frac[5];
  for (int g = 0; g <= 4; ++g) frac[g] = lesion[g] / std::max(1.0, lung[g]);
  INFO("lesion fractions by grade: " << frac[0] << " " << frac[1] << " " << frac[2] << " " << frac[3] << " " << frac[4]);
  for (int g = 0; g < 4; ++g) CHECK(frac[g] < frac[g + 1]);
  CHECK(frac[4] - frac[0] > 0.4);
}
