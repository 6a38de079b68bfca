// The device side of kernels/cuda/runtime.h's allocator: the shared caching
// allocator (base/caching_allocator.h) over the backend's raw calls, so
// steady-state training never calls cudaMalloc/cudaFree; the private pools
// of CUDA graphs; and the capture state (compute_stream) both backends share.
//
// A graph's kernels hold the addresses of every block its capture allocated,
// so those blocks must not go back to the cache while the graph lives:
// - a block allocated on the capturing thread during the capture joins the
//   graph's pool (taken from the pool's own free list first, else from the cache);
// - freed during the capture, it returns to the pool's free list and may be
//   handed out again within the same capture: every replay repeats the
//   capture's order, so the reuse is the same each time;
// - freed after the capture, it stays reserved (a replay still writes it);
// - destroy_graph (pool_release) gives the unused blocks back to the cache;
//   one a tensor still holds goes back when that tensor frees it.
#include <map>
#include <mutex>
#include <unordered_map>
#include <unordered_set>
#include <vector>

#include "base/caching_allocator.h"
#include "base/error.h"
#include "kernels/cuda/runtime.h"

namespace ctg::cuda {

namespace {
CachingAllocator& device_cache() {
  // Never destroyed: tensors held by statics may be freed after main returns.
  static CachingAllocator* c = new CachingAllocator(backend::raw_device_alloc, backend::raw_device_free);
  return *c;
}

struct Pool {
  bool open = true;                               // its capture is still running
  std::unordered_map<void*, size_t> blocks;       // every block -> rounded size
  std::unordered_set<void*> in_use;               // held by a tensor
  std::map<size_t, std::vector<void*>> free;      // freed during the capture
};
std::mutex g_pool_mu;
// Block -> its pool; nullptr: the pool was released while the block was in use.
std::unordered_map<void*, Pool*> g_owner;
thread_local Pool* tl_pool = nullptr;  // this thread is capturing into it

void* pool_alloc(Pool* pl, size_t bytes) {
  const size_t n = CachingAllocator::round_size(bytes);
  {
    std::lock_guard<std::mutex> lock(g_pool_mu);
    auto it = pl->free.find(n);
    if (it != pl->free.end() && !it->second.empty()) {
      void* p = it->second.back();
      it->second.pop_back();
      pl->in_use.insert(p);
      return p;
    }
  }
  void* p = device_cache().alloc(bytes);
  if (!p) return nullptr;
  std::lock_guard<std::mutex> lock(g_pool_mu);
  pl->blocks[p] = n;
  pl->in_use.insert(p);
  g_owner[p] = pl;
  return p;
}

// true when p belongs to a graph's pool (and was handled here).
bool pool_free(void* p) {
  std::lock_guard<std::mutex> lock(g_pool_mu);
  auto it = g_owner.find(p);
  if (it == g_owner.end()) return false;
  Pool* pl = it->second;
  if (!pl) {  // its graph is gone: an ordinary block again
    g_owner.erase(it);
    return false;
  }
  if (!pl->in_use.erase(p)) throw Error("CUDA: device_free of a graph-pool block that is not in use (double free)");
  if (pl->open) pl->free[pl->blocks.at(p)].push_back(p);
  return true;
}
}  // namespace

void* device_alloc(size_t bytes) {
  require_device("device_alloc");
  void* p = tl_pool ? pool_alloc(tl_pool, bytes) : device_cache().alloc(bytes);
  if (!p)
    throw Error("CUDA: out of device memory allocating " + std::to_string(bytes) + " bytes (" +
                std::to_string(device_cache().stats().bytes_in_use >> 20) + " MiB in use)");
  backend::poison_device_memory(p, bytes);  // during a capture: recorded, so every replay poisons again
  return p;
}

void device_free(void* p) {
  if (!p || pool_free(p)) return;
  if (!device_cache().free(p)) throw Error("CUDA: device_free of a pointer the allocator does not own");
}

AllocatorStats allocator_stats() { return device_cache().stats(); }
void empty_cache() {
  refuse_during_capture("empty_cache (cudaFree)");
  device_cache().empty_cache();
}

// The capture state both backends share (runtime.h's detail::tl_capture_stream).
Stream compute_stream() { return detail::tl_capture_stream; }  // nullptr: the legacy default stream
bool capturing() { return detail::tl_capture_stream != nullptr; }
void refuse_during_capture(const char* what) {
  if (capturing())
    throw Error(std::string(what) +
                ": not allowed while a CUDA graph is being captured (it would read device memory on the host or "
                "wait for the device; CUDA invalidates the capture: cudaErrorStreamCaptureUnsupported)");
}

namespace detail {
void* pool_begin() {
  if (tl_pool) throw Error("CUDA graph: a capture is already running on this thread");
  tl_pool = new Pool;
  return tl_pool;
}
void* pool_end() {
  Pool* pl = tl_pool;
  if (!pl) return nullptr;
  std::lock_guard<std::mutex> lock(g_pool_mu);
  pl->open = false;
  pl->free.clear();  // reserved for the replays now, not for new allocations
  tl_pool = nullptr;
  return pl;
}
void pool_release(void* pool) {
  auto* pl = static_cast<Pool*>(pool);
  if (!pl) return;
  if (tl_pool == pl) pool_end();
  std::vector<void*> unused;
  {
    std::lock_guard<std::mutex> lock(g_pool_mu);
    for (auto& [p, n] : pl->blocks) {
      if (pl->in_use.count(p)) {
        g_owner[p] = nullptr;
      } else {
        g_owner.erase(p);
        unused.push_back(p);
      }
    }
  }
  for (void* p : unused) device_cache().free(p);
  delete pl;
}
}  // namespace detail

}  // namespace ctg::cuda
