// The cuDNN half of kernels/cuda/impl.h's native backend (nvcc only):
// conv2d_{forward,backward}_cudnn behind --conv-impl cudnn, for comparison with
// our im2col + SGEMM convolution (kernels/cuda/conv2d.cu). Built with
// CTGRAD_HAVE_CUDNN=1 when CMake finds libcudnn and cudnn.h; without them the
// entry points exist and say why cuDNN is unavailable.
// Every cuDNN status is checked and a failure names the call and the shape.
//
// Handle: one, created on first use (after the device is known to exist), bound
// to the compute stream before every call, never destroyed (a static destroyed
// after the CUDA context at exit would fail); a mutex serialises its use.
//
// Descriptors: NCHW float32. The algorithm is cuDNN's first supported
// choice from cudnnGet*Algorithm_v7 (its heuristics, no trial runs: what
// PyTorch does with cudnn.benchmark = False), cached per shape. Backward adds
// into gx/gw/gb as ours does: beta = 1. Workspace comes from the caching device
// allocator and returns to it in stream order.
//
// Precision: see impl.h. Without TF32 the descriptor gets CUDNN_FMA_MATH:
// cuDNN's default math would let float convolutions use TF32 tensor cores on
// sm_80 and later (Hopper included).
#include <cuda_runtime.h>
#if CTGRAD_HAVE_CUDNN
#include <cudnn.h>
#endif

#include <array>
#include <climits>
#include <map>
#include <mutex>
#include <string>

#include "kernels/cuda/impl.h"
#include "kernels/cuda/runtime.h"

namespace ctg::kernels {

#if CTGRAD_HAVE_CUDNN
namespace {
cudaStream_t stream() { return static_cast<cudaStream_t>(cuda::compute_stream()); }

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
                           const Conv2dDims& d, bool gx_accumulate) {
  if (d.N <= 0 || d.O <= 0 || d.OH * d.OW <= 0) return;
  Cudnn& c = ready_cudnn("conv2d_backward_cudnn");
  std::lock_guard<std::mutex> lock(c.mu);
  check_cudnn(cudnnSetStream(c.h, stream()), "cudnnSetStream", d);
  Descs s(d);
  const float one = 1.f;  // alpha = beta = 1: add into the gradients
  const float zero = 0.f;  // gx's beta for a first write (beta 0: cuDNN never reads it)
  if (gb)
    check_cudnn(cudnnConvolutionBackwardBias(c.h, &one, s.y, gy, &one, s.b, gb), "cudnnConvolutionBackwardBias", d);
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
    check_cudnn(cudnnConvolutionBackwardData(c.h, &one, s.w, w, s.y, gy, s.conv, algo, ws.p, bytes,
                                             gx_accumulate ? &one : &zero, s.x, gx),
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
void conv2d_backward_cudnn(const float*, const float*, const float*, float*, float*, float*, const Conv2dDims&,
                           bool) {
  throw Error(std::string("conv2d_backward_cudnn: ") + kNoCudnn);
}
#endif

}  // namespace ctg::kernels
