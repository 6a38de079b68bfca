// ctgrad bench kernels: each native CUDA kernel at the study's shapes (ResNet18
// at --batch and --size, one input channel; the Dense(20) net's fc1), timed
// against its cuBLAS/cuDNN alternative where one exists (kernels/cuda/impl.h).
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
#include "engine/tensor.h"
#include "kernels/add.h"
#include "kernels/batchnorm2d.h"
#include "kernels/conv2d.h"
#include "kernels/cuda/impl.h"
#include "kernels/cuda/runtime.h"
#include "kernels/linear.h"
#include "kernels/maxpool2d.h"
#include "kernels/relu.h"

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

// Device memory for one row's operands, filled with a fixed pattern in [-1, 1).
struct Buf {
  void* p = nullptr;
  int64_t n = 0;
  // fill = false: left as allocated (maxpool's int32 argmax, written by the forward).
  Buf(int64_t count, uint32_t seed, bool fill = true) : n(count) {
    static_assert(sizeof(float) == sizeof(int32_t), "Buf holds float or int32");
    p = cuda::device_alloc((size_t)count * sizeof(float));
    if (!fill) return;
    std::vector<float> h((size_t)count);
    uint32_t s = seed * 747796405u + 1u;
    for (float& v : h) s = s * 1664525u + 1013904223u, v = (float)(s >> 8) / 8388608.f - 1.f;
    cuda::copy_h2d(p, h.data(), h.size() * sizeof(float));
  }
  ~Buf() { cuda::device_free(p); }
  Buf(const Buf&) = delete;
  Buf& operator=(const Buf&) = delete;
  float* f() const { return static_cast<float*>(p); }
};

struct Impl {  // the implementations one column runs
  GemmImpl gemm = GemmImpl::native;
  ConvImpl conv = ConvImpl::native;
};

// One timed pass: `work` is FLOPs (flops = true) or bytes moved; `out` is what
// the pass writes, compared between the implementations.
struct Pass {
  const char* name;
  double work;
  bool flops;
  std::function<void()> run;
  const Buf* out = nullptr;
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

  double time_ms(const Pass& p, Impl impl) const {
    Scope scope(impl, prec);
    for (int i = 0; i < a.warmup; ++i) p.run();
    cuda::synchronize();
    const auto t0 = std::chrono::steady_clock::now();
    for (int i = 0; i < a.repeat; ++i) p.run();
    cuda::synchronize();
    return std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count() / a.repeat;
  }

  // max |alt − native| / max |native| over the pass's output, each run once from zero.
  double rel_diff(const Pass& p) const {
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

  void rows(const char* op, const std::string& shape, int count, const std::vector<Pass>& passes,
            bool has_alt) const {
    for (const Pass& p : passes) {
      const double nat = time_ms(p, Impl{});  // rates: work / (ms · 1e6) = GFLOP/s or GB/s
      std::printf("%-12s %-40s %2d  %-4s %-16s %10.3f %9.1f %-7s", op, shape.c_str(), count,
                  p.flops ? kernels::precision_name(prec) : "-", p.name, nat, p.work / (nat * 1e6),
                  p.flops ? "GFLOP/s" : "GB/s");
      const double alt_ms = has_alt ? time_ms(p, alt) : 0;
      if (has_alt)
        std::printf(" %10.3f %9.1f %7.2f %10.1e\n", alt_ms, p.work / (alt_ms * 1e6), nat / alt_ms, rel_diff(p));
      else
        std::printf(" %10s %9s %7s %10s\n", "-", "-", "-", "-");
      std::fflush(stdout);
    }
  }

  void conv2d(const char* name, int64_t C, int64_t H, int64_t O, int64_t k, int64_t s, int64_t pad, bool bias,
              int count) const {
    const int64_t N = a.batch, OH = (H + 2 * pad - k) / s + 1;
    const kernels::Conv2dDims d{N, C, H, H, O, k, k, s, s, pad, pad, OH, OH};
    Buf x(N * C * H * H, 1), w(O * C * k * k, 2), b(O, 3), y(N * O * OH * OH, 4),
        gy(N * O * OH * OH, 5), gx(N * C * H * H, 6), gw(O * C * k * k, 7), gb(O, 8);
    const float* bp = bias ? b.f() : nullptr;
    float* gbp = bias ? gb.f() : nullptr;
    const double flops = 2.0 * N * O * OH * OH * C * k * k;
    std::ostringstream shape;
    shape << name << " " << N << "x" << C << "x" << H << "x" << H << " k" << k << "s" << s << " ->" << O;
    rows("conv2d", shape.str(), count,
         {{"forward", flops, true, [&] { kernels::conv2d_forward_cuda(x.f(), w.f(), bp, y.f(), d); }, &y},
          {"backward-input", flops, true,
           [&] { kernels::conv2d_backward_cuda(x.f(), w.f(), gy.f(), gx.f(), nullptr, nullptr, d); }, &gx},
          {"backward-weight", flops, true,
           [&] { kernels::conv2d_backward_cuda(x.f(), w.f(), gy.f(), nullptr, gw.f(), gbp, d); }, &gw}},
         alt.conv == ConvImpl::cudnn || alt.gemm == GemmImpl::cublas);
  }

  void linear(int64_t I, int64_t O) const {
    const int64_t N = a.batch;
    Buf x(N * I, 1), w(O * I, 2), b(O, 3), y(N * O, 4), gy(N * O, 5), gx(N * I, 6), gw(O * I, 7), gb(O, 8);
    const double flops = 2.0 * N * I * O;
    const std::string shape = "fc1 " + std::to_string(N) + "x" + std::to_string(I) + " ->" + std::to_string(O);
    rows("linear", shape, 1,
         {{"forward", flops, true, [&] { kernels::linear_forward_cuda(x.f(), w.f(), b.f(), y.f(), N, I, O); }, &y},
          {"backward-input", flops, true,
           [&] { kernels::linear_backward_cuda(x.f(), w.f(), gy.f(), gx.f(), nullptr, nullptr, N, I, O); }, &gx},
          {"backward-weight", flops, true,
           [&] { kernels::linear_backward_cuda(x.f(), w.f(), gy.f(), nullptr, gw.f(), gb.f(), N, I, O); }, &gw}},
         alt.gemm == GemmImpl::cublas);
  }

  static std::string nchw(int64_t N, int64_t C, int64_t H) {
    return std::to_string(N) + "x" + std::to_string(C) + "x" + std::to_string(H) + "x" + std::to_string(H);
  }

  void batchnorm2d(int64_t C, int64_t H, int count) const {
    const int64_t N = a.batch, n = N * C * H * H;
    Buf x(n, 1), y(n, 2), gy(n, 3), gx(n, 4), g(C, 5), be(C, 6), rm(C, 7), rv(C, 8),
        mean(C, 9), inv(C, 10), gg(C, 11), gbe(C, 12);
    auto fwd = [&] {
      kernels::batchnorm2d_forward_cuda(x.f(), g.f(), be.f(), rm.f(), rv.f(), y.f(), mean.f(), inv.f(), N, C, H * H,
                                        true, 0.1, 1e-5);
    };
    fwd();  // mean and invstd for the backward
    rows("batchnorm2d", "train " + nchw(N, C, H), count,
         {{"forward", 12.0 * n, false, fwd},  // reads x twice, writes y
          {"backward", 24.0 * n, false,       // reads x and gy twice, reads and writes gx
           [&] {
             kernels::batchnorm2d_backward_cuda(x.f(), g.f(), mean.f(), inv.f(), gy.f(), gx.f(), gg.f(), gbe.f(), N,
                                                C, H * H, true);
           }}},
         false);
    // Issue 15: the split reduction, and the fused BN+ReLU / ReLU+BN backward
    // (y doubles as the ReLU mask: the fused forward's output).
    auto fwd_split = [&](bool relu) {
      kernels::batchnorm2d_forward_split_cuda(x.f(), g.f(), be.f(), rm.f(), rv.f(), y.f(), mean.f(), inv.f(), N, C,
                                              H * H, 0.1, 1e-5, relu);
    };
    rows("bn-split", "train " + nchw(N, C, H), count,
         {{"forward", 12.0 * n, false, [&] { fwd_split(false); }},
          {"backward", 24.0 * n, false,
           [&] {
             kernels::batchnorm2d_backward_split_cuda(x.f(), g.f(), mean.f(), inv.f(), gy.f(), nullptr, gx.f(), gg.f(),
                                                      gbe.f(), N, C, H * H, true);
           }},
          {"fwd+relu fused", 12.0 * n, false, [&] { fwd_split(true); }},
          {"relu+bwd fused", 28.0 * n, false,  // reads y (mask) as well
           [&] {
             kernels::batchnorm2d_backward_split_cuda(x.f(), g.f(), mean.f(), inv.f(), gy.f(), y.f(), gx.f(), gg.f(),
                                                      gbe.f(), N, C, H * H, true);
           }}},
         false);
  }

  void maxpool2d(int64_t C, int64_t H) const {
    const int64_t N = a.batch, OH = (H + 2 - 3) / 2 + 1, ni = N * C * H * H, no = N * C * OH * OH;
    const kernels::MaxPool2dGeometry g{N * C, H, H, OH, OH, 3, 3, 2, 2, 1, 1};
    Buf x(ni, 1), y(no, 2), arg(no, 0, false), gy(no, 3), gx(ni, 4);
    auto* am = static_cast<int32_t*>(arg.p);
    auto fwd = [&] { kernels::maxpool2d_forward_cuda(x.f(), y.f(), am, g); };
    fwd();  // argmax for the backward
    rows("maxpool2d", "3x3s2 " + nchw(N, C, H), 1,
         {{"forward", 4.0 * (ni + 2 * no), false, fwd},  // reads x, writes y and argmax
          {"backward", 4.0 * (2 * ni + 2 * no), false,   // reads argmax and gy, reads and writes gx
           [&] { kernels::maxpool2d_backward_cuda(am, gy.f(), gx.f(), g); }}},
         false);
  }

  void elementwise(int64_t C, int64_t H, int relu_count, int add_count, bool relu, bool add) const {
    const int64_t n = a.batch * C * H * H;
    Buf u(n, 1), v(n, 2), y(n, 3), gx(n, 4);
    if (relu)
      rows("relu", nchw(a.batch, C, H), relu_count,
           {{"forward", 8.0 * n, false, [&] { kernels::relu_forward_cuda(u.f(), y.f(), n); }},
            {"backward", 16.0 * n, false, [&] { kernels::relu_backward_cuda(y.f(), v.f(), gx.f(), n); }}},
           false);
    if (add && add_count > 0)
      rows("add", nchw(a.batch, C, H), add_count,
           {{"forward", 12.0 * n, false, [&] { kernels::add_forward_cuda(u.f(), v.f(), y.f(), n); }},
            {"backward", 12.0 * n, false, [&] { kernels::add_backward_cuda(v.f(), gx.f(), n); }},
            {"add+relu fwd", 12.0 * n, false, [&] { kernels::add_relu_forward_cuda(u.f(), v.f(), y.f(), n); }},
            {"add+relu bwd", 28.0 * n, false,  // reads y, gy, both gradients; writes both
             [&] { kernels::add_relu_backward_cuda(y.f(), v.f(), gx.f(), u.f(), n); }}},
           false);
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

  const std::vector<std::string> known{"conv2d", "linear", "batchnorm2d", "maxpool2d", "relu", "add"};
  std::istringstream list(a.ops);
  for (std::string op; std::getline(list, op, ',');)
    if (std::find(known.begin(), known.end(), op) == known.end())
      throw Error("--ops: unknown op '" + op + "' (expected conv2d, linear, batchnorm2d, maxpool2d, relu, add)");
  auto want = [&](const std::string& op) { return ("," + a.ops + ",").find("," + op + ",") != std::string::npos; };

  const int64_t S = a.size, h1 = (S + 6 - 7) / 2 + 1, hp = (h1 + 2 - 3) / 2 + 1;
  int64_t h[5] = {0, hp};  // layer i's side: 3x3 s2 p1 halves it (rounding up)
  for (int i = 2; i <= 4; ++i) h[i] = (h[i - 1] - 1) / 2 + 1;
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
  for (kernels::Precision prec : precs) {
  b.prec = prec;
  if (want("conv2d")) {
    b.conv2d("conv1", 1, S, 64, 7, 2, 3, false, 1);
    b.conv2d("layer1", 64, h[1], 64, 3, 1, 1, false, 4);
    for (int i = 2; i <= 4; ++i) {
      const int64_t wd = int64_t(64) << (i - 1);
      const std::string l = "layer" + std::to_string(i);
      b.conv2d((l + ".0.conv1").c_str(), wd / 2, h[i - 1], wd, 3, 2, 1, false, 1);
      b.conv2d(l.c_str(), wd, h[i], wd, 3, 1, 1, false, 3);
      b.conv2d((l + ".0.down").c_str(), wd / 2, h[i - 1], wd, 1, 2, 0, false, 1);
    }
    b.conv2d("fc(head)", 512, h[4], 1, 1, 1, 0, true, 1);
  }
  if (want("linear")) b.linear(S * S, 20);
  }
  b.prec = kernels::Precision::fp32;  // the memory-bound kernels have no precision choice
  if (want("batchnorm2d")) {
    b.batchnorm2d(64, h1, 1);
    for (int i = 1; i <= 4; ++i) b.batchnorm2d(int64_t(32) << i, h[i], i == 1 ? 4 : 5);
  }
  if (want("maxpool2d")) b.maxpool2d(64, h1);
  if (want("relu")) b.elementwise(64, h1, 1, 0, true, false);
  for (int i = 1; i <= 4 && (want("relu") || want("add")); ++i)
    b.elementwise(int64_t(32) << i, h[i], 4, 2, want("relu"), want("add"));
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
