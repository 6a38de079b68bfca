// Host memory for tensors and large scratch buffers (engine/tensor.cpp's
// caching allocator, the SGEMM's packing buffers): 64-byte aligned (AVX-512
// loads, cache lines); blocks of 2 MiB and more are 2 MiB-aligned and
// advised to be backed by transparent huge pages (the kernel's "madvise" mode
// included; where THP is off the advice is ignored). A 150 MB activation then
// needs 75 TLB entries instead of 38400, and its first touch 75 page faults
// instead of 38400. Measured (2-core AMD EPYC, Zen 4, ResNet18 training step
// at batch 9, 512²): 528k → 81k page faults per run, the step ~5 % faster.
// Free with std::free.
#pragma once
#include <sys/mman.h>

#include <cstddef>
#include <cstdlib>

namespace ctg {

inline void* host_alloc(size_t n) {
  constexpr size_t huge = size_t(2) << 20;
  if (n < huge) return std::aligned_alloc(64, (n + 63) / 64 * 64);
  const size_t bytes = (n + huge - 1) / huge * huge;
  void* p = std::aligned_alloc(huge, bytes);
  if (p) madvise(p, bytes, MADV_HUGEPAGE);  // advice only: on failure the pages are normal ones
  return p;
}

}  // namespace ctg
