// A size-bucketed caching allocator over raw alloc/free functions, used for
// both CPU storage (where each fresh 100 MB activation would otherwise cost
// hundreds of ms of first-touch page faults per training step) and CUDA
// device memory (where cudaMalloc/cudaFree synchronise the device).
//
// Sizes round up to 512 bytes below 1 MiB and to whole MiB above, so the
// same-shaped tensors of successive training steps map to the same buckets;
// a freed block waits in its bucket for the next request of that size. When
// the raw allocator fails, the cache is emptied and the allocation retried.
#pragma once
#include <cstddef>
#include <map>
#include <mutex>
#include <unordered_map>
#include <vector>

namespace ctg {

struct AllocatorStats {
  size_t bytes_in_use = 0, bytes_cached = 0, raw_allocs = 0, raw_frees = 0, cache_hits = 0;
};

class CachingAllocator {
 public:
  using RawAlloc = void* (*)(size_t);  // nullptr when out of memory
  using RawFree = void (*)(void*);
  CachingAllocator(RawAlloc a, RawFree f) : raw_alloc_(a), raw_free_(f) {}

  // nullptr only when the raw allocator fails even after emptying the cache.
  void* alloc(size_t bytes) {
    const size_t n = round_size(bytes);
    std::lock_guard<std::mutex> lock(mu_);
    void* p = nullptr;
    auto it = free_.find(n);
    if (it != free_.end() && !it->second.empty()) {
      p = it->second.back();
      it->second.pop_back();
      stats_.bytes_cached -= n;
      stats_.cache_hits++;
    } else {
      p = raw_alloc_(n);
      if (!p) {
        release_locked();
        p = raw_alloc_(n);
      }
      if (!p) return nullptr;
      stats_.raw_allocs++;
    }
    live_[p] = n;
    stats_.bytes_in_use += n;
    return p;
  }

  // false when p was not allocated here.
  bool free(void* p) {
    if (!p) return true;
    std::lock_guard<std::mutex> lock(mu_);
    auto it = live_.find(p);
    if (it == live_.end()) return false;
    const size_t n = it->second;
    live_.erase(it);
    stats_.bytes_in_use -= n;
    stats_.bytes_cached += n;
    free_[n].push_back(p);
    return true;
  }

  AllocatorStats stats() {
    std::lock_guard<std::mutex> lock(mu_);
    return stats_;
  }

  void empty_cache() {
    std::lock_guard<std::mutex> lock(mu_);
    release_locked();
  }

  static size_t round_size(size_t n) {
    const size_t mib = size_t(1) << 20;
    if (n == 0) n = 1;
    return n < mib ? (n + 511) / 512 * 512 : (n + mib - 1) / mib * mib;
  }

 private:
  void release_locked() {
    for (auto& [size, blocks] : free_)
      for (void* p : blocks) {
        raw_free_(p);
        stats_.raw_frees++;
        stats_.bytes_cached -= size;
      }
    free_.clear();
  }
  RawAlloc raw_alloc_;
  RawFree raw_free_;
  std::mutex mu_;
  std::map<size_t, std::vector<void*>> free_;  // rounded size -> cached blocks
  std::unordered_map<void*, size_t> live_;     // block -> rounded size
  AllocatorStats stats_;
};

}  // namespace ctg
