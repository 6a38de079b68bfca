// The device side of kernels/cuda/runtime.h's allocator: the shared caching
// allocator (base/caching_allocator.h) over the backend's raw calls, so
// steady-state training never calls cudaMalloc/cudaFree.
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
}  // namespace

void* device_alloc(size_t bytes) {
  require_device("device_alloc");
  void* p = device_cache().alloc(bytes);
  if (!p)
    throw Error("CUDA: out of device memory allocating " + std::to_string(bytes) + " bytes (" +
                std::to_string(device_cache().stats().bytes_in_use >> 20) + " MiB in use)");
  backend::poison_device_memory(p, bytes);
  return p;
}

void device_free(void* p) {
  if (!device_cache().free(p)) throw Error("CUDA: device_free of a pointer the allocator does not own");
}

AllocatorStats allocator_stats() { return device_cache().stats(); }
void empty_cache() { device_cache().empty_cache(); }

}  // namespace ctg::cuda
