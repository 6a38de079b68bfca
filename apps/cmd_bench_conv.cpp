// ctgrad bench conv: the CPU convolutions of one real training step, each
// timed with each implementation side by side (issue 16's per-op timings
// "before and after"). One step of the net (forward, loss, backward) runs with
// a convolution observer (kernels/cpu/conv2d_observer.h) that records every
// forward convolution's dims and how often it runs; then each distinct
// convolution is timed on its own, in three pieces, with float random inputs:
//   fwd  y  = conv(x, W)                       (no bias: it does not change the timing)
//   dW   gW += Σ_{n,i,j} gy · x-window         (conv2d_backward_cpu_tuned, only gw)
//   dX   gx += Σ W · gy                        (only gx)
// each 2·N·O·OH·OW·C·KH·KW FLOPs, median of --repeat runs after one warm-up,
// with the step's thread count. Implementations:
//   step      what a training step runs: the tuned entry points' own rules
//             (Winograd for the 3×3 stride-1 forward and dX where
//             conv2d_winograd_tile says so, else as fused)
//   fused     our SGEMM, im2col fused into its packing (Conv2dCpuTuning.fused_im2col = 1, no Winograd)
//   matrix    our SGEMM, the im2col matrix written first (fused_im2col = 0, no Winograd)
//   openblas  OpenBLAS (writes the matrix)
//   reference the plain loops of kernels/cpu/conv2d.cpp (only when --impl names it)
// The tuned ones keep the default direct-kernel rule (kernels::conv2d_use_direct),
// so few-channel shapes run kernels/cpu/conv2d_direct.cpp whatever the GEMM;
// the table says which rows do.
#include <algorithm>
#include <array>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <map>
#include <memory>
#include <mutex>
#include <random>
#include <sstream>
#include <vector>

#include "apps/commands.h"
#include "base/error.h"
#include "base/host_alloc.h"
#include "engine/autograd.h"
#include "engine/ops.h"
#include "engine/parallel.h"
#include "engine/trace.h"
#include "kernels/conv2d.h"
#include "kernels/cpu/conv2d_observer.h"
#include "kernels/cpu/gemm.h"
#include "nets/nets.h"

namespace ctg::apps {

namespace {

using kernels::Conv2dDims;
using kernels::cpu::CpuGemm;

struct ConvArgs {
  std::string net = "resnet18", impl = "step,fused,openblas";
  bool impl_given = false;
  int64_t batch = 9, size = 512;
  int threads = 0, repeat = 3;
  std::string cpu_gemm;  // own|avx512|avx2 for fused and matrix; empty: CTGRAD_GEMM, else the widest of ours
};

enum class Impl { step, fused, matrix, openblas, reference };
const char* impl_name(Impl i) {
  switch (i) {
    case Impl::step: return "step";
    case Impl::fused: return "fused";
    case Impl::matrix: return "matrix";
    case Impl::openblas: return "openblas";
    case Impl::reference: return "reference";
  }
  return "?";
}

// --impl: names from the list; fused and matrix only where our SGEMM runs
// (named explicitly on a CPU without it: an error; by default: left out).
std::vector<Impl> parse_impls(const std::string& list, bool given) {
  std::vector<Impl> out;
  std::stringstream ss(list);
  std::string item;
  while (std::getline(ss, item, ',')) {
    Impl i;
    if (item == "step") i = Impl::step;
    else if (item == "fused") i = Impl::fused;
    else if (item == "matrix") i = Impl::matrix;
    else if (item == "openblas") i = Impl::openblas;
    else if (item == "reference") i = Impl::reference;
    else throw Error("--impl: unknown implementation '" + item + "' (expected a comma-separated list of step, fused, matrix, openblas, reference)");
    if ((i == Impl::fused || i == Impl::matrix) && kernels::cpu::best_cpu_gemm() == CpuGemm::openblas) {
      if (given) throw Error("--impl " + item + ": this CPU has neither AVX-512 nor AVX2 for ctgrad's SGEMM (openblas and reference run everywhere)");
      continue;
    }
    if (std::find(out.begin(), out.end(), i) == out.end()) out.push_back(i);
  }
  if (out.empty()) throw Error("--impl: expected a comma-separated list of step, fused, matrix, openblas, reference");
  return out;
}

// The recording: distinct forward dims in the order the step first runs them,
// with their forward and backward call counts.
using Key = std::array<int64_t, 11>;  // N C H W O KH KW SH SW PH PW
std::mutex g_mutex;
std::vector<Key> g_order;
std::map<Key, std::array<int64_t, 2>> g_calls;  // [forward, backward]
void record(const Conv2dDims& d, bool backward) {
  const Key k{d.N, d.C, d.H, d.W, d.O, d.KH, d.KW, d.SH, d.SW, d.PH, d.PW};
  std::lock_guard<std::mutex> lock(g_mutex);
  auto [it, fresh] = g_calls.try_emplace(k, std::array<int64_t, 2>{0, 0});
  if (fresh) g_order.push_back(k);
  ++it->second[backward ? 1 : 0];
}
Conv2dDims dims_of(const Key& k) {
  return kernels::conv2d_dims(k[0], k[1], k[2], k[3], k[4], k[5], k[6], k[7], k[8], k[9], k[10]);
}

// Float buffers from the engine's allocator (2 MiB pages where large, as the
// step's tensors), uniform in [-1, 1).
struct Buffer {
  std::unique_ptr<float, decltype(&host_free)> p{nullptr, &host_free};
  Buffer(int64_t n, std::mt19937_64& rng) : p((float*)host_alloc((size_t)n * sizeof(float)), &host_free) {
    if (!p) throw Error("bench conv: out of memory for a " + std::to_string(n) + "-float buffer");
    std::uniform_real_distribution<float> u(-1.f, 1.f);
    for (int64_t i = 0; i < n; ++i) p.get()[i] = u(rng);
  }
  float* get() const { return p.get(); }
};

template <typename F>
double median_ms(int repeat, F&& run) {
  std::vector<double> ms;
  for (int i = 0; i <= repeat; ++i) {
    const auto t0 = std::chrono::steady_clock::now();
    run();
    const double dt = std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count();
    if (i > 0) ms.push_back(dt);  // the first run warms caches and packing buffers
  }
  std::sort(ms.begin(), ms.end());
  return ms[ms.size() / 2];
}

struct Pieces {
  double fwd, dw, dx;  // median ms
};

// The three pieces of convolution d with `impl` on the given buffers.
Pieces time_conv(const Conv2dDims& d, Impl impl, CpuGemm ours, int repeat, float* x, float* w, float* y, float* gy, float* gx,
                 float* gw) {
  kernels::cpu::set_cpu_gemm(impl == Impl::openblas ? CpuGemm::openblas : ours);
  kernels::Conv2dCpuTuning t;  // direct_max_out left at its default rule
  if (impl != Impl::step) {  // the step's own rules, else the GEMM forms alone
    t.fused_im2col = impl == Impl::fused ? 1 : 0;
    t.winograd = 0;
  }
  Pieces p{};
  if (impl == Impl::reference) {
    p.fwd = median_ms(repeat, [&] { kernels::conv2d_forward_cpu_reference<float>(x, w, nullptr, y, d); });
    p.dw = median_ms(repeat, [&] { kernels::conv2d_backward_cpu_reference<float>(x, w, gy, nullptr, gw, nullptr, d); });
    p.dx = median_ms(repeat, [&] { kernels::conv2d_backward_cpu_reference<float>(x, w, gy, gx, nullptr, nullptr, d); });
  } else {
    p.fwd = median_ms(repeat, [&] { kernels::conv2d_forward_cpu_tuned<float>(x, w, nullptr, y, d, t); });
    p.dw = median_ms(repeat, [&] { kernels::conv2d_backward_cpu_tuned<float>(x, w, gy, nullptr, gw, nullptr, d, t); });
    p.dx = median_ms(repeat, [&] { kernels::conv2d_backward_cpu_tuned<float>(x, w, gy, gx, nullptr, nullptr, d, t); });
  }
  return p;
}

// Restores the GEMM selection and clears the observer, also on an exception.
struct Restore {
  CpuGemm gemm = kernels::cpu::cpu_gemm();
  ~Restore() {
    kernels::conv2d_observer() = nullptr;
    kernels::cpu::set_cpu_gemm(gemm);
  }
};

void bench_conv(const ConvArgs& a) {
  const std::vector<Impl> impls = parse_impls(a.impl, a.impl_given);
  set_num_threads(a.threads);
  Restore restore;
  // Our SGEMM for fused and matrix: --cpu-gemm, else CTGRAD_GEMM's start
  // value, else (also where CTGRAD_GEMM=openblas) the widest this CPU runs.
  CpuGemm ours = a.cpu_gemm.empty() ? restore.gemm : kernels::cpu::parse_cpu_gemm(a.cpu_gemm, "--cpu-gemm");
  if (ours == CpuGemm::openblas) {
    if (!a.cpu_gemm.empty()) throw Error("--cpu-gemm openblas: fused and matrix run ctgrad's SGEMM (own, avx512 or avx2); OpenBLAS is --impl openblas");
    ours = kernels::cpu::best_cpu_gemm();
  }
  g_order.clear();
  g_calls.clear();
  {  // one step of the net, recording its convolutions (the optimiser runs none)
    auto model = nets::make_net(a.net, {a.size, 1, false});
    model->train();
    const auto [x, y] = trace::step_batch(a.batch, a.size, Device::cpu);
    std::fprintf(stderr, "recording the convolutions of one %s step (batch %lld, %lld px)...\n", a.net.c_str(),
                 (long long)a.batch, (long long)a.size);
    kernels::conv2d_observer() = record;
    Tensor loss = ops::bce_with_logits((*model)(x), y);
    autograd::backward(loss);
    kernels::conv2d_observer() = nullptr;
  }
  if (g_order.empty()) throw Error("--net " + a.net + ": its step runs no convolution");

  std::printf("# net %s, batch %lld, size %lld, threads %d, median of %d runs after 1 warm-up\n", a.net.c_str(),
              (long long)a.batch, (long long)a.size, num_threads(), a.repeat);
  kernels::cpu::set_cpu_gemm(ours);  // the header names the SGEMM fused and matrix run
  std::printf("# %s; %s\n", blas_description().c_str(), cpu_code_description().c_str());
  std::printf("# step: what a training step runs (the kernel column); fused: that SGEMM, im2col fused into its "
              "packing; matrix: the same, the im2col matrix written first; openblas: OpenBLAS on the matrix; "
              "reference: the plain loops\n");
  std::printf("# kernel (the step's): im2col; wino4/wino2: Winograd F(4x4,3x3)/F(2x2,3x3) for fwd and dX, dW "
              "as fused (kernels/cpu/conv2d_winograd.cpp); direct (few channels: kernels/cpu/conv2d_direct.cpp in "
              "every column but reference)\n");
  std::printf("| %4s | %4s | %5s | %5s | %4s | %5s | %-5s | %5s | %-6s |", "N", "C", "H", "W", "O", "k", "s/p",
              "calls", "kernel");
  for (Impl i : impls) {
    const std::string n = impl_name(i);
    std::printf(" %-27s | %-24s |", (n + " ms fwd/dW/dX").c_str(), (n + " GF/s fwd/dW/dX").c_str());
  }
  std::printf("\n");

  // Per implementation, ms per step by piece. The stem's dX (its input is the
  // image, which needs no gradient) never runs in training: left out of the sums.
  std::vector<Pieces> total(impls.size(), Pieces{0, 0, 0});
  std::mt19937_64 rng(1);
  size_t shape_no = 0;
  for (const Key& k : g_order) {
    const Conv2dDims d = dims_of(k);
    const int64_t calls = g_calls[k][0];
    const bool stem = d.C == 1 && d.H == a.size && d.W == a.size;
    std::fprintf(stderr, "[%zu/%zu] timing N%lld C%lld %lldx%lld -> O%lld k%lldx%lld s%lld p%lld...\n",
                 ++shape_no, g_order.size(), (long long)d.N, (long long)d.C, (long long)d.H, (long long)d.W,
                 (long long)d.O, (long long)d.KH, (long long)d.KW, (long long)d.SH, (long long)d.PH);
    std::fflush(stderr);
    const int64_t nx = d.N * d.C * d.H * d.W, nw = d.O * d.C * d.KH * d.KW, ny = d.N * d.O * d.OH * d.OW;
    Buffer x(nx, rng), w(nw, rng), y(ny, rng), gy(ny, rng), gx(nx, rng), gw(nw, rng);
    const double flop = 2.0 * (double)d.N * (double)d.O * (double)(d.OH * d.OW) * (double)(d.C * d.KH * d.KW);
    const bool direct = kernels::conv2d_use_direct(d, kernels::Conv2dCpuTuning{});
    const int wino = kernels::conv2d_winograd_tile(d, kernels::Conv2dCpuTuning{});
    const std::string kernel = direct ? "direct" : wino ? "wino" + std::to_string(wino) : "im2col";
    std::printf("| %4lld | %4lld | %5lld | %5lld | %4lld | %2lldx%-2lld | %lld/%-3lld | %5lld | %-6s |",
                (long long)d.N, (long long)d.C, (long long)d.H, (long long)d.W, (long long)d.O, (long long)d.KH,
                (long long)d.KW, (long long)d.SH, (long long)d.PH, (long long)calls, kernel.c_str());
    for (size_t i = 0; i < impls.size(); ++i) {
      const Pieces p = time_conv(d, impls[i], ours, a.repeat, x.get(), w.get(), y.get(), gy.get(), gx.get(), gw.get());
      total[i].fwd += (double)calls * p.fwd;
      total[i].dw += (double)calls * p.dw;
      if (!stem) total[i].dx += (double)calls * p.dx;
      std::printf(" %8.3f/%8.3f/%8.3f%s | %7.1f/%7.1f/%8.1f |", p.fwd, p.dw, p.dx, stem ? "*" : " ",
                  flop / (p.fwd * 1e6), flop / (p.dw * 1e6), flop / (p.dx * 1e6));
    }
    std::printf("\n");
    std::fflush(stdout);
  }
  std::printf("# * the stem's dX: timed, but a training step never runs it (the image needs no gradient), so the "
              "sums below leave it out\n");
  auto sum = [](const Pieces& p) { return p.fwd + p.dw + p.dx; };
  auto index_of = [&](Impl want) { return std::find(impls.begin(), impls.end(), want) - impls.begin(); };
  const size_t fi = (size_t)index_of(Impl::fused), mi = (size_t)index_of(Impl::matrix),
               oi = (size_t)index_of(Impl::openblas);
  for (size_t i = 0; i < impls.size(); ++i) {
    std::printf("conv_ms_per_step %s: %.2f (fwd %.2f + dW %.2f + dX %.2f)", impl_name(impls[i]), sum(total[i]),
                total[i].fwd, total[i].dw, total[i].dx);
    if (fi < impls.size() && fi != i) std::printf(" fused / this: %.2f", sum(total[fi]) / sum(total[i]));
    if (mi < impls.size() && mi != i) std::printf(" matrix / this: %.2f", sum(total[mi]) / sum(total[i]));
    if (oi < impls.size() && oi != i) std::printf(" openblas / this: %.2f", sum(total[oi]) / sum(total[i]));
    std::printf("\n");
  }
}

}  // namespace

static Registrar reg([](CLI::App& app) {
  CLI::App* bench = subcommand_group(app, "bench", "Benchmarks");
  auto* cmd = bench->add_subcommand(
      "conv", "Time the CPU convolutions of one training step (forward, dW, dX of every shape) with each implementation");
  auto a = std::make_shared<ConvArgs>();
  cmd->add_option("--net", a->net, "net name (see `ctgrad summary --help`)");
  cmd->add_option("--batch", a->batch, "batch size")->check(CLI::PositiveNumber);
  cmd->add_option("--size", a->size, "input side")->check(CLI::PositiveNumber);
  cmd->add_option("--threads", a->threads, "CPU threads for OpenMP and OpenBLAS (0: library default)");
  cmd->add_option("--repeat", a->repeat, "timed runs per piece and implementation")->check(CLI::PositiveNumber);
  CLI::Option* impl = cmd->add_option(
      "--impl", a->impl,
      "comma-separated list of step, fused, matrix, openblas, reference (default step,fused,openblas, fused only where this CPU runs our SGEMM; "
      "reference is the plain loops, far too slow for ResNet18 at 512)");
  cmd->add_option("--cpu-gemm", a->cpu_gemm,
                  "own|avx512|avx2: ctgrad's SGEMM for fused and matrix (default CTGRAD_GEMM, else the widest this "
                  "CPU runs)");
  cmd->callback([a, impl]() {
    a->impl_given = impl->count() > 0;
    bench_conv(*a);
  });
});

}  // namespace ctg::apps
