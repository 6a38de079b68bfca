// Saliency, occlusion and integrated gradients (insight/attribution.h), with
// Captum's definitions; gradients come from the engine's autograd tape.
#include "insight/attribution.h"

#include <algorithm>
#include <cmath>
#include <cstring>

#include "engine/autograd.h"
#include "engine/ops.h"

namespace ctg::insight {

Target parse_target(const std::string& s) {
  if (s == "score") return Target::score;
  if (s == "logit") return Target::logit;
  throw Error("--target: expected score or logit, got '" + s + "'");
}

const char* target_name(Target t) { return t == Target::score ? "score" : "logit"; }

int64_t auto_batch(int64_t height, int64_t width) {
  const double per_image = 700.0 * (double)std::max<int64_t>(1, height * width);
  return std::clamp<int64_t>((int64_t)(1.5e9 / per_image), 1, 64);
}

InputGradientsOnly::InputGradientsOnly(const Module& m) : params_(m.parameters()) {
  for (Tensor& p : params_) {
    was_.push_back(p.requires_grad());
    p.set_requires_grad(false);
  }
}

InputGradientsOnly::~InputGradientsOnly() {
  for (size_t i = 0; i < params_.size(); ++i) params_[i].set_requires_grad(was_[i]);
}

namespace {

void check_input(const Tensor& x, const char* what) {
  if (!x.defined() || x.dim() != 4)
    throw Error(std::string(what) + ": expected an input [N,C,H,W], got " +
                (x.defined() ? shape_str(x.shape()) : std::string("nothing")));
  if (x.device() != Device::cpu) throw Error(std::string(what) + ": the input must be a CPU tensor");
  if (!x.is_floating()) throw Error(std::string(what) + ": the input must be float32 or float64");
}

// Images [b0, b1) of x as a fresh CPU tensor (a copy: it becomes a leaf).
Tensor rows(const Tensor& x, int64_t b0, int64_t b1) {
  Shape s = x.shape();
  s[0] = b1 - b0;
  Tensor out = Tensor::empty(s, x.dtype());
  const size_t per = (size_t)(x.numel() / x.size(0)) * dtype_size(x.dtype());
  std::memcpy(out.raw_data(), (const char*)x.raw_data() + (size_t)b0 * per, (size_t)(b1 - b0) * per);
  return out;
}

// The net's logits as one value per image, checked.
Tensor logits_of(const Forward& f, const Tensor& batch) {
  Tensor y = f(batch);
  if (!y.defined() || y.numel() != batch.size(0))
    throw Error("attribution: the net returned " + (y.defined() ? shape_str(y.shape()) : std::string("nothing")) +
                " for " + std::to_string(batch.size(0)) + " images, not one logit each");
  return y;
}

double apply_target(double logit, Target t) { return t == Target::score ? 1.0 / (1.0 + std::exp(-logit)) : logit; }

// Element i of a CPU float tensor as double.
inline double get(const Tensor& t, int64_t i) {
  return t.dtype() == DType::f64 ? t.data<double>()[i] : (double)t.data<float>()[i];
}
inline void set(Tensor& t, int64_t i, double v) {
  if (t.dtype() == DType::f64) t.data<double>()[i] = v;
  else t.data<float>()[i] = (float)v;
}

// [1,C,H,W] → [C,H,W] holding `v`.
Tensor as_map(const std::vector<double>& v, const Tensor& x) {
  Tensor out = Tensor::empty({x.size(1), x.size(2), x.size(3)}, x.dtype());
  for (int64_t i = 0; i < out.numel(); ++i) set(out, i, v[(size_t)i]);
  return out;
}

int64_t batch_of(const AttributionOptions& o) {
  if (o.batch < 1) throw Error("--batch: must be at least 1, got " + std::to_string(o.batch));
  return o.batch;
}

}  // namespace

std::vector<double> evaluate_target(const Forward& f, const Tensor& x, const AttributionOptions& o) {
  check_input(x, "evaluate_target");
  const int64_t n = x.size(0), b = batch_of(o);
  autograd::NoGradGuard no_grad;
  std::vector<double> out;
  out.reserve((size_t)n);
  for (int64_t b0 = 0; b0 < n; b0 += b) {
    const int64_t b1 = std::min(n, b0 + b);
    const std::vector<double> l = logits_of(f, rows(x, b0, b1).to(o.device)).to_vector();  // to_vector copies back
    for (double v : l) out.push_back(apply_target(v, o.target));
  }
  return out;
}

Tensor input_gradients(const Forward& f, const Tensor& x, const AttributionOptions& o) {
  check_input(x, "input_gradients");
  const int64_t n = x.size(0), b = batch_of(o);
  Tensor out = Tensor::empty(x.shape(), x.dtype());
  const size_t per = (size_t)(x.numel() / n) * dtype_size(x.dtype());
  const bool was_enabled = autograd::grad_enabled();
  autograd::set_grad_enabled(true);
  try {
    for (int64_t b0 = 0; b0 < n; b0 += b) {
      const int64_t b1 = std::min(n, b0 + b);
      Tensor leaf = rows(x, b0, b1);
      if (o.device != Device::cpu) leaf = leaf.to(o.device);
      leaf.set_requires_grad(true);
      Tensor y = logits_of(f, leaf);
      // t = σ(logit) or the logit; its images are independent, so the
      // gradient of Σ_n t_n with respect to x_n is ∂t_n/∂x_n.
      Tensor t = o.target == Target::score ? ops::sigmoid(y) : y;
      char* dst = (char*)out.raw_data() + (size_t)b0 * per;
      if (!t.requires_grad()) {  // the output does not depend on the input at all
        std::memset(dst, 0, (size_t)(b1 - b0) * per);
      } else {
        autograd::backward(t, Tensor::full(t.shape(), 1.0, t.dtype()).to(o.device));
        Tensor g = leaf.grad();
        if (!g.defined()) std::memset(dst, 0, (size_t)(b1 - b0) * per);
        else std::memcpy(dst, g.to(Device::cpu).raw_data(), (size_t)(b1 - b0) * per);
      }
      if (o.progress) o.progress(b1, n);
    }
  } catch (...) {
    autograd::set_grad_enabled(was_enabled);
    throw;
  }
  autograd::set_grad_enabled(was_enabled);
  return out;
}

Tensor saliency(const Forward& f, const Tensor& x, const AttributionOptions& o) {
  check_input(x, "saliency");
  if (x.size(0) != 1) throw Error("saliency: expected one image, got " + shape_str(x.shape()));
  const Tensor g = input_gradients(f, x, o);
  std::vector<double> v((size_t)g.numel());
  for (int64_t i = 0; i < g.numel(); ++i) v[(size_t)i] = std::fabs(get(g, i));
  return as_map(v, x);
}

std::vector<int64_t> occlusion_starts(int64_t dim, int64_t window, int64_t stride) {
  if (window < 1) throw Error("--occlusion-window: must be at least 1, got " + std::to_string(window));
  if (stride < 1) throw Error("--occlusion-stride: must be at least 1, got " + std::to_string(stride));
  if (window > dim)
    throw Error("--occlusion-window: " + std::to_string(window) + " is larger than the slice (" + std::to_string(dim) +
                " pixels)");
  if (window < dim && stride > window)
    throw Error("--occlusion-stride: " + std::to_string(stride) + " is larger than the window " +
                std::to_string(window) + "; pixels between windows would never be occluded");
  // Captum: shift_count = ceil((dim − W)/S) + 1, starts k·S.
  const int64_t count = (dim - window + stride - 1) / stride + 1;
  std::vector<int64_t> s((size_t)count);
  for (int64_t k = 0; k < count; ++k) s[(size_t)k] = k * stride;
  return s;
}

Tensor occlusion(const Forward& f, const Tensor& x, const OcclusionOptions& occ, const AttributionOptions& o) {
  check_input(x, "occlusion");
  if (x.size(0) != 1) throw Error("occlusion: expected one image, got " + shape_str(x.shape()));
  const int64_t C = x.size(1), H = x.size(2), W = x.size(3);
  const std::vector<int64_t> ys = occlusion_starts(H, occ.window, occ.stride);
  const std::vector<int64_t> xs = occlusion_starts(W, occ.window, occ.stride);
  // Feature j of Captum's enumeration: channel fastest, then rows, then columns.
  struct Win { int64_t c, y0, y1, x0, x1; };
  std::vector<Win> wins;
  for (int64_t xi : xs)
    for (int64_t yi : ys)
      for (int64_t c = 0; c < C; ++c)
        wins.push_back({c, yi, std::min(H, yi + occ.window), xi, std::min(W, xi + occ.window)});
  const int64_t n = (int64_t)wins.size(), b = batch_of(o);
  AttributionOptions quiet = o;
  quiet.progress = nullptr;
  const double t0 = evaluate_target(f, x, quiet)[0];
  std::vector<double> sum((size_t)(C * H * W), 0.0), count((size_t)(C * H * W), 0.0);
  const int64_t plane = H * W, image = C * plane;
  for (int64_t b0 = 0; b0 < n; b0 += b) {
    const int64_t b1 = std::min(n, b0 + b);
    // b1 − b0 copies of x, copy k with window b0 + k set to the baseline.
    Tensor batch = Tensor::empty({b1 - b0, C, H, W}, x.dtype());
    const size_t bytes = (size_t)image * dtype_size(x.dtype());
    for (int64_t k = 0; k < b1 - b0; ++k) {
      std::memcpy((char*)batch.raw_data() + (size_t)k * bytes, x.raw_data(), bytes);
      const Win& w = wins[(size_t)(b0 + k)];
      for (int64_t yy = w.y0; yy < w.y1; ++yy)
        for (int64_t xx = w.x0; xx < w.x1; ++xx) set(batch, k * image + w.c * plane + yy * W + xx, occ.baseline);
    }
    const std::vector<double> t = evaluate_target(f, batch, quiet);
    for (int64_t k = 0; k < b1 - b0; ++k) {
      const Win& w = wins[(size_t)(b0 + k)];
      const double diff = t0 - t[(size_t)k];
      for (int64_t yy = w.y0; yy < w.y1; ++yy)
        for (int64_t xx = w.x0; xx < w.x1; ++xx) {
          const size_t i = (size_t)(w.c * plane + yy * W + xx);
          sum[i] += diff;
          count[i] += 1;
        }
    }
    if (o.progress) o.progress(b1, n);
  }
  // Every pixel lies in at least one window (occlusion_starts ensures S ≤ W).
  for (size_t i = 0; i < sum.size(); ++i) sum[i] /= count[i];
  return as_map(sum, x);
}

IgMethod parse_ig_method(const std::string& s) {
  if (s == "gausslegendre") return IgMethod::gausslegendre;
  if (s == "riemann_left") return IgMethod::riemann_left;
  if (s == "riemann_right") return IgMethod::riemann_right;
  if (s == "riemann_middle") return IgMethod::riemann_middle;
  if (s == "riemann_trapezoid") return IgMethod::riemann_trapezoid;
  throw Error("--ig-method: expected gausslegendre, riemann_left, riemann_right, riemann_middle or "
              "riemann_trapezoid, got '" + s + "'");
}

const char* ig_method_name(IgMethod m) {
  switch (m) {
    case IgMethod::gausslegendre: return "gausslegendre";
    case IgMethod::riemann_left: return "riemann_left";
    case IgMethod::riemann_right: return "riemann_right";
    case IgMethod::riemann_middle: return "riemann_middle";
    case IgMethod::riemann_trapezoid: return "riemann_trapezoid";
  }
  return "?";
}

namespace {

// n-point Gauss–Legendre nodes ξ (ascending) and weights ω on [−1, 1]: ξ are
// the roots of the Legendre polynomial P_n, found by Newton's method from
// Tricomi's estimate cos(π(i + 3/4)/(n + 1/2)); ω_i = 2 / ((1 − ξ²) P_n′(ξ)²).
// P_n by the recurrence k P_k = (2k − 1) ξ P_{k−1} − (k − 1) P_{k−2}, and
// P_n′ = n (ξ P_n − P_{n−1}) / (ξ² − 1).
void gauss_legendre(int64_t n, std::vector<double>& nodes, std::vector<double>& weights) {
  nodes.assign((size_t)n, 0);
  weights.assign((size_t)n, 0);
  const double pi = 3.14159265358979323846;
  for (int64_t i = 0; i < n; ++i) {
    double z = std::cos(pi * ((double)i + 0.75) / ((double)n + 0.5)), dp = 1;
    for (int it = 0; it < 100; ++it) {
      double p0 = 1, p1 = z;  // P_0, P_1
      for (int64_t k = 2; k <= n; ++k) {
        const double p2 = ((2.0 * (double)k - 1) * z * p1 - ((double)k - 1) * p0) / (double)k;
        p0 = p1;
        p1 = p2;
      }
      dp = (double)n * (z * p1 - p0) / (z * z - 1);
      const double step = p1 / dp;
      z -= step;
      if (std::fabs(step) < 1e-16) break;
    }
    // Recompute P_n′ at the converged root for the weight.
    double p0 = 1, p1 = z;
    for (int64_t k = 2; k <= n; ++k) {
      const double p2 = ((2.0 * (double)k - 1) * z * p1 - ((double)k - 1) * p0) / (double)k;
      p0 = p1;
      p1 = p2;
    }
    dp = (double)n * (z * p1 - p0) / (z * z - 1);
    // Tricomi's estimates fall from near +1, so index n−1−i gives ascending order.
    nodes[(size_t)(n - 1 - i)] = z;
    weights[(size_t)(n - 1 - i)] = 2.0 / ((1 - z * z) * dp * dp);
  }
}

}  // namespace

IgRule ig_rule(IgMethod m, int64_t n) {
  IgRule r;
  if (m == IgMethod::gausslegendre) {
    if (n < 1) throw Error("--ig-steps: gausslegendre needs at least 1 step, got " + std::to_string(n));
    gauss_legendre(n, r.alphas, r.weights);
    for (size_t i = 0; i < r.alphas.size(); ++i) {
      r.alphas[i] = 0.5 * (1 + r.alphas[i]);  // [−1, 1] → [0, 1]
      r.weights[i] *= 0.5;                    // and the interval's length 2 → 1
    }
    return r;
  }
  if (n < 2)
    throw Error(std::string("--ig-steps: ") + ig_method_name(m) + " needs at least 2 steps, got " + std::to_string(n));
  r.weights.assign((size_t)n, 1.0 / (double)n);
  // np.linspace(a, b, n): a + i·(b − a)/(n − 1).
  double a = 0, b = 1;
  if (m == IgMethod::riemann_left) a = 0, b = 1 - 1.0 / (double)n;
  if (m == IgMethod::riemann_right) a = 1.0 / (double)n, b = 1;
  if (m == IgMethod::riemann_middle) a = 1.0 / (2.0 * (double)n), b = 1 - 1.0 / (2.0 * (double)n);
  if (m == IgMethod::riemann_trapezoid) {
    r.weights.front() /= 2;
    r.weights.back() /= 2;
  }
  const double step = (b - a) / (double)(n - 1);
  for (int64_t i = 0; i < n; ++i) r.alphas.push_back(i == n - 1 ? b : a + (double)i * step);
  return r;
}

IgResult integrated_gradients(const Forward& f, const Tensor& x, double baseline, int64_t steps, IgMethod method,
                              const AttributionOptions& o) {
  check_input(x, "integrated_gradients");
  if (x.size(0) != 1) throw Error("integrated_gradients: expected one image, got " + shape_str(x.shape()));
  const IgRule rule = ig_rule(method, steps);
  const int64_t K = (int64_t)rule.alphas.size(), image = x.numel();
  // The path points x′ + α_i (x − x′), one image each, all passes batched.
  Tensor path = Tensor::empty({K, x.size(1), x.size(2), x.size(3)}, x.dtype());
  for (int64_t k = 0; k < K; ++k)
    for (int64_t i = 0; i < image; ++i)
      set(path, k * image + i, baseline + rule.alphas[(size_t)k] * (get(x, i) - baseline));
  const Tensor g = input_gradients(f, path, o);
  std::vector<double> attr((size_t)image, 0.0);
  for (int64_t k = 0; k < K; ++k)
    for (int64_t i = 0; i < image; ++i) attr[(size_t)i] += rule.weights[(size_t)k] * get(g, k * image + i);
  double total = 0;
  for (int64_t i = 0; i < image; ++i) {
    attr[(size_t)i] *= get(x, i) - baseline;
    total += attr[(size_t)i];
  }
  // Captum's compute_convergence_delta: Σ attribution − (F(end) − F(start)).
  Tensor ends = Tensor::empty({2, x.size(1), x.size(2), x.size(3)}, x.dtype());
  for (int64_t i = 0; i < image; ++i) {
    set(ends, i, get(x, i));
    set(ends, image + i, baseline);
  }
  AttributionOptions quiet = o;
  quiet.progress = nullptr;
  const std::vector<double> t = evaluate_target(f, ends, quiet);
  IgResult r;
  r.attribution = as_map(attr, x);
  r.target_input = t[0];
  r.target_baseline = t[1];
  r.delta = total - (t[0] - t[1]);
  return r;
}

}  // namespace ctg::insight
