// The tuned CPU batchnorm2d / batchnorm2d_relu (kernels/cpu/batchnorm2d_tuned.cpp)
// against the plain reference loops (kernels/cpu/batchnorm2d.cpp), called
// directly on shapes larger and odder than the op table's: several work items
// per channel with a partial last one (M = N·HW = 4551, 14271 against chunks
// of 4096; 2178: one partial chunk), runs that cross plane boundaries (odd HW), channel counts
// that are not a multiple of the thread count, the parallel path (> 65536
// values) and the single-thread one; eval and training; with and without γ/β,
// running statistics, gx, gγ/gβ, the ReLU; float and double; an offset input
// (|μ| ≫ σ, where an unshifted one-pass variance would cancel) and NaNs.
//
// Tolerances, |tuned − ref| ≤ atol + rtol·|ref|. Both sides form the same
// terms and sum them in double, in different orders (chunks of 4096, 16 lanes),
// then round the same formulas to T, so they differ by rounding only:
//   double: everything atol = rtol = 1e-12 (inputs and results of size ≤ ~M·1).
//   float:  mean, invstd, running stats  atol 1e-6, rtol 1e-6 (one rounding to
//             float of nearly equal doubles);
//           gγ, gβ  atol 1e-5, rtol 1e-6 (the same, then added to the old value);
//           y, gx   atol 2e-5·max(1, |x|max), rtol 1e-5 (as the op table's
//             CUDA-vs-CPU: y = x·scale + bias and gx's three terms partly cancel,
//             so a 1-ulp change of a coefficient moves them by ulps of |x·scale|).
// A NaN must appear at the same places on both sides.
// Also checked exactly (tolerance 0): the fused kernels equal relu∘forward and
// backward-on-the-masked-gradient of the unfused tuned kernels, and the tuned
// results do not depend on the thread count (partials combined in chunk order).
#include <doctest/doctest.h>
#include <omp.h>

#include <algorithm>
#include <cmath>
#include <limits>
#include <random>
#include <sstream>
#include <string>
#include <vector>

#include "kernels/batchnorm2d.h"
#include "kernels/batchnorm2d_relu.h"

using namespace ctg::kernels;

namespace {

struct Case {
  int64_t N, C, H, W;
  bool training = true, affine = true, stats = true, gx = true, params = true, relu = false;
  bool first_write = false;  // gx starts as NaN and is stored (gx_accumulate = false), not added into
  double lo = -1, hi = 1;  // x's range
};

std::string desc(const Case& k) {
  std::ostringstream s;
  s << "[" << k.N << "," << k.C << "," << k.H << "," << k.W << "]" << (k.training ? " train" : " eval")
    << (k.affine ? "" : " no-affine") << (k.stats ? "" : " no-stats") << (k.gx ? "" : " no-gx")
    << (k.params ? "" : " no-params") << (k.relu ? " relu" : "") << (k.first_write ? " first-write" : "")
    << " x in [" << k.lo << "," << k.hi << ")";
  return s.str();
}

template <typename T>
std::vector<T> uniform(int64_t n, std::mt19937_64& rng, double lo, double hi) {
  std::uniform_real_distribution<double> u(lo, hi);
  std::vector<T> v(n);
  for (T& x : v) x = (T)u(rng);
  return v;
}

// Everything one forward + backward writes.
template <typename T>
struct Out {
  std::vector<T> y, mean, invstd, rm, rv, gx, gg, gb;
};

template <typename T>
struct In {
  std::vector<T> x, gamma, beta, rm, rv, gy, gx, gg, gb;
};

template <typename T>
In<T> make_inputs(const Case& k, uint64_t seed) {
  std::mt19937_64 rng(seed);
  const int64_t n = k.N * k.C * k.H * k.W;
  In<T> in;
  in.x = uniform<T>(n, rng, k.lo, k.hi);
  in.gamma = uniform<T>(k.C, rng, 0.5, 1.5), in.beta = uniform<T>(k.C, rng, -1, 1);
  in.rm = uniform<T>(k.C, rng, k.lo, k.hi), in.rv = uniform<T>(k.C, rng, 0.5, 2);
  in.gy = uniform<T>(n, rng, -1, 1);
  in.gx = uniform<T>(n, rng, -1, 1);  // accumulated into
  in.gg = uniform<T>(k.C, rng, -1, 1), in.gb = uniform<T>(k.C, rng, -1, 1);
  return in;
}

// Forward then backward of the case with the reference or the tuned kernels.
template <typename T>
Out<T> run(const Case& k, const In<T>& in, bool tuned) {
  const int64_t HW = k.H * k.W;
  Out<T> o;
  o.y.assign(in.x.size(), T(-7)), o.mean.assign(k.C, T(0)), o.invstd.assign(k.C, T(0));
  o.rm = in.rm, o.rv = in.rv, o.gx = in.gx, o.gg = in.gg, o.gb = in.gb;
  if (k.first_write) o.gx.assign(o.gx.size(), std::numeric_limits<T>::quiet_NaN());
  const T *g = k.affine ? in.gamma.data() : nullptr, *b = k.affine ? in.beta.data() : nullptr;
  T *rm = k.stats ? o.rm.data() : nullptr, *rv = k.stats ? o.rv.data() : nullptr;
  T* gx = k.gx ? o.gx.data() : nullptr;
  T *gg = k.affine && k.params ? o.gg.data() : nullptr, *gb = k.affine && k.params ? o.gb.data() : nullptr;
  auto fwd = k.relu ? (tuned ? batchnorm2d_relu_forward_cpu_tuned<T> : batchnorm2d_relu_forward_cpu_reference<T>)
                    : (tuned ? batchnorm2d_forward_cpu_tuned<T> : batchnorm2d_forward_cpu_reference<T>);
  fwd(in.x.data(), g, b, rm, rv, o.y.data(), o.mean.data(), o.invstd.data(), k.N, k.C, HW, k.training, 0.1, 1e-5);
  if (k.relu)
    (tuned ? batchnorm2d_relu_backward_cpu_tuned<T> : batchnorm2d_relu_backward_cpu_reference<T>)(
        in.x.data(), g, o.mean.data(), o.invstd.data(), o.y.data(), in.gy.data(), gx, gg, gb, k.N, k.C, HW,
        k.training, !k.first_write);
  else
    (tuned ? batchnorm2d_backward_cpu_tuned<T> : batchnorm2d_backward_cpu_reference<T>)(
        in.x.data(), g, o.mean.data(), o.invstd.data(), in.gy.data(), gx, gg, gb, k.N, k.C, HW, k.training,
        !k.first_write);
  return o;
}

// |got − want| ≤ atol + rtol·|want|, NaN on both sides at the same places.
template <typename T>
void check(const std::vector<T>& got, const std::vector<T>& want, double atol, double rtol, const std::string& what) {
  REQUIRE(got.size() == want.size());
  size_t bad = 0, first = 0;
  for (size_t i = 0; i < got.size(); ++i) {
    const double a = (double)got[i], b = (double)want[i];
    const bool ok = (std::isnan(a) && std::isnan(b)) || std::fabs(a - b) <= atol + rtol * std::fabs(b);
    if (!ok && bad++ == 0) first = i;
  }
  INFO(what << ": " << bad << " of " << got.size() << " differ; first at " << first << ": got "
            << (double)got[first] << " want " << (double)want[first]);
  CHECK(bad == 0);
}

template <typename T>
void compare(const Case& k, const Out<T>& got, const Out<T>& want) {
  const bool f = sizeof(T) == 4;
  const double stat = f ? 1e-6 : 1e-12, elem_r = f ? 1e-5 : 1e-12;
  const double elem_a = f ? 2e-5 * std::max(1.0, std::max(std::fabs(k.lo), std::fabs(k.hi))) : 1e-12;
  const double sum_a = f ? 1e-5 : 1e-12, sum_r = f ? 1e-6 : 1e-12;
  check(got.mean, want.mean, stat, stat, "mean");
  check(got.invstd, want.invstd, stat, stat, "invstd");
  check(got.rm, want.rm, stat, stat, "running_mean");
  check(got.rv, want.rv, stat, stat, "running_var");
  check(got.y, want.y, elem_a, elem_r, "y");
  check(got.gx, want.gx, elem_a, elem_r, "gx");
  check(got.gg, want.gg, sum_a, sum_r, "ggamma");
  check(got.gb, want.gb, sum_a, sum_r, "gbeta");
}

template <typename T>
void tuned_vs_reference(const Case& k, uint64_t seed) {
  INFO(desc(k) << (sizeof(T) == 4 ? " float" : " double"));
  const In<T> in = make_inputs<T>(k, seed);
  compare(k, run(k, in, true), run(k, in, false));
}

std::vector<Case> cases() {
  std::vector<Case> v;
  for (bool training : {true, false})
    for (bool relu : {false, true}) {
      Case a{3, 5, 37, 41};  // 22755 values: one thread; M = 4551 = one chunk + 455
      a.training = training, a.relu = relu;
      v.push_back(a);
      Case b{2, 64, 33, 33};  // parallel, whole channels per thread; M = 2178 (one partial chunk)
      b.training = training, b.relu = relu;
      v.push_back(b);
      Case c{3, 7, 67, 71};  // parallel, (channel, chunk) items; M = 14271 = 3 chunks + 1983, odd HW
      c.training = training, c.relu = relu;
      v.push_back(c);
    }
  Case na{3, 7, 67, 71};
  na.affine = false;  // γ = 1, β = 0; no gγ, gβ
  v.push_back(na);
  Case ns{3, 7, 67, 71};
  ns.stats = false, ns.relu = true;  // track_running_stats=False
  v.push_back(ns);
  Case nx{3, 7, 67, 71};
  nx.gx = false;  // gγ and gβ only
  v.push_back(nx);
  Case np{3, 7, 67, 71};
  np.params = false, np.relu = true;  // gx only (training: the sums are still needed)
  v.push_back(np);
  Case ep = np;
  ep.training = false;  // eval, gx only: no sums at all
  v.push_back(ep);
  // First writes of gx over NaN, both schedules, fused and not, eval too: no NaN may survive.
  for (const Case& base : {Case{3, 5, 37, 41}, Case{2, 64, 33, 33}, Case{3, 7, 67, 71}})
    for (bool relu : {false, true})
      for (bool training : {true, false}) {
        Case f = base;
        f.first_write = true, f.relu = relu, f.training = training;
        v.push_back(f);
      }
  Case off{3, 7, 67, 71};
  off.lo = 100, off.hi = 101;  // |μ| ≫ σ: the shifted one-pass variance must not cancel
  v.push_back(off);
  return v;
}

}  // namespace

TEST_CASE("batchnorm2d tuned CPU kernels match the reference on large odd shapes") {
  uint64_t seed = 40;
  for (const Case& k : cases()) {
    tuned_vs_reference<float>(k, ++seed);
    tuned_vs_reference<double>(k, seed);
  }
}

TEST_CASE("batchnorm2d tuned CPU kernels propagate NaN as the reference does") {
  for (bool training : {true, false}) {
    Case k{2, 5, 37, 41};
    k.training = training, k.relu = true;
    INFO(desc(k));
    In<float> in = make_inputs<float>(k, 7);
    const int64_t HW = k.H * k.W;
    in.x[1 * HW + 100] = NAN;            // channel 1: training makes its statistics (and all its y) NaN
    in.x[(1 * k.C + 3) * HW + 7] = NAN;  // channel 3, plane 1
    const Out<float> got = run(k, in, true), want = run(k, in, false);
    compare(k, got, want);
    CHECK(std::isnan(got.y[(1 * k.C + 3) * HW + 7]));  // the fused ReLU keeps NaN
    CHECK(std::isnan(got.gg[3]));                        // 0·NaN in Σ g·(x − μ), as the reference
    CHECK(!std::isnan(got.y[2 * HW]));                   // channel 2 untouched
  }
}

TEST_CASE("batchnorm2d tuned CPU kernels: fused equals unfused and the thread count does not matter") {
  const Case k{3, 7, 67, 71};
  const int64_t HW = k.H * k.W, n = k.N * k.C * HW;
  const In<float> in = make_inputs<float>(k, 9);
  for (bool training : {true, false}) {
    INFO(desc(k) << (training ? " train" : " eval"));
    std::vector<float> rm = in.rm, rv = in.rv, rm2 = in.rm, rv2 = in.rv, y(n), yr(n), m(k.C), s(k.C), m2(k.C), s2(k.C);
    batchnorm2d_forward_cpu_tuned(in.x.data(), in.gamma.data(), in.beta.data(), rm.data(), rv.data(), y.data(),
                                  m.data(), s.data(), k.N, k.C, HW, training, 0.1, 1e-5);
    batchnorm2d_relu_forward_cpu_tuned(in.x.data(), in.gamma.data(), in.beta.data(), rm2.data(), rv2.data(),
                                       yr.data(), m2.data(), s2.data(), k.N, k.C, HW, training, 0.1, 1e-5);
    std::vector<float> masked(n);  // ReLU's backward: gy·[y > 0]
    for (int64_t i = 0; i < n; ++i) {
      y[i] = y[i] <= 0 ? 0 : y[i];
      masked[i] = yr[i] > 0 ? in.gy[i] : 0;
    }
    check(yr, y, 0, 0, "fused y");
    check(m2, m, 0, 0, "fused mean");
    check(s2, s, 0, 0, "fused invstd");
    check(rv2, rv, 0, 0, "fused running_var");
    auto backward = [&](bool fused, int threads) {
      const int prev = omp_get_max_threads();
      omp_set_num_threads(threads);
      std::vector<float> gx = in.gx, gg = in.gg, gb = in.gb;
      if (fused)
        batchnorm2d_relu_backward_cpu_tuned(in.x.data(), in.gamma.data(), m.data(), s.data(), yr.data(),
                                            in.gy.data(), gx.data(), gg.data(), gb.data(), k.N, k.C, HW, training);
      else
        batchnorm2d_backward_cpu_tuned(in.x.data(), in.gamma.data(), m.data(), s.data(), masked.data(), gx.data(),
                                       gg.data(), gb.data(), k.N, k.C, HW, training);
      omp_set_num_threads(prev);
      gx.insert(gx.end(), gg.begin(), gg.end());
      gx.insert(gx.end(), gb.begin(), gb.end());
      return gx;
    };
    const std::vector<float> fused2 = backward(true, 2);
    check(fused2, backward(false, 2), 0, 0, "fused vs unfused gradients");
    check(fused2, backward(true, 1), 0, 0, "1 vs 2 threads");
    check(fused2, backward(true, 3), 0, 0, "3 vs 2 threads");
  }
}
