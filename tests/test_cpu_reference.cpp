// The tuned CPU kernels against the plain reference loops (issue 14):
// kernels/cpu/<op>_tuned.cpp must compute what kernels/cpu/<op>.cpp computes,
// on fresh random inputs and odd shapes — sizes that are not multiples of any
// vector width or tile, several im2col groups, one-row and partial bands —
// forward and backward, float and double. And the run-time switch
// (kernels/cpu_impl.h) must really change which one the engine's entry points run.
//
// Tolerances: both sides sum the same L terms of size ≤ 1 (inputs in [−1, 1))
// in different orders, so they may differ by a few rounding errors per term:
// |tuned − reference| ≤ tol·(1 + |reference|) with tol = 1e-14·L in double
// (1e-12 at L = 100) and 1e-6·L in float (the ~8·eps per term of blocked sums).
#include <doctest/doctest.h>

#include <cmath>
#include <cstdlib>
#include <random>
#include <string>
#include <vector>

#include "kernels/conv2d.h"
#include "kernels/cpu_impl.h"
#include "kernels/linear.h"
#include "kernels/maxpool2d.h"
#include "test_util.h"

using namespace ctg;
using kernels::CpuImpl;

namespace {

template <typename T>
std::vector<T> uniform(size_t n, std::mt19937_64& rng, double lo = -1, double hi = 1) {
  std::uniform_real_distribution<double> u(lo, hi);
  std::vector<T> v(n);
  for (T& x : v) x = (T)u(rng);
  return v;
}

// The tolerance for sums of L terms (see the top of the file).
template <typename T>
double tol(int64_t L) {
  return (sizeof(T) == 8 ? 1e-14 : 1e-6) * (double)L;
}

// |got − want| ≤ tol·(1 + |want|) everywhere; on failure the count, the worst
// element and the first few mismatches.
template <typename T>
void check_same(const std::vector<T>& got, const std::vector<T>& want, int64_t L, const std::string& what) {
  REQUIRE(got.size() == want.size());
  const double t = tol<T>(L);
  size_t bad = 0, worst_i = 0;
  double worst = 0;
  for (size_t i = 0; i < got.size(); ++i) {
    double d = std::fabs((double)got[i] - (double)want[i]);
    if (std::isnan(d)) d = INFINITY;
    if (!(d <= t * (1 + std::fabs((double)want[i])))) {
      if (bad < 5) MESSAGE(what << "[" << i << "] tuned " << got[i] << " reference " << want[i]);
      ++bad;
    }
    if (d > worst) worst = d, worst_i = i;
  }
  INFO(what << ": " << bad << " of " << got.size() << " beyond tol " << t << "·(1 + |ref|); largest difference "
            << worst << " at " << worst_i);
  CHECK(bad == 0);
}

bool has(const std::string& s, const std::string& part) { return s.find(part) != std::string::npos; }

// ---- conv2d --------------------------------------------------------------

struct ConvCase {
  int64_t N, C, H, W, O, KH, KW, SH, SW, PH, PW;
};

template <typename T>
void conv_tuned_vs_reference(const ConvCase& c, std::mt19937_64& rng) {
  const kernels::Conv2dDims d = kernels::conv2d_dims(c.N, c.C, c.H, c.W, c.O, c.KH, c.KW, c.SH, c.SW, c.PH, c.PW);
  const int64_t K = c.C * c.KH * c.KW, P = d.OH * d.OW;
  const std::vector<T> x = uniform<T>((size_t)(c.N * c.C * c.H * c.W), rng);
  const std::vector<T> w = uniform<T>((size_t)(c.O * K), rng);
  const std::vector<T> b = uniform<T>((size_t)c.O, rng);
  const std::vector<T> gy = uniform<T>((size_t)(c.N * c.O * P), rng);
  // The reference, gradients starting at 0.25: both must add, not overwrite.
  std::vector<T> want_y(gy.size(), T(-7));
  kernels::conv2d_forward_cpu_reference(x.data(), w.data(), b.data(), want_y.data(), d);
  std::vector<T> want_gx(x.size(), T(0.25)), want_gw(w.size(), T(0.25)), want_gb(b.size(), T(0.25));
  kernels::conv2d_backward_cpu_reference(x.data(), w.data(), gy.data(), want_gx.data(), want_gw.data(),
                                         want_gb.data(), d);
  // The defaults, the direct kernel (kernels/cpu/conv2d_direct.cpp), then
  // every cut of the im2col kernel (direct off): one-row bands, partial bands,
  // one tile per image, groups of one, groups of two plus a remainder (wide GEMM + scatter).
  const int64_t huge = int64_t(1) << 40, dflt = kernels::Conv2dCpuTuning{}.max_scratch;
  const kernels::Conv2dCpuTuning tunings[] = {{},
                                              {2048, dflt, huge},
                                              {0, 1, 0},
                                              {0, 3 * K * d.OW, 0},
                                              {0, huge, 0},
                                              {huge, 1, 0},
                                              {huge, 2 * (K + c.O) * P, 0}};
  for (const auto& t : tunings) {
    INFO("conv " << c.N << "x" << c.C << "x" << c.H << "x" << c.W << " O" << c.O << " k" << c.KH << "x" << c.KW
                 << " s" << c.SH << "," << c.SW << " p" << c.PH << "," << c.PW << " "
                 << (sizeof(T) == 8 ? "double" : "float") << " tuning {" << t.wide_below << ", "
                 << t.max_scratch << ", " << t.direct_max_out << "}");
    std::vector<T> y(gy.size(), T(-7));
    kernels::conv2d_forward_cpu_tuned(x.data(), w.data(), b.data(), y.data(), d, t);
    check_same(y, want_y, K, "y");
    std::vector<T> gx(x.size(), T(0.25)), gw(w.size(), T(0.25)), gb(b.size(), T(0.25));
    kernels::conv2d_backward_cpu_tuned(x.data(), w.data(), gy.data(), gx.data(), gw.data(), gb.data(), d, t);
    check_same(gx, want_gx, c.O * c.KH * c.KW, "gx");
    check_same(gw, want_gw, c.N * P, "gw");
    check_same(gb, want_gb, c.N * P, "gb");
    // Only dx requested: the other gradients are nullptr.
    std::vector<T> gx2(x.size(), T(0.25));
    kernels::conv2d_backward_cpu_tuned<T>(x.data(), w.data(), gy.data(), gx2.data(), nullptr, nullptr, d, t);
    check_same(gx2, want_gx, c.O * c.KH * c.KW, "gx alone");
  }
}

const ConvCase kConvCases[] = {
    {5, 2, 13, 12, 3, 3, 3, 2, 2, 1, 1},   // stride 2, odd sizes
    {4, 3, 10, 9, 2, 3, 3, 1, 1, 1, 1},    // 3×3 same padding
    {3, 1, 17, 13, 4, 7, 7, 2, 2, 3, 3},   // C = 1 stem-like, 7×7
    {3, 2, 11, 10, 2, 5, 5, 3, 3, 3, 3},   // the study's CNN: k5 s3 p3
    {3, 5, 9, 8, 3, 1, 1, 1, 1, 0, 0},     // pointwise (in-place GEMMs)
    {2, 3, 7, 8, 4, 1, 1, 2, 2, 0, 0},     // 1×1 stride 2 (ResNet downsample)
    {2, 2, 4, 5, 3, 2, 3, 1, 2, 2, 3},     // border rows that read only padding, non-square kernel
    {2, 17, 41, 37, 3, 3, 3, 1, 1, 1, 1},  // large enough for im2col/col2im on several threads
    {2, 1, 61, 47, 5, 5, 5, 3, 3, 3, 3},   // CNN1's stem (C = 1, k5 s3 p3), several threads in the direct kernel
    {2, 3, 9, 10, 33, 3, 2, 2, 1, 1, 0},   // O = 33: more output channels than one vector
};

TEST_CASE("cpu reference: conv2d tuned matches the plain loops under every tiling, float and double") {
  std::mt19937_64 rng(141);
  for (const ConvCase& c : kConvCases) {
    conv_tuned_vs_reference<double>(c, rng);
    conv_tuned_vs_reference<float>(c, rng);
  }
}

// ---- linear --------------------------------------------------------------

template <typename T>
void linear_tuned_vs_reference(int64_t N, int64_t I, int64_t O, std::mt19937_64& rng) {
  INFO("linear N" << N << " I" << I << " O" << O << " " << (sizeof(T) == 8 ? "double" : "float"));
  const std::vector<T> x = uniform<T>((size_t)(N * I), rng), w = uniform<T>((size_t)(O * I), rng);
  const std::vector<T> b = uniform<T>((size_t)O, rng), gy = uniform<T>((size_t)(N * O), rng);
  std::vector<T> want_y(gy.size(), T(-7)), y(gy.size(), T(-7));
  kernels::linear_forward_cpu_reference(x.data(), w.data(), b.data(), want_y.data(), N, I, O);
  kernels::linear_forward_cpu_tuned(x.data(), w.data(), b.data(), y.data(), N, I, O);
  check_same(y, want_y, I, "y");
  std::vector<T> want_gx(x.size(), T(0.25)), want_gw(w.size(), T(0.25)), want_gb(b.size(), T(0.25));
  std::vector<T> gx = want_gx, gw = want_gw, gb = want_gb;
  kernels::linear_backward_cpu_reference(x.data(), w.data(), gy.data(), want_gx.data(), want_gw.data(),
                                         want_gb.data(), N, I, O);
  kernels::linear_backward_cpu_tuned(x.data(), w.data(), gy.data(), gx.data(), gw.data(), gb.data(), N, I, O);
  check_same(gx, want_gx, O, "gx");
  check_same(gw, want_gw, N, "gw");
  check_same(gb, want_gb, N, "gb");
  // Without a bias: y = x·Wᵀ alone.
  kernels::linear_forward_cpu_reference<T>(x.data(), w.data(), nullptr, want_y.data(), N, I, O);
  kernels::linear_forward_cpu_tuned<T>(x.data(), w.data(), nullptr, y.data(), N, I, O);
  check_same(y, want_y, I, "y without bias");
}

TEST_CASE("cpu reference: linear tuned (OpenBLAS) matches the plain loops, float and double") {
  std::mt19937_64 rng(142);
  const int64_t shapes[][3] = {{1, 1, 1}, {7, 13, 5}, {33, 65, 17}, {3, 301, 2}, {9, 20, 1}};
  for (const auto& s : shapes) {
    linear_tuned_vs_reference<double>(s[0], s[1], s[2], rng);
    linear_tuned_vs_reference<float>(s[0], s[1], s[2], rng);
  }
}

// ---- maxpool2d -----------------------------------------------------------

// Small integers make ties common (the first maximum must win on both sides);
// a few NaNs and −∞ test propagation and the all-padding-loses rule.
template <typename T>
std::vector<T> pool_input(size_t n, std::mt19937_64& rng) {
  std::uniform_int_distribution<int> u(-4, 4);
  std::vector<T> v(n);
  for (size_t i = 0; i < n; ++i) {
    const int r = u(rng);
    v[i] = (T)r;
    if (i % 97 == 13) v[i] = (T)NAN;
    if (i % 89 == 7) v[i] = -(T)INFINITY;
  }
  return v;
}

template <typename T>
void pool_tuned_vs_reference(const kernels::MaxPool2dGeometry& g, std::mt19937_64& rng) {
  INFO("maxpool planes " << g.planes << " " << g.H << "x" << g.W << " k" << g.kernel_h << "x" << g.kernel_w
                         << " s" << g.stride_h << "," << g.stride_w << " p" << g.pad_h << "," << g.pad_w << " "
                         << (sizeof(T) == 8 ? "double" : "float"));
  const std::vector<T> x = pool_input<T>((size_t)(g.planes * g.H * g.W), rng);
  const size_t n_out = (size_t)(g.planes * g.OH * g.OW);
  std::vector<T> want_y(n_out, T(-7)), y(n_out, T(-7));
  std::vector<int32_t> want_a(n_out, -1), a(n_out, -1);
  kernels::maxpool2d_forward_cpu_reference(x.data(), want_y.data(), want_a.data(), g);
  kernels::maxpool2d_forward_cpu_tuned(x.data(), y.data(), a.data(), g);
  // Exact: a max picks one of its inputs, so both sides must pick the same one.
  size_t bad = 0;
  for (size_t i = 0; i < n_out; ++i) {
    const bool same_y = (y[i] == want_y[i]) || (std::isnan((double)y[i]) && std::isnan((double)want_y[i]));
    if (!same_y || a[i] != want_a[i]) {
      if (bad < 5) MESSAGE("[" << i << "] tuned " << y[i] << "@" << a[i] << " reference " << want_y[i] << "@" << want_a[i]);
      ++bad;
    }
  }
  CHECK(bad == 0);
}

TEST_CASE("cpu reference: maxpool2d tuned forward picks the same values and winners as the plain loop") {
  std::mt19937_64 rng(143);
  struct P {
    int64_t H, W, kh, kw, sh, sw, ph, pw;
  };
  const P cases[] = {
      {9, 11, 2, 2, 2, 2, 0, 0},    // the default 2×2 / 2
      {13, 37, 3, 3, 2, 2, 1, 1},   // ResNet's stem pool (its own fast path), OW = 19 > 16
      {12, 35, 3, 3, 2, 2, 0, 0},   // the fast path without padding
      {10, 9, 3, 2, 1, 1, 1, 1},    // stride 1, overlapping windows
      {17, 40, 5, 4, 3, 3, 2, 2},   // stride 3: the general phase split
      {6, 7, 1, 1, 1, 1, 0, 0},     // 1×1
      {5, 70, 2, 3, 1, 2, 1, 1},    // wide rows: several 16-column blocks plus a remainder
  };
  for (const P& p : cases)
    for (int64_t planes : {1, 5}) {
      const kernels::MaxPool2dGeometry g =
          kernels::maxpool2d_geometry(planes, 1, p.H, p.W, p.kh, p.kw, p.sh, p.sw, p.ph, p.pw);
      pool_tuned_vs_reference<double>(g, rng);
      pool_tuned_vs_reference<float>(g, rng);
    }
  // Many planes: the threaded branch.
  pool_tuned_vs_reference<float>(kernels::maxpool2d_geometry(3, 64, 21, 23, 3, 3, 2, 2, 1, 1), rng);
}

// ---- the shape helpers and the switch -----------------------------------

TEST_CASE("cpu reference: output sizes are PyTorch's floor formula") {
  // ⌊(in + 2·pad − k)/s⌋ + 1: ResNet18's stem at 512 and the study CNN's first conv.
  CHECK(kernels::conv2d_output_size(512, 7, 2, 3) == 256);
  CHECK(kernels::conv2d_output_size(512, 5, 3, 3) == 172);
  CHECK(kernels::conv2d_output_size(10, 3, 1, 1) == 10);
  CHECK(kernels::conv2d_output_size(2, 5, 1, 0) <= 0);  // the kernel does not fit
  CHECK(kernels::maxpool2d_output_size(172, 2, 2, 0) == 86);
  CHECK(kernels::maxpool2d_output_size(256, 3, 2, 1) == 128);
  CHECK(kernels::maxpool2d_output_size(1, 2, 2, 0) == 0);
  const kernels::Conv2dDims d = kernels::conv2d_dims(2, 3, 11, 10, 4, 3, 5, 2, 3, 1, 2);
  CHECK(d.OH == 6);
  CHECK(d.OW == 4);
  CHECK(kernels::conv2d_is_pointwise(kernels::conv2d_dims(1, 4, 5, 5, 2, 1, 1, 1, 1, 0, 0)));
  CHECK_FALSE(kernels::conv2d_is_pointwise(kernels::conv2d_dims(1, 4, 5, 5, 2, 1, 1, 2, 2, 0, 0)));
}

TEST_CASE("cpu reference: the flag and CTGRAD_CPU_KERNELS parse, and bad values name the flag") {
  CHECK(kernels::parse_cpu_impl("reference", "--cpu-kernels") == CpuImpl::reference);
  CHECK(kernels::parse_cpu_impl("tuned", "--cpu-kernels") == CpuImpl::tuned);
  const std::string m = test::error_of([] { kernels::parse_cpu_impl("fast", "--cpu-kernels"); });
  CHECK(has(m, "--cpu-kernels"));
  CHECK(has(m, "'fast'"));
  const char* old = std::getenv("CTGRAD_CPU_KERNELS");
  const std::string saved = old ? old : "";
  ::setenv("CTGRAD_CPU_KERNELS", "reference", 1);
  CHECK(kernels::cpu_impl_from_env() == CpuImpl::reference);
  ::setenv("CTGRAD_CPU_KERNELS", "blas", 1);
  CHECK(has(test::error_of([] { kernels::cpu_impl_from_env(); }), "CTGRAD_CPU_KERNELS"));
  ::unsetenv("CTGRAD_CPU_KERNELS");
  CHECK(kernels::cpu_impl_from_env() == CpuImpl::tuned);
  if (old) ::setenv("CTGRAD_CPU_KERNELS", saved.c_str(), 1);
}

// The entry points must run what the switch says: bit for bit the reference
// under `reference`, the tuned kernel under `tuned`, and on this input the two
// differ in the last bits (different summation orders), so the test fails if
// the switch is ignored either way.
TEST_CASE("cpu reference: the switch decides what conv2d_forward_cpu and linear_forward_cpu run") {
  std::mt19937_64 rng(144);
  const kernels::Conv2dDims d = kernels::conv2d_dims(3, 6, 15, 14, 40, 5, 5, 1, 1, 2, 2);  // im2col + GEMM
  const std::vector<float> x = uniform<float>((size_t)(d.N * d.C * d.H * d.W), rng);
  const std::vector<float> w = uniform<float>((size_t)(d.O * d.C * d.KH * d.KW), rng);
  // With a bias: the reference sums b + t0 + t1 + ..., the tuned kernel adds a
  // GEMM's Σ t onto b, which rounds differently.
  const std::vector<float> b = uniform<float>((size_t)d.O, rng);
  const size_t ny = (size_t)(d.N * d.O * d.OH * d.OW);
  std::vector<float> ref(ny), tuned(ny), got(ny);
  kernels::conv2d_forward_cpu_reference<float>(x.data(), w.data(), b.data(), ref.data(), d);
  kernels::conv2d_forward_cpu_tuned<float>(x.data(), w.data(), b.data(), tuned.data(), d);
  REQUIRE_MESSAGE(ref != tuned, "the two variants agree bit for bit here: pick an input where they do not");
  {
    kernels::ScopedCpuImpl s(CpuImpl::reference);
    CHECK(kernels::cpu_impl() == CpuImpl::reference);
    kernels::conv2d_forward_cpu<float>(x.data(), w.data(), b.data(), got.data(), d);
    CHECK(got == ref);
  }
  {
    kernels::ScopedCpuImpl s(CpuImpl::tuned);
    kernels::conv2d_forward_cpu<float>(x.data(), w.data(), b.data(), got.data(), d);
    CHECK(got == tuned);
  }
  // linear: x [N, I] with I long enough that the GEMM blocks its sums.
  const int64_t N = 4, I = 777, O = 6;
  const std::vector<float> lx = uniform<float>((size_t)(N * I), rng), lw = uniform<float>((size_t)(O * I), rng);
  std::vector<float> lref((size_t)(N * O)), ltuned((size_t)(N * O)), lgot((size_t)(N * O));
  kernels::linear_forward_cpu_reference<float>(lx.data(), lw.data(), nullptr, lref.data(), N, I, O);
  kernels::linear_forward_cpu_tuned<float>(lx.data(), lw.data(), nullptr, ltuned.data(), N, I, O);
  REQUIRE(lref != ltuned);
  kernels::ScopedCpuImpl s(CpuImpl::reference);
  kernels::linear_forward_cpu<float>(lx.data(), lw.data(), nullptr, lgot.data(), N, I, O);
  CHECK(lgot == lref);
}

// The CLI: `--cpu-kernels` and CTGRAD_CPU_KERNELS reach the setting, and a bad
// value is one line naming the flag or the variable, with a non-zero exit.
TEST_CASE("cpu reference: ctgrad bench step --cpu-kernels and CTGRAD_CPU_KERNELS") {
  const std::string step = "bench step --net cnn1 --size 32 --batch 2 --steps 1 --warmup 0";
  const test::Ran ok = test::run_ctgrad(step + " --cpu-kernels reference");
  INFO(ok.out);
  CHECK(ok.rc == 0);
  CHECK(has(ok.out, "ms_per_step:"));
  const test::Ran bad_flag = test::run_ctgrad(step + " --cpu-kernels fast");
  CHECK(bad_flag.rc != 0);
  CHECK(has(bad_flag.out, "--cpu-kernels: expected reference or tuned, got 'fast'"));
  // The child inherits this process's environment.
  const char* old = std::getenv("CTGRAD_CPU_KERNELS");
  const std::string saved = old ? old : "";
  ::setenv("CTGRAD_CPU_KERNELS", "fast", 1);
  const test::Ran bad_env = test::run_ctgrad(step);
  if (old) ::setenv("CTGRAD_CPU_KERNELS", saved.c_str(), 1);
  else ::unsetenv("CTGRAD_CPU_KERNELS");
  CHECK(bad_env.rc != 0);
  CHECK(has(bad_env.out, "CTGRAD_CPU_KERNELS: expected reference or tuned, got 'fast'"));
}

}  // namespace
