// CPU emulation of the CUDA dialect (kernels/cuda/dialect.h includes this under g++).
//
// Execution model, and why:
// - A launch's blocks are spread over a small pool of OS threads; one block runs
//   entirely on one OS thread, so per-block state (shared memory, the block's
//   thread table) is per-OS-thread and needs no locking.
// - A block's CUDA threads run as fibers on that OS thread. A fiber switches only
//   where CUDA threads synchronise: __syncthreads() and the warp *_sync intrinsics.
//   Between those points a thread runs alone, in an order chosen by the Schedule
//   (in order, reversed, or shuffled with a seed) — so a missing barrier makes the
//   answer depend on the schedule and a test comparing schedules fails.
// - A fiber that finishes a thread picks up the next unstarted one, so a kernel
//   without barriers runs as a plain loop on a single fiber.
// - A barrier that not every live thread reaches (some exited, or wait at another
//   call site) is reported as an exception naming the kernel, block and site.
// - Static and dynamic shared memory are filled with 0xFF bytes (NaN for floats)
//   at block start, so reading what nothing wrote shows up as a wrong answer.
// - "Device memory" is ordinary host memory, NaN-filled when allocated
//   (kernels/cuda/runtime_emu.cpp); atomics are real atomics.
// - The compute stream runs each launch before returning; created streams
//   queue their work until something waits for it (streams.h).
#pragma once

#if defined(__CUDACC__)
#error "cuda_emu.h is the g++ side of kernels/cuda/dialect.h; under nvcc include dialect.h"
#endif
#if defined(__CUDA_RUNTIME_H__) || defined(__DRIVER_TYPES_H__)
#error "an emulated translation unit must not include the real CUDA headers (dim3, cudaStream_t clash)"
#endif

#include <cstddef>
#include <cstdint>
#include <cstring>
#include <memory>
#include <string>
#include <tuple>
#include <type_traits>
#include <utility>
#include <vector>

#include "kernels/cuda/emu/schedule.h"
#include "kernels/cuda/emu/streams.h"
#include "kernels/cuda/runtime.h"  // notify_launch (the trace's launch observer)

// ---- CUDA's built-in types (global namespace, as in CUDA) ----------------------
struct uint3 {
  unsigned int x, y, z;
};
struct dim3 {
  unsigned int x, y, z;
  constexpr dim3(unsigned int vx = 1, unsigned int vy = 1, unsigned int vz = 1) : x(vx), y(vy), z(vz) {}
  constexpr dim3(uint3 v) : x(v.x), y(v.y), z(v.z) {}
};
// Same spelling as CUDA's opaque stream handle (kernels/cuda/emu/streams.h
// gives created streams their order).
struct CUstream_st;
typedef CUstream_st* cudaStream_t;

constexpr int warpSize = 32;

namespace ctg::cuda::emu {

// OS threads that run blocks (the launching thread included): CTGRAD_EMU_THREADS,
// else the hardware concurrency.
int worker_threads();

// Source location of a synchronisation point, for error messages.
struct Site {
  const char* file;
  int line;
};

namespace detail {

// The running CUDA thread's coordinates. thread_local because blocks run on
// several OS threads; the scheduler rewrites threadIdx at every fiber switch.
inline thread_local uint3 tl_thread_idx{0, 0, 0};
inline thread_local uint3 tl_block_idx{0, 0, 0};
inline thread_local dim3 tl_block_dim{0, 0, 0};
inline thread_local dim3 tl_grid_dim{0, 0, 0};
// Incremented at every block start on this OS thread: tells a static shared
// array that it must be (re)allocated and poisoned for the new block.
inline thread_local std::uint64_t tl_block_epoch = 0;
inline thread_local unsigned char* tl_dynamic_shared = nullptr;

// Carves `bytes` out of the running block's shared memory, filled with 0xFF.
void* static_shared_alloc(std::size_t bytes, std::size_t align);

// One per CTG_SHARED declaration and OS thread. The first thread of a block to
// reach the declaration allocates; the others of that block see the same epoch.
template <typename A>
struct SharedSlot {
  std::uint64_t epoch;  // zero-initialised (static storage): never a live epoch
  A* ptr;
  A& get() {
    if (epoch != tl_block_epoch) {
      ptr = static_cast<A*>(static_shared_alloc(sizeof(A), alignof(A)));
      epoch = tl_block_epoch;
    }
    return *ptr;
  }
};

void syncthreads(Site site);

enum class WarpOp : std::uint8_t { sync, shfl_idx, shfl_up, shfl_down, shfl_xor, ballot, any, all, mma, ldmatrix };
// A warp collective: waits until every live lane named in `mask` arrives, then
// returns this lane's result (a shuffled value's bits, or the vote).
std::uint64_t warp_collective(Site site, WarpOp op, unsigned mask, std::uint64_t value, int arg,
                              int width);

template <typename T>
std::uint64_t to_bits(T v) {
  static_assert(std::is_trivially_copyable_v<T> && sizeof(T) <= 8, "warp shuffles move values of at most 8 bytes");
  std::uint64_t bits = 0;
  std::memcpy(&bits, &v, sizeof(T));
  return bits;
}
template <typename T>
T from_bits(std::uint64_t bits) {
  T v;
  std::memcpy(&v, &bits, sizeof(T));
  return v;
}

// Object-like macros below expand to `At{__FILE__, __LINE__}.name(args...)`, so
// the CUDA spellings keep their default arguments and still record the call site.
struct At {
  Site site;
  template <typename T>
  T shfl_sync(unsigned mask, T v, int src_lane, int width = warpSize) const {
    return from_bits<T>(warp_collective(site, WarpOp::shfl_idx, mask, to_bits(v), src_lane, width));
  }
  template <typename T>
  T shfl_up_sync(unsigned mask, T v, unsigned delta, int width = warpSize) const {
    return from_bits<T>(warp_collective(site, WarpOp::shfl_up, mask, to_bits(v), (int)delta, width));
  }
  template <typename T>
  T shfl_down_sync(unsigned mask, T v, unsigned delta, int width = warpSize) const {
    return from_bits<T>(warp_collective(site, WarpOp::shfl_down, mask, to_bits(v), (int)delta, width));
  }
  template <typename T>
  T shfl_xor_sync(unsigned mask, T v, int lane_mask, int width = warpSize) const {
    return from_bits<T>(warp_collective(site, WarpOp::shfl_xor, mask, to_bits(v), lane_mask, width));
  }
  unsigned ballot_sync(unsigned mask, int pred) const {
    return (unsigned)warp_collective(site, WarpOp::ballot, mask, pred != 0, 0, warpSize);
  }
  int any_sync(unsigned mask, int pred) const {
    return (int)warp_collective(site, WarpOp::any, mask, pred != 0, 0, warpSize);
  }
  int all_sync(unsigned mask, int pred) const {
    return (int)warp_collective(site, WarpOp::all, mask, pred != 0, 0, warpSize);
  }
  void syncwarp(unsigned mask = 0xffffffffu) const {
    warp_collective(site, WarpOp::sync, mask, 0, 0, warpSize);
  }
};

// ---- tensor-core instructions (kernels/cuda/tensor_core.h is the dialect's face) ----
// The warp-wide ones go through warp_collective with `value` = the address of the
// lane's operand record below: every lane's record stays valid while it waits
// (its fiber's stack is suspended, not unwound), so the last lane to arrive
// reads all 32 and writes every lane's results at once.
struct MmaLane {
  const std::uint32_t* a;  // 4 .tf32 registers
  const std::uint32_t* b;  // 2 .tf32 registers
  const float* c;          // 4 accumulators
  float* d;                // 4 results (may alias c)
};
struct LdmatrixLane {
  const void* row;  // this lane's row address (used by lanes 0 .. 8·num−1)
  std::uint32_t* out;
};
// mma.sync.aligned.m16n8k8.row.col.f32.tf32.tf32.f32 (fragment layouts: warp.cpp).
void mma_m16n8k8_tf32(Site site, float* d, const std::uint32_t* a, const std::uint32_t* b, const float* c);
// ldmatrix.sync.aligned.m8n8.x{1,2,4}[.trans].shared.b16
void ldmatrix(Site site, int num, bool trans, std::uint32_t* out, const void* row);
// cp.async.{ca,cg}.shared.global [dst], [src], bytes, src_bytes; commit_group; wait_group n
// (kernels/cuda/emu/async_copy.cpp: deferred until the wait, destination poisoned at issue).
void cp_async(Site site, void* dst, const void* src, int bytes, int src_bytes);
void cp_async_commit(Site site);
void cp_async_wait(Site site, int n);

using Thunk = void (*)(const void* closure);
// Validates the configuration (throws naming the kernel), then runs every block;
// rethrows the first block's error with the kernel and block named.
void launch_erased(const char* name, dim3 grid, dim3 block, std::size_t dyn_shared_bytes, Thunk thunk,
                   const void* closure);

}  // namespace detail
}  // namespace ctg::cuda::emu

namespace ctg::cuda {
// The dialect's launch: under nvcc `kernel<<<grid, block, shmem, stream>>>(args...)`;
// here every thread of every block calls kernel(args...). Arguments are converted
// to the kernel's parameter types once, as a real launch copies them.
// On the compute stream (nullptr) the launch runs before returning; on a
// created stream it is queued and runs when something waits for that stream
// (kernels/cuda/emu/streams.h), so a missing wait shows in a test.
template <typename... P, typename... A>
void launch(const char* name, void (*kernel)(P...), dim3 grid, dim3 block, std::size_t dyn_shared_bytes,
            cudaStream_t stream, A&&... args) {
  static_assert(sizeof...(P) == sizeof...(A), "ctg::cuda::launch: argument count differs from the kernel's");
  notify_launch(name, grid.x, grid.y, grid.z, block.x, block.y, block.z, dyn_shared_bytes);
  struct Closure {
    void (*kernel)(P...);
    std::tuple<P...> args;
  };
  auto closure = std::make_shared<const Closure>(Closure{kernel, std::tuple<P...>(std::forward<A>(args)...)});
  auto run = [name, grid, block, dyn_shared_bytes, closure] {
    emu::detail::launch_erased(
        name, grid, block, dyn_shared_bytes,
        [](const void* p) {
          const Closure* c = static_cast<const Closure*>(p);
          std::apply(c->kernel, c->args);
        },
        closure.get());
  };
  if (stream) emu::stream_enqueue(stream, run);
  else run();
}
}  // namespace ctg::cuda

// ---- CUDA built-in variables and intrinsics ----------------------------------
// Read-only views, so kernel code cannot assign to threadIdx by mistake.
#define threadIdx (static_cast<const uint3&>(::ctg::cuda::emu::detail::tl_thread_idx))
#define blockIdx (static_cast<const uint3&>(::ctg::cuda::emu::detail::tl_block_idx))
#define blockDim (static_cast<const dim3&>(::ctg::cuda::emu::detail::tl_block_dim))
#define gridDim (static_cast<const dim3&>(::ctg::cuda::emu::detail::tl_grid_dim))

#define CTG_EMU_AT (::ctg::cuda::emu::detail::At{::ctg::cuda::emu::Site{__FILE__, __LINE__}})
#define __syncthreads() ::ctg::cuda::emu::detail::syncthreads(::ctg::cuda::emu::Site{__FILE__, __LINE__})
#define __syncwarp CTG_EMU_AT.syncwarp
#define __shfl_sync CTG_EMU_AT.shfl_sync
#define __shfl_up_sync CTG_EMU_AT.shfl_up_sync
#define __shfl_down_sync CTG_EMU_AT.shfl_down_sync
#define __shfl_xor_sync CTG_EMU_AT.shfl_xor_sync
#define __ballot_sync CTG_EMU_AT.ballot_sync
#define __any_sync CTG_EMU_AT.any_sync
#define __all_sync CTG_EMU_AT.all_sync

#include "kernels/cuda/emu/device_functions.h"
