// Runs one CUDA block on the calling OS thread: its threads as fibers, switching
// at __syncthreads() and warp intrinsics (model: cuda_emu.h; structures: runner.h).
//
// Control flow. run_block, on the OS thread's own stack, calls dispatch(), which
// jumps to a fiber. A fiber runs a thread until it exits or must wait, then calls
// dispatch() itself and jumps straight to the next runnable fiber; only when
// nothing is runnable does control return to run_block, which either releases a
// __syncthreads() (every live thread waits there), or reports why the block
// cannot go on. Nothing ever waits for a condition no thread can change: no hangs.
#undef _FORTIFY_SOURCE  // see fiber.cpp: longjmp between stacks
#include <algorithm>
#include <cstring>
#include <map>
#include <sstream>
#include <stdexcept>

#include "kernels/cuda/emu/runner.h"

namespace ctg::cuda::emu::detail {

const char* op_name(WarpOp op) {
  switch (op) {
    case WarpOp::sync: return "__syncwarp";
    case WarpOp::shfl_idx: return "__shfl_sync";
    case WarpOp::shfl_up: return "__shfl_up_sync";
    case WarpOp::shfl_down: return "__shfl_down_sync";
    case WarpOp::shfl_xor: return "__shfl_xor_sync";
    case WarpOp::ballot: return "__ballot_sync";
    case WarpOp::any: return "__any_sync";
    case WarpOp::all: return "__all_sync";
    case WarpOp::mma: return "mma.sync.m16n8k8";
    case WarpOp::ldmatrix: return "ldmatrix.sync";
  }
  return "?";
}

std::string where(Site s) { return std::string(s.file) + ":" + std::to_string(s.line); }

[[noreturn]] void throw_outside_kernel(const char* what) {
  throw std::logic_error(std::string(what) + " called outside a kernel launched by ctg::cuda::launch");
}

namespace {

bool same_site(Site a, Site b) { return a.line == b.line && std::strcmp(a.file, b.file) == 0; }

std::uint64_t splitmix64(std::uint64_t x) {
  x += 0x9e3779b97f4a7c15ull;
  x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ull;
  x = (x ^ (x >> 27)) * 0x94d049bb133111ebull;
  return x ^ (x >> 31);
}

}  // namespace

BlockRunner::BlockRunner() = default;
BlockRunner::~BlockRunner() = default;

void BlockRunner::run_block(const Job& job, std::int64_t block_linear) {
  job_ = &job;
  bdim_ = job.block;
  n_ = (int)(bdim_.x * bdim_.y * bdim_.z);
  if ((int)threads_.size() < n_) {
    threads_.resize(n_);
    perm_.resize(n_);
    ready_.resize(n_);
  }
  if (idx_dim_.x != bdim_.x || idx_dim_.y != bdim_.y || idx_dim_.z != bdim_.z) {
    // threadIdx of each linear id, computed once per block shape: three integer
    // divisions per thread would cost as much as a small kernel's body.
    idx_table_.resize(n_);
    for (int t = 0; t < n_; ++t) idx_table_[t] = uint3{t % bdim_.x, t / bdim_.x % bdim_.y, t / (bdim_.x * bdim_.y)};
    idx_dim_ = bdim_;
  }
  warps_.assign((n_ + 31) / 32, WarpRec{0xffffffffu, 0, 0});
  if (n_ % 32) warps_.back().present = (1u << (n_ % 32)) - 1;
  ready_head_ = ready_count_ = next_unstarted_ = exited_ = 0;
  current_ = -1;
  abort_ = false;
  error_.clear();

  // The first phase's order; later phases reshuffle (shuffled) or keep it.
  const Schedule& s = job.schedule;
  for (int i = 0; i < n_; ++i) perm_[i] = s.order == Schedule::reversed ? n_ - 1 - i : i;
  if (s.order == Schedule::shuffled) {
    rng_ = splitmix64(s.seed ^ splitmix64((std::uint64_t)block_linear));
    shuffle_perm();
  }

  const std::uint64_t gx = job.grid.x, gy = job.grid.y;
  tl_block_idx = uint3{(unsigned)(block_linear % gx), (unsigned)(block_linear / gx % gy),
                       (unsigned)(block_linear / (gx * gy))};
  tl_block_dim = job.block;
  tl_grid_dim = job.grid;
  ++tl_block_epoch;  // static shared arrays re-allocate (and re-poison) for this block
  tl_dynamic_shared = shared_;
  std::memset(shared_, 0xFF, job.dyn_shared_bytes);
  shared_used_ = (job.dyn_shared_bytes + 15) & ~std::size_t{15};

  tl_runner = this;
  for (;;) {
    if (_setjmp(sched_jb_) == 0) dispatch();
    // Back on the OS thread's stack: nothing is runnable.
    if (abort_ || exited_ == n_) break;
    if (!release_barrier()) break;
  }
  tl_runner = nullptr;
  current_ = -1;
  if (abort_) {
    recover_fibers();
    const uint3 b = tl_block_idx;
    std::ostringstream msg;
    msg << "CUDA emulation: kernel '" << job.name << "' block (" << b.x << "," << b.y << "," << b.z
        << ") of grid (" << job.grid.x << "," << job.grid.y << "," << job.grid.z << "), block size ("
        << bdim_.x << "," << bdim_.y << "," << bdim_.z << "): " << error_;
    throw std::runtime_error(msg.str());
  }
}

// Picks what runs next and jumps there; never returns. Threads woken by a
// completed warp intrinsic go before unstarted ones: a warp then runs through
// its shuffles while its few fibers' stacks are still in cache, instead of
// every thread of the block being started (and its stack touched) first.
void BlockRunner::dispatch() {
  if (!abort_) {
    if (ready_count_ > 0) {
      const int t = ready_[ready_head_];
      ready_head_ = (ready_head_ + 1) % n_;
      --ready_count_;
      threads_[t].state = ThreadState::running;
      _longjmp(threads_[t].fiber->jb, 1);
    }
    if (next_unstarted_ < n_) {
      Fiber* f = nullptr;
      if (!idle_.empty()) {
        f = idle_.back();
        idle_.pop_back();
      } else if (auto made = Fiber::create((int)fibers_.size())) {
        f = made.get();
        fibers_.push_back(std::move(made));
      }
      if (f) {
        f->idle = false;
        f->thread = perm_[next_unstarted_++];
        if (f->started) _longjmp(f->jb, 1);
        f->started = true;
        booting = f;
        setcontext(&f->boot);
      }
      fail("out of memory for a fiber stack (mmap failed)");
    }
  }
  _longjmp(sched_jb_, 1);
}

// Suspends the running fiber; returns when something jumps back to it.
void BlockRunner::switch_away(Fiber* self) {
  if (_setjmp(self->jb) == 0) dispatch();
}

void BlockRunner::fiber_main(Fiber* self) {
  for (;;) {
    int t = self->thread;
    for (;;) {
      run_thread(t, self);
      // Carry on with the next unstarted thread on this same fiber: a kernel
      // without barriers never switches at all.
      if (abort_ || ready_count_ > 0 || next_unstarted_ >= n_) break;
      t = perm_[next_unstarted_++];
    }
    self->idle = true;
    idle_.push_back(self);
    switch_away(self);  // resumed by dispatch() with a new self->thread
  }
}

void BlockRunner::run_thread(int t, Fiber* f) {
  ThreadRec& r = threads_[t];
  r.idx = idx_table_[t];
  r.state = ThreadState::running;
  r.fiber = f;
  r.copies.clear();  // cp.async state is per thread and starts empty
  r.open_group = 0;
  resume_as(t);
  try {
    job_->thunk(job_->closure);
  } catch (const std::exception& e) {
    fail(std::string("thread (") + std::to_string(r.idx.x) + "," + std::to_string(r.idx.y) + "," +
         std::to_string(r.idx.z) + ") threw: " + e.what());
  } catch (...) {
    fail("a thread threw an exception that is not a std::exception");
  }
  on_exit(t);
}

void BlockRunner::on_exit(int t) {
  threads_[t].state = ThreadState::exited;
  ++exited_;
  WarpRec& w = warps_[t >> 5];
  w.exited |= 1u << (t & 31);
  // Lanes waiting in a warp intrinsic may have been waiting only for this one.
  std::uint32_t pending = w.arrived;
  while (pending) {
    const std::uint32_t mask = threads_[(t & ~31) + __builtin_ctz(pending)].mask;
    try_complete(t >> 5, mask);
    pending &= ~mask;
  }
}

void BlockRunner::make_ready(int t) {
  threads_[t].state = ThreadState::ready;
  ready_[(ready_head_ + ready_count_) % n_] = t;
  ++ready_count_;
}

Fiber* BlockRunner::wait_at_barrier(Site site) {
  ThreadRec& r = threads_[current_];
  r.state = ThreadState::at_barrier;
  r.site = site;
  return r.fiber;
}

// All live threads wait at one __syncthreads(): start the next phase. Anything
// else with nothing runnable is a divergent barrier or a deadlock: report it.
bool BlockRunner::release_barrier() {
  int waiting = 0;
  Site site{"", 0};
  bool one_site = true;
  for (int t = 0; t < n_; ++t) {
    if (threads_[t].state != ThreadState::at_barrier) continue;
    if (waiting++ == 0)
      site = threads_[t].site;
    else if (!same_site(site, threads_[t].site))
      one_site = false;
  }
  if (waiting != n_ || !one_site) {
    fail(describe_stall());
    return false;
  }
  if (job_->schedule.order == Schedule::shuffled) shuffle_perm();
  for (int i = 0; i < n_; ++i) make_ready(perm_[i]);
  return true;
}

std::string BlockRunner::describe_stall() const {
  // Group the stuck threads by what they wait in, e.g. "16 threads at __syncthreads() at k.cu:12".
  std::map<std::string, std::pair<int, int>> groups;  // description -> (count, first thread)
  int barrier_waiters = 0;
  for (int t = 0; t < n_; ++t) {
    const ThreadRec& r = threads_[t];
    std::string what;
    if (r.state == ThreadState::at_barrier) {
      what = "__syncthreads() at " + where(r.site);
      ++barrier_waiters;
    } else if (r.state == ThreadState::at_warp) {
      std::ostringstream m;
      m << op_name(r.op) << "(mask 0x" << std::hex << r.mask << ") at " << where(r.site);
      what = m.str();
    } else {
      continue;
    }
    auto it = groups.emplace(what, std::make_pair(0, t)).first;
    ++it->second.first;
  }
  std::ostringstream msg;
  msg << (barrier_waiters ? "barrier divergence: " : "deadlock: ");
  const char* sep = "";
  for (const auto& [what, cf] : groups) {
    msg << sep << cf.first << " of " << n_ << " threads wait in " << what << " (first: linear thread " << cf.second
        << ")";
    sep = "; ";
  }
  if (exited_) msg << "; " << exited_ << " threads have exited";
  msg << ". Every thread of a block must reach the same __syncthreads(), and every live lane named in a"
         " warp intrinsic's mask must call it, or the GPU hangs or computes garbage.";
  return msg.str();
}

void* BlockRunner::shared_alloc(std::size_t bytes, std::size_t align) {
  const std::size_t a = std::max<std::size_t>(align, 16);
  const std::size_t offset = (shared_used_ + a - 1) & ~(a - 1);
  if (offset + bytes > kSharedBytes)
    throw std::runtime_error("shared memory: " + std::to_string(offset + bytes) +
                             " bytes (dynamic + static) exceed the 48 KiB a block may use");
  std::memset(shared_ + offset, 0xFF, bytes);
  shared_used_ = offset + bytes;
  return shared_ + offset;
}

void BlockRunner::shuffle_perm() {
  for (int i = n_ - 1; i > 0; --i) std::swap(perm_[i], perm_[next_random() % (std::uint64_t)(i + 1)]);
}

std::uint64_t BlockRunner::next_random() { return rng_ = splitmix64(rng_); }

void BlockRunner::fail(const std::string& msg) {
  if (!abort_) error_ = msg;  // keep the first error: later ones are consequences
  abort_ = true;
}

// After an abort some fibers still hold suspended kernel frames; restart them
// from scratch at their next use (their frames hold only kernel locals).
void BlockRunner::recover_fibers() {
  for (auto& f : fibers_) {
    if (f->idle) continue;
    f->reset();
    f->idle = true;
    idle_.push_back(f.get());
  }
}

// ---- entry points used by cuda_emu.h ---------------------------------------------
// The _setjmp that suspends a thread sits here, in the function kernel code
// calls, rather than in a helper: after a fiber switch every return mispredicts
// (the return-address predictor still holds the other fiber's calls), so each
// level between the kernel and the _setjmp costs a pipeline flush per switch.
void syncthreads(Site site) {
  BlockRunner* r = tl_runner;
  if (!r) throw_outside_kernel("__syncthreads()");
  const int t = r->current();
  Fiber* f = r->wait_at_barrier(site);
  if (_setjmp(f->jb) == 0) r->dispatch();
  r->resume_as(t);
}

void* static_shared_alloc(std::size_t bytes, std::size_t align) {
  if (!tl_runner) throw_outside_kernel("a shared-memory declaration");
  return tl_runner->shared_alloc(bytes, align);
}

}  // namespace ctg::cuda::emu::detail
