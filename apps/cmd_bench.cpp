// ctgrad bench step: time full training steps (forward, loss, backward,
// optimiser) of one net after warm-up; prints ms_per_step and images_per_s
// (the same keys as bench/compare_pytorch.py, so the two can be compared).
// --cuda-graph: every step through train::GraphStep (train/graph_step.h), so
// the timed steps are replays of one captured graph — one launch per step
// instead of one per kernel. GraphStep's first step is eager (it allocates the
// optimiser state) and its second captures the graph; both are untimed
// warm-up here, so the warm-up is raised to cover them and ms_per_step is the
// replayed-graph time alone.
#include <algorithm>
#include <chrono>
#include <cstdio>

#include "apps/commands.h"
#include "engine/autograd.h"
#include "engine/ops.h"
#include "engine/optim.h"
#include "engine/parallel.h"
#include "engine/trace.h"
#include "kernels/cpu/sgemm.h"
#include "kernels/cpu_impl.h"
#include "kernels/cuda/impl.h"
#include "kernels/cuda/runtime.h"
#include "nets/nets.h"
#include "train/graph_step.h"

namespace ctg::apps {

namespace {
struct StepArgs {
  std::string net = "cnn2", device = "cpu", optimizer = "adam";
  std::string gemm_impl = "native", conv_impl = "native", precision;
  std::string cpu_kernels;  // reference|tuned; empty: CTGRAD_CPU_KERNELS, else tuned
  std::string cpu_gemm;     // own|avx512|avx2|openblas; empty: CTGRAD_GEMM, else the widest of ours
  int64_t batch = 9, size = 512;
  int threads = 0, steps = 5, warmup = 2;
  bool trace = false, allow_tf32 = false, cuda_graph = false;
};

void bench_step(const StepArgs& a) {
  const Device dev = parse_device(a.device);
  kernels::set_gemm_impl(kernels::parse_gemm_impl(a.gemm_impl));
  kernels::set_conv_impl(kernels::parse_conv_impl(a.conv_impl));
  if (a.allow_tf32) kernels::set_allow_tf32(true);  // else the default (CTGRAD_ALLOW_TF32, off)
  if (!a.precision.empty()) kernels::set_precision(kernels::parse_precision(a.precision));  // else CTGRAD_PRECISION
  kernels::set_cpu_impl(a.cpu_kernels.empty() ? kernels::cpu_impl()
                                              : kernels::parse_cpu_impl(a.cpu_kernels, "--cpu-kernels"));
  if (!a.cpu_gemm.empty()) kernels::cpu::set_cpu_gemm(kernels::cpu::parse_cpu_gemm(a.cpu_gemm, "--cpu-gemm"));
  set_num_threads(a.threads);
  auto model = nets::make_net(a.net, {a.size, 1, false});
  model->to(dev);
  model->train();
  std::unique_ptr<Optimizer> opt;
  if (a.optimizer == "adam") opt = std::make_unique<Adam>(model->named_parameters(), 5e-3, 1e-4);
  else if (a.optimizer == "sgd") opt = std::make_unique<SGD>(model->named_parameters(), 5e-3, 0.9, 1e-4);
  else throw Error("--optimizer: expected adam or sgd, got '" + a.optimizer + "'");
  const auto [x, y] = trace::step_batch(a.batch, a.size, dev);  // the batch `ctgrad trace` uses too
  // GraphStep refuses a CPU net (and a net with dropout) in one line naming --cuda-graph.
  std::unique_ptr<train::GraphStep> graph;
  if (a.cuda_graph) graph = std::make_unique<train::GraphStep>(*model, *opt);
  // Untimed steps: --warmup, or with --cuda-graph at least GraphStep's eager
  // step and its capture (after the traced step, which runs outside GraphStep).
  const int warmup = a.cuda_graph ? std::max(a.warmup, 2 + (a.trace ? 1 : 0)) : a.warmup;
  std::printf("net: %s\nbatch: %lld\nsize: %lld\ndevice: %s\nthreads: %d\n", a.net.c_str(), (long long)a.batch,
              (long long)a.size, dev == Device::cuda ? cuda::device_description().c_str() : "cpu", num_threads());
  if (dev == Device::cpu) std::printf("blas: %s\ncode: %s\n", blas_description().c_str(), cpu_code_description().c_str());
  if (dev == Device::cuda)
    std::printf("impl: gemm %s, conv %s, tf32 %s\nprecision: %s (our kernels: %s)\n", a.gemm_impl.c_str(),
                a.conv_impl.c_str(), kernels::allow_tf32() ? "on (cuBLAS/cuDNN)" : "off",
                kernels::precision_name(kernels::precision()),
                kernels::precision() == kernels::Precision::tf32 ? "tensor-core TF32 GEMM and implicit-GEMM conv2d"
                                                                 : "FP32 SIMT GEMM and im2col conv2d");
  std::printf("cuda_graph: %s\n", a.cuda_graph ? "on" : "off");
  if (warmup != a.warmup)
    std::printf("warmup: %d (--cuda-graph: --warmup %d raised to cover the eager step and the capture)\n", warmup,
                a.warmup);
  std::vector<double> ms;
  for (int i = 0; i < warmup + a.steps; ++i) {
    auto t0 = std::chrono::steady_clock::now();
    double loss_value;
    if (a.trace && i == 0) {  // trace the first step only: the `ctgrad trace` table, on stderr
      trace::Trace t = trace::record_training_step(*model, *opt, x, y, dev);
      t.title = a.net + ", batch " + std::to_string(a.batch) + ", " + std::to_string(a.size) + " px, " +
                device_name(dev) + ", the first step";
      std::fputs(trace::format_table(t).c_str(), stderr);
      loss_value = t.loss;
    } else if (graph) {
      loss_value = graph->step(x, y).item();  // eager, capture, then replays (the batch's shape never changes)
    } else {
      opt->zero_grad();
      Tensor loss = ops::bce_with_logits((*model)(x), y);
      autograd::backward(loss);
      opt->step();
      loss_value = loss.item();
    }
    if (dev == Device::cuda) cuda::synchronize();  // kernels are asynchronous: time them, not their launch
    double dt = std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count();
    std::fprintf(stderr, "  step %d/%d%s: %.1f ms (loss %.4f)\n", i + 1, warmup + a.steps,
                 i < warmup ? " (warm-up)" : "", dt, loss_value);
    if (i >= warmup) ms.push_back(dt);
  }
  // Every timed step must have been a replay (plus the one captured in the
  // warm-up), or ms_per_step would not be the graph's time.
  if (graph && (graph->eager_steps() != 1 || graph->replays() != a.steps + 1))
    throw Error("--cuda-graph: expected 1 eager step and " + std::to_string(a.steps + 1) + " graph launches, got " +
                std::to_string(graph->eager_steps()) + " and " + std::to_string(graph->replays()));
  std::sort(ms.begin(), ms.end());
  double median = ms[ms.size() / 2];
  std::printf("ms_per_step: %.2f\nimages_per_s: %.2f\n", median, 1000.0 * (double)a.batch / median);
}
}  // namespace

static Registrar reg([](CLI::App& app) {
  auto* bench = subcommand_group(app, "bench", "Benchmarks");
  auto* step = bench->add_subcommand("step", "Time full training steps (median after warm-up)");
  auto a = std::make_shared<StepArgs>();
  step->add_option("--net", a->net, "net name (see `ctgrad summary --help`)")->required();
  step->add_option("--batch", a->batch, "batch size")->check(CLI::PositiveNumber);
  step->add_option("--size", a->size, "input side")->check(CLI::PositiveNumber);
  step->add_option("--device", a->device, "cpu, cuda or auto");
  step->add_option("--threads", a->threads, "CPU threads for OpenMP and OpenBLAS (0: library default)");
  step->add_option("--steps", a->steps, "timed steps")->check(CLI::PositiveNumber);
  step->add_option("--warmup", a->warmup, "untimed warm-up steps")->check(CLI::NonNegativeNumber);
  step->add_option("--optimizer", a->optimizer, "adam|sgd");
  step->add_option("--gemm-impl", a->gemm_impl, "native|cublas: every CUDA GEMM on ours or cuBLAS (comparison only)");
  step->add_option("--conv-impl", a->conv_impl, "native|cudnn: CUDA conv2d on ours or cuDNN (comparison only)");
  step->add_flag("--allow-tf32", a->allow_tf32,
                 "let cuBLAS/cuDNN use TF32 tensor cores (default: full FP32, or CTGRAD_ALLOW_TF32=1)");
  step->add_option("--precision", a->precision,
                   "fp32|tf32: our CUDA GEMMs and convolutions in FP32 (SIMT) or TF32 (tensor cores); "
                   "default CTGRAD_PRECISION, else fp32")
      ->check(CLI::IsMember({"fp32", "tf32"}));
  step->add_option("--cpu-kernels", a->cpu_kernels,
                   "reference|tuned: the CPU kernels' plain reference loops or the tuned ones (kernels/cpu_impl.h; "
                   "default CTGRAD_CPU_KERNELS, else tuned)");
  step->add_option("--cpu-gemm", a->cpu_gemm,
                   "own|avx512|avx2|openblas: the CPU's float GEMM (kernels/cpu/sgemm.h; default CTGRAD_GEMM, "
                   "else the widest of ours this CPU runs)");
  step->add_flag("--trace", a->trace,
                 "print (to stderr) the trace of the first step: each forward op, each backward node and its "
                 "kernels, the optimiser step (the table of `ctgrad trace`)");
  step->add_flag("--cuda-graph", a->cuda_graph,
                 "--device cuda: time replays of one captured CUDA graph of the whole step (train/graph_step.h); "
                 "the warm-up is at least 2 steps (the eager one and the capture)");
  step->callback([a]() { bench_step(*a); });
});

}  // namespace ctg::apps
