// Training augmentation: Gaussian noise (ziggurat), flip, shift.
#include "data/augment.h"

#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <cstring>
#include <vector>

#include "data/cohort.h"

namespace ctg::data {

namespace {

// Marsaglia & Tsang's ziggurat (128 layers) over splitmix64. ~99 % of the
// samples cost one draw, a table lookup and a multiply (measured ~4 ns a
// sample, ~1 ms per 512² slice, on the loaded 2-core dev VM), where
// Box–Muller needs a log, a sqrt and a sincos per pair. The noise is then the
// largest per-slice cost of the cache source (the copy is ~0.2 ms) — only for
// training batches, 272 slices an epoch in the study. Each sample takes the
// layer and the value from separate bits of one 64-bit draw (the original
// shared bits between them, a known flaw).
struct Ziggurat {
  uint32_t kn[128];
  float wn[128], fn[128];
  Ziggurat() {
    const double m1 = 2147483648.0, vn = 9.91256303526217e-3;
    double dn = 3.442619855899, tn = dn;
    const double q = vn / std::exp(-0.5 * dn * dn);
    kn[0] = (uint32_t)((dn / q) * m1);
    kn[1] = 0;
    wn[0] = (float)(q / m1);
    wn[127] = (float)(dn / m1);
    fn[0] = 1.0f;
    fn[127] = (float)std::exp(-0.5 * dn * dn);
    for (int i = 126; i >= 1; --i) {
      dn = std::sqrt(-2.0 * std::log(vn / dn + std::exp(-0.5 * dn * dn)));
      kn[i + 1] = (uint32_t)((dn / tn) * m1);
      tn = dn;
      fn[i] = (float)std::exp(-0.5 * dn * dn);
      wn[i] = (float)(dn / m1);
    }
  }
  static double uni(uint64_t& s) { return ((double)(splitmix64(s) >> 11) + 0.5) * (1.0 / 9007199254740992.0); }
  float operator()(uint64_t& s) const {
    for (;;) {
      const uint64_t r = splitmix64(s);
      const int32_t hz = (int32_t)(uint32_t)r;
      const int iz = (int)((r >> 32) & 127);
      const uint32_t mag = (uint32_t)std::llabs((int64_t)hz);
      const float x = (float)hz * wn[iz];
      if (mag < kn[iz]) return x;
      if (iz == 0) {  // the tail beyond r = 3.44262
        const double rr = 3.442619855899;
        double tx, ty;
        do {
          tx = -std::log(uni(s)) / rr;
          ty = -std::log(uni(s));
        } while (ty + ty < tx * tx);
        return (float)(hz > 0 ? rr + tx : -rr - tx);
      }
      if (fn[iz] + uni(s) * (fn[iz - 1] - fn[iz]) < std::exp(-0.5 * (double)x * x)) return x;
    }
  }
};
const Ziggurat& ziggurat() {
  static const Ziggurat z;
  return z;
}

}  // namespace

void add_gaussian_noise(float* x, size_t n, double std_dev, uint64_t& state) {
  const float std = (float)std_dev;
  const Ziggurat& z = ziggurat();
  for (size_t i = 0; i < n; ++i) x[i] += std * z(state);
}

void augment_image(float* img, int64_t side, const Augment& a, uint64_t state) {
  const size_t n = (size_t)(side * side);
  if (a.max_shift > 0) {
    const int64_t m = a.max_shift;
    const int64_t dx = (int64_t)uniform_below(state, (uint64_t)(2 * m + 1)) - m;
    const int64_t dy = (int64_t)uniform_below(state, (uint64_t)(2 * m + 1)) - m;
    thread_local std::vector<float> tmp;
    tmp.assign(n, 0.0f);
    for (int64_t y = 0; y < side; ++y) {
      const int64_t sy = y - dy;
      if (sy < 0 || sy >= side) continue;
      for (int64_t x = 0; x < side; ++x) {
        const int64_t sx = x - dx;
        if (sx >= 0 && sx < side) tmp[(size_t)(y * side + x)] = img[sy * side + sx];
      }
    }
    std::memcpy(img, tmp.data(), n * sizeof(float));
  }
  if (a.flip && (splitmix64(state) & 1))
    for (int64_t y = 0; y < side; ++y) std::reverse(img + y * side, img + (y + 1) * side);
  if (a.noise_std > 0) add_gaussian_noise(img, n, a.noise_std, state);
}

}  // namespace ctg::data
