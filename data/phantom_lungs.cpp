// The phantom's lungs: vessels and lesions (data/phantom.h). Lesions are
// 3-D ellipsoids with lobulated outlines, added one by one, each centred on
// lung not yet covered and preferring the periphery (and a little the back),
// as COVID-19 pneumonia does, until a coarse 96² × slices grid of the lungs
// is covered to the patient's target fraction. Their size and the chance of
// a consolidated core grow with the grade.
#include <algorithm>

#include "data/phantom.h"

namespace ctg::data::phantom {

double blob_distance(const Blob& b, double u, double v) {
  const double d = std::sqrt(u * u + v * v);
  if (d == 0) return 0;
  const double c = u / d, s = v / d;
  const double cos2 = c * c - s * s, sin2 = 2 * s * c;
  const double cos3 = c * (4 * c * c - 3), sin3 = s * (3 - 4 * s * s);
  return d / (1 + b.c2 * cos2 + b.s2 * sin2 + b.c3 * cos3 + b.s3 * sin3);
}

// Vessels: per lung, trunks from the hilum that fork once, plus short
// peripheral twigs; thin ones are fainter (partial volume).
void make_vessels(Anatomy& A, Rng& R) {
  auto point_in_lung = [&](int s, double rho_max, double* x, double* y, double* z) {
    for (;;) {
      *z = A.lung_zc + R.uniform(-0.9, 0.9) * A.lung_h / 2;
      const Ellipse l = lung_at(A, s, *z);
      const double rho = rho_max * std::sqrt(R.uniform()), th = R.uniform(0, 2 * M_PI);
      *x = l.cx + rho * l.a * std::cos(th), *y = l.cy + rho * l.b * std::sin(th);
      if (!inside(heart_at(A, *z), *x, *y)) return;
    }
  };
  auto hu_for = [&](double r) { return A.hu_lung + (40 - A.hu_lung) * std::min(1.0, r / 2.0); };
  for (int s = 0; s < 2; ++s) {
    const Ellipse& l = A.lung[s];
    const double hx = l.cx + (s == 0 ? 1 : -1) * 0.55 * l.a, hy = l.cy, hz = A.lung_zc + 0.1 * A.lung_h / 2;
    const int trunks = 14 + (int)(R.next() % 6);
    for (int t = 0; t < trunks; ++t) {
      double mx, my, mz;
      point_in_lung(s, 0.55, &mx, &my, &mz);
      const double rt = R.uniform(2.5, 4.5);
      A.vessels.push_back({hx, hy, hz, mx, my, mz, rt, hu_for(rt)});
      for (int c = 0; c < 2; ++c) {
        double ex, ey, ez;
        point_in_lung(s, 0.95, &ex, &ey, &ez);
        const double rc = R.uniform(1.0, 2.2);
        A.vessels.push_back({mx, my, mz, ex, ey, ez, rc, hu_for(rc)});
      }
    }
    for (int t = 0; t < 30; ++t) {
      double x, y, z;
      point_in_lung(s, 0.95, &x, &y, &z);
      const double len = R.uniform(8, 25), th = R.uniform(0, 2 * M_PI), ph = R.uniform(-1.2, 1.2);
      const double r = R.uniform(0.7, 1.4);
      A.vessels.push_back({x, y, z, x + len * std::cos(ph) * std::cos(th), y + len * std::cos(ph) * std::sin(th),
                           z + len * std::sin(ph), r, hu_for(r)});
    }
  }
}

// Adds lesions until `target` of the lung volume (on a coarse grid) is covered.
void make_lesions(Anatomy& A, Rng& R, int grade, double target) {
  if (target <= 0) return;
  constexpr int G = 96;
  const double g = A.fov / G;
  struct Cell {
    double x, y, z, w;
    bool covered;
  };
  std::vector<Cell> cells;
  std::vector<int64_t> index((size_t)G * G * A.slices, -1);
  for (int64_t k = 0; k < A.slices; ++k) {
    const double z = A.z_of(k);
    const Ellipse h = heart_at(A, z);
    for (int s = 0; s < 2; ++s) {
      const Ellipse l = lung_at(A, s, z);
      if (l.a <= 0) continue;
      for (int j = 0; j < G; ++j)
        for (int i = 0; i < G; ++i) {
          const double x = (i + 0.5) * g - A.fov / 2, y = (j + 0.5) * g - A.fov / 2;
          if (!inside(l, x, y) || inside(h, x, y)) continue;
          // Peripheral and (a little) posterior lung is favoured, as in COVID-19.
          const double dx = (x - l.cx) / l.a, dy = (y - l.cy) / l.b, rho2 = dx * dx + dy * dy;
          const double w = (0.03 + rho2 * rho2) * (1 + 0.5 * std::max(0.0, dy));
          index[(size_t)((k * G + j) * G + i)] = (int64_t)cells.size();
          cells.push_back({x, y, z, w, false});
        }
    }
  }
  const double need = target * (double)cells.size();
  double covered = 0;
  const double r_max = 15 + 8 * grade, p_core = 0.10 + 0.08 * grade;
  for (int n = 0; covered < need && n < 5000; ++n) {
    double total = 0;
    for (const Cell& c : cells) total += c.covered ? 0 : c.w;
    if (total <= 0) break;
    double pick = R.uniform() * total;
    const Cell* at = nullptr;
    for (const Cell& c : cells)
      if (!c.covered && (pick -= c.w) <= 0) {
        at = &c;
        break;
      }
    if (!at) at = &cells.back();
    Blob b;
    b.x = at->x + R.uniform(-0.5, 0.5) * g, b.y = at->y + R.uniform(-0.5, 0.5) * g, b.z = at->z;
    const double r = R.uniform(8, r_max);
    b.rx = r * R.uniform(0.7, 1.3), b.ry = r * R.uniform(0.7, 1.3), b.rz = r * R.uniform(0.8, 1.5);
    b.hu = R.uniform(-700, -350);
    b.core = R.uniform() < p_core ? R.uniform(0.35, 0.7) : 0;
    b.core_hu = R.uniform(-100, 50);
    // Lobulation amplitudes up to 0.3 in total keep the outline star-shaped.
    const double l2 = R.uniform(0, 0.18), l3 = R.uniform(0, 0.12), p2 = R.uniform(0, 2 * M_PI), p3 = R.uniform(0, 2 * M_PI);
    b.c2 = l2 * std::cos(p2), b.s2 = l2 * std::sin(p2), b.c3 = l3 * std::cos(p3), b.s3 = l3 * std::sin(p3);
    A.blobs.push_back(b);
    // Mark the grid cells inside the ellipsoid.
    const int64_t k0 = std::max<int64_t>(0, (int64_t)std::floor((b.z - b.rz) / A.dz + A.slices / 2.0));
    const int64_t k1 = std::min<int64_t>(A.slices - 1, (int64_t)std::ceil((b.z + b.rz) / A.dz + A.slices / 2.0));
    const double ex = 1.3 * b.rx, ey = 1.3 * b.ry;  // room for the lobes
    const int i0 = std::max(0, (int)((b.x - ex + A.fov / 2) / g)), i1 = std::min(G - 1, (int)((b.x + ex + A.fov / 2) / g));
    const int j0 = std::max(0, (int)((b.y - ey + A.fov / 2) / g)), j1 = std::min(G - 1, (int)((b.y + ey + A.fov / 2) / g));
    for (int64_t k = k0; k <= k1; ++k)
      for (int j = j0; j <= j1; ++j)
        for (int i = i0; i <= i1; ++i) {
          const int64_t ci = index[(size_t)((k * G + j) * G + i)];
          if (ci < 0 || cells[ci].covered) continue;
          const Cell& c = cells[ci];
          const double wz = (c.z - b.z) / b.rz;
          if (wz * wz >= 1) continue;
          const double sz = std::sqrt(1 - wz * wz);
          if (blob_distance(b, (c.x - b.x) / (b.rx * sz), (c.y - b.y) / (b.ry * sz)) < 1)
            cells[ci].covered = true, covered += 1;
        }
  }
}

}  // namespace ctg::data::phantom
