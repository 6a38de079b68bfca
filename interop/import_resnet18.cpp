// Mapping a torchvision resnet18 state dict onto ctgrad's ResNet18 (the
// rules: import_resnet18.h). Everything is checked before anything is copied.
#include "interop/import_resnet18.h"

#include <map>

namespace ctg::interop {
namespace {

bool ends_with(const std::string& s, const std::string& t) {
  return s.size() >= t.size() && s.compare(s.size() - t.size(), t.size(), t) == 0;
}

}  // namespace

Conv1Mode parse_conv1_mode(const std::string& s) {
  if (s == "sum") return Conv1Mode::sum;
  if (s == "fresh") return Conv1Mode::fresh;
  throw Error("--conv1: '" + s + "' is not sum or fresh");
}

const char* conv1_mode_name(Conv1Mode m) { return m == Conv1Mode::sum ? "sum" : "fresh"; }

Tensor sum_input_channels(const Tensor& w) {
  if (w.dim() != 4) throw Error("sum_input_channels: expected [O,C,k,k], got " + shape_str(w.shape()));
  const int64_t O = w.size(0), C = w.size(1), K = w.size(2) * w.size(3);
  const Tensor src = w.to(DType::f32);
  Tensor out = Tensor::empty({O, 1, w.size(2), w.size(3)});
  const float* s = src.data<float>();
  float* d = out.data<float>();
  for (int64_t o = 0; o < O; ++o)
    for (int64_t k = 0; k < K; ++k) {
      double acc = 0;
      for (int64_t c = 0; c < C; ++c) acc += s[(o * C + c) * K + k];
      d[o * K + k] = (float)acc;
    }
  return out;
}

ImportReport import_resnet18(const std::vector<NamedTensor>& src_list, Module& net, Conv1Mode mode,
                             const std::string& source) {
  auto fail = [&](const std::string& key, const std::string& what) {
    throw Error(source + ": '" + key + "': " + what + " (is this a resnet18 state dict?)");
  };
  // nn.DataParallel saves every key as "module.<key>".
  bool all_module = !src_list.empty();
  for (const NamedTensor& t : src_list) all_module &= t.name.compare(0, 7, "module.") == 0;
  std::map<std::string, Tensor> src;
  std::vector<std::string> order;  // file order, for the report
  for (const NamedTensor& t : src_list) {
    const std::string key = all_module ? t.name.substr(7) : t.name;
    if (!src.emplace(key, t.tensor).second) fail(key, "appears twice");
    order.push_back(key);
  }

  ImportReport r;
  std::map<std::string, Tensor> dst;
  for (auto& [name, t] : net.state_dict()) dst[name] = t;
  for (const char* k : {"conv1.weight", "fc.weight", "fc.bias"})
    if (!dst.count(k)) throw Error("import_resnet18: the target net has no '" + std::string(k) + "'; not a ResNet18");
  for (const std::string& key : order)
    if (!dst.count(key)) fail(key, "has no place in resnet18");

  std::vector<std::pair<std::string, Tensor>> copies;  // (our key, value) applied at the end
  // The head: ours as is, a Linear head (any width) dropped, or none.
  const bool has_w = src.count("fc.weight"), has_b = src.count("fc.bias");
  if (has_w != has_b) fail(has_w ? "fc.bias" : "fc.weight", "missing while its partner is present");
  if (has_w) {
    const Tensor &w = src["fc.weight"], &b = src["fc.bias"];
    if (w.shape() == dst["fc.weight"].shape() && b.shape() == dst["fc.bias"].shape()) {
      copies.push_back({"fc.weight", w}), copies.push_back({"fc.bias", b});
    } else if (w.dim() == 2 && w.size(1) == 512 && b.dim() == 1 && b.size(0) == w.size(0)) {
      const std::string why = std::to_string(w.size(0)) + "-class Linear head, replaced by the 1x1 conv head";
      r.skipped.push_back({"fc.weight", shape_str(w.shape()) + ": " + why});
      r.skipped.push_back({"fc.bias", shape_str(b.shape()) + ": " + why});
    } else {
      fail("fc.weight", "shape " + shape_str(w.shape()) + " with fc.bias " + shape_str(b.shape()) +
                            " is neither a Linear(512, K) head nor ours " + shape_str(dst["fc.weight"].shape()));
    }
  }
  // conv1: 3 RGB channels summed (or 1 channel as is), or our initialisation.
  if (!src.count("conv1.weight")) fail("conv1.weight", "missing");
  const Tensor& c1 = src["conv1.weight"];
  if (c1.dim() != 4 || c1.size(0) != 64 || (c1.size(1) != 3 && c1.size(1) != 1) || c1.size(2) != 7 || c1.size(3) != 7)
    fail("conv1.weight", "shape " + shape_str(c1.shape()) + " is neither [64, 3, 7, 7] nor [64, 1, 7, 7]");
  if (mode == Conv1Mode::fresh) {
    r.skipped.push_back({"conv1.weight", shape_str(c1.shape()) + ": --conv1 fresh"});
    r.conv1 = "fresh: our initialisation kept";
  } else if (c1.size(1) == 3) {
    copies.push_back({"conv1.weight", sum_input_channels(c1)});
    r.conv1 = "sum: the 3 RGB filters summed into one grey filter";
  } else {
    copies.push_back({"conv1.weight", c1});
    r.conv1 = "sum: already one channel, copied as is";
  }
  // The body: every key, same shape.
  for (auto& [name, t] : net.state_dict()) {
    if (name == "conv1.weight" || name == "fc.weight" || name == "fc.bias") continue;
    auto it = src.find(name);
    if (it == src.end()) {
      if (ends_with(name, ".num_batches_tracked")) continue;  // files from before PyTorch 0.4.1
      fail(name, "missing from the file");
    }
    if (it->second.shape() != t.shape())
      fail(name, "has shape " + shape_str(it->second.shape()) + " but resnet18 needs " + shape_str(t.shape()));
    copies.push_back({name, it->second});
  }

  std::map<std::string, Tensor> copied(copies.begin(), copies.end());
  for (auto& [name, t] : net.state_dict()) {  // report in our state-dict order
    auto it = copied.find(name);
    if (it == copied.end()) {
      r.initialised.push_back(name);
      continue;
    }
    t.copy_(it->second);  // converts dtype (e.g. f32 counts into i64)
    r.used.push_back(name);
  }
  return r;
}

}  // namespace ctg::interop
