// Slika 9, the preprocessing view (see insight/preprocess_view.h). The
// steps are recomputed with data/preprocess.h's public functions in the
// order preprocess_slice applies them; nothing here changes what
// preprocessing computes.
#include "insight/preprocess_view.h"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <filesystem>

#include "data/nifti.h"
#include "engine/tensor.h"
#include "insight/image.h"
#include "insight/npy.h"

namespace ctg::insight {

namespace {

std::vector<float> as_float(const std::vector<uint8_t>& m) { return std::vector<float>(m.begin(), m.end()); }

std::string fmt_num(const char* f, double a, double b = 0) {
  char buf[96];
  std::snprintf(buf, sizeof buf, f, a, b);
  return buf;
}

}  // namespace

std::vector<PreprocessStep> preprocess_steps(const float* hu, int64_t w, int64_t h, const data::PreprocessOptions& opt) {
  if (w < 1 || h < 1) throw Error("preprocess view: empty slice");
  const size_t n = (size_t)(w * h);
  std::vector<PreprocessStep> s;
  s.push_back({"raw_hu", "1 raw (HU)", h, w, std::vector<float>(hu, hu + n)});
  std::vector<float> win(n);
  for (size_t i = 0; i < n; ++i) win[i] = data::lung_window(hu[i], opt);
  s.push_back({"lung_window", "2 lung window", h, w, win});
  std::vector<float> above(n);
  for (size_t i = 0; i < n; ++i) above[i] = win[i] > opt.body_threshold ? 1.f : 0.f;
  s.push_back({"threshold", std::string("3 threshold > ") + fmt_num("%.2f", opt.body_threshold), h, w, above});
  const data::BodyMasks M = data::body_masks(win.data(), w, h, opt);
  s.push_back({"largest_region", "4 largest region", h, w, as_float(M.tissue)});
  s.push_back({"body_mask", "5 closed, filled: the mask", h, w, as_float(M.body)});
  std::vector<float> masked(n);
  for (size_t i = 0; i < n; ++i) masked[i] = M.body[i] ? win[i] : 0.f;
  s.push_back({"masked", "6 mask applied", h, w, masked});
  const data::PreprocessedSlice out = data::preprocess_slice(hu, w, h, opt);
  std::string t = "7 cropped, rescaled " + std::to_string(opt.size) + "x" + std::to_string(opt.size);
  if (!M.found) t += " (no body found: blank)";
  s.push_back({"cropped", t, opt.size, opt.size, out.pixels});
  return s;
}

PreprocessFigure write_preprocess_figure(const std::string& nifti, int64_t z, int64_t size, const std::string& out_dir) {
  if (size < 1) throw Error("preprocess view: --size must be positive, not " + std::to_string(size));
  const data::OrientedVolume v = data::orient_axial(data::read_nifti(nifti));
  data::PreprocessOptions opt;
  opt.size = size;
  if (z >= v.depth || v.depth == 0)
    throw Error("--slice: slice " + std::to_string(z) + " is outside " + nifti + " (0.." + std::to_string(v.depth - 1) + ")");
  if (z < 0) {  // the central lung-bearing slice, as training takes it
    std::vector<data::PreprocessedSlice> slices;
    data::PreprocessOptions quick = opt;
    quick.size = 1;  // only usable/lung_fraction are needed here
    for (int64_t k = 0; k < v.depth; ++k) slices.push_back(data::preprocess_slice(v.slice(k), v.width, v.height, quick));
    z = data::choose_slices(slices).central;
    if (z < 0) throw Error(nifti + ": no slice shows enough lung to choose one; pass --slice Z");
  }
  const std::vector<PreprocessStep> steps = preprocess_steps(v.slice(z), v.width, v.height, opt);
  std::error_code ec;
  std::filesystem::create_directories(out_dir, ec);
  if (ec) throw Error("preprocess view: " + out_dir + ": cannot create the output folder: " + ec.message());
  PreprocessFigure fig;
  fig.z = z, fig.depth = v.depth;
  std::vector<Image> panels;
  for (const PreprocessStep& s : steps) {
    MapStyle st;
    st.cmap = ColorMap::grey;
    st.title = s.title;
    // Steps 2-7 share the windowed [0, 1] scale (masks are 0/1); the raw slice keeps its HU range.
    if (s.name != "raw_hu") st.have_range = true, st.lo = 0, st.hi = 1;
    // Every panel ~256 px across: small steps are enlarged cell by cell, a
    // larger slice is shown area-averaged to 256 px on its longer side (the
    // .npy keeps every pixel).
    const int64_t side = std::max(s.width, s.height);
    if (side > 256) {
      const int64_t dw = std::max<int64_t>(1, s.width * 256 / side), dh = std::max<int64_t>(1, s.height * 256 / side);
      const std::vector<float> shown = data::resize_image(s.values.data(), s.width, s.height, dw, dh);
      st.pixels_per_cell = 1;
      panels.push_back(render_map(shown.data(), (int)dh, (int)dw, st));
    } else {
      st.pixels_per_cell = std::max<int>(1, (int)std::lround(256.0 / (double)side));
      panels.push_back(render_map(s.values.data(), (int)s.height, (int)s.width, st));
    }
    const std::string file = "preprocess_" + s.name + ".npy";
    write_npy((std::filesystem::path(out_dir) / file).string(), s.values.data(), {s.height, s.width});
    fig.arrays.push_back({file, "[" + std::to_string(s.height) + ", " + std::to_string(s.width) + "]"});
  }
  const std::string name = std::filesystem::path(nifti).filename().string();
  const Image grid = compose_grid(panels, 4, "Preprocessing of " + name + ", slice z = " + std::to_string(z) + " of " +
                                                 std::to_string(v.depth));
  write_png((std::filesystem::path(out_dir) / "preprocess.png").string(), grid);
  fig.pictures.push_back(
      {"preprocess.png", "Slika 9: slice z = " + std::to_string(z) + " of " + name +
                             " through the preprocessing: raw HU; lung window [-1350, 150] HU to [0, 1]; threshold 0.69; the "
                             "largest connected region; closed and hole-filled, the body mask; the mask applied; cropped "
                             "to the body's box (+" + std::to_string(opt.margin) + " px) and rescaled to " +
                             std::to_string(size) + "x" + std::to_string(size) + ", the network's input."});
  return fig;
}

}  // namespace ctg::insight
