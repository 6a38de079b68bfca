// `ctgrad explain`, shared between apps/cmd_explain.cpp (flags, inputs,
// folders) and apps/cmd_explain_methods.cpp (each method's arrays, pictures
// and captions). The output layout is described in cmd_explain.cpp.
#pragma once
#include <memory>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "engine/module.h"
#include "insight/attribution.h"
#include "insight/image.h"

namespace ctg::apps::explain {

struct Args {
  std::string method = "all";
  std::string layer, layers, diff;
  int64_t channels = 9;
  int64_t occlusion_window = 16, occlusion_stride = 8;
  double baseline = 0;
  int64_t ig_steps = 50;
  std::string ig_method = "gausslegendre", target = "score", device = "cpu";
  int64_t batch = 0;  // 0: insight::auto_batch for the input's side
  // Inputs: a run (with --scan/--slice, --cases or --examples) or the parity hook.
  std::string run, scan, cases, examples;
  std::string net, weights, input;
  int64_t slice = -1;
  bool raw = false;
  std::string out;
};

// The methods of --method, resolved (all → those that apply to this net).
struct Methods {
  bool filters = false, features = false, headmap = false, saliency = false, occlusion = false, ig = false,
       preprocess = false;
  bool needs_input() const { return features || headmap || saliency || occlusion || ig || preprocess; }
  std::vector<std::string> names() const;
};

// One output folder: what was written there, for its explain.json.
struct Folder {
  std::string dir;
  nlohmann::json info = nlohmann::json::object();  // net, run, device, target, case, input, …
  std::vector<std::string> methods;
  nlohmann::json pictures = nlohmann::json::array(), arrays = nlohmann::json::array();
  void add_method(const std::string& m);
  // Writes DIR/<file> and lists it with its caption / shape.
  void picture(const std::string& file, const insight::Image& img, const std::string& caption);
  void array(const std::string& file, const std::vector<float>& values, const std::vector<int64_t>& shape);
  void write_json() const;  // DIR/explain.json, atomically
};

// The net being explained and how to run it.
struct Context {
  std::shared_ptr<Module> net;
  std::string net_name;
  Device device = Device::cpu;
  insight::AttributionOptions attr;  // target, device, batch (progress set per method)
  insight::Forward forward;
  std::vector<std::string> layers;  // resolved --layers
  bool resnet() const { return net_name == "resnet18"; }
};

// One slice to explain: the net's input [1,1,H,W] on the CPU and what it is.
struct Input {
  std::vector<float> pixels;
  int64_t height = 0, width = 0;
  std::string title;  // for the figure, e.g. "TP: study_0041 slice 17 (label 1, score 0.93)"
  // Where the slice came from, for the preprocessing view (empty: none).
  std::string volume;
  int64_t volume_z = -1;
  int64_t preprocess_size = 0;
};

// Filters of --layer (and --diff) into `f`.
void run_filters(const Args& a, Context& c, Folder& f);
// Every input-dependent method of `m` on `in` into `f`.
void run_input_methods(const Args& a, const Methods& m, Context& c, const Input& in, Folder& f);

}  // namespace ctg::apps::explain
