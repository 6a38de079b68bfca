// Internals of the chest phantom (data/phantom.cpp, data/phantom_lungs.cpp):
// its random stream, shapes and anatomy. Not part of the public API; the
// cohort's interface is data/synth.h.
//
// Units are millimetres in the patient frame: X from the patient's right to
// left (the display's columns), Y from anterior to posterior (its rows), Z
// from inferior to superior; the origin is the centre of the field of view.
#pragma once
#include <cmath>
#include <cstdint>
#include <vector>

namespace ctg::data::phantom {

inline uint64_t splitmix64(uint64_t& x) {
  uint64_t z = (x += 0x9E3779B97F4A7C15ull);
  z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
  z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
  return z ^ (z >> 31);
}

// xoshiro256**: small, fast, and the same stream on every platform (unlike
// std::normal_distribution, whose algorithm is implementation-defined).
struct Rng {
  uint64_t s[4];
  explicit Rng(uint64_t seed) {
    for (auto& w : s) w = splitmix64(seed);
  }
  uint64_t next() {
    const uint64_t r = rotl(s[1] * 5, 7) * 9, t = s[1] << 17;
    s[2] ^= s[0], s[3] ^= s[1], s[1] ^= s[2], s[0] ^= s[3], s[2] ^= t, s[3] = rotl(s[3], 45);
    return r;
  }
  double uniform() { return (double)(next() >> 11) * 0x1.0p-53; }
  double uniform(double a, double b) { return a + (b - a) * uniform(); }
  double normal() {  // Box–Muller
    const double u = 1.0 - uniform(), v = uniform();
    return std::sqrt(-2.0 * std::log(u)) * std::cos(2.0 * M_PI * v);
  }
  static uint64_t rotl(uint64_t x, int k) { return (x << k) | (x >> (64 - k)); }
};

enum Tag : uint8_t { kAir, kTable, kFat, kMuscle, kSoft, kBone, kLung };

struct Ellipse {  // |dx/a|^e + |dy/b|^e ≤ 1 about (cx, cy); a = 0: absent
  double cx = 0, cy = 0, a = 0, b = 0, e = 2;
};
struct Blob {  // a lesion: ground glass with an optional consolidated core
  double x, y, z, rx, ry, rz, hu, core, core_hu;
  double c2, s2, c3, s3;  // lobulation: the outline's radius is 1 + c2 cos 2θ + s2 sin 2θ + c3 cos 3θ + s3 sin 3θ
};

// Normalised distance of in-plane offset (u, v) (already divided by the
// slice's radii) from a blob's centre: < 1 inside its lobulated outline.
// cos kθ and sin kθ come from u/d, v/d by the multiple-angle formulas,
// so no trigonometric call is made per pixel.
double blob_distance(const Blob& b, double u, double v);

struct Vessel {  // a 3-D segment of radius r
  double x0, y0, z0, x1, y1, z1, r, hu;
};

struct Anatomy {
  int64_t size, slices;
  double fov, px, dz, extent;
  Ellipse body;  // at Z = 0; body_at() tapers it
  double fat, muscle;
  double lung_h, lung_zc;
  Ellipse lung[2];  // 0: patient's right (X < 0), 1: left; at full size
  Ellipse heart;
  double spine_r, table_top, table_t, table_half, table_curve;
  double hu_fat, hu_muscle, hu_soft, hu_lung, hu_table, hu_cortex, hu_marrow, noise_sd;
  int ribs_per_side;
  double rib_phase, rib_r;
  std::vector<Blob> blobs;
  std::vector<Vessel> vessels;

  double z_of(int64_t k) const { return ((double)k + 0.5 - (double)slices / 2) * dz; }
  // Pixel index (row or column) of a coordinate in mm, and back: pixel
  // centres sit at (i + 0.5 − size/2) · px.
  double idx_of(double x) const { return x / px + (double)size / 2 - 0.5; }
  double mm_of(int64_t c) const { return ((double)c + 0.5 - (double)size / 2) * px; }
};

// Lung cross-section scale along its height, v ∈ [−1, 1] from base to apex:
// blunt at the diaphragm (stays wide, then ends), tapering to the apex.
inline double lung_profile(double v) {
  if (v <= -1 || v >= 1) return 0;
  return v < 0 ? std::sqrt(1 - v * v * v * v) : std::pow(1 - v * v, 0.75);
}

// The body narrows a little towards both ends of the scan (u = ±1).
inline Ellipse body_at(const Anatomy& A, double z) {
  const double u = z / (A.extent / 2);
  Ellipse e = A.body;
  e.a *= 1 - 0.06 * u * u, e.b *= 1 - 0.05 * u * u;
  return e;
}
inline Ellipse shrink(Ellipse e, double by) {
  e.a -= by, e.b -= by;
  return e;
}
inline Ellipse cavity_at(const Anatomy& A, double z) { return shrink(body_at(A, z), A.fat + A.muscle); }

inline Ellipse lung_at(const Anatomy& A, int side, double z) {
  const double p = lung_profile((z - A.lung_zc) / (A.lung_h / 2));
  Ellipse e = A.lung[side];
  e.a *= p, e.b *= p;
  return e;
}
// The heart: an ellipsoid over the lower lungs, widest at v = −0.35 and
// gone above v = 0.3.
inline Ellipse heart_at(const Anatomy& A, double z) {
  const double v = (z - A.lung_zc) / (A.lung_h / 2), w = (v + 0.35) / 0.65;
  Ellipse e = A.heart;
  const double s = w * w < 1 ? std::sqrt(1 - w * w) : 0;
  e.a *= s, e.b *= s;
  return e;
}

inline bool inside(const Ellipse& e, double x, double y) {
  if (e.a <= 0 || e.b <= 0) return false;
  return std::pow(std::fabs(x - e.cx) / e.a, e.e) + std::pow(std::fabs(y - e.cy) / e.b, e.e) <= 1;
}

Anatomy make_anatomy(Rng& R, int64_t size, int64_t slices);
// Vessels: per lung, trunks from the hilum that fork once, plus short twigs.
void make_vessels(Anatomy& A, Rng& R);
// Lesions until `target` of the lung volume (on a coarse grid) is covered.
void make_lesions(Anatomy& A, Rng& R, int grade, double target);
// Paints slice k into out (size² int16) with scratch buffers hu, tag, les
// (size² each); adds the slice's lung pixels and those a lesion covers to
// *lung_px and *covered_px.
void render_slice(const Anatomy& A, Rng& R, int64_t k, std::vector<float>& hu, std::vector<uint8_t>& tag,
                  std::vector<float>& les, int16_t* out, int64_t* lung_px, int64_t* covered_px);

}  // namespace ctg::data::phantom
