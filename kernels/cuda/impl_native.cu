// The native backend of kernels/cuda/impl.h (compiled by nvcc only): cuBLAS
// and cuDNN behind our entry points, for comparison with our own kernels.
// Every cuBLAS/cuDNN status is checked and a failure names the call and shape.
//
// Handles: one cuBLAS and one cuDNN handle, created on first use (after the
// device is known to exist), bound to the compute stream before every call, and
// never destroyed (a static destroyed after the CUDA context at exit would
// fail). A mutex serialises their use; the engine launches from one thread.
//
// cuBLAS: row-major C = op(A)·op(B) is column-major Cᵀ = op(B)ᵀ·op(A)ᵀ, and a
// row-major X with row stride ld is the column-major Xᵀ with the same ld; so
// each call passes (B, A), (N, M) with the transposes unchanged. The sum mode
// (one C += over the batch) is a loop of Sgemm calls, the first with the
// caller's beta and the rest with beta = 1: stream-ordered, deterministic.
//
// cuDNN: NCHW float32 descriptors; the algorithm is cuDNN's first supported
// choice from cudnnGet*Algorithm_v7 (its heuristics, no trial runs: what
// PyTorch does with cudnn.benchmark = False), cached per shape. Backward adds
// into gx/gw/gb as ours does: beta = 1. Workspace comes from the caching device
// allocator and returns to it in stream order.
//
// Precision: see impl.h. Without TF32, cuBLAS runs CUBLAS_DEFAULT_MATH (full
// FP32 for Sgemm) and cuDNN's descriptor gets CUDNN_FMA_MATH (its default math
// would let float convolutions use TF32 tensor cores on Hopper).
#include <cublas_v2.h>
#include <cuda_runtime.h>
#if CTGRAD_HAVE_CUDNN
#include <cudnn.h>
#endif

#include <algorithm>
#include <array>
#include <atomic>
#include <climits>
#include <cstdlib>
#include <cstring>
#include <map>
#include <mutex>
#include <string>

#include "kernels/cuda/impl.h"
#include "kernels/cuda/runtime.h"

namespace ctg::kernels {

namespace {
std::atomic<GemmImpl> g_gemm{GemmImpl::native};
std::atomic<ConvImpl> g_conv{ConvImpl::native};
std::atomic<bool>& tf32_flag() {
  static std::atomic<bool> on{[] {
    const char* v = std::getenv("CTGRAD_ALLOW_TF32");
    return v && *v && std::strcmp(v, "0") != 0;
  }()};
  return on;
}
cudaStream_t stream() { return static_cast<cudaStream_t>(cuda::compute_stream()); }

// ---- cuBLAS ------------------------------------------------------------------
void check_cublas(cublasStatus_t st, const char* call, const std::string& where) {
  if (st != CUBLAS_STATUS_SUCCESS)
    throw Error(std::string("cuBLAS: ") + call + " failed: " + cublasGetStatusString(st) + where);
}

struct Cublas {
  cublasHandle_t h = nullptr;
  std::string status;
  std::mutex mu;
  Cublas() {
    if (!cuda::available()) {
      status = "cuBLAS unavailable: " + cuda::device_description();
      return;
    }
    const cublasStatus_t st = cublasCreate(&h);
    if (st != CUBLAS_STATUS_SUCCESS) {
      h = nullptr;
      status = std::string("cuBLAS unavailable: cublasCreate failed: ") + cublasGetStatusString(st);
      return;
    }
    int v = 0;
    check_cublas(cublasGetVersion(h, &v), "cublasGetVersion", "");
    check_cublas(cublasSetPointerMode(h, CUBLAS_POINTER_MODE_HOST), "cublasSetPointerMode", "");
    status = "cuBLAS " + std::to_string(v / 10000) + "." + std::to_string(v / 100 % 100) + "." +
             std::to_string(v % 100);
  }
};
Cublas& cublas() {
  static Cublas* c = new Cublas;  // never destroyed (see the top)
  return *c;
}
}  // namespace

void set_gemm_impl(GemmImpl impl) {
  if (impl == GemmImpl::cublas && !cublas_available()) throw Error("--gemm-impl cublas: " + cublas_status());
  g_gemm = impl;
}
GemmImpl gemm_impl() { return g_gemm; }
bool cublas_available() { return cublas().h != nullptr; }
std::string cublas_status() { return cublas().status; }
void set_allow_tf32(bool on) { tf32_flag() = on; }
bool allow_tf32() { return tf32_flag(); }

void gemm_cublas(bool ta, bool tb, int64_t M, int64_t N, int64_t K, float alpha, const float* A, int64_t lda,
                 const float* B, int64_t ldb, float beta, float* C, int64_t ldc, const GemmBatch& batch) {
  if (M <= 0 || N <= 0 || batch.count <= 0) return;
  Cublas& c = cublas();
  if (!c.h) throw Error("gemm_cublas: " + c.status);
  const auto where = [&] {
    return " (M=" + std::to_string(M) + " N=" + std::to_string(N) + " K=" + std::to_string(K) +
           " ta=" + std::to_string(ta) + " tb=" + std::to_string(tb) + " lda=" + std::to_string(lda) +
           " ldb=" + std::to_string(ldb) + " ldc=" + std::to_string(ldc) + " batch " + std::to_string(batch.count) +
           (batch.sum ? " summed)" : ")");
  };
  const int64_t k = std::max<int64_t>(K, 0);
  if (k == 0) lda = ldb = std::max({lda, ldb, M, N, int64_t(1)});  // nothing is read; keep cuBLAS's checks happy
  const cublasOperation_t op_a = ta ? CUBLAS_OP_T : CUBLAS_OP_N, op_b = tb ? CUBLAS_OP_T : CUBLAS_OP_N;
  std::lock_guard<std::mutex> lock(c.mu);
  check_cublas(cublasSetStream(c.h, stream()), "cublasSetStream", where());
  check_cublas(cublasSetMathMode(c.h, allow_tf32() ? CUBLAS_TF32_TENSOR_OP_MATH : CUBLAS_DEFAULT_MATH),
               "cublasSetMathMode", where());
  if (batch.sum || batch.count == 1) {
    for (int64_t z = 0; z < batch.count; ++z) {
      const float b = z == 0 ? beta : 1.f;
      float* Cz = C + (batch.sum ? 0 : z * batch.stride_c);
      check_cublas(cublasSgemm_64(c.h, op_b, op_a, N, M, k, &alpha, B + z * batch.stride_b, ldb,
                                  A + z * batch.stride_a, lda, &b, Cz, ldc),
                   "cublasSgemm_64", where());
    }
    return;
  }
  check_cublas(cublasSgemmStridedBatched_64(c.h, op_b, op_a, N, M, k, &alpha, B, ldb, batch.stride_b, A, lda,
                                            batch.stride_a, &beta, C, ldc, batch.stride_c, batch.count),
               "cublasSgemmStridedBatched_64", where());
}

// ---- cuDNN -------------------------------------------------------------------
#if CTGRAD_HAVE_CUDNN
namespace {
std::string dims_str(const Conv2dDims& d) {
  auto s = [](int64_t v) { return std::to_string(v); };
  return " (x " + s(d.N) + "x" + s(d.C) + "x" + s(d.H) + "x" + s(d.W) + ", w " + s(d.O) + "x" + s(d.C) + "x" +
         s(d.KH) + "x" + s(d.KW) + ", stride " + s(d.SH) + "," + s(d.SW) + ", pad " + s(d.PH) + "," + s(d.PW) + ")";
}
void check_cudnn(cudnnStatus_t st, const char* call, const Conv2dDims& d) {
  if (st != CUDNN_STATUS_SUCCESS)
    throw Error(std::string("cuDNN: ") + call + " failed: " + cudnnGetErrorString(st) + dims_str(d));
}
int to_int(int64_t v, const char* what, const Conv2dDims& d) {
  if (v < 0 || v > INT_MAX) throw Error(std::string("cuDNN: ") + what + " exceeds int" + dims_str(d));
  return (int)v;
}

struct Cudnn {
  cudnnHandle_t h = nullptr;
  std::string status;
  std::mutex mu;
  // Cached choices: (dims, TF32, pass) → (algorithm, math type).
  std::map<std::array<int64_t, 15>, std::pair<int, cudnnMathType_t>> algos;
  Cudnn() {
    const size_t v = cudnnGetVersion();
    if (!cuda::available()) {
      status = "cuDNN unavailable: " + cuda::device_description();
    } else if (v / 10000 != CUDNN_MAJOR) {
      status = "cuDNN unavailable: libcudnn " + std::to_string(v) + " does not match the headers' major version " +
               std::to_string(CUDNN_MAJOR);
    } else if (const cudnnStatus_t st = cudnnCreate(&h); st != CUDNN_STATUS_SUCCESS) {
      h = nullptr;
      status = std::string("cuDNN unavailable: cudnnCreate failed: ") + cudnnGetErrorString(st);
    } else {
      status = "cuDNN " + std::to_string(v / 10000) + "." + std::to_string(v / 100 % 100) + "." +
               std::to_string(v % 100);
    }
  }
};
Cudnn& cudnn() {
  static Cudnn* c = new Cudnn;  // never destroyed (see the top)
  return *c;
}

// The descriptors of one convolution; destroyed on every exit.
struct Descs {
  cudnnTensorDescriptor_t x = nullptr, y = nullptr, b = nullptr;
  cudnnFilterDescriptor_t w = nullptr;
  cudnnConvolutionDescriptor_t conv = nullptr;
  explicit Descs(const Conv2dDims& d) {
    try {
      init(d);
    } catch (...) {
      destroy();
      throw;
    }
  }
  ~Descs() { destroy(); }
  Descs(const Descs&) = delete;
  Descs& operator=(const Descs&) = delete;

  void init(const Conv2dDims& d) {
    to_int(d.N * d.C * d.H * d.W, "input elements", d);
    to_int(d.N * d.O * d.OH * d.OW, "output elements", d);
    auto i = [&](int64_t v) { return to_int(v, "a dimension", d); };
    check_cudnn(cudnnCreateTensorDescriptor(&x), "cudnnCreateTensorDescriptor", d);
    check_cudnn(cudnnCreateTensorDescriptor(&y), "cudnnCreateTensorDescriptor", d);
    check_cudnn(cudnnCreateTensorDescriptor(&b), "cudnnCreateTensorDescriptor", d);
    check_cudnn(cudnnCreateFilterDescriptor(&w), "cudnnCreateFilterDescriptor", d);
    check_cudnn(cudnnCreateConvolutionDescriptor(&conv), "cudnnCreateConvolutionDescriptor", d);
    check_cudnn(cudnnSetTensor4dDescriptor(x, CUDNN_TENSOR_NCHW, CUDNN_DATA_FLOAT, i(d.N), i(d.C), i(d.H), i(d.W)),
                "cudnnSetTensor4dDescriptor(x)", d);
    check_cudnn(
        cudnnSetTensor4dDescriptor(y, CUDNN_TENSOR_NCHW, CUDNN_DATA_FLOAT, i(d.N), i(d.O), i(d.OH), i(d.OW)),
        "cudnnSetTensor4dDescriptor(y)", d);
    check_cudnn(cudnnSetTensor4dDescriptor(b, CUDNN_TENSOR_NCHW, CUDNN_DATA_FLOAT, 1, i(d.O), 1, 1),
                "cudnnSetTensor4dDescriptor(bias)", d);
    check_cudnn(cudnnSetFilter4dDescriptor(w, CUDNN_DATA_FLOAT, CUDNN_TENSOR_NCHW, i(d.O), i(d.C), i(d.KH), i(d.KW)),
                "cudnnSetFilter4dDescriptor", d);
    check_cudnn(cudnnSetConvolution2dDescriptor(conv, i(d.PH), i(d.PW), i(d.SH), i(d.SW), 1, 1,
                                                CUDNN_CROSS_CORRELATION, CUDNN_DATA_FLOAT),
                "cudnnSetConvolution2dDescriptor", d);
    check_cudnn(cudnnSetConvolutionMathType(conv, allow_tf32() ? CUDNN_DEFAULT_MATH : CUDNN_FMA_MATH),
                "cudnnSetConvolutionMathType", d);
    int n = 0, c = 0, h = 0, wd = 0;
    check_cudnn(cudnnGetConvolution2dForwardOutputDim(conv, x, w, &n, &c, &h, &wd),
                "cudnnGetConvolution2dForwardOutputDim", d);
    if (n != d.N || c != d.O || h != d.OH || wd != d.OW)
      throw Error("cuDNN: output " + std::to_string(h) + "x" + std::to_string(wd) + " differs from OH x OW = " +
                  std::to_string(d.OH) + "x" + std::to_string(d.OW) + dims_str(d));
  }
  void destroy() {  // statuses ignored: nothing useful to do with a failed destroy
    if (x) cudnnDestroyTensorDescriptor(x);
    if (y) cudnnDestroyTensorDescriptor(y);
    if (b) cudnnDestroyTensorDescriptor(b);
    if (w) cudnnDestroyFilterDescriptor(w);
    if (conv) cudnnDestroyConvolutionDescriptor(conv);
    x = y = b = nullptr, w = nullptr, conv = nullptr;
  }
};

struct Workspace {
  void* p = nullptr;
  explicit Workspace(size_t bytes) : p(bytes ? cuda::device_alloc(bytes) : nullptr) {}
  ~Workspace() { if (p) cuda::device_free(p); }
  Workspace(const Workspace&) = delete;
  Workspace& operator=(const Workspace&) = delete;
};

// The first algorithm cuDNN's heuristics rank as supported; without TF32, only
// one that runs in FMA math (as PyTorch asserts). Sets the descriptor's math type
// to the one the choice was made for (cuDNN needs both to pick its kernels).
template <typename Perf, typename Query>
int choose(Cudnn& c, const Descs& s, const Conv2dDims& d, int pass, const char* call, Query query) {
  const bool tf32 = allow_tf32();
  const std::array<int64_t, 15> key{d.N, d.C, d.H, d.W, d.O, d.KH, d.KW, d.SH, d.SW, d.PH, d.PW, d.OH, d.OW,
                                    (int64_t)tf32, (int64_t)pass};
  auto it = c.algos.find(key);
  if (it == c.algos.end()) {
    Perf perf[32];
    int returned = 0;
    check_cudnn(query(perf, 32, &returned), call, d);
    int i = 0;
    while (i < returned && (perf[i].status != CUDNN_STATUS_SUCCESS || (!tf32 && perf[i].mathType != CUDNN_FMA_MATH)))
      ++i;
    if (i == returned)
      throw Error(std::string("cuDNN: ") + call + " offered no supported " + (tf32 ? "" : "FP32 (FMA math) ") +
                  "algorithm among " + std::to_string(returned) + dims_str(d));
    it = c.algos.emplace(key, std::make_pair((int)perf[i].algo, perf[i].mathType)).first;
  }
  check_cudnn(cudnnSetConvolutionMathType(s.conv, it->second.second), "cudnnSetConvolutionMathType", d);
  return it->second.first;
}

Cudnn& ready_cudnn(const char* what) {
  Cudnn& c = cudnn();
  if (!c.h) throw Error(std::string(what) + ": " + c.status);
  return c;
}
}  // namespace

bool cudnn_available() { return cudnn().h != nullptr; }
std::string cudnn_status() { return cudnn().status; }

void conv2d_forward_cudnn(const float* x, const float* w, const float* b, float* y, const Conv2dDims& d) {
  if (d.N <= 0 || d.O <= 0 || d.OH * d.OW <= 0) return;
  Cudnn& c = ready_cudnn("conv2d_forward_cudnn");
  std::lock_guard<std::mutex> lock(c.mu);
  check_cudnn(cudnnSetStream(c.h, stream()), "cudnnSetStream", d);
  Descs s(d);
  const auto algo = (cudnnConvolutionFwdAlgo_t)choose<cudnnConvolutionFwdAlgoPerf_t>(
      c, s, d, 0, "cudnnGetConvolutionForwardAlgorithm_v7", [&](cudnnConvolutionFwdAlgoPerf_t* p, int n, int* r) {
        return cudnnGetConvolutionForwardAlgorithm_v7(c.h, s.x, s.w, s.conv, s.y, n, r, p);
      });
  size_t bytes = 0;
  check_cudnn(cudnnGetConvolutionForwardWorkspaceSize(c.h, s.x, s.w, s.conv, s.y, algo, &bytes),
              "cudnnGetConvolutionForwardWorkspaceSize", d);
  Workspace ws(bytes);
  const float one = 1.f, zero = 0.f;  // beta = 0: y is not read
  check_cudnn(cudnnConvolutionForward(c.h, &one, s.x, x, s.w, w, s.conv, algo, ws.p, bytes, &zero, s.y, y),
              "cudnnConvolutionForward", d);
  if (b) check_cudnn(cudnnAddTensor(c.h, &one, s.b, b, &one, s.y, y), "cudnnAddTensor(bias)", d);
}

void conv2d_backward_cudnn(const float* x, const float* w, const float* gy, float* gx, float* gw, float* gb,
                           const Conv2dDims& d) {
  if (d.N <= 0 || d.O <= 0 || d.OH * d.OW <= 0) return;
  Cudnn& c = ready_cudnn("conv2d_backward_cudnn");
  std::lock_guard<std::mutex> lock(c.mu);
  check_cudnn(cudnnSetStream(c.h, stream()), "cudnnSetStream", d);
  Descs s(d);
  const float one = 1.f;  // alpha = beta = 1: add into the gradients
  if (gb) check_cudnn(cudnnConvolutionBackwardBias(c.h, &one, s.y, gy, &one, s.b, gb), "cudnnConvolutionBackwardBias", d);
  if (gx) {
    const auto algo = (cudnnConvolutionBwdDataAlgo_t)choose<cudnnConvolutionBwdDataAlgoPerf_t>(
        c, s, d, 1, "cudnnGetConvolutionBackwardDataAlgorithm_v7",
        [&](cudnnConvolutionBwdDataAlgoPerf_t* p, int n, int* r) {
          return cudnnGetConvolutionBackwardDataAlgorithm_v7(c.h, s.w, s.y, s.conv, s.x, n, r, p);
        });
    size_t bytes = 0;
    check_cudnn(cudnnGetConvolutionBackwardDataWorkspaceSize(c.h, s.w, s.y, s.conv, s.x, algo, &bytes),
                "cudnnGetConvolutionBackwardDataWorkspaceSize", d);
    Workspace ws(bytes);
    check_cudnn(cudnnConvolutionBackwardData(c.h, &one, s.w, w, s.y, gy, s.conv, algo, ws.p, bytes, &one, s.x, gx),
                "cudnnConvolutionBackwardData", d);
  }
  if (gw) {
    const auto algo = (cudnnConvolutionBwdFilterAlgo_t)choose<cudnnConvolutionBwdFilterAlgoPerf_t>(
        c, s, d, 2, "cudnnGetConvolutionBackwardFilterAlgorithm_v7",
        [&](cudnnConvolutionBwdFilterAlgoPerf_t* p, int n, int* r) {
          return cudnnGetConvolutionBackwardFilterAlgorithm_v7(c.h, s.x, s.y, s.conv, s.w, n, r, p);
        });
    size_t bytes = 0;
    check_cudnn(cudnnGetConvolutionBackwardFilterWorkspaceSize(c.h, s.x, s.y, s.conv, s.w, algo, &bytes),
                "cudnnGetConvolutionBackwardFilterWorkspaceSize", d);
    Workspace ws(bytes);
    check_cudnn(cudnnConvolutionBackwardFilter(c.h, &one, s.x, x, s.y, gy, s.conv, algo, ws.p, bytes, &one, s.w, gw),
                "cudnnConvolutionBackwardFilter", d);
  }
}
#else   // configured without cuDNN
namespace {
const char* const kNoCudnn =
    "cuDNN unavailable: this build was configured without cuDNN (no libcudnn/cudnn.h next to the CUDA toolkit)";
}
bool cudnn_available() { return false; }
std::string cudnn_status() { return kNoCudnn; }
void conv2d_forward_cudnn(const float*, const float*, const float*, float*, const Conv2dDims&) {
  throw Error(std::string("conv2d_forward_cudnn: ") + kNoCudnn);
}
void conv2d_backward_cudnn(const float*, const float*, const float*, float*, float*, float*, const Conv2dDims&) {
  throw Error(std::string("conv2d_backward_cudnn: ") + kNoCudnn);
}
#endif

void set_conv_impl(ConvImpl impl) {
  if (impl == ConvImpl::cudnn && !cudnn_available()) throw Error("--conv-impl cudnn: " + cudnn_status());
  g_conv = impl;
}
ConvImpl conv_impl() { return g_conv; }

}  // namespace ctg::kernels
