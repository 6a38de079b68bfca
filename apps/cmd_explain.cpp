// ctgrad explain: the study's section-5 pictures (SEED_NOTES section 8) —
// filters, feature maps, ResNet18's head map, and Captum's saliency,
// occlusion and integrated gradients — as .npy arrays and PNG pictures.
//
// Inputs, two ways:
//   --run RUN  the run's best checkpoint, its input size and eval's
//              preprocessing, with --scan FILE --slice Z (Z in the oriented
//              volume, as in scores_*.csv and predict --slices), --cases
//              tp,fp,fn[,tn] (test patients at the run's validation-chosen
//              threshold) or --examples mild,severe; the case slices are
//              read from the run's slice cache: the pixels eval scored.
//   --net NAME --weights F --input V --slice Z --raw   infer's convention:
//              slice Z of the file as [1,1,dim2,dim1], no preprocessing.
// Output (--out, default RUN/explain): one folder per input — OUT itself for
// --scan or --raw, OUT/<case>/ for cases and examples — each with its .npy
// files, PNGs and an explain.json listing them with captions (read by the
// report's Insight section); input-independent pictures (filters) in OUT.
#include <sys/stat.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <filesystem>

#include "apps/cmd_explain.h"
#include "apps/commands.h"
#include "data/cache.h"
#include "data/nifti.h"
#include "data/preprocess.h"
#include "engine/checkpoint.h"
#include "insight/activations.h"
#include "insight/cases.h"
#include "nets/nets.h"
#include "train/evaluate.h"
#include "train/run.h"

namespace ctg::apps::explain {
namespace {

std::vector<std::string> split_list(const std::string& s) {
  std::vector<std::string> out;
  size_t a = 0;
  while (a <= s.size()) {
    size_t b = s.find(',', a);
    if (b == std::string::npos) b = s.size();
    if (b > a) out.push_back(s.substr(a, b - a));
    a = b + 1;
  }
  return out;
}

Methods parse_methods(const std::string& s, bool resnet, bool has_conv) {
  Methods m;
  for (const std::string& k : split_list(s)) {
    if (k == "all") {  // all: the methods that apply to this net
      m.saliency = m.occlusion = m.ig = m.preprocess = true;
      m.filters = m.filters || has_conv;
      m.features = m.features || has_conv;
      m.headmap = m.headmap || resnet;
    } else if (k == "filters") m.filters = true;
    else if (k == "features") m.features = true;
    else if (k == "headmap") m.headmap = true;
    else if (k == "saliency") m.saliency = true;
    else if (k == "occlusion") m.occlusion = true;
    else if (k == "ig") m.ig = true;
    else if (k == "preprocess") m.preprocess = true;
    else
      throw Error("--method: '" + k + "' is not one of all, filters, features, headmap, saliency, occlusion, ig, preprocess");
  }
  if (m.names().empty()) throw Error("--method: give a method (or all)");
  return m;
}

bool is_number(const std::string& s) {
  return !s.empty() && s.size() < 10 && std::all_of(s.begin(), s.end(), [](char ch) { return ch >= '0' && ch <= '9'; });
}

// --layers checked against the net before any work.
std::vector<std::string> resolve_layers(const Args& a, const Context& c) {
  const auto convs = insight::conv_layer_names(*c.net);
  std::vector<std::string> layers = split_list(a.layers);
  if (layers.empty()) layers = c.resnet() ? std::vector<std::string>{"1", "10", "20"} : convs;  // the study's choice
  const auto named = insight::named_modules(*c.net);
  for (const std::string& l : layers) {
    if (is_number(l)) {
      const long k = std::atol(l.c_str());
      if (k < 1 || k > (long)convs.size())
        throw Error("--layers: " + l + ": " + c.net_name + " has " + std::to_string(convs.size()) +
                    " convolutions, numbered 1.." + std::to_string(convs.size()) + " in execution order");
      continue;
    }
    bool known = false;
    for (const auto& [n, mod] : named) known = known || n == l;
    if (!known) {
      std::string list;
      for (const auto& [n, mod] : named) list += (list.empty() ? "" : ", ") + n;
      throw Error("--layers: unknown layer '" + l + "'; " + c.net_name + "'s layers are: " + list +
                  " (or a number k: the k-th convolution)");
    }
  }
  return layers;
}

std::string absolute(const std::string& p) { return std::filesystem::absolute(p).lexically_normal().string(); }

// The parity hook: slice z of the file in file order, no preprocessing.
Input raw_input(const Args& a, const data::NiftiVolume& v) {
  if (a.slice < 0 || a.slice >= v.nz)
    throw Error("--slice: " + std::to_string(a.slice) + " is outside " + a.input + " (slices 0.." +
                std::to_string(v.nz - 1) + ")");
  Input in;
  in.height = v.ny, in.width = v.nx;
  const int64_t plane = v.nx * v.ny;
  in.pixels.assign(v.voxels.begin() + a.slice * plane, v.voxels.begin() + (a.slice + 1) * plane);
  in.title = std::filesystem::path(a.input).filename().string() + " slice " + std::to_string(a.slice) + " (raw)";
  return in;
}

// --scan FILE --slice Z with a run: eval's preprocessing at the run's size,
// and the cache's uint8 rounding when the run's cache stores uint8.
Input scan_input(const Args& a, const train::LoadedRun& r, nlohmann::json& info) {
  const data::OrientedVolume v = data::orient_axial(data::read_nifti(a.scan));
  if (a.slice < 0 || a.slice >= v.depth)
    throw Error("--slice: " + std::to_string(a.slice) + " is outside " + a.scan + " (slices 0.." +
                std::to_string(v.depth - 1) + " of the oriented volume)");
  data::PreprocessOptions pre;
  pre.size = r.options.size;
  data::PreprocessedSlice s = data::preprocess_slice(v.slice(a.slice), v.width, v.height, pre);
  if ((int64_t)s.pixels.size() != pre.size * pre.size)
    throw Error("--slice: slice " + std::to_string(a.slice) + " of " + a.scan + " shows no body to crop to");
  bool u8 = false;
  try {
    u8 = data::Cache::open(r.config.value("cache", std::string()))->dtype() == data::SliceDType::u8;
  } catch (const Error&) {  // the run's cache is gone: float32, as prep's default
  }
  if (u8)
    for (float& p : s.pixels) p = (float)std::lround(std::clamp(p, 0.0f, 1.0f) * 255.0f) / 255.0f;
  Input in;
  in.height = in.width = pre.size;
  in.pixels = std::move(s.pixels);
  in.title = std::filesystem::path(a.scan).filename().string() + " slice " + std::to_string(a.slice);
  in.volume = a.scan, in.volume_z = a.slice, in.preprocess_size = pre.size;
  info["input"] = {{"file", absolute(a.scan)}, {"slice", a.slice}, {"patient", nullptr}, {"label", nullptr},
                   {"score", nullptr}, {"preprocessing", "eval's (lung window, body mask, crop, resize to " +
                                                            std::to_string(pre.size) + ")" + (u8 ? ", uint8" : "")},
                   {"usable", s.usable}, {"lung_fraction", s.lung_fraction}};
  return in;
}

void run_explain(const Args& a) {
  // ---- every check before any work ----
  const bool hook = !a.net.empty() || !a.weights.empty() || !a.input.empty();
  if (hook && !a.run.empty()) throw Error("--run: give either --run RUN or --net/--weights/--input, not both");
  if (!hook && a.run.empty()) throw Error("explain: give --run RUN, or --net NAME --weights F (with --input V --slice Z --raw)");
  if (hook && (a.net.empty() || a.weights.empty())) throw Error("--net and --weights: the parity hook needs both");
  if (hook && !a.input.empty() && !a.raw)
    throw Error("--input: add --raw (infer's convention: the file's voxels, no preprocessing), or use --run RUN --scan FILE");
  if (hook && (!a.scan.empty() || !a.cases.empty() || !a.examples.empty()))
    throw Error("--scan/--cases/--examples: need --run RUN (its checkpoint, size and preprocessing)");
  if (!a.input.empty() || !a.scan.empty()) {
    if (a.slice < 0) throw Error("--slice: give the slice index Z (from 0) for --" + std::string(a.input.empty() ? "scan" : "input"));
  }
  if (!a.scan.empty() && (!a.cases.empty() || !a.examples.empty()))
    throw Error("--scan: give either --scan FILE --slice Z or --cases/--examples, not both");
  const insight::Target target = insight::parse_target(a.target);
  insight::ig_rule(insight::parse_ig_method(a.ig_method), a.ig_steps);  // validates --ig-steps/--ig-method
  if (a.channels < 1) throw Error("--channels: must be at least 1, got " + std::to_string(a.channels));
  if (a.batch < 0) throw Error("--batch: must be at least 1 (or 0: automatic), got " + std::to_string(a.batch));
  const std::vector<std::string> case_kinds = a.cases.empty() ? std::vector<std::string>{} : insight::parse_case_list(a.cases);
  const std::vector<std::string> example_kinds =
      a.examples.empty() ? std::vector<std::string>{} : insight::parse_example_list(a.examples);
  if (!a.run.empty()) {
    struct stat st;
    if (::stat(a.run.c_str(), &st) != 0 || !S_ISDIR(st.st_mode)) throw Error("--run: " + a.run + ": no such run folder");
    const std::string test = train::run_file(a.run, train::scores_name("test", false));
    if (!case_kinds.empty() && ::stat(test.c_str(), &st) != 0)
      throw Error("--cases: " + test + " not found; run `ctgrad eval --run " + a.run + " --split test` first");
  }
  Context c;
  c.device = parse_device(a.device);
  train::LoadedRun run;
  data::NiftiVolume raw;
  if (hook) {
    c.net_name = a.net;
    nets::NetOptions opt;
    if (!a.input.empty()) {
      raw = data::read_nifti(a.input);
      // As infer: Dense/CNN sizes follow the slice side; ResNet18 takes any.
      if (a.net != "resnet18" && raw.nx != raw.ny)
        throw Error(a.input + ": slices are " + std::to_string(raw.nx) + "x" + std::to_string(raw.ny) + "; " + a.net +
                    " needs square slices");
      opt.size = a.net == "resnet18" ? std::max<int64_t>(std::max(raw.nx, raw.ny), 32) : raw.nx;
    }
    c.net = nets::make_net(a.net, opt);
    try {
      load_module(a.weights, *c.net);
    } catch (const Error& e) {
      throw Error(std::string(e.what()) + " (weights of another net, or of a net built for another size?)");
    }
    c.net->eval();
    c.net->to(c.device);
  } else {
    run = train::load_run(a.run, c.device);  // best.safetensors, eval mode, on the device
    c.net = run.net;
    c.net_name = run.options.net;
  }
  const bool has_conv = !insight::conv_layer_names(*c.net).empty();
  const Methods m = parse_methods(a.method, c.resnet(), has_conv);
  if (m.filters && !has_conv) throw Error("--method filters: " + c.net_name + " has no convolution layer");
  if (m.features && !has_conv && a.layers.empty())
    throw Error("--method features: " + c.net_name + " has no convolution layer; name modules with --layers");
  if (m.headmap && !c.resnet())
    throw Error("--method headmap: " + c.net_name + " has no head map (only resnet18 ends in a 1x1 conv map and a global max pool)");
  const auto asked = split_list(a.method);
  if (hook && std::find(asked.begin(), asked.end(), "preprocess") != asked.end())
    throw Error("--method preprocess: needs a volume to preprocess: --run RUN with --scan FILE, --cases or --examples");
  if (!a.diff.empty() && !m.filters) throw Error("--diff: only with --method filters");
  if (m.filters && !a.layer.empty()) insight::conv_filters(*c.net, a.layer);  // unknown layer → the list
  if (m.features) c.layers = resolve_layers(a, c);
  const bool have_input = !a.input.empty() || !a.scan.empty() || !case_kinds.empty() || !example_kinds.empty();
  if (m.needs_input() && !have_input && a.method != "all")
    throw Error("--method " + a.method + ": needs an input slice: --scan FILE --slice Z, --cases or --examples with --run, "
                "or --input V --slice Z --raw");
  const int64_t side = hook ? (a.input.empty() ? 0 : std::max(raw.nx, raw.ny)) : run.options.size;
  if (m.occlusion && have_input) {  // the window must fit the slice
    insight::occlusion_starts(hook ? raw.ny : side, a.occlusion_window, a.occlusion_stride);
    insight::occlusion_starts(hook ? raw.nx : side, a.occlusion_window, a.occlusion_stride);
  }
  const std::string out = a.out.empty() ? (hook ? std::string() : a.run + "/explain") : a.out;
  if (out.empty()) throw Error("--out: give the output folder");
  std::filesystem::create_directories(out);

  c.attr.target = target;
  c.attr.device = c.device;
  c.attr.batch = a.batch > 0 ? a.batch : insight::auto_batch(side, side);
  auto net = c.net;
  c.forward = [net](const Tensor& x) { return (*net)(x); };
  insight::InputGradientsOnly input_only(*c.net);

  nlohmann::json base = {{"net", c.net_name}, {"run", hook ? nlohmann::json() : nlohmann::json(absolute(a.run))},
                         {"weights", hook ? nlohmann::json(absolute(a.weights)) : nlohmann::json()},
                         {"device", device_name(c.device)}, {"target", a.target}, {"case", nullptr}};
  Folder top;
  top.dir = out;
  top.info = base;
  top.info["input"] = nullptr;
  if (m.filters) run_filters(a, c, top);

  Methods per_input = m;
  per_input.filters = false;
  if (!per_input.needs_input() || !have_input) {
    top.write_json();
    return;
  }
  if (!a.input.empty() || !a.scan.empty()) {  // one input: everything in OUT
    Input in;
    if (!a.input.empty()) {
      in = raw_input(a, raw);
      top.info["input"] = {{"file", absolute(a.input)}, {"slice", a.slice}, {"patient", nullptr}, {"label", nullptr},
                           {"score", nullptr}, {"preprocessing", "none (--raw: the file's voxels in file order)"}};
    } else {
      in = scan_input(a, run, top.info);
    }
    run_input_methods(a, per_input, c, in, top);
    top.write_json();
    return;
  }
  // Cases and examples: one folder each under OUT.
  const std::string cache = run.config.value("cache", std::string());
  std::vector<insight::ScoredPatient> scored;
  const std::string test = train::run_file(a.run, train::scores_name("test", false));
  struct stat st;
  if (::stat(test.c_str(), &st) == 0) scored = insight::read_patient_scores(test);
  std::vector<insight::PickedCase> picks;
  double threshold = 0;
  if (!case_kinds.empty()) {
    threshold = insight::validation_threshold(a.run);
    picks = insight::pick_cases(scored, threshold, case_kinds);
    top.info["threshold"] = threshold;
  }
  for (auto& e : insight::pick_examples(cache, example_kinds, scored)) picks.push_back(e);
  top.info["cases"] = nlohmann::json::array();
  for (const auto& p : picks) {
    if (!p.found) {
      std::printf("explain: %s: %s; skipped\n", p.kind.c_str(), p.missing.c_str());
      top.info["cases"].push_back({{"case", p.kind}, {"found", false}, {"why", p.missing}});
      continue;
    }
    const insight::CachedSlice s = insight::cached_test_slice(cache, p.patient, p.z);
    Input in;
    in.height = in.width = s.side;
    in.pixels = s.pixels;
    char score[64] = "";
    if (p.have_score) std::snprintf(score, sizeof score, ", score %.3g", p.score);
    std::string kind = p.kind;
    for (char& ch : kind) ch = (char)std::toupper((unsigned char)ch);
    in.title = kind + ": " + p.patient + " slice " + std::to_string(p.z) + " (label " + std::to_string(p.label) + score + ")";
    in.volume = s.source, in.volume_z = p.z, in.preprocess_size = s.side;
    Folder f;
    f.dir = out + "/" + p.kind;
    std::filesystem::create_directories(f.dir);
    f.info = base;
    f.info["case"] = p.kind;
    f.info["input"] = {{"file", absolute(s.source)}, {"slice", p.z}, {"patient", p.patient}, {"label", p.label},
                       {"grade", s.grade}, {"score", p.have_score ? nlohmann::json(p.score) : nlohmann::json()},
                       {"slice_score", p.have_slice_score ? nlohmann::json(p.slice_score) : nlohmann::json()},
                       {"slice_rule", p.slice_rule}, {"cache", absolute(cache)},
                       {"preprocessing", "eval's: the slice as stored in the run's cache"}};
    if (!case_kinds.empty()) f.info["threshold"] = threshold;
    run_input_methods(a, per_input, c, in, f);
    f.write_json();
    top.info["cases"].push_back({{"case", p.kind}, {"found", true}, {"patient", p.patient}, {"dir", p.kind}});
  }
  top.write_json();
}

}  // namespace

static Registrar reg([](CLI::App& app) {
  auto* cmd = app.add_subcommand(
      "explain",
      "What a net learned and why it decides (the study's section 5): conv filters, feature maps, ResNet18's head "
      "map, and Captum's saliency, occlusion and integrated gradients, as .npy arrays and PNG pictures with an "
      "explain.json. Inputs: --run RUN with --scan FILE --slice Z, --cases tp,fp,fn[,tn] or --examples mild,severe "
      "(eval's preprocessing and size); or --net NAME --weights F --input V --slice Z --raw (infer's convention).");
  auto a = std::make_shared<Args>();
  cmd->add_option("--method", a->method, "comma list of filters, features, headmap, saliency, occlusion, ig, "
                                         "preprocess, or all (every method that applies)")->capture_default_str();
  cmd->add_option("--layer", a->layer, "conv layer for filters (state-dict name: conv1, layer1.0.conv1; default: the first conv)");
  cmd->add_option("--layers", a->layers, "layers for features: module names (conv1, bn2, layer2.0.conv1) or numbers "
                                         "k = the k-th convolution in execution order (default: resnet18 1,10,20; others every conv)");
  cmd->add_option("--channels", a->channels, "feature-map channels drawn (all are saved)")->capture_default_str();
  cmd->add_option("--diff", a->diff, "filters: draw this checkpoint minus OTHER.safetensors (same layer)");
  cmd->add_option("--occlusion-window", a->occlusion_window, "occlusion window side W")->capture_default_str();
  cmd->add_option("--occlusion-stride", a->occlusion_stride, "occlusion stride S")->capture_default_str();
  cmd->add_option("--baseline", a->baseline, "baseline value B for occlusion and IG (0: black)")->capture_default_str();
  cmd->add_option("--ig-steps", a->ig_steps, "integrated-gradients steps")->capture_default_str();
  cmd->add_option("--ig-method", a->ig_method, "gausslegendre|riemann_left|riemann_right|riemann_middle|riemann_trapezoid")
      ->capture_default_str();
  cmd->add_option("--target", a->target, "what is attributed: score (sigmoid) or logit")->capture_default_str();
  cmd->add_option("--device", a->device, "cpu|cuda|auto")->capture_default_str();
  cmd->add_option("--batch", a->batch, "images per forward/backward pass (0: by input size)")->capture_default_str();
  cmd->add_option("--run", a->run, "a run folder: its best checkpoint, size and preprocessing");
  cmd->add_option("--scan", a->scan, "with --run: a volume (.nii/.nii.gz), preprocessed as eval does");
  cmd->add_option("--slice", a->slice, "slice index Z (from 0): of the oriented volume with --scan, in file order with --raw");
  cmd->add_option("--cases", a->cases, "with --run: tp,fp,fn[,tn] test patients at the validation-chosen threshold");
  cmd->add_option("--examples", a->examples, "with --run: mild,severe (one test patient of each class)");
  cmd->add_option("--net", a->net, "parity hook: dense20|dense50|dense100|dense100x100|cnn1|cnn2|resnet18");
  cmd->add_option("--weights", a->weights, "parity hook: the checkpoint (safetensors)");
  cmd->add_option("--input", a->input, "parity hook: a volume (.nii/.nii.gz), read as infer does");
  cmd->add_flag("--raw", a->raw, "parity hook: no preprocessing (slice Z is [1,1,dim2,dim1] of the scaled voxels)");
  cmd->add_option("--out", a->out, "output folder (default RUN/explain)");
  cmd->callback([a]() { run_explain(*a); });
});

}  // namespace ctg::apps::explain
