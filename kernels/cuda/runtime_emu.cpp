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
void poison_device_memory(void* p, size_t bytes) { std::memset(p, 0xFF, bytes); }
}  // namespace backend

void* pinned_alloc(size_t bytes) {
  const size_t n = (bytes + 63) / 64 * 64;
  void* p = std::aligned_alloc(64, n);
  if (!p) throw Error("pinned_alloc: out of host memory for " + std::to_string(bytes) + " bytes");
  std::lock_guard<std::mutex> lock(g_mu);
  g_pinned[static_cast<const unsigned char*>(p)] = n;
  return p;
}
void pinned_free(void* p) {
  if (!p) return;
  emu::run_all_streams();  // cudaFreeHost synchronises: no queued copy reads freed memory
  {
    std::lock_guard<std::mutex> lock(g_mu);
    g_pinned.erase(static_cast<const unsigned char*>(p));
  }
  std::free(p);
}

void copy_h2d(void* dst, const void* src, size_t n) { std::memcpy(dst, src, n); }
void copy_d2h(void* dst, const void* src, size_t n) { std::memcpy(dst, src, n); }
void copy_d2d(void* dst, const void* src, size_t n) { std::memmove(dst, src, n); }
void copy_h2d_async(void* dst, const void* src, size_t n, Stream s) {
  if (!s) {  // the compute stream runs everything at once
    std::memcpy(dst, src, n);
    return;
  }
  if (is_pinned(src, n)) {
    emu::stream_enqueue(s, [dst, src, n] { std::memcpy(dst, src, n); });
  } else {
    const auto* b = static_cast<const unsigned char*>(src);
    auto staged = std::make_shared<std::vector<unsigned char>>(b, b + n);
    emu::stream_enqueue(s, [dst, staged] { std::memcpy(dst, staged->data(), staged->size()); });
  }
}
void memset_zero(void* p, size_t n) { std::memset(p, 0, n); }
void synchronize() { emu::run_all_streams(); }

Stream compute_stream() { return nullptr; }  // the default stream, as on a GPU
Stream create_stream() { return emu::stream_create(); }
void destroy_stream(Stream s) { emu::stream_destroy(s); }
Event create_event() { return emu::event_create(); }
void record_event(Event e, Stream s) { emu::event_record(e, s); }
void stream_wait_event(Stream, Event e) { emu::event_wait(e); }
void event_synchronize(Event e) { emu::event_wait(e); }
void destroy_event(Event e) { emu::event_destroy(e); }
Event create_timing_event() { return emu::event_create(); }
float event_elapsed_ms(Event start, Event end) { return emu::event_elapsed_ms(start, end); }

}  // namespace ctg::cuda
