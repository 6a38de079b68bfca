// The emulation backend of kernels/cuda/runtime.h: "device" memory is
// 64-byte-aligned host memory, copies are memcpy, streams and events are
// tokens (emulated launches run to completion before returning, so every
// stream is always idle). The device exists only when asked for, so that a
// binary built without nvcc never pretends to have a GPU.
#include <cstdlib>
#include <cstring>

#include "engine/tensor.h"
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
int g_token = 0;  // streams and events are distinct non-null addresses
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
}  // namespace backend

void* pinned_alloc(size_t bytes) {
  void* p = std::aligned_alloc(64, (bytes + 63) / 64 * 64);
  if (!p) throw Error("pinned_alloc: out of host memory for " + std::to_string(bytes) + " bytes");
  return p;
}
void pinned_free(void* p) { std::free(p); }

void copy_h2d(void* dst, const void* src, size_t n) { std::memcpy(dst, src, n); }
void copy_d2h(void* dst, const void* src, size_t n) { std::memcpy(dst, src, n); }
void copy_d2d(void* dst, const void* src, size_t n) { std::memmove(dst, src, n); }
void copy_h2d_async(void* dst, const void* src, size_t n, Stream) { std::memcpy(dst, src, n); }
void memset_zero(void* p, size_t n) { std::memset(p, 0, n); }
void synchronize() {}

Stream compute_stream() { return nullptr; }  // the default stream, as on a GPU
Stream create_stream() { return &g_token; }
void destroy_stream(Stream) {}
Event create_event() { return &g_token; }
void record_event(Event, Stream) {}
void stream_wait_event(Stream, Event) {}
void event_synchronize(Event) {}
void destroy_event(Event) {}

}  // namespace ctg::cuda
