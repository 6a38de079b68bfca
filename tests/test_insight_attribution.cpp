// insight/attribution.h against definitions computed another way: saliency
// against central finite differences (double), IG's completeness and its exact
// value on a linear model, Captum's step rules against their closed forms,
// occlusion against a brute-force loop over windows, and CUDA (emulated
// without a GPU) against the CPU.
#include <doctest/doctest.h>

#include <cmath>
#include <random>

#include "engine/ops.h"
#include "insight/attribution.h"
#include "nets/nets.h"
#include "tests/cuda_check.h"
#include "tests/gradcheck.h"
#include "tests/test_util.h"

using namespace ctg;
using insight::IgMethod;

namespace {

using test::rand_tensor;  // uniform in [lo, hi), double

// A smooth net in double: conv 3×3 (1→3, padding 1) → BatchNorm in eval mode
// with non-trivial running statistics → sigmoid → linear to one logit.
struct SmoothNet {
  Tensor w1, b1, gamma, beta, mean, var, w2, b2;
  SmoothNet(int64_t h, int64_t w, uint64_t seed) {
    std::mt19937_64 rng(seed);
    w1 = rand_tensor({3, 1, 3, 3}, rng, -1, 1);
    b1 = rand_tensor({3}, rng, -0.5, 0.5);
    gamma = rand_tensor({3}, rng, 0.5, 1.5);
    beta = rand_tensor({3}, rng, -0.5, 0.5);
    mean = rand_tensor({3}, rng, -0.2, 0.2);
    var = rand_tensor({3}, rng, 0.5, 2);
    w2 = rand_tensor({1, 3 * h * w}, rng, -0.6, 0.6);
    b2 = rand_tensor({1}, rng, -0.5, 0.5);
  }
  Tensor operator()(const Tensor& x) {
    ops::Conv2dParams p;
    p.pad_h = p.pad_w = 1;
    Tensor h = ops::batchnorm2d(ops::conv2d(x, w1, b1, p), gamma, beta, mean, var, false);
    return ops::linear(ops::flatten(ops::sigmoid(h)), w2, b2);
  }
};

insight::Forward forward_of(SmoothNet& net) {
  return [&net](const Tensor& x) { return net(x); };
}

double get(const Tensor& t, int64_t i) { return t.to(DType::f64).data<double>()[i]; }

}  // namespace

TEST_CASE("explain: saliency equals |central finite differences| of the score in double") {
  const int64_t H = 5, W = 6, n = H * W;
  SmoothNet net(H, W, 3);
  std::mt19937_64 rng(4);
  const Tensor x = rand_tensor({1, 1, H, W}, rng, 0, 1);
  insight::AttributionOptions o;
  o.batch = 7;  // several passes, the last one partial
  const Tensor g = insight::input_gradients(forward_of(net), x, o);
  const Tensor s = insight::saliency(forward_of(net), x, o);
  REQUIRE(s.shape() == Shape{1, H, W});
  // ∂score/∂x_i ≈ (score(x + h e_i) − score(x − h e_i)) / 2h, all 2n images in one batch.
  const double h = 1e-5;
  Tensor probes = Tensor::empty({2 * n, 1, H, W}, DType::f64);
  for (int64_t k = 0; k < 2 * n; ++k)
    for (int64_t i = 0; i < n; ++i)
      probes.data<double>()[k * n + i] = x.data<double>()[i] + (i == k / 2 ? (k % 2 ? -h : h) : 0.0);
  o.batch = 64;
  const std::vector<double> t = insight::evaluate_target(forward_of(net), probes, o);
  double biggest = 0;
  for (int64_t i = 0; i < n; ++i) {
    const double fd = (t[(size_t)(2 * i)] - t[(size_t)(2 * i + 1)]) / (2 * h);
    CAPTURE(i);
    CHECK(std::fabs(get(g, i) - fd) <= 1e-8 + 1e-6 * std::fabs(fd));
    CHECK(get(s, i) == doctest::Approx(std::fabs(fd)).epsilon(1e-6));
    biggest = std::max(biggest, std::fabs(fd));
  }
  CHECK(biggest > 1e-3);  // the test is not comparing zeros
  // The logit target: the score's gradient divided by σ′ = s(1 − s).
  insight::AttributionOptions lo;
  lo.target = insight::Target::logit;
  const Tensor gl = insight::input_gradients(forward_of(net), x, lo);
  const double sc = insight::evaluate_target(forward_of(net), x, {})[0];
  for (int64_t i = 0; i < n; ++i) CHECK(get(g, i) == doctest::Approx(get(gl, i) * sc * (1 - sc)).epsilon(1e-10));
}

TEST_CASE("explain: Captum's IG step positions and weights") {
  auto close = [](const std::vector<double>& a, const std::vector<double>& b) {
    REQUIRE(a.size() == b.size());
    for (size_t i = 0; i < a.size(); ++i) CHECK(a[i] == doctest::Approx(b[i]).epsilon(1e-14));
  };
  // Riemann rules (approximation_methods.riemann_builders) at n = 4.
  auto r = insight::ig_rule(IgMethod::riemann_left, 4);
  close(r.alphas, {0, 0.25, 0.5, 0.75});
  close(r.weights, {0.25, 0.25, 0.25, 0.25});
  close(insight::ig_rule(IgMethod::riemann_right, 4).alphas, {0.25, 0.5, 0.75, 1});
  close(insight::ig_rule(IgMethod::riemann_middle, 4).alphas, {0.125, 0.375, 0.625, 0.875});
  r = insight::ig_rule(IgMethod::riemann_trapezoid, 4);
  close(r.alphas, {0, 1.0 / 3, 2.0 / 3, 1});
  close(r.weights, {0.125, 0.25, 0.25, 0.125});  // Σ = 3/4: Captum's trapezoid, as it is
  // Gauss–Legendre (numpy's leggauss rescaled to [0,1]): the closed forms for n = 1, 2, 3.
  r = insight::ig_rule(IgMethod::gausslegendre, 1);
  close(r.alphas, {0.5});
  close(r.weights, {1});
  r = insight::ig_rule(IgMethod::gausslegendre, 2);
  close(r.alphas, {0.5 * (1 - 1 / std::sqrt(3.0)), 0.5 * (1 + 1 / std::sqrt(3.0))});
  close(r.weights, {0.5, 0.5});
  r = insight::ig_rule(IgMethod::gausslegendre, 3);
  close(r.alphas, {0.5 * (1 - std::sqrt(0.6)), 0.5, 0.5 * (1 + std::sqrt(0.6))});
  close(r.weights, {5.0 / 18, 8.0 / 18, 5.0 / 18});
  // n = 50 (the default): ascending, and exact for polynomials of degree < 2n.
  r = insight::ig_rule(IgMethod::gausslegendre, 50);
  REQUIRE(r.alphas.size() == 50);
  for (size_t i = 1; i < r.alphas.size(); ++i) CHECK(r.alphas[i] > r.alphas[i - 1]);
  for (int k = 0; k < 100; k += 9) {
    double q = 0;
    for (size_t i = 0; i < r.alphas.size(); ++i) q += r.weights[i] * std::pow(r.alphas[i], k);
    CHECK(q == doctest::Approx(1.0 / (k + 1)).epsilon(1e-12));
  }
  CHECK(test::error_of([] { insight::ig_rule(IgMethod::riemann_left, 1); }).find("--ig-steps") != std::string::npos);
  CHECK(test::error_of([] { insight::ig_rule(IgMethod::gausslegendre, 0); }).find("--ig-steps") != std::string::npos);
  CHECK(test::error_of([] { insight::parse_ig_method("simpson"); }).find("--ig-method") != std::string::npos);
}

TEST_CASE("explain: IG on a linear model is exactly (x - x')*w, and complete on a smooth net") {
  const int64_t H = 4, W = 5, n = H * W;
  std::mt19937_64 rng(8);
  const Tensor w = rand_tensor({1, n}, rng, -1, 1), b = rand_tensor({1}, rng, -1, 1);
  insight::Forward linear = [&](const Tensor& x) { return ops::linear(ops::flatten(x), w, b); };
  const Tensor x = rand_tensor({1, 1, H, W}, rng, 0, 1);
  insight::AttributionOptions o;
  o.target = insight::Target::logit;
  o.batch = 3;
  const double base = 0.25;
  for (IgMethod m : {IgMethod::gausslegendre, IgMethod::riemann_left, IgMethod::riemann_right,
                     IgMethod::riemann_middle, IgMethod::riemann_trapezoid}) {
    CAPTURE(insight::ig_method_name(m));
    const int64_t steps = 7;
    const auto r = insight::integrated_gradients(linear, x, base, steps, m, o);
    // Σ w_i = 1, except Captum's trapezoid whose weights sum to 1 − 1/n.
    const double mass = m == IgMethod::riemann_trapezoid ? 1 - 1.0 / steps : 1.0;
    for (int64_t i = 0; i < n; ++i)
      CHECK(get(r.attribution, i) ==
            doctest::Approx((x.data<double>()[i] - base) * w.data<double>()[i] * mass).epsilon(1e-12));
    if (m != IgMethod::riemann_trapezoid) CHECK(std::fabs(r.delta) < 1e-12);
  }
  // A smooth non-linear net, the sigmoid score: 50 Gauss–Legendre steps make
  // Σ attribution = score(x) − score(x′) to far better than float precision.
  SmoothNet net(H, W, 11);
  insight::AttributionOptions so;
  so.batch = 16;
  const auto r = insight::integrated_gradients(forward_of(net), x, 0.0, 50, IgMethod::gausslegendre, so);
  CHECK(std::fabs(r.target_input - r.target_baseline) > 1e-3);
  CHECK(std::fabs(r.delta) < 1e-9);
  // Few Riemann steps leave a visible delta: the check above can fail.
  const auto coarse = insight::integrated_gradients(forward_of(net), x, 0.0, 2, IgMethod::riemann_left, so);
  CHECK(std::fabs(coarse.delta) > 1e-6);
}

TEST_CASE("explain: occlusion windows follow Captum's count rule") {
  CHECK(insight::occlusion_starts(11, 4, 3) == std::vector<int64_t>{0, 3, 6, 9});
  CHECK(insight::occlusion_starts(64, 16, 8).size() == 7);
  CHECK(insight::occlusion_starts(16, 16, 8) == std::vector<int64_t>{0});
  CHECK(insight::occlusion_starts(13, 5, 5) == std::vector<int64_t>{0, 5, 10});
  CHECK(test::error_of([] { insight::occlusion_starts(12, 16, 8); }).find("--occlusion-window: 16 is larger") !=
        std::string::npos);
  CHECK(test::error_of([] { insight::occlusion_starts(32, 4, 5); }).find("--occlusion-stride") != std::string::npos);
  CHECK(test::error_of([] { insight::occlusion_starts(32, 4, 0); }).find("--occlusion-stride") != std::string::npos);
}

TEST_CASE("explain: occlusion equals a brute-force loop, cut-off windows included") {
  const int64_t H = 11, W = 13;
  SmoothNet net(H, W, 21);
  std::mt19937_64 rng(22);
  const Tensor x = rand_tensor({1, 1, H, W}, rng, 0, 1);
  struct Case { int64_t window, stride; double baseline; };
  for (const Case cs : {Case{4, 3, 0.0}, Case{5, 5, 0.3}, Case{3, 2, 0.0}, Case{11, 4, 0.0}}) {
    CAPTURE(cs.window);
    CAPTURE(cs.stride);
    insight::AttributionOptions o;
    o.batch = 7;
    const Tensor got = insight::occlusion(forward_of(net), x, {cs.window, cs.stride, cs.baseline}, o);
    // Brute force: slide until a window reaches the border, one forward each.
    const double t0 = insight::evaluate_target(forward_of(net), x, {})[0];
    std::vector<double> sum((size_t)(H * W), 0), cnt((size_t)(H * W), 0);
    for (int64_t y0 = 0;; y0 += cs.stride) {
      for (int64_t x0 = 0;; x0 += cs.stride) {
        Tensor xo = x.clone();
        for (int64_t yy = y0; yy < std::min(H, y0 + cs.window); ++yy)
          for (int64_t xx = x0; xx < std::min(W, x0 + cs.window); ++xx) xo.data<double>()[yy * W + xx] = cs.baseline;
        const double d = t0 - insight::evaluate_target(forward_of(net), xo, {})[0];
        for (int64_t yy = y0; yy < std::min(H, y0 + cs.window); ++yy)
          for (int64_t xx = x0; xx < std::min(W, x0 + cs.window); ++xx) sum[(size_t)(yy * W + xx)] += d, cnt[(size_t)(yy * W + xx)] += 1;
        if (x0 + cs.window >= W) break;
      }
      if (y0 + cs.window >= H) break;
    }
    double biggest = 0;
    for (int64_t i = 0; i < H * W; ++i) {
      REQUIRE(cnt[(size_t)i] > 0);
      const double want = sum[(size_t)i] / cnt[(size_t)i];
      CHECK(get(got, i) == doctest::Approx(want).epsilon(1e-12).scale(1.0));
      biggest = std::max(biggest, std::fabs(want));
    }
    CHECK(biggest > 1e-4);
  }
}

TEST_CASE("explain: saliency, occlusion and IG on CUDA equal the CPU's (CNN2, 32x32)") {
  cuda::set_emulation(true);
  REQUIRE_MESSAGE(cuda::available(), cuda::device_description());
  auto net = nets::make_net("cnn2", {32, 5, false});
  net->eval();
  std::mt19937_64 rng(31);
  const Tensor x = test::rand_f32({1, 1, 32, 32}, rng, 0, 1);
  auto run = [&](Device dev) {
    net->to(dev);
    insight::InputGradientsOnly only(*net);
    insight::Forward f = [&](const Tensor& b) { return (*net)(b); };
    insight::AttributionOptions o;
    o.device = dev;
    o.batch = 8;
    std::vector<Tensor> r;
    r.push_back(insight::saliency(f, x, o));
    r.push_back(insight::occlusion(f, x, {8, 8, 0.0}, o));
    const auto ig = insight::integrated_gradients(f, x, 0.0, 4, IgMethod::gausslegendre, o);
    r.push_back(ig.attribution);
    return r;
  };
  const auto want = run(Device::cpu);
  const auto got = run(Device::cuda);
  const char* names[] = {"saliency", "occlusion", "ig"};
  // float32 kernels summing in other orders: 1e-4 relative, plus 1e-4 of the
  // map's largest magnitude for entries near 0.
  for (size_t k = 0; k < want.size(); ++k) {
    double top = 0;
    for (double v : want[k].to_vector()) top = std::max(top, std::fabs(v));
    CHECK(top > 0);
    test::check_close(got[k], want[k], 1e-4 * top, 1e-4, names[k]);
  }
  for (const auto& [name, p] : net->named_parameters()) CHECK_MESSAGE(p.requires_grad(), name);  // restored
}
