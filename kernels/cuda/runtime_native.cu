// The native backend of kernels/cuda/runtime.h (compiled by nvcc only).
// Every CUDA call's status is checked and a failure names the call.
#include <cuda_runtime.h>

#include <cstdlib>
#include <string>

#include "base/error.h"
#include "kernels/cuda/runtime.h"

#define CTG_CUDA_CHECK(call)                                                                     \
  do {                                                                                          \
    cudaError_t err_ = (call);                                                                  \
    if (err_ != cudaSuccess)                                                                    \
      throw ::ctg::Error(std::string("CUDA: ") + #call + " failed: " + cudaGetErrorString(err_)); \
  } while (0)

namespace ctg::cuda {

namespace {
// Probed once: device count and the first device's name. A driver without a
// GPU answers cudaErrorNoDevice / cudaErrorInsufficientDriver: not available.
struct Probe {
  bool ok = false;
  std::string description;
  Probe() {
    int n = 0;
    cudaError_t e = cudaGetDeviceCount(&n);
    if (e != cudaSuccess || n == 0) {
      description = std::string("no CUDA device (") + (e != cudaSuccess ? cudaGetErrorString(e) : "0 devices") + ")";
      cudaGetLastError();  // clear the sticky error
      return;
    }
    cudaDeviceProp p{};
    if (cudaGetDeviceProperties(&p, 0) == cudaSuccess)
      description = std::string(p.name) + " (sm_" + std::to_string(p.major) + std::to_string(p.minor) + ", " +
                    std::to_string(p.totalGlobalMem >> 20) + " MiB)";
    ok = true;
  }
};
const Probe& probe() {
  static Probe p;
  return p;
}
cudaStream_t s(Stream x) { return static_cast<cudaStream_t>(x); }
}  // namespace

bool is_emulated() { return false; }
bool available() { return probe().ok; }
void set_emulation(bool) {}
std::string device_description() { return probe().description; }

void require_device(const char* what) {
  if (!available())
    throw Error(std::string(what) + ": " + probe().description + "; use --device cpu");
}

namespace backend {
// cudaMalloc is not a stream operation, but thread-local capture mode counts
// it as potentially unsafe: a graph's pool grows under relaxed mode (as
// PyTorch's allocator does), the capture itself is untouched.
void* raw_device_alloc(size_t bytes) {
  void* p = nullptr;
  cudaStreamCaptureMode mode = cudaStreamCaptureModeRelaxed;
  const bool relax = capturing();
  if (relax) CTG_CUDA_CHECK(cudaThreadExchangeStreamCaptureMode(&mode));
  const cudaError_t err = cudaMalloc(&p, bytes);
  if (relax) CTG_CUDA_CHECK(cudaThreadExchangeStreamCaptureMode(&mode));
  if (err != cudaSuccess) {
    cudaGetLastError();
    return nullptr;
  }
  return p;
}
void raw_device_free(void* p) {
  refuse_during_capture("cudaFree");
  CTG_CUDA_CHECK(cudaFree(p));
}
void poison_device_memory(void* p, size_t bytes) {
  static const bool on = [] {
    const char* v = std::getenv("CTGRAD_CUDA_POISON");
    return v && *v && std::string(v) != "0";
  }();
  if (on) CTG_CUDA_CHECK(cudaMemsetAsync(p, 0xFF, bytes, s(compute_stream())));  // recorded in a capture
}
}  // namespace backend

void* pinned_alloc(size_t bytes) {
  require_device("pinned_alloc");
  refuse_during_capture("pinned_alloc (cudaHostAlloc)");
  void* p = nullptr;
  CTG_CUDA_CHECK(cudaHostAlloc(&p, bytes, cudaHostAllocDefault));
  return p;
}
void pinned_free(void* p) {
  refuse_during_capture("pinned_free (cudaFreeHost)");
  CTG_CUDA_CHECK(cudaFreeHost(p));
}

void copy_h2d(void* dst, const void* src, size_t n) {
  refuse_during_capture("copy_h2d (a synchronous host-to-device copy)");
  CTG_CUDA_CHECK(cudaMemcpyAsync(dst, src, n, cudaMemcpyHostToDevice, s(compute_stream())));
  CTG_CUDA_CHECK(cudaStreamSynchronize(s(compute_stream())));
}
void copy_d2h(void* dst, const void* src, size_t n) {
  refuse_during_capture("copy_d2h (a read of device memory on the host)");
  CTG_CUDA_CHECK(cudaMemcpyAsync(dst, src, n, cudaMemcpyDeviceToHost, s(compute_stream())));
  CTG_CUDA_CHECK(cudaStreamSynchronize(s(compute_stream())));
}
void copy_d2d(void* dst, const void* src, size_t n) {
  CTG_CUDA_CHECK(cudaMemcpyAsync(dst, src, n, cudaMemcpyDeviceToDevice, s(compute_stream())));
}
void copy_h2d_async(void* dst, const void* src, size_t n, Stream st) {
  CTG_CUDA_CHECK(cudaMemcpyAsync(dst, src, n, cudaMemcpyHostToDevice, s(st)));
}
void memset_zero(void* p, size_t n) { CTG_CUDA_CHECK(cudaMemsetAsync(p, 0, n, s(compute_stream()))); }
void synchronize() {
  refuse_during_capture("synchronize (cudaDeviceSynchronize)");
  CTG_CUDA_CHECK(cudaDeviceSynchronize());
}

Stream create_stream() {
  cudaStream_t st;
  CTG_CUDA_CHECK(cudaStreamCreateWithFlags(&st, cudaStreamNonBlocking));
  return st;
}
void destroy_stream(Stream st) { CTG_CUDA_CHECK(cudaStreamDestroy(s(st))); }
Event create_event() {
  cudaEvent_t e;
  CTG_CUDA_CHECK(cudaEventCreateWithFlags(&e, cudaEventDisableTiming));
  return e;
}
void record_event(Event e, Stream st) { CTG_CUDA_CHECK(cudaEventRecord(static_cast<cudaEvent_t>(e), s(st))); }
void stream_wait_event(Stream st, Event e) {
  CTG_CUDA_CHECK(cudaStreamWaitEvent(s(st), static_cast<cudaEvent_t>(e), 0));
}
void event_synchronize(Event e) {
  refuse_during_capture("event_synchronize");
  CTG_CUDA_CHECK(cudaEventSynchronize(static_cast<cudaEvent_t>(e))); }
void destroy_event(Event e) { CTG_CUDA_CHECK(cudaEventDestroy(static_cast<cudaEvent_t>(e))); }
Event create_timing_event() {
  cudaEvent_t e;
  CTG_CUDA_CHECK(cudaEventCreate(&e));
  return e;
}
float event_elapsed_ms(Event start, Event end) {
  refuse_during_capture("event_elapsed_ms");
  float ms = 0;
  CTG_CUDA_CHECK(cudaEventSynchronize(static_cast<cudaEvent_t>(end)));
  CTG_CUDA_CHECK(cudaEventElapsedTime(&ms, static_cast<cudaEvent_t>(start), static_cast<cudaEvent_t>(end)));
  return ms;
}

// ---- graphs -------------------------------------------------------------------
namespace {
struct NativeGraph {
  cudaGraph_t graph = nullptr;
  cudaGraphExec_t exec = nullptr;
  void* pool = nullptr;
};
}  // namespace

void begin_capture() {
  require_device("begin_capture");
  if (capturing()) throw Error("begin_capture: this thread is already capturing a CUDA graph");
  cudaStream_t st;
  CTG_CUDA_CHECK(cudaStreamCreateWithFlags(&st, cudaStreamNonBlocking));
  // Thread-local mode: the loader's threads may go on copying on their own streams.
  const cudaError_t err = cudaStreamBeginCapture(st, cudaStreamCaptureModeThreadLocal);
  if (err != cudaSuccess) {
    cudaStreamDestroy(st);
    throw Error(std::string("CUDA: cudaStreamBeginCapture failed: ") + cudaGetErrorString(err));
  }
  detail::pool_begin();
  detail::tl_capture_stream = st;
}

Graph end_capture() {
  cudaStream_t st = s(detail::tl_capture_stream);
  if (!st) throw Error("end_capture: no CUDA graph is being captured on this thread");
  detail::tl_capture_stream = nullptr;
  auto* g = new NativeGraph;
  g->pool = detail::pool_end();
  const cudaError_t end = cudaStreamEndCapture(st, &g->graph);
  cudaStreamDestroy(st);
  cudaError_t inst = cudaSuccess;
  if (end == cudaSuccess) inst = cudaGraphInstantiateWithFlags(&g->exec, g->graph, 0);
  if (end != cudaSuccess || inst != cudaSuccess) {
    cudaGetLastError();
    destroy_graph(g);
    throw Error(std::string("CUDA: ") + (end != cudaSuccess ? "cudaStreamEndCapture" : "cudaGraphInstantiate") +
                " failed: " + cudaGetErrorString(end != cudaSuccess ? end : inst));
  }
  return g;
}

void abort_capture() {
  if (!capturing()) return;
  try {
    destroy_graph(end_capture());
  } catch (const Error&) {  // an invalidated capture: end_capture released what it held
  }
}

// On the legacy stream: after everything issued before it, before everything after.
void launch_graph(Graph graph) {
  refuse_during_capture("launch_graph");
  if (!graph) throw Error("launch_graph: null graph");
  CTG_CUDA_CHECK(cudaGraphLaunch(static_cast<NativeGraph*>(graph)->exec, s(compute_stream())));
}

void destroy_graph(Graph graph) {
  auto* g = static_cast<NativeGraph*>(graph);
  if (!g) return;
  // A replay still running reads the pool's blocks: wait before they return to the cache.
  if (g->exec) CTG_CUDA_CHECK(cudaDeviceSynchronize());
  if (g->exec) cudaGraphExecDestroy(g->exec);
  if (g->graph) cudaGraphDestroy(g->graph);
  detail::pool_release(g->pool);
  delete g;
}

}  // namespace ctg::cuda
