// ctgrad bench gemm: the CPU GEMMs of one real training step, timed with each
// implementation side by side. One step of the net (forward, loss, backward)
// runs with a GEMM observer (kernels/cpu/gemm.h) that records every float
// cpu::gemm's shape; then each distinct shape is timed on its own with our
// AVX-512 and AVX2 kernels and OpenBLAS (those this CPU runs, or --impl),
// median of --repeat runs after one warm-up, with the step's thread count.
// Prints GFLOP/s per shape and the GEMM time of a whole step per
// implementation (Σ calls × median), with the ratio to OpenBLAS.
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <map>
#include <mutex>
#include <random>
#include <sstream>
#include <tuple>
#include <vector>

#include "apps/commands.h"
#include "base/error.h"
#include "engine/autograd.h"
#include "engine/ops.h"
#include "engine/parallel.h"
#include "engine/trace.h"
#include "kernels/cpu/gemm.h"
#include "nets/nets.h"

namespace ctg::apps {

namespace {

struct GemmArgs {
  std::string net = "resnet18", impl = "all";
  int64_t batch = 9, size = 512;
  int threads = 0, repeat = 3;
};

using Shape = std::tuple<bool, bool, int64_t, int64_t, int64_t, bool>;  // ta, tb, M, N, K, beta ≠ 0
std::mutex g_mutex;
std::map<Shape, int64_t> g_calls;
void record(bool ta, bool tb, int64_t M, int64_t N, int64_t K, bool beta_nonzero) {
  std::lock_guard<std::mutex> lock(g_mutex);
  ++g_calls[Shape{ta, tb, M, N, K, beta_nonzero}];
}

std::vector<kernels::cpu::CpuGemm> parse_impls(const std::string& list) {
  using kernels::cpu::CpuGemm;
  std::vector<CpuGemm> out;
  if (list == "all") {
    for (CpuGemm g : {CpuGemm::avx512, CpuGemm::avx2, CpuGemm::openblas})
      if (kernels::cpu::cpu_gemm_available(g)) out.push_back(g);
    return out;
  }
  std::stringstream ss(list);
  std::string item;
  while (std::getline(ss, item, ',')) out.push_back(kernels::cpu::parse_cpu_gemm(item, "--impl"));
  if (out.empty()) throw Error("--impl: expected all or a comma-separated list of avx512, avx2, openblas");
  return out;
}

// Median milliseconds of one GEMM of this shape with `impl` (tight strides).
double time_shape(const Shape& s, kernels::cpu::CpuGemm impl, int repeat, std::mt19937_64& rng) {
  const auto [ta, tb, M, N, K, beta_nonzero] = s;
  std::uniform_real_distribution<float> u(-1.f, 1.f);
  std::vector<float> A((size_t)(M * K)), B((size_t)(K * N)), C((size_t)(M * N));
  for (float& v : A) v = u(rng);
  for (float& v : B) v = u(rng);
  for (float& v : C) v = u(rng);
  const int64_t lda = ta ? M : K, ldb = tb ? K : N;
  kernels::cpu::set_cpu_gemm(impl);
  std::vector<double> ms;
  for (int i = 0; i <= repeat; ++i) {
    const auto t0 = std::chrono::steady_clock::now();
    kernels::cpu::gemm(ta, tb, M, N, K, 1.f, A.data(), lda, B.data(), ldb, beta_nonzero ? 1.f : 0.f, C.data(), N);
    const double dt = std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count();
    if (i > 0) ms.push_back(dt);  // the first run warms caches and packing buffers
  }
  std::sort(ms.begin(), ms.end());
  return ms[ms.size() / 2];
}

void bench_gemm(const GemmArgs& a) {
  using kernels::cpu::CpuGemm;
  const std::vector<CpuGemm> impls = parse_impls(a.impl);
  set_num_threads(a.threads);
  const CpuGemm before = kernels::cpu::cpu_gemm();
  {  // one step of the net, recording its GEMMs (the optimiser runs none)
    auto model = nets::make_net(a.net, {a.size, 1, false});
    model->train();
    const auto [x, y] = trace::step_batch(a.batch, a.size, Device::cpu);
    std::fprintf(stderr, "recording the GEMMs of one %s step (batch %lld, %lld px)...\n", a.net.c_str(),
                 (long long)a.batch, (long long)a.size);
    kernels::cpu::gemm_observer() = record;
    try {
      Tensor loss = ops::bce_with_logits((*model)(x), y);
      autograd::backward(loss);
    } catch (...) {
      kernels::cpu::gemm_observer() = nullptr;
      throw;
    }
    kernels::cpu::gemm_observer() = nullptr;
  }
  if (g_calls.empty()) throw Error("--net " + a.net + ": its step runs no CPU GEMM (its convolutions are direct)");
  std::printf("# net %s, batch %lld, size %lld, threads %d, median of %d runs after 1 warm-up\n", a.net.c_str(),
              (long long)a.batch, (long long)a.size, num_threads(), a.repeat);
  std::printf("# %s; %s\n", blas_description().c_str(), cpu_code_description().c_str());
  std::printf("| %-2s %-2s | %6s | %7s | %6s | %4s | %5s |", "ta", "tb", "M", "N", "K", "beta", "calls");
  for (CpuGemm g : impls) std::printf(" %9s GF/s |", kernels::cpu::cpu_gemm_name(g));
  std::printf("\n");
  std::vector<double> total(impls.size(), 0.0);
  std::mt19937_64 rng(1);
  for (const auto& [s, calls] : g_calls) {
    const auto [ta, tb, M, N, K, beta_nonzero] = s;
    const double flop = 2.0 * (double)M * (double)N * (double)K;
    std::printf("| %-2s %-2s | %6lld | %7lld | %6lld | %4d | %5lld |", ta ? "T" : "N", tb ? "T" : "N", (long long)M,
                (long long)N, (long long)K, beta_nonzero ? 1 : 0, (long long)calls);
    for (size_t i = 0; i < impls.size(); ++i) {
      const double ms = time_shape(s, impls[i], a.repeat, rng);
      total[i] += (double)calls * ms;
      std::printf(" %14.1f |", flop / (ms * 1e6));
    }
    std::printf("\n");
    std::fflush(stdout);
  }
  kernels::cpu::set_cpu_gemm(before);
  const auto ob = std::find(impls.begin(), impls.end(), CpuGemm::openblas);
  for (size_t i = 0; i < impls.size(); ++i) {
    std::printf("gemm_ms_per_step %s: %.1f", kernels::cpu::cpu_gemm_name(impls[i]), total[i]);
    if (ob != impls.end()) std::printf(" (OpenBLAS / this: %.2f)", total[(size_t)(ob - impls.begin())] / total[i]);
    std::printf("\n");
  }
}

}  // namespace

static Registrar reg([](CLI::App& app) {
  CLI::App* bench = subcommand_group(app, "bench", "Benchmarks");
  auto* cmd = bench->add_subcommand(
      "gemm", "Time the CPU GEMMs of one training step (every shape the step runs) with each implementation");
  auto a = std::make_shared<GemmArgs>();
  cmd->add_option("--net", a->net, "net name (see `ctgrad summary --help`)");
  cmd->add_option("--batch", a->batch, "batch size")->check(CLI::PositiveNumber);
  cmd->add_option("--size", a->size, "input side")->check(CLI::PositiveNumber);
  cmd->add_option("--threads", a->threads, "CPU threads for OpenMP and OpenBLAS (0: library default)");
  cmd->add_option("--repeat", a->repeat, "timed runs per shape and implementation")->check(CLI::PositiveNumber);
  cmd->add_option("--impl", a->impl,
                  "all (every implementation this CPU runs) or a comma-separated list of avx512, avx2, openblas");
  cmd->callback([a]() { bench_gemm(*a); });
});

}  // namespace ctg::apps
