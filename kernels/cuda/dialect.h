// The CUDA dialect every kernel file (kernels/cuda/<op>.cu) is written in.
//
// Under nvcc (__CUDACC__) the macros map to real CUDA. Under a plain C++
// compiler they map to the CPU emulation in kernels/cuda/emu/ (see cuda_emu.h),
// so the same source runs — and is tested — on machines without a GPU.
//
// Rules for kernel files:
// - Launch only through ctg::cuda::launch / CTG_LAUNCH, never `<<<>>>`.
// - Shared memory only through CTG_SHARED / CTG_DYNAMIC_SHARED; `__shared__`,
//   `__global__` and `__device__` are deliberately undefined under emulation so
//   that a stray one fails to compile instead of silently meaning something else.
// - No thread may spin-wait on another thread of its block or on another block:
//   emulated threads only switch at __syncthreads() and the warp *_sync intrinsics.
// - Available: threadIdx, blockIdx, blockDim, gridDim, warpSize, __syncthreads,
//   __syncwarp, __shfl{,_up,_down,_xor}_sync, __ballot_sync, __any_sync,
//   __all_sync, atomicAdd (int, unsigned, unsigned long long, float, double),
//   atomicSub, atomicMax/Min (int, unsigned), atomicExch, atomicCAS, __threadfence,
//   __ldg, __float_as_int and friends, __popc, __ffs, __clz, the <math.h> float
//   functions (fminf, expf, ...), rsqrtf, __expf, __logf, __fdividef.
#pragma once

#include <cstddef>
#include <stdexcept>
#include <string>
#include <utility>

#include "kernels/cuda/runtime.h"  // notify_launch (the trace's launch observer)

#if defined(__CUDACC__)

#include <cuda_runtime.h>

#define CTG_GLOBAL __global__
#define CTG_DEVICE __device__ inline
#define CTG_HOST_DEVICE __host__ __device__ inline
#define CTG_LAUNCH_BOUNDS(max_threads) __launch_bounds__(max_threads)
#define CTG_UNROLL _Pragma("unroll")
// A shared array, e.g. CTG_SHARED(float, tile, [32][33]); for a scalar leave dims empty.
#define CTG_SHARED(T, name, dims) __shared__ T name dims
// The launch's dynamic shared memory as a T*. One raw byte array per kernel, so
// kernels of different element types can share a translation unit.
#define CTG_DYNAMIC_SHARED(T, name)                                          \
  extern __shared__ __align__(16) unsigned char ctg_dynamic_shared_bytes_[]; \
  T* name = reinterpret_cast<T*>(ctg_dynamic_shared_bytes_)

namespace ctg::cuda {
// kernel<<<grid, block, dyn_shared_bytes, stream>>>(args...), then the launch
// error (bad configuration, missing kernel image) as an exception naming the kernel.
template <typename... P, typename... A>
void launch(const char* name, void (*kernel)(P...), dim3 grid, dim3 block, std::size_t dyn_shared_bytes,
            cudaStream_t stream, A&&... args) {
  static_assert(sizeof...(P) == sizeof...(A), "ctg::cuda::launch: argument count differs from the kernel's");
  notify_launch(name, grid.x, grid.y, grid.z, block.x, block.y, block.z, dyn_shared_bytes);
  kernel<<<grid, block, dyn_shared_bytes, stream>>>(std::forward<A>(args)...);
  const cudaError_t err = cudaGetLastError();
  if (err != cudaSuccess) {
    auto d = [](dim3 v) {
      return "(" + std::to_string(v.x) + "," + std::to_string(v.y) + "," + std::to_string(v.z) + ")";
    };
    throw std::runtime_error(std::string("CUDA: launch of kernel '") + name + "' failed: " +
                             cudaGetErrorString(err) + " (grid " + d(grid) + ", block " + d(block) + ", " +
                             std::to_string(dyn_shared_bytes) + " bytes dynamic shared memory)");
  }
}
}  // namespace ctg::cuda

#else  // CPU emulation

#include "kernels/cuda/emu/cuda_emu.h"

#define CTG_GLOBAL
#define CTG_DEVICE inline
#define CTG_HOST_DEVICE inline
#define CTG_LAUNCH_BOUNDS(max_threads)
#define CTG_UNROLL
// Per-block storage: a slot per OS thread that the first thread of each block to
// get here allocates from the block's shared memory (poisoned with 0xFF bytes).
#define CTG_SHARED(T, name, dims)                                                          \
  static thread_local ::ctg::cuda::emu::detail::SharedSlot<T dims> ctg_shared_slot_##name; \
  auto& name = ctg_shared_slot_##name.get()
#define CTG_DYNAMIC_SHARED(T, name) T* name = reinterpret_cast<T*>(::ctg::cuda::emu::detail::tl_dynamic_shared)

#endif

// Launch with the kernel's own name in error messages:
//   CTG_LAUNCH(relu_forward_kernel<float>, grid, block, 0, stream, x, y, n);
// A template-id with a comma needs parentheses: CTG_LAUNCH((gemm<float, 64>), ...).
#define CTG_LAUNCH(kernel, ...) ::ctg::cuda::launch(#kernel, kernel, __VA_ARGS__)
