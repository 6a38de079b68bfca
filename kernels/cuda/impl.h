// Run-time alternatives behind the CUDA kernels' entry points, for comparison
// only; our own kernels are the default.
//   --gemm-impl native|cublas  every gemm_cuda call (linear's three products,
//                              conv2d's im2col GEMMs) goes to cuBLAS instead of
//                              our tiled SGEMM (kernels/cuda/gemm.cu).
//   --conv-impl native|cudnn   conv2d_forward_cuda / conv2d_backward_cuda as a
//                              whole go to cuDNN (no im2col of ours at all).
// The setting is process-wide; set it before the work starts (it is read at
// each call, from the thread that launches the kernels).
//
// Two backends, linked into different executables like kernels/cuda/runtime.h:
//   kernels/cuda/impl_native.cu — nvcc: the cuBLAS and cuDNN handles (created
//       lazily on first use, bound to the compute stream) and the calls;
//   kernels/cuda/impl_emu.cpp   — the CPU emulation: the alternatives do not
//       exist there, and selecting one throws a ctg::Error saying so.
//
// Precision: the alternatives run full FP32 by default so that they compute
// what our kernels compute. (cuBLAS's Sgemm is FP32 unless asked for TF32;
// cuDNN's default math mode lets float convolutions use TF32 tensor cores on
// sm_80 and later, Hopper included, so we set CUDNN_FMA_MATH.) set_allow_tf32
// or CTGRAD_ALLOW_TF32=1 lets both use TF32 tensor cores, like PyTorch's
// allow_tf32 — faster, with a 10-bit mantissa in the products.
//
// Precision of OUR kernels (--precision fp32|tf32, CTGRAD_PRECISION):
//   fp32 — the hand-written FP32 SIMT GEMM and im2col convolution (the
//          default on the emulation, and what the tests hold against the CPU
//          with FP32 tolerances: tests/main.cpp sets CTGRAD_PRECISION=fp32);
//   tf32 — the tensor-core GEMM (kernels/cuda/gemm_tc.cu) for every gemm_cuda
//          call and the implicit-GEMM convolutions (kernels/cuda/conv2d_tc.cu):
//          operands rounded to TF32 (10-bit mantissa, cvt.rna), FP32 accumulate,
//          as PyTorch's cuDNN default (allow_tf32) computes. The default on a
//          real GPU, as cuDNN's convolutions in PyTorch.
// Independent of set_allow_tf32, which concerns cuBLAS/cuDNN only.
#pragma once
#include <atomic>
#include <cstdint>
#include <cstdlib>
#include <string>

#include "base/error.h"
#include "kernels/conv2d.h"
#include "kernels/cuda/gemm.h"
#include "kernels/cuda/runtime.h"

namespace ctg::kernels {

enum class GemmImpl { native, cublas };
enum class ConvImpl { native, cudnn };

// Throws ctg::Error (saying why) when the alternative cannot be used here.
void set_gemm_impl(GemmImpl impl);
GemmImpl gemm_impl();
void set_conv_impl(ConvImpl impl);
ConvImpl conv_impl();

// Whether the alternative can be selected; the *_status() line says which
// library version answered, or why not (no GPU, emulated build, no libcudnn).
bool cublas_available();
bool cudnn_available();
std::string cublas_status();
std::string cudnn_status();

// TF32 tensor cores for the alternatives (default: off, or CTGRAD_ALLOW_TF32=1).
void set_allow_tf32(bool on);
bool allow_tf32();

// The entry points the dispatch calls (same semantics as gemm_cuda and
// conv2d_{forward,backward}_cuda: row-major, beta = 0 never reads C, backward
// adds into gw/gb and into gx unless gx_accumulate is false, a first write).
// The emulated backend's versions throw.
void gemm_cublas(bool ta, bool tb, int64_t M, int64_t N, int64_t K, float alpha, const float* A, int64_t lda,
                 const float* B, int64_t ldb, float beta, float* C, int64_t ldc, const GemmBatch& batch);
void conv2d_forward_cudnn(const float* x, const float* w, const float* b, float* y, const Conv2dDims& d);
void conv2d_backward_cudnn(const float* x, const float* w, const float* gy, float* gx, float* gw, float* gb,
                           const Conv2dDims& d, bool gx_accumulate = true);

inline const char* impl_name(GemmImpl i) { return i == GemmImpl::cublas ? "cublas" : "native"; }
inline const char* impl_name(ConvImpl i) { return i == ConvImpl::cudnn ? "cudnn" : "native"; }

// The flag values; anything else is a ctg::Error naming the flag.
inline GemmImpl parse_gemm_impl(const std::string& v, const std::string& flag = "--gemm-impl") {
  if (v == "native") return GemmImpl::native;
  if (v == "cublas") return GemmImpl::cublas;
  throw Error(flag + ": expected native or cublas, got '" + v + "'");
}
inline ConvImpl parse_conv_impl(const std::string& v, const std::string& flag = "--conv-impl") {
  if (v == "native") return ConvImpl::native;
  if (v == "cudnn") return ConvImpl::cudnn;
  throw Error(flag + ": expected native or cudnn, got '" + v + "'");
}

enum class Precision { fp32, tf32 };
inline const char* precision_name(Precision p) { return p == Precision::tf32 ? "tf32" : "fp32"; }
inline Precision parse_precision(const std::string& v, const std::string& flag = "--precision") {
  if (v == "fp32") return Precision::fp32;
  if (v == "tf32") return Precision::tf32;
  throw Error(flag + ": expected fp32 or tf32, got '" + v + "'");
}
namespace detail {
// One process-wide setting (an inline function's static is one object in every
// translation unit); CTGRAD_PRECISION gives the starting value, read once;
// without it, TF32 on a real GPU and FP32 on the emulation (where TF32 would
// only cost time: its rounding is emulated in software).
inline std::atomic<int>& precision_flag() {
  static std::atomic<int> p{[] {
    const char* v = std::getenv("CTGRAD_PRECISION");
    if (v && *v) return (int)parse_precision(v, "CTGRAD_PRECISION");
    return (int)(cuda::is_emulated() ? Precision::fp32 : Precision::tf32);
  }()};
  return p;
}
}  // namespace detail
inline void set_precision(Precision p) { detail::precision_flag() = (int)p; }
inline Precision precision() { return (Precision)detail::precision_flag().load(); }

class ScopedPrecision {
 public:
  explicit ScopedPrecision(Precision p) : prev_(precision()) { set_precision(p); }
  ~ScopedPrecision() { set_precision(prev_); }
  ScopedPrecision(const ScopedPrecision&) = delete;
  ScopedPrecision& operator=(const ScopedPrecision&) = delete;

 private:
  Precision prev_;
};

// Selects an implementation for a scope and restores the previous one on exit
// (restoring cannot fail: the previous value was accepted when it was set).
class ScopedGemmImpl {
 public:
  explicit ScopedGemmImpl(GemmImpl impl) : prev_(gemm_impl()) { set_gemm_impl(impl); }
  ~ScopedGemmImpl() { set_gemm_impl(prev_); }
  ScopedGemmImpl(const ScopedGemmImpl&) = delete;
  ScopedGemmImpl& operator=(const ScopedGemmImpl&) = delete;

 private:
  GemmImpl prev_;
};
class ScopedConvImpl {
 public:
  explicit ScopedConvImpl(ConvImpl impl) : prev_(conv_impl()) { set_conv_impl(impl); }
  ~ScopedConvImpl() { set_conv_impl(prev_); }
  ScopedConvImpl(const ScopedConvImpl&) = delete;
  ScopedConvImpl& operator=(const ScopedConvImpl&) = delete;

 private:
  ConvImpl prev_;
};

}  // namespace ctg::kernels
