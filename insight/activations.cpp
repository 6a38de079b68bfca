// Filters, feature maps and ResNet18's head map (insight/activations.h).
#include "insight/activations.h"

#include <cmath>
#include <cstdlib>
#include <functional>

#include "engine/autograd.h"
#include "engine/layers.h"
#include "engine/safetensors.h"
#include "nets/resnet18.h"

namespace ctg::insight {

std::vector<std::pair<std::string, const Module*>> named_modules(const Module& root) {
  std::vector<std::pair<std::string, const Module*>> out;
  std::function<void(const Module&, const std::string&)> walk = [&](const Module& m, const std::string& prefix) {
    for (const auto& [name, child] : m.children()) {
      const std::string full = prefix.empty() ? name : prefix + "." + name;
      out.emplace_back(full, child.get());
      walk(*child, full);
    }
  };
  walk(root, "");
  return out;
}

std::vector<std::string> conv_layer_names(const Module& root) {
  std::vector<std::string> out;
  for (const auto& [name, m] : named_modules(root))
    if (dynamic_cast<const Conv2d*>(m)) out.push_back(name);
  return out;
}

namespace {

std::string join(const std::vector<std::string>& v) {
  std::string s;
  for (const auto& x : v) s += (s.empty() ? "" : ", ") + x;
  return s;
}

bool is_number(const std::string& s) {
  if (s.empty() || s.size() > 9) return false;
  for (char c : s)
    if (c < '0' || c > '9') return false;
  return true;
}

}  // namespace

Tensor conv_filters(const Module& net, const std::string& layer) {
  for (const auto& [name, m] : named_modules(net))
    if (name == layer) {
      const auto* conv = dynamic_cast<const Conv2d*>(m);
      if (!conv) break;
      return conv->weight.to(Device::cpu).to(DType::f32);  // a copy: .to(f32) converts (copies) on the host
    }
  throw Error("--layer: '" + layer + "' is not a convolution of this net; its conv layers are: " +
              join(conv_layer_names(net)));
}

Tensor filter_difference(const Tensor& mine, const std::string& other, const std::string& layer) {
  const SafetensorsFile f = load_safetensors(other);
  const std::string key = layer + ".weight";
  for (const auto& t : f.tensors) {
    if (t.name != key) continue;
    if (t.tensor.shape() != mine.shape())
      throw Error("--diff: " + other + ": '" + key + "' has shape " + shape_str(t.tensor.shape()) + ", this net's " +
                  shape_str(mine.shape()));
    const Tensor theirs = t.tensor.to(DType::f32);
    Tensor d = Tensor::empty(mine.shape());
    for (int64_t i = 0; i < d.numel(); ++i) d.data<float>()[i] = mine.data<float>()[i] - theirs.data<float>()[i];
    return d;
  }
  throw Error("--diff: " + other + ": no tensor '" + key + "' (a checkpoint of another net?)");
}

Mosaic filter_mosaic(const Tensor& w) {
  if (w.dim() != 4) throw Error("filter_mosaic: expected weights [O,I,kh,kw], got " + shape_str(w.shape()));
  const Tensor c = w.to(Device::cpu).to(DType::f32);
  const int64_t O = w.size(0), I = w.size(1), kh = w.size(2), kw = w.size(3);
  Mosaic m;
  if (I == 1) {
    m.cols = (int64_t)std::ceil(std::sqrt((double)O));
    m.rows = (O + m.cols - 1) / m.cols;
  } else {
    m.rows = O;
    m.cols = I;
  }
  // Filters of kh × kw with one cell of gap between them (and none outside).
  m.height = m.rows * (kh + 1) - 1;
  m.width = m.cols * (kw + 1) - 1;
  m.values.assign((size_t)(m.height * m.width), 0.0f);
  for (int64_t o = 0; o < O; ++o)
    for (int64_t i = 0; i < I; ++i) {
      const int64_t cell = I == 1 ? o : o * I + i;
      const int64_t r = cell / m.cols, col = cell % m.cols;
      for (int64_t p = 0; p < kh; ++p)
        for (int64_t q = 0; q < kw; ++q)
          m.values[(size_t)((r * (kh + 1) + p) * m.width + col * (kw + 1) + q)] =
              c.data<float>()[((o * I + i) * kh + p) * kw + q];
    }
  return m;
}

std::vector<std::pair<std::string, Tensor>> feature_maps(Module& net, const Tensor& x,
                                                         const std::vector<std::string>& layers) {
  const auto named = named_modules(net);
  // Resolve every name before any work: a module pointer, or a conv number.
  std::vector<const Module*> want(layers.size(), nullptr);
  std::vector<int64_t> want_conv(layers.size(), 0);
  for (size_t i = 0; i < layers.size(); ++i) {
    if (is_number(layers[i])) {
      want_conv[i] = std::atol(layers[i].c_str());
      continue;
    }
    for (const auto& [name, m] : named)
      if (name == layers[i]) want[i] = m;
    if (!want[i]) {
      std::vector<std::string> known;
      for (const auto& [name, m] : named) known.push_back(name);
      throw Error("--layers: unknown layer '" + layers[i] + "'; this net's layers are: " + join(known) +
                  " (or a number k: the k-th convolution)");
    }
  }
  std::vector<Tensor> got(layers.size());
  int64_t convs = 0;
  // The observer sees every module call after it returns (innermost first);
  // the first call of each wanted module is the one kept.
  ModuleCallObserver prev = set_module_call_observer([&](const Module& m, const Tensor& out, int) {
    const bool conv = dynamic_cast<const Conv2d*>(&m) != nullptr;
    if (conv) ++convs;
    for (size_t i = 0; i < layers.size(); ++i)
      if (!got[i].defined() && (want[i] == &m || (conv && want_conv[i] == convs))) got[i] = out.to(Device::cpu);
  });
  try {
    autograd::NoGradGuard no_grad;
    net(x);
  } catch (...) {
    set_module_call_observer(prev);
    throw;
  }
  set_module_call_observer(prev);
  std::vector<std::pair<std::string, Tensor>> out;
  for (size_t i = 0; i < layers.size(); ++i) {
    if (!got[i].defined()) {
      if (want_conv[i] > 0 || is_number(layers[i]))
        throw Error("--layers: " + layers[i] + ": this net runs " + std::to_string(convs) + " convolutions (1.." +
                    std::to_string(convs) + ")");
      throw Error("--layers: '" + layers[i] + "' is not called in the forward pass");
    }
    const Tensor& t = got[i];
    if (t.dim() != 4 || t.size(0) != 1)
      throw Error("--layers: '" + layers[i] + "' outputs " + shape_str(t.shape()) +
                  ", not a feature map [1,C,H,W] (a fully connected layer?)");
    out.emplace_back(layers[i], t.reshape({t.size(1), t.size(2), t.size(3)}).clone());
  }
  return out;
}

Tensor head_map(Module& net, const Tensor& x, const std::string& net_name) {
  auto* resnet = dynamic_cast<nets::ResNet18*>(&net);
  if (!resnet)
    throw Error("--method headmap: " + net_name +
                " has no head map (only resnet18 ends in a 1x1 conv map and a global max pool)");
  autograd::NoGradGuard no_grad;
  const Tensor m = resnet->head_map(x).to(Device::cpu);  // [1,1,h,w]
  return m.reshape({m.size(2), m.size(3)}).clone();
}

}  // namespace ctg::insight
