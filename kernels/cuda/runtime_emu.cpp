// The emulation backend of kernels/cuda/runtime.h: "device" memory is
// 64-byte-aligned host memory and kernels run on the CPU emulation
// (kernels/cuda/emu/). The device exists only when asked for, so that a
// binary built without nvcc never pretends to have a GPU.
//
// Strict where a GPU would be unforgiving, so that CI (which has no GPU) sees
// the mistakes a GPU would punish:
// - Every device allocation, fresh or reused from the caching allocator, is
//   filled with 0xFF bytes (NaN as float32, -1 as an integer) in
//   allocator.cpp: a kernel that reads what nothing wrote gives NaN.
// - Stream order. The compute stream is the legacy default stream; kernels and
//   the synchronous copies run on it at once, in issue order (so it is always
//   idle). Work on a created stream (cudaStreamNonBlocking on a GPU: no
//   implicit ordering with the default stream) is queued and runs only when
//   something waits for it: stream_wait_event / event_synchronize on an event
//   recorded after it, synchronize(), or destroy_stream. A missing wait
//   therefore reads the NaN poison instead of the copied data — on a GPU the
//   same mistake is a race that usually goes unnoticed.
// - A queued host-to-device copy reads its source when it runs if the source is
//   pinned (page-locked memory is DMA'd straight from the buffer, so
//   overwriting it before the copy finished corrupts the copy); a pageable
//   source is staged at once, as the CUDA runtime does.
#include <cstdlib>
#include <cstring>
#include <map>
#include <memory>
#include <mutex>
#include <vector>

#include "base/error.h"
#include "kernels/cuda/emu/streams.h"
#include "kernels/cuda/runtime.h"

namespace ctg::cuda {

namespace {
bool emulation_requested() {
  static const bool env = [] {
    const char* v = std::getenv("CTGRAD_CUDA_EMULATE");
    return v && *v && std::strcmp(v, "0") != 0;
  }();
  return env;
}
bool g_emulation = false;

std::mutex g_mu;  // the pinned registry
std::map<const unsigned char*, size_t> g_pinned;  // pinned block start -> bytes

bool is_pinned(const void* p, size_t n) {
  std::lock_guard<std::mutex> lock(g_mu);
  const auto* c = static_cast<const unsigned char*>(p);
  auto it = g_pinned.upper_bound(c);
  if (it == g_pinned.begin()) return false;
  --it;
  return c >= it->first && c + n <= it->first + it->second;
}
}  // namespace

bool is_emulated() { return true; }
bool available() { return g_emulation || emulation_requested(); }
void set_emulation(bool on) { g_emulation = on; }

std::string device_description() {
  return available() ? "CUDA emulation on the CPU (kernels/cuda/emu)" : "no CUDA device (built without nvcc)";
}

void require_device(const char* what) {
  if (!available())
    throw Error(std::string(what) +
                ": no CUDA device: this build has no CUDA backend (nvcc was not found when it was configured); "
                "use --device cpu, or set CTGRAD_CUDA_EMULATE=1 to run the CUDA kernels on the CPU emulation");
}

namespace backend {
void* raw_device_alloc(size_t bytes) { return std::aligned_alloc(64, (bytes + 63) / 64 * 64); }
void raw_device_free(void* p) { std::free(p); }
// During a capture the poison is recorded with the rest: every replay hands
// the block out fresh again, so a kernel reading it before writing sees NaN.
void poison_device_memory(void* p, size_t bytes) {
  if (Stream s = compute_stream()) emu::stream_enqueue(s, [p, bytes] { std::memset(p, 0xFF, bytes); });
  else std::memset(p, 0xFF, bytes);
}
}  // namespace backend

void* pinned_alloc(size_t bytes) {
  refuse_during_capture("pinned_alloc (cudaHostAlloc)");
  const size_t n = (bytes + 63) / 64 * 64;
  void* p = std::aligned_alloc(64, n);
  if (!p) throw Error("pinned_alloc: out of host memory for " + std::to_string(bytes) + " bytes");
  std::lock_guard<std::mutex> lock(g_mu);
  g_pinned[static_cast<const unsigned char*>(p)] = n;
  return p;
}
void pinned_free(void* p) {
  if (!p) return;
  refuse_during_capture("pinned_free (cudaFreeHost)");
  emu::run_all_streams();  // cudaFreeHost synchronises: no queued copy reads freed memory
  {
    std::lock_guard<std::mutex> lock(g_mu);
    g_pinned.erase(static_cast<const unsigned char*>(p));
  }
  std::free(p);
}

void copy_h2d(void* dst, const void* src, size_t n) {
  refuse_during_capture("copy_h2d (a synchronous host-to-device copy)");
  std::memcpy(dst, src, n);
}
void copy_d2h(void* dst, const void* src, size_t n) {
  refuse_during_capture("copy_d2h (a read of device memory on the host)");
  std::memcpy(dst, src, n);
}
// The compute stream runs at once, unless it is a capture stream (recorded).
void copy_d2d(void* dst, const void* src, size_t n) {
  if (Stream s = compute_stream()) emu::stream_enqueue(s, [dst, src, n] { std::memmove(dst, src, n); });
  else std::memmove(dst, src, n);
}
void copy_h2d_async(void* dst, const void* src, size_t n, Stream s) {
  if (!s) {  // the compute stream runs everything at once
    std::memcpy(dst, src, n);
    return;
  }
  if (is_pinned(src, n)) {
    emu::stream_enqueue(s, [dst, src, n] { std::memcpy(dst, src, n); });
  } else {
    // A graph would read the pageable buffer at each replay, long after the caller reused it.
    if (emu::stream_capturing(s)) refuse_during_capture("copy_h2d_async from pageable memory");
    const auto* b = static_cast<const unsigned char*>(src);
    auto staged = std::make_shared<std::vector<unsigned char>>(b, b + n);
    emu::stream_enqueue(s, [dst, staged] { std::memcpy(dst, staged->data(), staged->size()); });
  }
}
void memset_zero(void* p, size_t n) {
  if (Stream s = compute_stream()) emu::stream_enqueue(s, [p, n] { std::memset(p, 0, n); });
  else std::memset(p, 0, n);
}
void synchronize() {
  refuse_during_capture("synchronize (cudaDeviceSynchronize)");
  emu::run_all_streams();
}

Stream create_stream() { return emu::stream_create(); }
void destroy_stream(Stream s) { emu::stream_destroy(s); }
Event create_event() { return emu::event_create(); }
void record_event(Event e, Stream s) { emu::event_record(e, s); }
void stream_wait_event(Stream s, Event e) {
  if (emu::stream_capturing(s)) refuse_during_capture("stream_wait_event on the capture stream");
  emu::event_wait(e);
}
void event_synchronize(Event e) {
  refuse_during_capture("event_synchronize");
  emu::event_wait(e);
}
void destroy_event(Event e) { emu::event_destroy(e); }
Event create_timing_event() { return emu::event_create(); }
float event_elapsed_ms(Event start, Event end) {
  refuse_during_capture("event_elapsed_ms");
  return emu::event_elapsed_ms(start, end);
}

// ---- graphs: the capture stream's recording, replayed in order on the host ----
namespace {
struct EmuGraph {
  std::vector<std::function<void()>> ops;
  void* pool = nullptr;
};
}  // namespace

void begin_capture() {
  require_device("begin_capture");
  if (capturing()) throw Error("begin_capture: this thread is already capturing a CUDA graph");
  Stream s = emu::stream_create();
  emu::stream_begin_capture(s);
  detail::pool_begin();
  detail::tl_capture_stream = s;
}

Graph end_capture() {
  Stream s = detail::tl_capture_stream;
  if (!s) throw Error("end_capture: no CUDA graph is being captured on this thread");
  detail::tl_capture_stream = nullptr;
  auto g = std::make_unique<EmuGraph>();
  g->ops = emu::stream_end_capture(s);
  emu::stream_destroy(s);
  g->pool = detail::pool_end();
  return g.release();
}

void abort_capture() {
  Stream s = detail::tl_capture_stream;
  if (!s) return;
  destroy_graph(end_capture());
}

void launch_graph(Graph graph) {
  refuse_during_capture("launch_graph");
  if (!graph) throw Error("launch_graph: null graph");
  for (const auto& op : static_cast<EmuGraph*>(graph)->ops) op();
}

void destroy_graph(Graph graph) {
  auto* g = static_cast<EmuGraph*>(graph);
  if (!g) return;
  detail::pool_release(g->pool);
  delete g;
}

}  // namespace ctg::cuda
