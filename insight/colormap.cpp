// Colour maps. viridis and inferno are matplotlib's perceptually uniform maps
// (van der Walt & Smith, 2015): here as the map's colours at t = i/8 (viridis,
// the values R's viridisLite::viridis(9) prints) and t = i/9 (inferno(10)),
// interpolated linearly in sRGB between them; between the knots this stays
// within a few levels of the 256-entry tables since both maps are smooth
// curves. The diverging map is blue → white → red (ColorBrewer's RdBu ends,
// reversed so positive is red) with exactly white at t = 0.5, i.e. at 0 when
// the range is centred on 0. Grey is round(255 t).
#include <algorithm>
#include <cmath>

#include "insight/image.h"

namespace ctg::insight {

namespace {

using RGB = std::array<uint8_t, 3>;

const RGB kViridis[] = {{0x44, 0x01, 0x54}, {0x47, 0x2D, 0x7B}, {0x3B, 0x52, 0x8B},
                        {0x2C, 0x72, 0x8E}, {0x21, 0x90, 0x8C}, {0x27, 0xAD, 0x81},
                        {0x5D, 0xC8, 0x63}, {0xAA, 0xDC, 0x32}, {0xFD, 0xE7, 0x25}};
const RGB kInferno[] = {{0x00, 0x00, 0x04}, {0x1B, 0x0C, 0x42}, {0x4B, 0x0C, 0x6B}, {0x78, 0x1C, 0x6D},
                        {0xA5, 0x2C, 0x60}, {0xCF, 0x44, 0x46}, {0xED, 0x69, 0x25}, {0xFB, 0x9A, 0x06},
                        {0xF7, 0xD0, 0x3C}, {0xFC, 0xFF, 0xA4}};
const RGB kDiverging[] = {{0x05, 0x30, 0x61}, {0x43, 0x93, 0xC3}, {0xFF, 0xFF, 0xFF},
                          {0xD6, 0x60, 0x4D}, {0x67, 0x00, 0x1F}};

template <size_t N>
RGB lerp_table(const RGB (&table)[N], float t) {
  const float s = t * (float)(N - 1);
  const size_t i = std::min((size_t)s, N - 2);
  const float f = s - (float)i;
  RGB c;
  for (int k = 0; k < 3; ++k)
    c[k] = (uint8_t)std::lround((1 - f) * (float)table[i][k] + f * (float)table[i + 1][k]);
  return c;
}

}  // namespace

std::array<uint8_t, 3> colormap_rgb(ColorMap cmap, float t) {
  if (std::isnan(t)) return {160, 160, 160};
  t = std::clamp(t, 0.f, 1.f);
  switch (cmap) {
    case ColorMap::grey: {
      const uint8_t v = (uint8_t)std::lround(255.f * t);
      return {v, v, v};
    }
    case ColorMap::viridis: return lerp_table(kViridis, t);
    case ColorMap::inferno: return lerp_table(kInferno, t);
    case ColorMap::diverging: return lerp_table(kDiverging, t);
  }
  return {0, 0, 0};
}

}  // namespace ctg::insight
