// ctgrad bench kernels: each native CUDA kernel at the study's shapes (ResNet18
// at --batch and --size, one input channel; the Dense(20) net's fc1), timed
// against its cuBLAS/cuDNN alternative where one exists (kernels/cuda/impl.h).
// The rows are the op table's bench cases (engine/op_table.h: each op's
// shapes, passes and FLOP/byte counts are written once, in
// engine/op_table/<family>.cpp, beside its gradcheck and CUDA-vs-CPU cases).
//
// Compute-bound rows (conv2d, linear): forward, backward-input, backward-weight
// (with the bias gradient where the layer has a bias), as GFLOP/s from the
// product count 2·(outputs)·(reduction length). Each row also runs both
// implementations once on the same inputs and prints their largest difference
// relative to the largest native value, a check that the two compute the same.
// Memory-bound rows (batchnorm2d in training mode, maxpool2d 3×3 s2, relu, add)
// have no alternative here; their GB/s counts the bytes each kernel must move
// (e.g. relu backward reads y, gy and gx and writes gx: 16 bytes per element).
//
// Times are the mean of --repeat back-to-back runs after --warmup runs,
// bracketed by cuda::synchronize() and steady_clock.
//
// --precision tf32|fp32|both (default both): the compute-bound rows run once
// per precision, stated in each row — tf32: our tensor-core kernels
// (kernels/cuda/gemm_tc.cu, conv2d_tc.cu) against cuBLAS/cuDNN with TF32
// allowed; fp32: our SIMT kernels against cuBLAS/cuDNN in full FP32. The
// memory-bound rows add the issue-15 kernels: batchnorm2d split over blocks per
// channel, BN+ReLU fused, ReLU-backward+BN-backward fused, add+ReLU fused.
#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <functional>
#include <sstream>
#include <vector>

#include "apps/commands.h"
#include "engine/op_table.h"
#include "engine/tensor.h"
#include "kernels/cuda/impl.h"
#include "kernels/cuda/runtime.h"

namespace ctg::apps {

namespace {
using kernels::ConvImpl;
using kernels::GemmImpl;

struct KernelArgs {
  int64_t batch = 15, size = 512;
  int repeat = 10, warmup = 2;
  std::string ops = "conv2d,linear,batchnorm2d,maxpool2d,relu,add", device = "cuda";
  std::string gemm_impl = "auto", conv_impl = "auto";
  bool allow_tf32 = false;
  std::string precision = "both";
};

using op_table::BenchPass;

struct Impl {  // the implementations one column runs
  GemmImpl gemm = GemmImpl::native;
  ConvImpl conv = ConvImpl::native;
};

struct Bench {
  const KernelArgs& a;
  Impl alt;  // what the alt column runs
  kernels::Precision prec = kernels::Precision::fp32;  // ours, and TF32 allowed or not in the alternatives

  // Native: our kernels at `prec`; alt: cuBLAS/cuDNN with TF32 allowed exactly when prec is tf32.
  struct Scope {
    kernels::ScopedGemmImpl g;
    kernels::ScopedConvImpl c;
    kernels::ScopedPrecision p;
    bool saved_tf32;
    Scope(Impl impl, kernels::Precision prec)
        : g(impl.gemm), c(impl.conv), p(prec), saved_tf32(kernels::allow_tf32()) {
      kernels::set_allow_tf32(prec == kernels::Precision::tf32);
    }
    ~Scope() { kernels::set_allow_tf32(saved_tf32); }
  };

  double time_ms(const BenchPass& p, Impl impl) const {
    Scope scope(impl, prec);
    for (int i = 0; i < a.warmup; ++i) p.run();
    cuda::synchronize();
    const auto t0 = std::chrono::steady_clock::now();
    for (int i = 0; i < a.repeat; ++i) p.run();
    cuda::synchronize();
    return std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count() / a.repeat;
  }

  // max |alt − native| / max |native| over the pass's output, each run once from zero.
  double rel_diff(const BenchPass& p) const {
    std::vector<float> r[2];
    for (int k = 0; k < 2; ++k) {
      const Impl impl = k == 0 ? Impl{} : alt;
      Scope scope(impl, prec);
      cuda::memset_zero(p.out->p, (size_t)p.out->n * sizeof(float));
      p.run();
      r[k].resize((size_t)p.out->n);
      cuda::copy_d2h(r[k].data(), p.out->p, r[k].size() * sizeof(float));
    }
    double diff = 0, scale = 0;
    for (size_t i = 0; i < r[0].size(); ++i) {
      const double e = std::fabs((double)r[1][i] - r[0][i]);  // a NaN on the alt side is the worst difference
      diff = std::isnan(e) ? INFINITY : std::max(diff, e), scale = std::max(scale, (double)std::fabs(r[0][i]));
    }
    return scale > 0 ? diff / scale : diff;
  }

  bool has_alt(op_table::Alt a) const {
    if (a == op_table::Alt::conv) return alt.conv == ConvImpl::cudnn || alt.gemm == GemmImpl::cublas;
    return a == op_table::Alt::gemm && alt.gemm == GemmImpl::cublas;
  }

  void rows(const op_table::BenchRows& r) const {
    const bool with_alt = has_alt(r.alt);
    for (const BenchPass& p : r.passes) {
      const double nat = time_ms(p, Impl{});  // rates: work / (ms · 1e6) = GFLOP/s or GB/s
      std::printf("%-12s %-40s %2d  %-4s %-16s %10.3f %9.1f %-7s", r.op.c_str(), r.shape.c_str(), r.count,
                  p.flops ? kernels::precision_name(prec) : "-", p.name.c_str(), nat, p.work / (nat * 1e6),
                  p.flops ? "GFLOP/s" : "GB/s");
      const double alt_ms = with_alt ? time_ms(p, alt) : 0;
      if (with_alt)
        std::printf(" %10.3f %9.1f %7.2f %10.1e\n", alt_ms, p.work / (alt_ms * 1e6), nat / alt_ms, rel_diff(p));
      else
        std::printf(" %10s %9s %7s %10s\n", "-", "-", "-", "-");
      std::fflush(stdout);
    }
  }

  // One bench case: its buffers live while its rows run.
  void run_case(const op_table::OpCase& k) const {
    op_table::BenchSetup setup;
    k.bench_setup(setup);
    for (const op_table::BenchRows& r : setup.rows) rows(r);
  }
};

void bench_kernels(const KernelArgs& a) {
  if (a.device != "cuda")
    throw Error("--device: bench kernels times CUDA kernels; expected cuda, got '" + a.device + "'");
  if (!cuda::available())  // one line; the CPU has no kernels to compare
    throw Error("bench kernels: " + cuda::device_description() +
                (cuda::is_emulated() ? "; set CTGRAD_CUDA_EMULATE=1 for a smoke run on the CPU emulation"
                                     : "; this command needs a GPU"));
  if (a.size < 32) throw Error("--size: ResNet18 needs an input of at least 32, got " + std::to_string(a.size));
  if (cuda::is_emulated() && (a.size > 128 || a.batch > 2))
    throw Error("bench kernels: --size " + std::to_string(a.size) + " --batch " + std::to_string(a.batch) +
                " is too big for the CPU emulation (at most --size 128 --batch 2); "
                "use --size 64 --batch 1 for a smoke run");
  if (a.allow_tf32) kernels::set_allow_tf32(true);  // else the default (CTGRAD_ALLOW_TF32, off)
  Impl alt;
  alt.gemm = a.gemm_impl == "auto" ? (kernels::cublas_available() ? GemmImpl::cublas : GemmImpl::native)
                                   : kernels::parse_gemm_impl(a.gemm_impl);
  alt.conv = a.conv_impl == "auto" ? (kernels::cudnn_available() ? ConvImpl::cudnn : ConvImpl::native)
                                   : kernels::parse_conv_impl(a.conv_impl);
  { kernels::ScopedGemmImpl g(alt.gemm); kernels::ScopedConvImpl c(alt.conv); }  // unavailable: a clear error now
  std::vector<kernels::Precision> precs;
  if (a.precision == "both") precs = {kernels::Precision::tf32, kernels::Precision::fp32};
  else precs = {kernels::parse_precision(a.precision)};

  // The ops the table has bench cases for, in its order.
  const op_table::StudySize study{a.batch, a.size};
  std::vector<std::pair<std::string, std::vector<op_table::OpCase>>> benched;
  std::string known;
  for (const op_table::OpEntry& e : op_table::entries()) {
    std::vector<op_table::OpCase> cases;
    for (op_table::OpCase& k : e.cases(study))
      if (k.bench) cases.push_back(std::move(k));
    if (cases.empty()) continue;
    known += (known.empty() ? "" : ", ") + e.op;
    benched.emplace_back(e.op, std::move(cases));
  }
  std::istringstream list(a.ops);
  for (std::string op; std::getline(list, op, ',');)
    if (std::none_of(benched.begin(), benched.end(), [&](const auto& b) { return b.first == op; }))
      throw Error("--ops: unknown op '" + op + "' (expected " + known + ")");
  auto want = [&](const std::string& op) { return ("," + a.ops + ",").find("," + op + ",") != std::string::npos; };

  const int64_t S = a.size;
  std::printf("bench kernels: ResNet18 at batch %lld, %lldx%lld, 1 channel; Dense(20) fc1\n", (long long)a.batch,
              (long long)S, (long long)S);
  std::printf("device: %s\n", cuda::device_description().c_str());
  if (cuda::is_emulated())
    std::printf("NOTE: the CUDA kernels run on the CPU emulation: these timings are of the emulation and are "
                "meaningless as GPU performance (a smoke run of the command)\n");
  std::printf("native: our kernels (kernels/cuda/*.cu); alt: gemm=%s, conv=%s (%s; %s)\n", kernels::impl_name(alt.gemm),
              kernels::impl_name(alt.conv), kernels::cublas_status().c_str(), kernels::cudnn_status().c_str());
  std::printf("precision (prec column): tf32 = our tensor-core kernels vs cuBLAS/cuDNN with TF32 allowed; "
              "fp32 = our SIMT kernels vs full-FP32 cuBLAS/cuDNN\n");
  std::printf("time: mean of %d runs after %d warm-up; n = uses in the net; ratio = native/alt; "
              "diff = max|alt-native|/max|native|\n\n",
              a.repeat, a.warmup);
  std::printf("%-12s %-40s %2s  %-4s %-16s %10s %9s %-7s %10s %9s %7s %10s\n", "op", "shape", "n", "prec", "pass",
              "native ms", "rate", "unit", "alt ms", "rate", "ratio", "diff");
  Bench b{a, alt};
  // Compute-bound cases (FLOP counts) once per precision; the memory-bound
  // kernels have no precision choice and run once, as fp32.
  auto compute_bound = [](const op_table::OpCase& k) { return k.flops > 0; };
  for (kernels::Precision prec : precs) {
    b.prec = prec;
    for (const auto& [op, cases] : benched)
      if (want(op))
        for (const op_table::OpCase& k : cases)
          if (compute_bound(k)) b.run_case(k);
  }
  b.prec = kernels::Precision::fp32;
  for (const auto& [op, cases] : benched)
    if (want(op))
      for (const op_table::OpCase& k : cases)
        if (!compute_bound(k)) b.run_case(k);
}
}  // namespace

static Registrar reg([](CLI::App& app) {
  auto* bench = subcommand_group(app, "bench", "Benchmarks");
  auto* k = bench->add_subcommand("kernels", "Time each native CUDA kernel against cuBLAS/cuDNN at ResNet18's shapes");
  auto a = std::make_shared<KernelArgs>();
  k->add_option("--batch", a->batch, "batch size")->check(CLI::PositiveNumber);
  k->add_option("--size", a->size, "input side")->check(CLI::PositiveNumber);
  auto* rep = k->add_option("--repeat", a->repeat, "timed runs per pass")->check(CLI::PositiveNumber);
  auto* warm = k->add_option("--warmup", a->warmup, "untimed runs first")->check(CLI::NonNegativeNumber);
  k->add_option("--ops", a->ops, "comma-separated: conv2d,linear,batchnorm2d,maxpool2d,relu,add");
  k->add_option("--device", a->device, "cuda (the only device these kernels run on)");
  k->add_option("--gemm-impl", a->gemm_impl, "alt column's GEMM: auto (cublas when available)|native|cublas");
  k->add_option("--conv-impl", a->conv_impl, "alt column's conv2d: auto (cudnn when available)|native|cudnn");
  k->add_flag("--allow-tf32", a->allow_tf32,
              "(ignored: --precision decides TF32 for both columns)");
  k->add_option("--precision", a->precision,
                "tf32|fp32|both: compute rows with our tensor-core kernels vs TF32 cuBLAS/cuDNN, our FP32 kernels vs "
                "FP32 ones, or both (default)")
      ->check(CLI::IsMember({"tf32", "fp32", "both"}));
  k->callback([a, rep, warm]() {
    // On the emulation one run per pass is plenty unless asked otherwise.
    if (cuda::is_emulated() && rep->count() == 0) a->repeat = 1;
    if (cuda::is_emulated() && warm->count() == 0) a->warmup = 0;
    bench_kernels(*a);
  });
});

}  // namespace ctg::apps
