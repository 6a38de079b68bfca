// ctgrad trace: one training step of a net, op by op and kernel by kernel —
// how backprop maps to kernels (docs/BACKPROP.md walks through its output).
//   ctgrad trace --net cnn1 [--batch 2 --size 64 --device cpu|cuda]
//                [--format table|chrome] [--out FILE] [--warmup 1] [--cpu-kernels reference|tuned]
// The table goes to stdout (or --out); --format chrome writes Chrome's
// trace-event JSON for Perfetto (ui.perfetto.dev) or chrome://tracing.
#include <cstdio>

#include "apps/commands.h"
#include "base/atomic_file.h"
#include "engine/autograd.h"
#include "engine/optim.h"
#include "engine/ops.h"
#include "engine/trace.h"
#include "kernels/cpu_impl.h"
#include "kernels/cuda/runtime.h"
#include "nets/nets.h"

namespace ctg::apps {

namespace {
struct TraceArgs {
  std::string net, device = "cpu", format = "table", out, cpu_kernels;
  int64_t batch = 2, size = 64;
  int warmup = 1;
};

void run_trace(const TraceArgs& a) {
  if (a.format != "table" && a.format != "chrome")
    throw Error("--format: expected table or chrome, got '" + a.format + "'");
  const Device dev = parse_device(a.device);
  // cpu_impl() reads CTGRAD_CPU_KERNELS: a bad value fails here, naming the variable.
  kernels::set_cpu_impl(a.cpu_kernels.empty() ? kernels::cpu_impl()
                                              : kernels::parse_cpu_impl(a.cpu_kernels, "--cpu-kernels"));
  auto model = nets::make_net(a.net, {a.size, 1, false});
  model->to(dev);
  model->train();
  // The optimiser and inputs of `ctgrad bench step` (apps/cmd_bench.cpp).
  Adam opt(model->named_parameters(), 5e-3, 1e-4);
  const auto [x, y] = trace::step_batch(a.batch, a.size, dev);
  // Untraced warm-up steps: the traced one then runs from warm allocator
  // caches and existing Adam moments, as every later step of a run does.
  for (int i = 0; i < a.warmup; ++i) {
    std::fprintf(stderr, "trace: warm-up step %d/%d (not traced)\n", i + 1, a.warmup);  // big nets take seconds
    opt.zero_grad();
    autograd::backward(ops::bce_with_logits((*model)(x), y));
    opt.step();
  }
  std::fprintf(stderr, "trace: recording one training step\n");
  trace::Trace t = trace::record_training_step(*model, opt, x, y, dev);
  t.title = a.net + ", batch " + std::to_string(a.batch) + ", " + std::to_string(a.size) + "x" +
            std::to_string(a.size) + " input, Adam, " +
            (dev == Device::cuda ? "cuda (" + cuda::device_description() + ")"
                                 : "cpu (" + std::string(kernels::cpu_impl_name(kernels::cpu_impl())) + " kernels)") +
            (a.warmup ? ", after " + std::to_string(a.warmup) + " warm-up step(s)" : ", the first step");
  const std::string text = a.format == "chrome" ? trace::format_chrome(t) : trace::format_table(t);
  if (a.out.empty()) {
    std::fputs(text.c_str(), stdout);
  } else {
    write_file_atomic(a.out, text);
    std::fprintf(stderr, "wrote %s (%s, %zu ops, %zu kernels)%s\n", a.out.c_str(), a.format.c_str(), t.ops.size(),
                 t.kernels.size(), a.format == "chrome" ? ": open it in ui.perfetto.dev or chrome://tracing" : "");
  }
}
}  // namespace

static Registrar reg([](CLI::App& app) {
  auto* cmd = app.add_subcommand(
      "trace",
      "Trace one training step: every forward op (module, shapes, FLOPs, bytes, saved for backward, time), every "
      "backward node and the kernels it launched, the optimiser step and totals");
  auto a = std::make_shared<TraceArgs>();
  cmd->add_option("--net", a->net, "net name (see `ctgrad summary --help`)")->required();
  cmd->add_option("--batch", a->batch, "batch size (default 2)")->check(CLI::PositiveNumber);
  cmd->add_option("--size", a->size, "input side in pixels (default 64)")->check(CLI::PositiveNumber);
  cmd->add_option("--device", a->device, "cpu, cuda or auto (CUDA times: the device is synchronised per kernel)");
  cmd->add_option("--format", a->format, "table (text) or chrome (trace-event JSON for Perfetto/chrome://tracing)");
  cmd->add_option("--out", a->out, "write to FILE (atomically) instead of stdout");
  cmd->add_option("--cpu-kernels", a->cpu_kernels,
                  "reference|tuned: the plain reference loops or the tuned CPU kernels (default "
                  "CTGRAD_CPU_KERNELS, else tuned)");
  cmd->add_option("--warmup", a->warmup, "untraced steps before the traced one (default 1)")
      ->check(CLI::NonNegativeNumber);
  cmd->callback([a]() { run_trace(*a); });
});

}  // namespace ctg::apps
