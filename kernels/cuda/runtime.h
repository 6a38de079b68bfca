// The CUDA runtime seam of ctgrad: device memory (through a caching
// allocator), pinned host memory, copies, streams and events.
//
// Two backends implement the raw calls behind this header, with the same
// names, linked into different executables:
//   kernels/cuda/runtime_native.cu  — nvcc, the real GPU (cudaMalloc, ...);
//   kernels/cuda/runtime_emu.cpp    — plain C++, "device" memory is host
//                                     memory and kernels run on the CPU
//                                     emulation (kernels/cuda/emu/).
// The emulated device exists only once asked for (set_emulation(true) or
// CTGRAD_CUDA_EMULATE=1): a normal binary without a GPU says so clearly
// instead of silently running kernels on the CPU.
#pragma once
#include <cstddef>
#include <string>

#include "base/caching_allocator.h"

namespace ctg::cuda {

using Stream = void*;  // cudaStream_t
using Event = void*;   // cudaEvent_t

bool is_emulated();          // this executable links the emulation backend
bool available();            // a device can be used now
std::string device_description();
// Throws ctg::Error "<what>: no CUDA device (...)" when !available().
void require_device(const char* what);
void set_emulation(bool on);  // emulation backend only; a no-op on native

// Caching allocator: freed blocks go to a free list keyed by rounded size and
// are reused, so steady-state training calls cudaMalloc/cudaFree never.
void* device_alloc(size_t bytes);
void device_free(void* p);
AllocatorStats allocator_stats();
void empty_cache();  // return cached blocks to the driver

// Page-locked host memory (cudaHostAlloc) for the loader's batch ring.
void* pinned_alloc(size_t bytes);
void pinned_free(void* p);

// Synchronous copies on the compute stream (they wait for queued kernels).
void copy_h2d(void* dst, const void* src, size_t bytes);
void copy_d2h(void* dst, const void* src, size_t bytes);
void copy_d2d(void* dst, const void* src, size_t bytes);
// Asynchronous host-to-device copy on `s` (from pinned memory to overlap).
void copy_h2d_async(void* dst, const void* src, size_t bytes, Stream s);
void memset_zero(void* p, size_t bytes);  // on the compute stream
void synchronize();                       // the whole device

// Where every kernel, memset and device-to-device copy goes: the legacy
// default stream, or while this thread captures a graph, its capture stream.
Stream compute_stream();
Stream create_stream();
void destroy_stream(Stream s);
Event create_event();
void record_event(Event e, Stream s);
void stream_wait_event(Stream s, Event e);  // s waits for e (no host block)
void event_synchronize(Event e);
void destroy_event(Event e);
// An event that records when it completes (create_event's do not: cheaper),
// and the milliseconds between two such events once both completed.
Event create_timing_event();
float event_elapsed_ms(Event start, Event end);

// Launch observer (for `ctgrad trace`): when set, every ctg::cuda::launch
// (kernels/cuda/dialect.h natively, kernels/cuda/emu/cuda_emu.h emulated) calls
// it on the launching thread with the __global__ function's name and the
// configuration, before the kernel is queued. A plain function pointer so that
// kernels/ needs nothing from engine/ (engine/trace.cpp installs it).
using LaunchObserver = void (*)(const char* kernel, const unsigned grid[3], const unsigned block[3],
                                size_t dynamic_shared_bytes);
inline LaunchObserver& launch_observer() {
  static LaunchObserver observer = nullptr;
  return observer;
}
inline void notify_launch(const char* kernel, unsigned gx, unsigned gy, unsigned gz, unsigned bx, unsigned by,
                          unsigned bz, size_t shmem) {
  if (LaunchObserver obs = launch_observer()) {
    const unsigned grid[3] = {gx, gy, gz}, block[3] = {bx, by, bz};
    obs(kernel, grid, block, shmem);
  }
}

// ---- CUDA graphs (`--cuda-graph`, train/graph_step.h) ---------------------
// begin_capture(): until end_capture(), this thread's compute_stream() is a
// fresh non-blocking capture stream (cudaStreamBeginCapture in thread-local
// mode; capture cannot happen on the legacy default stream). What is issued
// there (kernels with their arguments by value, memsets, device-to-device
// copies, async copies from pinned memory) is recorded, not run. Anything that
// would make the host wait for the device or read device memory (copy_h2d,
// copy_d2h, synchronize, events, pinned_free, empty_cache) throws ctg::Error
// naming it, as CUDA invalidates the capture (cudaErrorStreamCaptureUnsupported).
// Device memory allocated on this thread during the capture comes from a
// private pool of the graph: the kernels bake its addresses in, so its blocks
// stay reserved (freed ones are reused only within the same capture, whose
// order every replay repeats) until destroy_graph.
// launch_graph() replays the whole recording on the compute stream, after
// everything issued before it (cudaGraphLaunch on the legacy stream).
using Graph = void*;  // cudaGraphExec_t with its memory pool
void begin_capture();
Graph end_capture();     // instantiated; nothing of it has run yet
void abort_capture();    // after an error inside the capture: discards it and its pool
void launch_graph(Graph g);
void destroy_graph(Graph g);  // and releases its pool
bool capturing();             // this thread is capturing
// Throws "<what>: not allowed while a CUDA graph is being captured (...)".
void refuse_during_capture(const char* what);

namespace detail {  // the capture state, shared by both backends and the allocator
inline thread_local Stream tl_capture_stream = nullptr;
// The graph's private pool (kernels/cuda/allocator.cpp): pool_begin routes
// this thread's device_alloc/device_free to a new pool until pool_end.
void* pool_begin();
void* pool_end();  // the pool, closed to new blocks; nullptr when none was open
void pool_release(void* pool);  // blocks still in use are handed to the cache when freed
}  // namespace detail

namespace backend {  // implemented by runtime_native.cu / runtime_emu.cpp
void* raw_device_alloc(size_t bytes);  // nullptr when out of memory
void raw_device_free(void* p);
// Called on every block device_alloc hands out, fresh or reused: the
// emulation fills it with 0xFF bytes (NaN as float32), so a kernel that reads
// what nothing wrote fails a test; on a GPU it does the same on the compute
// stream when CTGRAD_CUDA_POISON=1, and nothing otherwise.
void poison_device_memory(void* p, size_t bytes);
}  // namespace backend

}  // namespace ctg::cuda
