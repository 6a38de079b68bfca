// `ctgrad explain`: each method's arrays (.npy), pictures (.png) and their
// captions (apps/cmd_explain.h). Signed maps (filters, occlusion, IG) use the
// diverging map centred on 0, the others a perceptual one, the slice grey.
#include <algorithm>
#include <cmath>
#include <cstdio>
#include <filesystem>

#include "apps/cmd_explain.h"
#include "apps/progress.h"
#include "base/atomic_file.h"
#include "insight/activations.h"
#include "insight/npy.h"
#include "insight/preprocess_view.h"

namespace ctg::apps::explain {

std::vector<std::string> Methods::names() const {
  std::vector<std::string> n;
  if (filters) n.push_back("filters");
  if (features) n.push_back("features");
  if (headmap) n.push_back("headmap");
  if (saliency) n.push_back("saliency");
  if (occlusion) n.push_back("occlusion");
  if (ig) n.push_back("ig");
  if (preprocess) n.push_back("preprocess");
  return n;
}

void Folder::add_method(const std::string& m) {
  for (const auto& x : methods)
    if (x == m) return;
  methods.push_back(m);
}

void Folder::picture(const std::string& file, const insight::Image& img, const std::string& caption) {
  std::filesystem::create_directories(std::filesystem::path(dir + "/" + file).parent_path());
  insight::write_png(dir + "/" + file, img);
  pictures.push_back({{"file", file}, {"caption", caption}});
}

void Folder::array(const std::string& file, const std::vector<float>& values, const std::vector<int64_t>& shape) {
  std::filesystem::create_directories(std::filesystem::path(dir + "/" + file).parent_path());
  insight::write_npy(dir + "/" + file, values.data(), shape);
  arrays.push_back({{"file", file}, {"shape", shape}});
}

void Folder::write_json() const {
  nlohmann::json j = info;
  j["methods"] = methods;
  j["pictures"] = pictures;
  j["arrays"] = arrays;
  write_file_atomic(dir + "/explain.json", j.dump(2) + "\n");
}

namespace {

std::vector<float> values_of(const Tensor& t) {
  const Tensor c = t.to(Device::cpu).to(DType::f32);
  return std::vector<float>(c.data<float>(), c.data<float>() + c.numel());
}

std::string fmt(double v, const char* f = "%.4g") {
  char buf[64];
  std::snprintf(buf, sizeof buf, f, v);
  return buf;
}

insight::Image map(const std::vector<float>& v, int64_t h, int64_t w, insight::ColorMap cmap, const std::string& title,
                   bool symmetric = false, bool log_scale = false) {
  insight::MapStyle s;
  s.cmap = cmap;
  s.title = title;
  s.symmetric = symmetric;
  s.log_scale = log_scale;
  return insight::render_map(v.data(), (int)h, (int)w, s);
}

// A bar for a long method, on stderr (a line every ~10 % when not a terminal).
std::function<void(int64_t, int64_t)> progress_for(const std::string& what, int64_t total, int64_t batch) {
  if (total <= batch) return {};
  auto p = std::make_shared<Progress>("explain " + what, "images");
  return [p](int64_t done, int64_t all) { (*p)(done, all); };
}

// "d score/d pixel" or "d logit/d pixel".
std::string tname(const Context& c) { return insight::target_name(c.attr.target); }

}  // namespace

void run_filters(const Args& a, Context& c, Folder& f) {
  const std::string layer = a.layer.empty() ? insight::conv_layer_names(*c.net).front() : a.layer;
  Tensor w = insight::conv_filters(*c.net, layer);
  const bool diff = !a.diff.empty();
  if (diff) w = insight::filter_difference(w, a.diff, layer);
  f.add_method("filters");
  f.array("filters.npy", values_of(w), w.shape());
  const insight::Mosaic m = insight::filter_mosaic(w);
  insight::MapStyle s;
  s.cmap = insight::ColorMap::diverging;
  s.symmetric = true;
  s.pixels_per_cell = std::max<int>(1, (int)(640 / std::max<int64_t>(m.width, m.height)));
  const std::string what = std::to_string(w.size(0)) + " filters " + std::to_string(w.size(2)) + "x" +
                           std::to_string(w.size(3)) + (w.size(1) > 1 ? " x " + std::to_string(w.size(1)) + " inputs" : "");
  s.title = c.net_name + " " + layer + (diff ? ": this checkpoint minus " +
                                                   std::filesystem::path(a.diff).filename().string()
                                             : ": " + what);
  f.picture("filters.png", insight::render_map(m.values.data(), (int)m.height, (int)m.width, s),
            (diff ? "Difference of the " + layer + " filters, this checkpoint minus " + a.diff + " (" + what + ")"
                  : "The " + layer + " filters of " + c.net_name + " (" + what + ")") +
                (w.size(1) > 1 ? "; row o, column i is the weight from input channel i to output channel o" : "") +
                ", on one symmetric colour scale centred on 0");
  f.info["filters"] = {{"layer", layer}, {"shape", w.shape()}, {"diff", diff ? nlohmann::json(a.diff) : nlohmann::json()}};
  std::printf("filters: %s %s%s -> %s/filters.npy\n", layer.c_str(), shape_str(w.shape()).c_str(),
              diff ? " (difference)" : "", f.dir.c_str());
}

void run_input_methods(const Args& a, const Methods& m, Context& c, const Input& in, Folder& f) {
  const int64_t H = in.height, W = in.width;
  Tensor x = Tensor::empty({1, 1, H, W});
  std::copy(in.pixels.begin(), in.pixels.end(), x.data<float>());
  std::vector<insight::Image> figure;  // slice | saliency | log saliency | occlusion | IG
  const insight::Image slice = map(in.pixels, H, W, insight::ColorMap::grey, in.title);
  f.array("input.npy", in.pixels, {H, W});
  f.picture("slice.png", slice, "The input slice as the net sees it: " + in.title);
  figure.push_back(slice);

  if (m.preprocess && !in.volume.empty() && !std::filesystem::exists(in.volume)) {
    std::printf("explain: preprocess: %s (the slice's volume) not found; no preprocessing view\n", in.volume.c_str());
  } else if (m.preprocess && !in.volume.empty()) {
    f.add_method("preprocess");
    // Slika 9: the slice's volume through each preprocessing step (insight/preprocess_view.h).
    const insight::PreprocessFigure pf = insight::write_preprocess_figure(in.volume, in.volume_z, in.preprocess_size, f.dir);
    for (const auto& p : pf.pictures) f.pictures.push_back({{"file", p.file}, {"caption", p.caption}});
    for (const auto& p : pf.arrays)
      f.arrays.push_back({{"file", p.file}, {"shape", insight::read_npy(f.dir + "/" + p.file).shape}});
  }
  if (m.features) {
    f.add_method("features");
    for (const auto& [layer, t] : insight::feature_maps(*c.net, x.to(c.device), c.layers)) {
      const int64_t C = t.size(0), h = t.size(1), w = t.size(2), shown = std::min<int64_t>(C, a.channels);
      const std::vector<float> v = values_of(t);
      f.array("features/" + layer + ".npy", v, {C, h, w});
      std::vector<insight::Image> panels;
      for (int64_t ch = 0; ch < shown; ++ch) {
        const std::vector<float> one(v.begin() + ch * h * w, v.begin() + (ch + 1) * h * w);
        panels.push_back(map(one, h, w, insight::ColorMap::viridis, "channel " + std::to_string(ch)));
      }
      const std::string title = c.net_name + " layer " + layer + ": first " + std::to_string(shown) + " of " +
                                std::to_string(C) + " channels (" + std::to_string(h) + "x" + std::to_string(w) + ")";
      f.picture("features_" + layer + ".png", insight::compose_grid(panels, std::min<int>(3, (int)shown), title),
                "Feature maps of layer " + layer + " (" + (std::all_of(layer.begin(), layer.end(), ::isdigit)
                                                               ? "convolution number " + layer + " in execution order"
                                                               : "module " + layer) +
                    "): the first " + std::to_string(shown) + " of its " + std::to_string(C) +
                    " channels, each on its own scale");
    }
  }
  if (m.headmap) {
    f.add_method("headmap");
    const Tensor hm = insight::head_map(*c.net, x.to(c.device), c.net_name);
    const int64_t h = hm.size(0), w = hm.size(1);
    const std::vector<float> raw = values_of(hm);
    std::vector<float> prob(raw.size());
    float top = raw[0];
    for (size_t i = 0; i < raw.size(); ++i) prob[i] = 1.0f / (1.0f + std::exp(-raw[i])), top = std::max(top, raw[i]);
    f.array("headmap.npy", raw, {h, w});
    insight::MapStyle s01;
    s01.cmap = insight::ColorMap::viridis;
    s01.have_range = true;
    s01.lo = 0, s01.hi = 1;
    s01.title = "sigmoid (0-1 scale)";
    const insight::Image grid = insight::compose_grid(
        {map(raw, h, w, insight::ColorMap::viridis, "raw logits"), insight::render_map(prob.data(), (int)h, (int)w, s01)},
        2, "Head map " + std::to_string(h) + "x" + std::to_string(w) + ", max = logit = " + fmt(top));
    f.picture("headmap.png", grid,
              "ResNet18's 1×1-conv head map before the global max pool (" + std::to_string(h) + "×" +
                  std::to_string(w) + "): raw logits on their own scale, and after the sigmoid on a 0–1 scale "
                  "shared by every slice shown; its maximum " + fmt(top) + " is the net's logit");
    f.info["headmap_max"] = top;
  }
  if (m.saliency) {
    f.add_method("saliency");
    insight::AttributionOptions o = c.attr;
    o.progress = nullptr;
    const std::vector<float> s = values_of(insight::saliency(c.forward, x, o));
    f.array("saliency.npy", s, {H, W});
    const insight::Image lin = map(s, H, W, insight::ColorMap::inferno, "saliency |d " + tname(c) + "/dx|");
    const insight::Image lg = map(s, H, W, insight::ColorMap::inferno, "saliency, log10 scale", false, true);
    f.picture("saliency.png", lin, "Saliency |∂" + tname(c) + "/∂pixel| (Captum Saliency, abs=True)");
    f.picture("saliency_log.png", lg, "Saliency |∂" + tname(c) + "/∂pixel| on a log10 scale");
    figure.push_back(lin);
    figure.push_back(lg);
  }
  if (m.occlusion) {
    f.add_method("occlusion");
    insight::OcclusionOptions occ{a.occlusion_window, a.occlusion_stride, a.baseline};
    insight::AttributionOptions o = c.attr;
    const int64_t windows = (int64_t)(insight::occlusion_starts(H, occ.window, occ.stride).size() *
                                      insight::occlusion_starts(W, occ.window, occ.stride).size());
    o.progress = progress_for("occlusion", windows, o.batch);
    const std::vector<float> v = values_of(insight::occlusion(c.forward, x, occ, o));
    f.array("occlusion.npy", v, {H, W});
    const std::string shape = std::to_string(occ.window) + "x" + std::to_string(occ.window);
    const insight::Image img = map(v, H, W, insight::ColorMap::diverging,
                                   "occlusion " + shape + " stride " + std::to_string(occ.stride), true);
    f.picture("occlusion.png", img,
              "Occlusion (Captum Occlusion, window " + shape + ", stride " + std::to_string(occ.stride) +
                  ", baseline " + fmt(occ.baseline) + ", " + std::to_string(windows) + " windows): per pixel the mean of " +
                  tname(c) + "(x) − " + tname(c) + "(x with a covering window set to the baseline); red: the " +
                  tname(c) + " drops when it is hidden");
    f.info["occlusion"] = {{"window", occ.window}, {"stride", occ.stride}, {"baseline", occ.baseline},
                           {"windows", windows}};
    figure.push_back(img);
  }
  if (m.ig) {
    f.add_method("ig");
    insight::AttributionOptions o = c.attr;
    const insight::IgMethod im = insight::parse_ig_method(a.ig_method);
    o.progress = progress_for("ig", a.ig_steps, o.batch);
    const insight::IgResult r = insight::integrated_gradients(c.forward, x, a.baseline, a.ig_steps, im, o);
    const std::vector<float> v = values_of(r.attribution);
    f.array("ig.npy", v, {H, W});
    const insight::Image img = map(v, H, W, insight::ColorMap::diverging, "integrated gradients, delta " + fmt(r.delta, "%.2e"),
                                   true);
    f.picture("ig.png", img,
              "Integrated gradients (Captum IntegratedGradients, " + std::string(im == insight::IgMethod::gausslegendre ? "Gauss–Legendre" : a.ig_method) +
                  ", " + std::to_string(a.ig_steps) + " steps, baseline " + fmt(a.baseline) +
                  "): (x − x′)·∫ ∂" + tname(c) + "/∂x along the straight path; Σ attribution = " +
                  fmt(r.delta + (r.target_input - r.target_baseline)) + " vs " + tname(c) + "(x) − " + tname(c) +
                  "(x′) = " + fmt(r.target_input - r.target_baseline) + " (convergence delta " + fmt(r.delta, "%.3g") + ")");
    f.info["ig_delta"] = r.delta;
    f.info["ig"] = {{"steps", a.ig_steps}, {"method", a.ig_method}, {"baseline", a.baseline},
                    {"target_input", r.target_input}, {"target_baseline", r.target_baseline}};
    std::printf("ig: %s(x) = %.6g, %s(baseline) = %.6g, convergence delta = %.3g\n", tname(c).c_str(),
                r.target_input, tname(c).c_str(), r.target_baseline, r.delta);
    figure.push_back(img);
  }
  if (figure.size() > 1) {
    f.picture("figure.png", insight::compose_grid(figure, (int)figure.size(), in.title),
              "The slice and its attribution maps side by side (" + in.title + ")");
  }
  std::printf("explain: %s -> %s\n", in.title.c_str(), f.dir.c_str());
}

}  // namespace ctg::apps::explain
