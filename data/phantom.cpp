// The chest phantom of the synthetic cohort (declared in data/synth.h).
//
// Geometry is in millimetres in the patient frame (X: right → left, Y:
// anterior → posterior, Z: inferior → superior; origin at the centre of the
// field of view), so a 64² test volume and a 512² one show the same anatomy.
// Each axial slice is painted back to front with convex shapes filled row by
// row (one pow() per row, not per pixel), every pixel carrying a tissue tag
// so that later layers only go where they belong (lungs carve only the soft
// tissue of the thoracic cavity, lesions and vessels only lung):
//   air −1024 | table | body: fat −100, muscle +45, cavity soft tissue +40 |
//   spine, sternum, ribs (cancellous +300…+450, cortex +650…+1000) |
//   lungs −850 minus the heart | lesions: ground glass −700…−350 with
//   consolidated cores −100…+50 | vessels (capsules, 3-D segments) | noise.
// Lesions are 3-D ellipsoids added one by one, centred on not-yet-covered
// lung and preferring the periphery, until a coarse 96² × slices grid of the
// lungs is covered to the patient's target fraction (data/phantom_lungs.cpp);
// the fraction actually reached at full resolution is measured while painting.
#include <algorithm>
#include <cmath>
#include <limits>

#include "data/phantom.h"
#include "data/synth.h"
#include "engine/tensor.h"

namespace ctg::data {

GradeRange grade_involvement_range(int grade) {
  static const GradeRange kRanges[5] = {{0, 0}, {0.03, 0.25}, {0.25, 0.50}, {0.50, 0.75}, {0.75, 0.95}};
  if (grade < 0 || grade > 4) throw Error("synth: grade must be 0..4, not " + std::to_string(grade));
  return kRanges[grade];
}

void synth_check_size(int64_t size, int64_t slices) {
  if (size < 16 || size > 4096) throw Error("synth: size must be 16..4096, not " + std::to_string(size));
  if (slices < 3 || slices > 2048) throw Error("synth: slices must be 3..2048, not " + std::to_string(slices));
  // One volume is held in memory and deflated in one call (zlib counts in 32 bits).
  if (size * size * slices > (int64_t)1 << 30)
    throw Error("synth: " + std::to_string(size) + "² × " + std::to_string(slices) + " slices is over 2³⁰ voxels");
}

namespace phantom {

namespace {

// Image noise needs ~10⁹ Gaussian draws per cohort: a table of 2¹⁶ draws
// indexed by 16 random bits (four per 64-bit draw) costs a load each.
const float* normal_table() {
  static const std::vector<float> table = [] {
    std::vector<float> t(1u << 16);
    Rng r(0x5EEDF00Dull);
    for (auto& x : t) x = (float)r.normal();
    return t;
  }();
  return table.data();
}

// Calls f(row, c0, c1) for the pixel columns c0..c1 (inclusive) of each row
// whose centre lies inside the (super)ellipse.
template <class F>
void for_spans(const Anatomy& A, const Ellipse& e, F f) {
  if (e.a <= 0 || e.b <= 0) return;
  const int64_t n = A.size;
  const int64_t r0 = std::max<int64_t>(0, (int64_t)std::ceil(A.idx_of(e.cy - e.b)));
  const int64_t r1 = std::min<int64_t>(n - 1, (int64_t)std::floor(A.idx_of(e.cy + e.b)));
  for (int64_t r = r0; r <= r1; ++r) {
    const double dy = std::fabs(A.mm_of(r) - e.cy) / e.b;
    if (dy >= 1) continue;
    const double half = e.a * std::pow(1 - std::pow(dy, e.e), 1 / e.e);
    const int64_t c0 = std::max<int64_t>(0, (int64_t)std::ceil(A.idx_of(e.cx - half)));
    const int64_t c1 = std::min<int64_t>(n - 1, (int64_t)std::floor(A.idx_of(e.cx + half)));
    if (c0 <= c1) f(r, c0, c1);
  }
}

struct Canvas {
  const Anatomy& A;
  float* hu;
  uint8_t* tag;
  // Paints `value` with `t` over the pixels whose tag is in `over` (a bit set).
  void paint(const Ellipse& e, float value, Tag t, unsigned over) {
    for_spans(A, e, [&](int64_t r, int64_t c0, int64_t c1) {
      for (int64_t i = r * A.size + c0, end = r * A.size + c1; i <= end; ++i)
        if (over >> tag[i] & 1u) hu[i] = value, tag[i] = t;
    });
  }
  void bone(double cx, double cy, double rx, double ry, double cortex_mm) {
    const unsigned body = 1u << kFat | 1u << kMuscle | 1u << kSoft | 1u << kBone;
    paint({cx, cy, rx, ry}, (float)A.hu_cortex, kBone, body);
    if (rx > cortex_mm && ry > cortex_mm)
      paint({cx, cy, rx - cortex_mm, ry - cortex_mm}, (float)A.hu_marrow, kBone, 1u << kBone);
  }
};

constexpr unsigned kAny = 0xFFu;

}  // namespace

Anatomy make_anatomy(Rng& R, int64_t size, int64_t slices) {
  Anatomy A;
  A.size = size, A.slices = slices;
  A.fov = R.uniform(330, 390), A.px = A.fov / (double)size;
  // Lungs span the central ~70 % of the scan; the slice thickness follows.
  A.lung_h = R.uniform(220, 280);
  A.extent = A.lung_h / R.uniform(0.66, 0.74);
  A.dz = A.extent / (double)slices;
  A.lung_zc = R.uniform(-0.03, 0.03) * A.extent;
  A.body.cx = R.uniform(-6, 6), A.body.cy = R.uniform(-25, -10);
  A.body.a = std::min(R.uniform(140, 175), 0.46 * A.fov - 6);
  A.body.b = R.uniform(95, 125), A.body.e = R.uniform(2.0, 2.8);
  A.muscle = R.uniform(8, 14);
  A.fat = std::min(R.uniform(6, 25), A.body.b - A.muscle - 65);
  const double ac = A.body.a - A.fat - A.muscle, bc = A.body.b - A.fat - A.muscle;
  for (int s = 0; s < 2; ++s) {
    Ellipse& l = A.lung[s];
    l.cx = A.body.cx + (s == 0 ? -1 : 1) * R.uniform(0.50, 0.54) * ac;
    l.cy = A.body.cy + R.uniform(-0.04, 0.06) * bc;
    l.a = R.uniform(0.40, 0.44) * ac * (s == 0 ? 1.03 : 1.0);
    l.b = R.uniform(0.80, 0.88) * bc;
  }
  A.heart = {A.body.cx + R.uniform(0.08, 0.16) * ac, A.body.cy - R.uniform(0.05, 0.20) * bc,
             R.uniform(0.30, 0.36) * ac, R.uniform(0.45, 0.55) * bc, 2};
  A.spine_r = R.uniform(13, 17);
  // The table lies under the back with an air gap (≥ 3 pixels, so that no
  // connectivity joins it to the body) and is thinner and smaller than it.
  A.table_top = A.body.cy + A.body.b + std::max(3 * A.px, R.uniform(8, 20));
  A.table_t = std::max(2 * A.px, R.uniform(8, 14));
  A.table_half = R.uniform(0.40, 0.46) * A.fov, A.table_curve = R.uniform(0, 0.0004);
  A.hu_fat = R.uniform(-110, -85), A.hu_muscle = R.uniform(35, 55), A.hu_soft = R.uniform(30, 45);
  A.hu_lung = R.uniform(-880, -820), A.hu_table = R.uniform(80, 250);
  A.hu_cortex = R.uniform(650, 1000), A.hu_marrow = R.uniform(300, 450);
  A.noise_sd = R.uniform(15, 25);
  A.ribs_per_side = 6 + (int)(R.next() % 3);
  A.rib_phase = R.uniform(0, 2 * M_PI), A.rib_r = R.uniform(3.5, 5);
  return A;
}

// Paints slice k into out (size² int16); adds its lung and lesion-covered
// lung pixel counts to *lung_px and *covered_px.
void render_slice(const Anatomy& A, Rng& R, int64_t k, std::vector<float>& hu, std::vector<uint8_t>& tag,
                  std::vector<float>& les, int16_t* out, int64_t* lung_px, int64_t* covered_px) {
  const int64_t n = A.size;
  const double z = A.z_of(k);
  std::fill(hu.begin(), hu.end(), -1024.f);
  std::fill(tag.begin(), tag.end(), (uint8_t)kAir);
  Canvas cv{A, hu.data(), tag.data()};
  // The table: a slab, its top curving up slightly towards the sides.
  for (int64_t c = 0; c < n; ++c) {
    const double x = A.mm_of(c);
    if (std::fabs(x) > A.table_half) continue;
    const double top = A.table_top - A.table_curve * x * x;
    for (int64_t r = std::max<int64_t>(0, (int64_t)std::ceil(A.idx_of(top)));
         r < n && A.mm_of(r) <= top + A.table_t; ++r)
      hu[r * n + c] = (float)A.hu_table, tag[r * n + c] = kTable;
  }
  const Ellipse body = body_at(A, z), cavity = cavity_at(A, z);
  cv.paint(body, (float)A.hu_fat, kFat, kAny);
  cv.paint(shrink(body, A.fat), (float)A.hu_muscle, kMuscle, 1u << kFat);
  cv.paint(cavity, (float)A.hu_soft, kSoft, 1u << kMuscle);
  // Spine: vertebral body at the back of the cavity, neural arch, canal, spinous process.
  const double sx = body.cx, sy = cavity.cy + cavity.b - 0.9 * A.spine_r, rc = 0.45 * A.spine_r;
  const double canal_y = sy + A.spine_r + rc + 2;
  cv.bone(sx, sy, A.spine_r, A.spine_r * 0.9, 2.0);
  cv.bone(sx, canal_y, rc + 3, rc + 3, 3.1);
  cv.paint({sx, canal_y, rc, rc}, (float)A.hu_soft - 10, kSoft, 1u << kBone);
  cv.bone(sx, canal_y + rc + 10, 3.5, 9, 1.5);
  // Ribs on the cavity wall, drifting a little from slice to slice; sternum in front.
  for (int s = 0; s < A.ribs_per_side; ++s) {
    const double t = -65 + 140.0 * (s + 0.5) / A.ribs_per_side + 6 * std::sin(0.7 * (double)k + A.rib_phase + s);
    for (int side = 0; side < 2; ++side) {
      const double th = (side == 0 ? t : 180 - t) * M_PI / 180;
      cv.bone(cavity.cx + cavity.a * std::cos(th), cavity.cy + cavity.b * std::sin(th), A.rib_r * 1.3, A.rib_r, 1.5);
    }
  }
  const double v = (z - A.lung_zc) / (A.lung_h / 2);
  if (v > -0.7 && v < 0.9) cv.bone(body.cx, cavity.cy - cavity.b - 0.3 * A.muscle, 12, 5, 1.5);
  // Lungs carve the cavity's soft tissue; the heart displaces them again.
  for (int s = 0; s < 2; ++s) cv.paint(lung_at(A, s, z), (float)A.hu_lung, kLung, 1u << kSoft);
  cv.paint(heart_at(A, z), (float)A.hu_soft + 8, kSoft, 1u << kLung);

  // Lesions: the densest contribution wins where blobs overlap.
  const float none = -std::numeric_limits<float>::infinity();
  std::fill(les.begin(), les.end(), none);
  for (const Blob& b : A.blobs) {
    const double wz = (z - b.z) / b.rz;
    if (wz * wz >= 1) continue;
    const double s = std::sqrt(1 - wz * wz);
    const double ra = b.rx * s, rb = b.ry * s;
    for_spans(A, {b.x, b.y, 1.3 * ra, 1.3 * rb, 2}, [&](int64_t r, int64_t c0, int64_t c1) {
      const double dy = (A.mm_of(r) - b.y) / rb;
      for (int64_t c = c0; c <= c1; ++c) {
        const int64_t i = r * n + c;
        if (tag[i] != kLung) continue;
        const double d = blob_distance(b, (A.mm_of(c) - b.x) / ra, dy);
        if (d >= 1) continue;
        // Ground glass at full strength to 0.75 of the radius, fading to lung at the rim.
        double val = d < 0.75 ? b.hu : A.hu_lung + (b.hu - A.hu_lung) * (1 - d) / 0.25;
        if (d < b.core) val = b.core_hu;
        les[i] = std::max(les[i], (float)val);
      }
    });
  }
  for (int64_t i = 0; i < n * n; ++i) {
    if (tag[i] != kLung) continue;
    ++*lung_px;
    if (les[i] != none) ++*covered_px, hu[i] = std::max(hu[i], les[i]);
  }
  // Vessels: the part of each segment inside this slab, as a capsule.
  const double za = z - A.dz / 2, zb = z + A.dz / 2;
  for (const Vessel& s : A.vessels) {
    double t0 = 0, t1 = 1;
    const double dzs = s.z1 - s.z0;
    if (std::fabs(dzs) < 1e-9) {
      if (s.z0 < za || s.z0 > zb) continue;
    } else {
      double ta = (za - s.z0) / dzs, tb = (zb - s.z0) / dzs;
      if (ta > tb) std::swap(ta, tb);
      t0 = std::max(0.0, ta), t1 = std::min(1.0, tb);
      if (t0 > t1) continue;
    }
    const double ax = s.x0 + t0 * (s.x1 - s.x0), ay = s.y0 + t0 * (s.y1 - s.y0);
    const double bx = s.x0 + t1 * (s.x1 - s.x0), by = s.y0 + t1 * (s.y1 - s.y0);
    const double ux = bx - ax, uy = by - ay, uu = ux * ux + uy * uy;
    const int64_t c0 = std::max<int64_t>(0, (int64_t)std::ceil(A.idx_of(std::min(ax, bx) - s.r)));
    const int64_t c1 = std::min<int64_t>(n - 1, (int64_t)std::floor(A.idx_of(std::max(ax, bx) + s.r)));
    const int64_t r0 = std::max<int64_t>(0, (int64_t)std::ceil(A.idx_of(std::min(ay, by) - s.r)));
    const int64_t r1 = std::min<int64_t>(n - 1, (int64_t)std::floor(A.idx_of(std::max(ay, by) + s.r)));
    for (int64_t r = r0; r <= r1; ++r)
      for (int64_t c = c0; c <= c1; ++c) {
        const int64_t i = r * n + c;
        if (tag[i] != kLung) continue;
        const double px = A.mm_of(c) - ax, py = A.mm_of(r) - ay;
        const double t = uu > 0 ? std::clamp((px * ux + py * uy) / uu, 0.0, 1.0) : 0.0;
        const double qx = px - t * ux, qy = py - t * uy;
        if (qx * qx + qy * qy <= s.r * s.r) hu[i] = std::max(hu[i], (float)s.hu);
      }
  }
  // Quantum noise, then the scanner's floor at −1024 and int16 rounding.
  const float* gauss = normal_table();
  const float sd = (float)A.noise_sd;
  for (int64_t i = 0; i < n * n; i += 4) {
    uint64_t bits = R.next();
    for (int64_t j = i; j < std::min(i + 4, n * n); ++j, bits >>= 16) {
      const float val = std::max(-1024.f, hu[j] + sd * gauss[bits & 0xFFFF]);
      out[j] = (int16_t)std::lrint(std::min(val, 3071.f));
    }
  }
}

}  // namespace phantom

using namespace phantom;

void synth_phantom(uint64_t seed, int64_t study_id, int grade, int64_t size, int64_t slices, SynthVolume* out) {
  synth_check_size(size, slices);
  const GradeRange range = grade_involvement_range(grade);
  // The patient's stream: splitmix of the seed, mixed with splitmix of the id.
  uint64_t s = seed ^ 0xC0FFEE1234567ull, id = (uint64_t)study_id;
  Rng R(splitmix64(s) ^ splitmix64(id));
  Anatomy A = make_anatomy(R, size, slices);
  make_vessels(A, R);
  SynthVolume& v = *out;
  v.size = size, v.slices = slices, v.pixel_mm = A.px, v.slice_mm = A.dz, v.grade = grade;
  v.target_involvement = grade == 0 ? 0 : R.uniform(range.lo, range.hi);
  make_lesions(A, R, grade, v.target_involvement);
  v.hu.resize((size_t)(size * size * slices));
  std::vector<float> hu((size_t)(size * size)), les(hu.size());
  std::vector<uint8_t> tag(hu.size());
  int64_t lung = 0, covered = 0;
  v.lung_first = -1, v.lung_last = -1;
  for (int64_t k = 0; k < slices; ++k) {
    const int64_t before = lung;
    render_slice(A, R, k, hu, tag, les, v.hu.data() + k * size * size, &lung, &covered);
    if (lung > before) {
      if (v.lung_first < 0) v.lung_first = k;
      v.lung_last = k;
    }
  }
  v.involvement = lung > 0 ? (double)covered / (double)lung : 0;
}

SynthVolume synth_phantom(uint64_t seed, int64_t study_id, int grade, int64_t size, int64_t slices) {
  SynthVolume v;
  synth_phantom(seed, study_id, grade, size, slices, &v);
  return v;
}

}  // namespace ctg::data