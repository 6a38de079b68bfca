// Kernel launches in the CUDA emulation: configuration checks with CUDA's limits,
// the schedule setting, and the pool of OS threads that runs a grid's blocks.
//
// Launches are synchronous and serialised (one mutex): the emulated device has a
// single in-order stream, and a kernel never overlaps the host code after it.
#include <algorithm>
#include <atomic>
#include <condition_variable>
#include <cstdlib>
#include <mutex>
#include <optional>
#include <sstream>
#include <stdexcept>
#include <thread>

#include "kernels/cuda/emu/runner.h"

namespace ctg::cuda::emu {

// ---- schedule -----------------------------------------------------------------
std::string Schedule::name() const {
  switch (order) {
    case in_order: return "inorder";
    case reversed: return "reverse";
    case shuffled: return "random:" + std::to_string(seed);
  }
  return "?";
}

Schedule parse_schedule(const std::string& text) {
  if (text == "inorder") return Schedule(Schedule::in_order);
  if (text == "reverse") return Schedule(Schedule::reversed);
  const std::string prefix = "random:";
  if (text.compare(0, prefix.size(), prefix) == 0 && text.size() > prefix.size()) {
    const std::string digits = text.substr(prefix.size());
    if (digits.find_first_not_of("0123456789") == std::string::npos)
      return Schedule(Schedule::shuffled, std::stoull(digits));
  }
  throw std::invalid_argument("CUDA emulation schedule '" + text +
                              "': expected inorder, reverse or random:<seed> (a decimal seed)");
}

namespace {
std::mutex g_schedule_mutex;
std::optional<Schedule> g_schedule;  // unset until first use or set_schedule

std::mutex g_launch_mutex;  // one launch at a time

int env_int(const char* name, int fallback) {
  const char* v = std::getenv(name);
  if (!v || !*v) return fallback;
  char* end = nullptr;
  const long n = std::strtol(v, &end, 10);
  if (*end || n < 1 || n > 256)
    throw std::invalid_argument(std::string(name) + "='" + v + "': expected a thread count in 1..256");
  return (int)n;
}
}  // namespace

Schedule current_schedule() {
  std::lock_guard<std::mutex> lock(g_schedule_mutex);
  if (!g_schedule) {
    const char* env = std::getenv("CTGRAD_EMU_SCHEDULE");
    try {
      g_schedule = (env && *env) ? parse_schedule(env) : Schedule();
    } catch (const std::invalid_argument& e) {
      throw std::invalid_argument(std::string("CTGRAD_EMU_SCHEDULE: ") + e.what());
    }
  }
  return *g_schedule;
}

void set_schedule(Schedule s) {
  std::lock_guard<std::mutex> lock(g_schedule_mutex);
  g_schedule = s;
}

std::vector<Schedule> test_schedules(std::uint64_t seed) {
  return {Schedule(Schedule::in_order), Schedule(Schedule::reversed), Schedule(Schedule::shuffled, seed)};
}

int worker_threads() {
  static const int n = env_int("CTGRAD_EMU_THREADS", (int)std::max(1u, std::min(16u, std::thread::hardware_concurrency())));
  return n;
}

namespace detail {
namespace {

BlockRunner& local_runner() {
  // Heap-allocated: a runner holds 48 KiB of shared memory, too much for TLS.
  static thread_local std::unique_ptr<BlockRunner> runner(new BlockRunner);
  return *runner;
}

// Helper OS threads that take blocks from a shared counter alongside the
// launching thread. Started at the first multi-block launch.
class Pool {
 public:
  explicit Pool(int helpers) {
    for (int i = 0; i < helpers; ++i) threads_.emplace_back([this] { helper_loop(); });
  }
  ~Pool() {
    {
      std::lock_guard<std::mutex> lock(m_);
      stop_ = true;
    }
    start_cv_.notify_all();
    for (auto& t : threads_) t.join();
  }

  // Runs blocks [0, nblocks) of `job`; rethrows the first block error.
  void run(const Job& job, std::int64_t nblocks) {
    {
      std::lock_guard<std::mutex> lock(m_);
      job_ = &job;
      nblocks_ = nblocks;
      next_.store(0);
      failed_.store(false);
      error_.clear();
      busy_ = (int)threads_.size();
      ++generation_;
    }
    start_cv_.notify_all();
    work();
    std::unique_lock<std::mutex> lock(m_);
    done_cv_.wait(lock, [this] { return busy_ == 0; });
    job_ = nullptr;
    if (failed_.load()) throw std::runtime_error(error_);
  }

 private:
  void helper_loop() {
    std::uint64_t seen = 0;
    for (;;) {
      {
        std::unique_lock<std::mutex> lock(m_);
        start_cv_.wait(lock, [&] { return stop_ || generation_ != seen; });
        if (stop_) return;
        seen = generation_;
      }
      work();
      std::lock_guard<std::mutex> lock(m_);
      if (--busy_ == 0) done_cv_.notify_all();
    }
  }

  void work() {
    BlockRunner& runner = local_runner();
    while (!failed_.load(std::memory_order_relaxed)) {
      const std::int64_t b = next_.fetch_add(1);
      if (b >= nblocks_) break;
      try {
        runner.run_block(*job_, b);
      } catch (const std::exception& e) {
        std::lock_guard<std::mutex> lock(error_m_);
        if (!failed_.exchange(true)) error_ = e.what();
      }
    }
  }

  std::vector<std::thread> threads_;
  std::mutex m_;
  std::condition_variable start_cv_, done_cv_;
  bool stop_ = false;
  std::uint64_t generation_ = 0;
  int busy_ = 0;
  const Job* job_ = nullptr;
  std::int64_t nblocks_ = 0;
  std::atomic<std::int64_t> next_{0};
  std::atomic<bool> failed_{false};
  std::mutex error_m_;
  std::string error_;
};

std::string dims(dim3 d) {
  return "(" + std::to_string(d.x) + "," + std::to_string(d.y) + "," + std::to_string(d.z) + ")";
}

// CUDA's launch limits (compute capability 7.0 and later); a violation is what
// cudaGetLastError reports as cudaErrorInvalidConfiguration on a GPU.
void check_configuration(const char* name, dim3 grid, dim3 block, std::size_t shmem) {
  std::string why;
  const unsigned long long threads = (unsigned long long)block.x * block.y * block.z;
  if (!grid.x || !grid.y || !grid.z || !block.x || !block.y || !block.z)
    why = "a grid or block dimension is zero";
  else if (threads > (unsigned long long)kMaxBlockThreads)
    why = std::to_string(threads) + " threads per block; at most 1024 are allowed";
  else if (block.z > 64)
    why = "block z dimension " + std::to_string(block.z) + " exceeds 64";
  else if (grid.x > 2147483647u || grid.y > 65535 || grid.z > 65535)
    why = "grid dimension exceeds (2^31-1, 65535, 65535)";
  else if (shmem > kSharedBytes)
    why = std::to_string(shmem) + " bytes of dynamic shared memory exceed 48 KiB";
  if (!why.empty())
    throw std::runtime_error(std::string("CUDA emulation: launch of kernel '") + name +
                             "' failed: invalid configuration argument (grid " + dims(grid) + ", block " +
                             dims(block) + ", " + std::to_string(shmem) + " bytes dynamic shared memory): " + why);
}

}  // namespace

void launch_erased(const char* name, dim3 grid, dim3 block, std::size_t dyn_shared_bytes, Thunk thunk,
                   const void* closure) {
  if (tl_runner)
    throw std::logic_error(std::string("CUDA emulation: kernel '") + name +
                           "' launched from inside a kernel; dynamic parallelism is not emulated");
  check_configuration(name, grid, block, dyn_shared_bytes);
  const Job job{name, grid, block, dyn_shared_bytes, thunk, closure, current_schedule()};
  const std::int64_t nblocks = (std::int64_t)grid.x * grid.y * grid.z;

  std::lock_guard<std::mutex> lock(g_launch_mutex);
  if (nblocks == 1 || worker_threads() == 1) {
    // Waking helpers costs more than a lone block; and one worker means no helpers.
    BlockRunner& runner = local_runner();
    for (std::int64_t b = 0; b < nblocks; ++b) runner.run_block(job, b);
    return;
  }
  static Pool pool(worker_threads() - 1);
  pool.run(job, nblocks);
}

}  // namespace detail
}  // namespace ctg::cuda::emu
