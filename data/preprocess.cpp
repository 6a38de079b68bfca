// The study's per-slice preprocessing (SEED_NOTES section 2), after
// howchihlee/COVID19_CT preprocessing/proc_lung_seg_crop.py:
//
//   windowed = clip((HU − lo) / (hi − lo), 0, 1)          lung window [−1350, 150]
//   tissue   = largest 8-connected component of windowed > 0.69 (≈ −315 HU)
//   outside  = 4-connected flood of the non-tissue pixels from the border
//   body     = fill_holes(closing(not outside))             the body mask
//   lung     = fill_holes(closing(not outside and not tissue, small bits removed))
//   pixels   = resize(crop(windowed · body, body bbox ± margin), size × size)
//
// Connectivity: the tissue is 8-connected (what skimage.measure.label does by
// default for the reference) and the background 4-connected, the dual pair:
// a diagonal step in the tissue wall then closes the wall for the flood, so
// the lungs behind it are not mistaken for outside air. Components are
// labelled with an explicit queue (no recursion, so no stack overflow on a
// 512² component). The table, separated from the back by air, is its own
// component and, being smaller than the body, is dropped with everything
// else that is not the largest one.
#include <algorithm>
#include <cmath>

#include "data/preprocess.h"
#include "engine/tensor.h"

namespace ctg::data {

namespace {

// Labels the components of m (nonzero pixels); returns the label image
// (0 = background, 1..) and each label's area in areas[label].
std::vector<int32_t> label_components(const uint8_t* m, int64_t w, int64_t h, bool eight,
                                      std::vector<int64_t>* areas) {
  std::vector<int32_t> labels((size_t)(w * h), 0);
  std::vector<int64_t> queue;
  areas->assign(1, 0);
  for (int64_t start = 0; start < w * h; ++start) {
    if (!m[start] || labels[start]) continue;
    const int32_t id = (int32_t)areas->size();
    labels[start] = id;
    queue.assign(1, start);
    for (size_t head = 0; head < queue.size(); ++head) {
      const int64_t p = queue[head], x = p % w, y = p / w;
      for (int dy = -1; dy <= 1; ++dy)
        for (int dx = -1; dx <= 1; ++dx) {
          if ((dx == 0 && dy == 0) || (!eight && dx != 0 && dy != 0)) continue;
          const int64_t nx = x + dx, ny = y + dy;
          if (nx < 0 || ny < 0 || nx >= w || ny >= h) continue;
          const int64_t q = ny * w + nx;
          if (m[q] && !labels[q]) labels[q] = id, queue.push_back(q);
        }
    }
    areas->push_back((int64_t)queue.size());
  }
  return labels;
}

// reached[i] = 1 for the zero pixels of m that a 4-connected flood from the
// image border reaches.
std::vector<uint8_t> flood_from_border(const std::vector<uint8_t>& m, int64_t w, int64_t h) {
  std::vector<uint8_t> reached(m.size(), 0);
  std::vector<int64_t> queue;
  auto seed = [&](int64_t p) {
    if (!m[p] && !reached[p]) reached[p] = 1, queue.push_back(p);
  };
  for (int64_t x = 0; x < w; ++x) seed(x), seed((h - 1) * w + x);
  for (int64_t y = 0; y < h; ++y) seed(y * w), seed(y * w + w - 1);
  for (size_t head = 0; head < queue.size(); ++head) {
    const int64_t p = queue[head], x = p % w, y = p / w;
    if (x > 0) seed(p - 1);
    if (x + 1 < w) seed(p + 1);
    if (y > 0) seed(p - w);
    if (y + 1 < h) seed(p + w);
  }
  return reached;
}

// Everything the border flood cannot reach is inside: holes become 1.
void fill_holes(std::vector<uint8_t>& m, int64_t w, int64_t h) {
  const std::vector<uint8_t> reached = flood_from_border(m, w, h);
  for (size_t i = 0; i < m.size(); ++i) m[i] = !reached[i];
}

// One 1-D pass of a binary dilation/erosion by the segment [lo, hi] along
// lines of n pixels `stride` apart, from window counts (prefix sums):
//   dilation D(i) = OR  of in[i − b] for b ∈ [lo, hi]  (window [i − hi, i − lo])
//   erosion  E(i) = AND of in[i + b] for b ∈ [lo, hi]  (window [i + lo, i + hi])
// Pixels past the ends count as 0. A square is the sum of a row and a
// column segment, so two passes make the 2-D operation.
void morph_1d(const uint8_t* in, uint8_t* out, int64_t n, int64_t stride, int64_t lo, int64_t hi, bool dilate,
              std::vector<int64_t>& prefix) {
  prefix.assign((size_t)n + 1, 0);
  for (int64_t i = 0; i < n; ++i) prefix[i + 1] = prefix[i] + (in[i * stride] != 0);
  const int64_t a = dilate ? -hi : lo, b = dilate ? -lo : hi, len = b - a + 1;
  for (int64_t i = 0; i < n; ++i) {
    const int64_t s = std::clamp<int64_t>(i + a, 0, n), e = std::clamp<int64_t>(i + b + 1, 0, n);
    const int64_t count = prefix[e] - prefix[s];
    out[i * stride] = dilate ? count > 0 : count == len;
  }
}

// Closing (dilation then erosion) by a side × side square, on a canvas padded
// by `side` so that the dilation is not cut off at the image border and the
// erosion then gives back exactly the pixels the closing keeps.
void close_square(std::vector<uint8_t>& m, int64_t w, int64_t h, int64_t side) {
  if (side <= 1) return;
  const int64_t pad = side, W = w + 2 * pad, H = h + 2 * pad;
  const int64_t lo = -(side / 2), hi = side - 1 - side / 2;
  std::vector<uint8_t> a((size_t)(W * H), 0), b(a.size());
  for (int64_t y = 0; y < h; ++y) std::copy_n(&m[y * w], w, &a[(y + pad) * W + pad]);
  std::vector<int64_t> prefix;
  for (bool dilate : {true, false}) {
    for (int64_t y = 0; y < H; ++y) morph_1d(&a[y * W], &b[y * W], W, 1, lo, hi, dilate, prefix);
    for (int64_t x = 0; x < W; ++x) morph_1d(&b[x], &a[x], H, W, lo, hi, dilate, prefix);
  }
  for (int64_t y = 0; y < h; ++y) std::copy_n(&a[(y + pad) * W + pad], w, &m[y * w]);
}

// Resampling weights of one axis, n → N, as a sparse matrix in CSR form.
struct Taps {
  std::vector<int64_t> start, index;
  std::vector<float> weight;
};
Taps make_taps(int64_t n, int64_t N) {
  Taps t;
  const double scale = (double)n / (double)N;
  for (int64_t o = 0; o < N; ++o) {
    t.start.push_back((int64_t)t.index.size());
    if (N >= n) {
      // Bilinear with pixel centres at i + 0.5 on both grids (align_corners =
      // False); equal sizes give the identity.
      const double s = std::clamp((o + 0.5) * scale - 0.5, 0.0, (double)(n - 1));
      const int64_t i0 = (int64_t)std::floor(s), i1 = std::min(i0 + 1, n - 1);
      const double f = s - (double)i0;
      t.index.push_back(i0), t.weight.push_back((float)(1 - f));
      t.index.push_back(i1), t.weight.push_back((float)f);
    } else {
      // Area averaging: output pixel o covers [o, o + 1) · scale input pixels;
      // each input pixel weighs by its overlap, so the weights sum to 1 and
      // no input pixel is skipped (no aliasing of the fine vessels).
      const double lo = o * scale, hi = (o + 1) * scale;
      for (int64_t i = (int64_t)std::floor(lo); i < (int64_t)std::ceil(hi) && i < n; ++i) {
        const double overlap = std::min(hi, (double)i + 1) - std::max(lo, (double)i);
        if (overlap > 0) t.index.push_back(i), t.weight.push_back((float)(overlap / scale));
      }
    }
  }
  t.start.push_back((int64_t)t.index.size());
  return t;
}

}  // namespace

float lung_window(float hu, const PreprocessOptions& opt) {
  const double v = ((double)hu - opt.hu_lo) / (opt.hu_hi - opt.hu_lo);
  return v > 0 ? (float)std::min(v, 1.0) : 0.f;  // NaN lands on 0
}

BodyMasks body_masks(const float* windowed, int64_t w, int64_t h, const PreprocessOptions& opt) {
  if (w < 1 || h < 1) throw Error("preprocess: empty slice (" + std::to_string(w) + "×" + std::to_string(h) + ")");
  BodyMasks M;
  M.width = w, M.height = h;
  const size_t n = (size_t)(w * h);
  M.tissue.assign(n, 0), M.body.assign(n, 0), M.lung.assign(n, 0);

  std::vector<uint8_t> above(n);
  for (size_t i = 0; i < n; ++i) above[i] = windowed[i] > opt.body_threshold;
  std::vector<int64_t> areas;
  const std::vector<int32_t> labels = label_components(above.data(), w, h, true, &areas);
  if (areas.size() < 2) return M;  // nothing above the threshold: no body
  const int32_t best = (int32_t)(std::max_element(areas.begin() + 1, areas.end()) - areas.begin());
  if ((double)areas[best] < opt.min_body_fraction * (double)n) return M;
  M.found = true;
  for (size_t i = 0; i < n; ++i) M.tissue[i] = labels[i] == best;

  // Not reached from the border = the tissue and everything it encloses.
  const std::vector<uint8_t> outside = flood_from_border(M.tissue, w, h);
  const int64_t side = std::max<int64_t>(1, std::lround((double)opt.closing * (double)std::max(w, h) / 512.0));
  for (size_t i = 0; i < n; ++i) {
    M.body[i] = !outside[i];
    M.lung[i] = !outside[i] && !M.tissue[i];
  }
  close_square(M.body, w, h, side);
  fill_holes(M.body, w, h);

  // The lung mask: drop specks, then close and fill it as the reference's
  // clean_seg does (vessels and consolidation inside the lung count as lung).
  const int64_t min_area = std::max<int64_t>(1, std::lround(opt.min_object_fraction * (double)n));
  std::vector<int64_t> lung_areas;
  const std::vector<int32_t> lung_labels = label_components(M.lung.data(), w, h, true, &lung_areas);
  for (size_t i = 0; i < n; ++i) M.lung[i] = M.lung[i] && lung_areas[lung_labels[i]] >= min_area;
  close_square(M.lung, w, h, side);
  fill_holes(M.lung, w, h);

  M.x0 = w, M.y0 = h;
  for (int64_t y = 0; y < h; ++y)
    for (int64_t x = 0; x < w; ++x) {
      const size_t i = (size_t)(y * w + x);
      M.lung_area += M.lung[i];
      if (!M.body[i]) continue;
      ++M.body_area;
      M.x0 = std::min(M.x0, x), M.x1 = std::max(M.x1, x + 1);
      M.y0 = std::min(M.y0, y), M.y1 = std::max(M.y1, y + 1);
    }
  return M;
}

std::vector<float> resize_image(const float* src, int64_t w, int64_t h, int64_t out_w, int64_t out_h) {
  if (w < 1 || h < 1 || out_w < 1 || out_h < 1) throw Error("resize_image: sizes must be positive");
  const Taps tx = make_taps(w, out_w), ty = make_taps(h, out_h);
  std::vector<float> rows((size_t)(h * out_w));  // horizontal pass: h × out_w
  for (int64_t y = 0; y < h; ++y) {
    const float* in = src + y * w;
    float* out = rows.data() + y * out_w;
    for (int64_t o = 0; o < out_w; ++o) {
      float acc = 0;
      for (int64_t t = tx.start[o]; t < tx.start[o + 1]; ++t) acc += tx.weight[t] * in[tx.index[t]];
      out[o] = acc;
    }
  }
  std::vector<float> dst((size_t)(out_h * out_w), 0.f);  // vertical pass: whole rows at once
  for (int64_t o = 0; o < out_h; ++o) {
    float* out = dst.data() + o * out_w;
    for (int64_t t = ty.start[o]; t < ty.start[o + 1]; ++t) {
      const float wgt = ty.weight[t];
      const float* in = rows.data() + ty.index[t] * out_w;
      for (int64_t x = 0; x < out_w; ++x) out[x] += wgt * in[x];
    }
  }
  return dst;
}

PreprocessedSlice preprocess_slice(const float* hu, int64_t w, int64_t h, const PreprocessOptions& opt) {
  if (opt.size < 1) throw Error("preprocess: size must be positive, not " + std::to_string(opt.size));
  if (!(opt.hu_hi > opt.hu_lo)) throw Error("preprocess: the window needs hu_hi > hu_lo");
  PreprocessedSlice out;
  std::vector<float> win((size_t)(w * h));
  for (size_t i = 0; i < win.size(); ++i) win[i] = lung_window(hu[i], opt);
  const BodyMasks M = body_masks(win.data(), w, h, opt);
  if (!M.found || M.body_area == 0) {
    out.pixels.assign((size_t)(opt.size * opt.size), 0.f);
    return out;
  }
  out.lung_fraction = (double)M.lung_area / (double)M.body_area;
  out.usable = out.lung_fraction >= opt.min_lung_fraction;
  const int64_t m = std::max<int64_t>(0, opt.margin);
  out.crop_x0 = std::max<int64_t>(0, M.x0 - m), out.crop_x1 = std::min(w, M.x1 + m);
  out.crop_y0 = std::max<int64_t>(0, M.y0 - m), out.crop_y1 = std::min(h, M.y1 + m);
  const int64_t cw = out.crop_x1 - out.crop_x0, ch = out.crop_y1 - out.crop_y0;
  std::vector<float> crop((size_t)(cw * ch));
  for (int64_t y = 0; y < ch; ++y)
    for (int64_t x = 0; x < cw; ++x) {
      const size_t i = (size_t)((y + out.crop_y0) * w + x + out.crop_x0);
      crop[(size_t)(y * cw + x)] = M.body[i] ? win[i] : 0.f;
    }
  // The crop is stretched to a square, as the reference's resize to 512×512 does.
  out.pixels = resize_image(crop.data(), cw, ch, opt.size, opt.size);
  return out;
}

}  // namespace ctg::data
