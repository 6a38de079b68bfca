// Helpers shared by the kernel files in kernels/cuda/ (include after dialect.h).
#pragma once
#include <cstdint>

#include "kernels/cuda/dialect.h"
#include "kernels/cuda/runtime.h"

namespace ctg::kernels::cuda_detail {

// Every kernel launches on the runtime's compute stream.
inline cudaStream_t stream() { return static_cast<cudaStream_t>(ctg::cuda::compute_stream()); }

// Blocks for a 1-D launch over n elements with `threads` per block, capped so
// that grid-stride loops cover the rest (the grid stays within CUDA's limit
// and the emulation does not create millions of block records).
inline unsigned int blocks_for(int64_t n, int threads, int64_t cap = 65535) {
  int64_t b = (n + threads - 1) / threads;
  if (b < 1) b = 1;
  return (unsigned int)(b < cap ? b : cap);
}

}  // namespace ctg::kernels::cuda_detail

// Grid-stride loop over [0, n): the same code is correct for any launch shape.
#define CTG_GRID_STRIDE_LOOP(i, n)                                                     \
  for (int64_t i = (int64_t)blockIdx.x * blockDim.x + threadIdx.x; i < (int64_t)(n); \
       i += (int64_t)blockDim.x * gridDim.x)
