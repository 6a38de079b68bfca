// Internal to the emulation: fibers and the per-OS-thread block runner.
// Not included by kernel code; see cuda_emu.h for the model.
#pragma once

#include <setjmp.h>
#include <ucontext.h>

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "kernels/cuda/emu/cuda_emu.h"

namespace ctg::cuda::emu::detail {

// A CUDA block may use 48 KiB of shared memory (static + dynamic) without the
// opt-in attribute, which the dialect does not offer; the emulation enforces it
// so that code passing here also launches on a GPU.
constexpr std::size_t kSharedBytes = 48 * 1024;
constexpr int kMaxBlockThreads = 1024;

// An execution context with its own stack. Started once with makecontext +
// setcontext (a system call, paid once per fiber); afterwards every switch is
// _setjmp/_longjmp, which touches no signal mask and costs ~10 ns.
struct Fiber {
  jmp_buf jb;                // where to resume this fiber
  ucontext_t boot;           // entry context used for the first start only
  unsigned char* mapping = nullptr;
  std::size_t mapping_bytes = 0;
  std::size_t stack_bytes = 0;  // used part: starts above the guard page
  bool started = false;      // false: next entry goes through `boot`
  bool idle = true;          // not carrying a suspended CUDA thread
  int thread = -1;           // linear thread id assigned to run next

  // mmap's a stack with a PROT_NONE guard page below it; nullptr if out of
  // memory. `index` (the worker's fiber count) picks the stack's cache colour.
  static std::unique_ptr<Fiber> create(int index);
  // Rebuilds the entry context: the fiber starts afresh at its next entry.
  void reset();
  ~Fiber();
};

enum class ThreadState : std::uint8_t { running, ready, at_barrier, at_warp, exited };

// One CUDA thread of the running block. Entries are rewritten when a thread
// starts, so the table is reused across blocks without clearing.
// One cp.async issued and not yet waited for (kernels/cuda/emu/async_copy.cpp).
struct AsyncCopy {
  unsigned char* dst;
  const unsigned char* src;
  std::uint8_t bytes, src_bytes;
  std::uint32_t group;  // the commit group it belongs to (open_group when issued)
};

struct ThreadRec {
  uint3 idx;
  ThreadState state;
  Fiber* fiber;
  Site site;              // where it waits: __syncthreads() or a warp intrinsic
  WarpOp op;              // the pending warp intrinsic and its operands
  std::uint32_t mask;
  int arg, width;
  std::uint64_t value, result;
  std::vector<AsyncCopy> copies;  // this thread's pending cp.async, in issue order
  std::uint32_t open_group;       // groups committed so far = index of the open group
};

struct WarpRec {
  std::uint32_t present;  // lanes that exist (the last warp may be partial)
  std::uint32_t exited;   // lanes whose thread has returned
  std::uint32_t arrived;  // lanes waiting in a warp intrinsic
};

struct Job {
  const char* name;
  dim3 grid, block;
  std::size_t dyn_shared_bytes;
  Thunk thunk;
  const void* closure;
  Schedule schedule;
};

// Runs blocks on the calling OS thread. One per OS thread, reused for every block.
class BlockRunner {
 public:
  BlockRunner();
  ~BlockRunner();
  BlockRunner(const BlockRunner&) = delete;
  BlockRunner& operator=(const BlockRunner&) = delete;

  // Runs every thread of one block; throws std::runtime_error naming the kernel,
  // the block and what went wrong (kernel exception, barrier divergence, stall).
  void run_block(const Job& job, std::int64_t block_linear);

  // Called from kernel code on a fiber (see syncthreads / warp_collective).
  int current() const { return current_; }
  // Records that the running thread waits at a __syncthreads(); returns its
  // fiber, which the caller suspends (_setjmp, then dispatch()).
  Fiber* wait_at_barrier(Site site);
  // Enters a warp intrinsic: nullptr when this lane completed it (no wait),
  // else the fiber to suspend until the other lanes arrive.
  Fiber* warp_arrive(Site site, WarpOp op, unsigned mask, std::uint64_t value, int arg, int width);
  std::uint64_t result(int t) const { return threads_[t].result; }
  // Restores the coordinates of thread t after its fiber is resumed.
  void resume_as(int t) {
    current_ = t;
    tl_thread_idx = threads_[t].idx;
  }
  // Jumps to the next runnable fiber, or back to run_block if there is none.
  [[noreturn]] void dispatch();
  void* shared_alloc(std::size_t bytes, std::size_t align);
  // cp.async for the running thread (async_copy.cpp).
  void async_copy(Site site, void* dst, const void* src, int bytes, int src_bytes);
  void async_commit();
  void async_wait(int n);

  // Body of every fiber: runs assigned threads, then parks as idle.
  [[noreturn]] void fiber_main(Fiber* self);
  Fiber* booting = nullptr;  // the fiber being entered for the first time

 private:
  void switch_away(Fiber* self);
  void run_thread(int t, Fiber* f);
  void on_exit(int t);
  bool try_complete(int warp, std::uint32_t mask);
  void compute_results(int warp, std::uint32_t part);
  void compute_mma(int warp, std::uint32_t part);
  void compute_ldmatrix(int warp, std::uint32_t part);
  bool whole_warp(int warp, std::uint32_t part);
  void make_ready(int t);
  bool release_barrier();
  std::string describe_stall() const;
  void shuffle_perm();
  std::uint64_t next_random();
  void fail(const std::string& msg);
  void recover_fibers();

  const Job* job_ = nullptr;
  int n_ = 0;                 // threads per block
  dim3 bdim_;
  std::vector<ThreadRec> threads_;
  std::vector<uint3> idx_table_;  // threadIdx by linear id, for block shape idx_dim_
  dim3 idx_dim_{0, 0, 0};
  std::vector<WarpRec> warps_;
  std::vector<int> perm_;     // this phase's thread order
  std::vector<int> ready_;    // ring buffer of resumable threads (each at most once)
  int ready_head_ = 0, ready_count_ = 0;
  int next_unstarted_ = 0;    // index into perm_ of the next thread to start
  int exited_ = 0;
  int current_ = -1;          // linear id of the thread on the running fiber
  std::uint64_t rng_ = 0;

  std::vector<std::unique_ptr<Fiber>> fibers_;
  std::vector<Fiber*> idle_;
  jmp_buf sched_jb_;          // the OS thread's own stack, inside run_block
  bool abort_ = false;
  std::string error_;

  std::size_t shared_used_ = 0;
  alignas(64) unsigned char shared_[kSharedBytes];
};

// Shared by block.cpp and warp.cpp for messages.
const char* op_name(WarpOp op);      // "__shfl_down_sync", ...
std::string where(Site s);           // "file:line"
[[noreturn, gnu::noinline, gnu::cold]] void throw_outside_kernel(const char* what);

// The runner of the block executing on this OS thread; null outside kernels.
inline thread_local BlockRunner* tl_runner = nullptr;

}  // namespace ctg::cuda::emu::detail
