// Attribution maps as Captum defines them (captum/attr/_core/saliency.py,
// occlusion.py + feature_ablation.py, integrated_gradients.py and
// _utils/approximation_methods.py), for a net that maps [N,C,H,W] to one
// logit per image. What is attributed is the `target`: the sigmoid score
// (what the study attributed) or the logit.
//
//   saliency   S(x)   = |∂t/∂x|                                   (Saliency, abs=True)
//   occlusion  O(x)_p = mean over the windows w ∋ p of t(x) − t(x with w := B)
//              windows of shape (1,W,W) at strides (1,S,S), the first at index 0,
//              ceil((dim − W)/S) + 1 positions per axis, the last cut off by the
//              border when it does not fit                         (Occlusion)
//   IG         A(x)   = (x − x′) · Σ_i w_i ∂t(x′ + α_i (x − x′))/∂x, x′ = B everywhere,
//              (α_i, w_i) Captum's Gauss–Legendre or Riemann rule; the convergence
//              delta Σ A − (t(x) − t(x′))                          (IntegratedGradients)
//
// Inputs are CPU tensors (float32, or float64 for the finite-difference tests);
// the batches go to `device`, where the net must already be. Results come back
// on the CPU in the input's dtype; every sum is accumulated in double. The net
// must be in eval mode: then the images of a batch do not interact (BatchNorm
// uses its running statistics), so one backward of Σ_n t(x_n) gives every
// image its own gradient, and many occluded copies or IG steps share a pass.
#pragma once
#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "engine/module.h"
#include "engine/tensor.h"

namespace ctg::insight {

// The net as attribution sees it: a batch [N,C,H,W] → logits [N,1] (or [N]).
using Forward = std::function<Tensor(const Tensor&)>;

enum class Target { score, logit };
Target parse_target(const std::string& s);  // errors name --target
const char* target_name(Target t);

struct AttributionOptions {
  Target target = Target::score;
  Device device = Device::cpu;  // where the batches run (the net must be there)
  int64_t batch = 16;           // images per forward (and backward) pass
  // Called after each pass with (images done, images in all).
  std::function<void(int64_t, int64_t)> progress;
};

// Images per pass for an input side: the activations ResNet18 keeps for
// backward are ~0.7 KB per input pixel (≈ 170 MB at 512²), so keep a pass
// under ~1.5 GB; at least 1, at most 64.
int64_t auto_batch(int64_t height, int64_t width);

// While it lives, the module's parameters do not require grad: backward then
// computes gradients with respect to the input only (no weight-gradient
// kernels, nothing left in the parameters' .grad). Restores them after.
class InputGradientsOnly {
 public:
  explicit InputGradientsOnly(const Module& m);
  ~InputGradientsOnly();
  InputGradientsOnly(const InputGradientsOnly&) = delete;
  InputGradientsOnly& operator=(const InputGradientsOnly&) = delete;

 private:
  std::vector<Tensor> params_;
  std::vector<bool> was_;
};

// t(x_n) of every image of x [N,C,H,W], no graph recorded.
std::vector<double> evaluate_target(const Forward& f, const Tensor& x, const AttributionOptions& o);
// ∂t(x_n)/∂x_n of every image: [N,C,H,W] (CPU, x's dtype).
Tensor input_gradients(const Forward& f, const Tensor& x, const AttributionOptions& o);

// Saliency of one image x [1,C,H,W]: |∂t/∂x| as [C,H,W].
Tensor saliency(const Forward& f, const Tensor& x, const AttributionOptions& o);

struct OcclusionOptions {
  int64_t window = 16, stride = 8;  // sliding_window_shapes=(1,W,W), strides=(1,S,S)
  double baseline = 0;              // the value an occluded pixel takes
};
// Captum's window starts along one axis: 0, S, 2S, … ceil((dim − W)/S) + 1 of
// them. Errors (naming the flags): W < 1, S < 1, W > dim, and S > W while
// W < dim (pixels no window covers; Captum asserts the same).
std::vector<int64_t> occlusion_starts(int64_t dim, int64_t window, int64_t stride);
// Occlusion of one image x [1,C,H,W] → [C,H,W]; each channel is its own
// window position along the channel axis (window 1, stride 1), as Captum does.
Tensor occlusion(const Forward& f, const Tensor& x, const OcclusionOptions& occ, const AttributionOptions& o);

enum class IgMethod { gausslegendre, riemann_left, riemann_right, riemann_middle, riemann_trapezoid };
IgMethod parse_ig_method(const std::string& s);  // errors name --ig-method
const char* ig_method_name(IgMethod m);

// Step positions α_i ∈ [0,1] and weights w_i (Captum's alphas and step_sizes):
//   gausslegendre      α_i = (1 + ξ_i)/2, w_i = ω_i/2 for the n-point Gauss–Legendre
//                      nodes ξ_i (ascending, as numpy's leggauss) and weights ω_i
//   riemann_left       α_i = i/n,        w_i = 1/n      (i = 0 … n−1)
//   riemann_right      α_i = (i+1)/n,    w_i = 1/n
//   riemann_middle     α_i = (i+½)/n,    w_i = 1/n
//   riemann_trapezoid  α_i = i/(n−1),    w_i = 1/n, halved at both ends (so the
//                      weights sum to 1 − 1/n: Captum's rule, kept as it is)
// The Riemann rules need n ≥ 2, Gauss–Legendre n ≥ 1 (Captum asserts both).
struct IgRule {
  std::vector<double> alphas, weights;
};
IgRule ig_rule(IgMethod m, int64_t steps);

struct IgResult {
  Tensor attribution;   // [C,H,W]
  double delta = 0;     // Σ attribution − (t(x) − t(x′))
  double target_input = 0, target_baseline = 0;
};
IgResult integrated_gradients(const Forward& f, const Tensor& x, double baseline, int64_t steps, IgMethod method,
                              const AttributionOptions& o);

}  // namespace ctg::insight
