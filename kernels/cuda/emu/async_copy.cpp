// cp.async in the CUDA emulation: asynchronous global → shared copies with
// commit groups (PTX ISA, "Data Movement and Conversion Instructions: cp.async",
// cp.async.commit_group, cp.async.wait_group).
//
// On a GPU the copy lands in shared memory at some moment between the issue and
// the thread's cp.async.wait_group that covers its group; reading the
// destination before that wait is a race. The emulation makes the race visible
// every time instead of sometimes:
//   - at issue, the destination bytes are overwritten with 0xFF (NaN for floats)
//     and the copy is queued on the issuing thread;
//   - cp.async.commit_group closes the open group (copies issued since the last
//     commit); the copies issued after it belong to the next group;
//   - cp.async.wait_group n performs, in issue order, every queued copy of the
//     committed groups except the n most recent — the source is read then, not
//     at issue, so a kernel that overwrote its source in between also shows;
//   - copies never waited for are never performed (a thread that exits leaves
//     its destination poisoned), and __syncthreads() completes nothing, as on
//     the GPU: a missing wait reads NaN.
// src_bytes < bytes copies the first src_bytes bytes and zero-fills the rest
// (cp.async's src-size operand; 0 reads nothing, the implicit GEMMs' padding).
#undef _FORTIFY_SOURCE  // see fiber.cpp: longjmp between stacks
#include <cstring>
#include <stdexcept>

#include "kernels/cuda/emu/runner.h"

namespace ctg::cuda::emu::detail {

void BlockRunner::async_copy(Site site, void* dst, const void* src, int bytes, int src_bytes) {
  auto* d = static_cast<unsigned char*>(dst);
  const auto* s = static_cast<const unsigned char*>(src);
  auto bad = [&](const std::string& why) {
    throw std::runtime_error("cp.async at " + where(site) + ": " + why);
  };
  if (bytes != 4 && bytes != 8 && bytes != 16) bad("cp-size " + std::to_string(bytes) + " is not 4, 8 or 16");
  if (src_bytes < 0 || src_bytes > bytes)
    bad("src-size " + std::to_string(src_bytes) + " is outside 0.." + std::to_string(bytes));
  if (d < shared_ || d + bytes > shared_ + kSharedBytes) bad("the destination is not in the block's shared memory");
  if (s >= shared_ && s < shared_ + kSharedBytes) bad("the source is in shared memory (it must be global)");
  if (reinterpret_cast<std::uintptr_t>(d) % bytes || (src_bytes > 0 && reinterpret_cast<std::uintptr_t>(s) % bytes))
    bad("the addresses must be aligned to the cp-size (" + std::to_string(bytes) + " bytes)");
  ThreadRec& r = threads_[current_];
  std::memset(d, 0xFF, bytes);
  r.copies.push_back(AsyncCopy{d, s, (std::uint8_t)bytes, (std::uint8_t)src_bytes, r.open_group});
}

void BlockRunner::async_commit() { ++threads_[current_].open_group; }

void BlockRunner::async_wait(int n) {
  ThreadRec& r = threads_[current_];
  // Groups 0 .. open_group-1 are committed; all but the n most recent complete.
  const std::int64_t done_below = (std::int64_t)r.open_group - n;
  std::size_t keep = 0;
  for (std::size_t i = 0; i < r.copies.size(); ++i) {
    const AsyncCopy& c = r.copies[i];
    if ((std::int64_t)c.group < done_below) {
      if (c.src_bytes) std::memcpy(c.dst, c.src, c.src_bytes);
      std::memset(c.dst + c.src_bytes, 0, c.bytes - c.src_bytes);
    } else {
      r.copies[keep++] = c;
    }
  }
  r.copies.resize(keep);
}

void cp_async(Site site, void* dst, const void* src, int bytes, int src_bytes) {
  if (!tl_runner) throw_outside_kernel("cp.async");
  tl_runner->async_copy(site, dst, src, bytes, src_bytes);
}
void cp_async_commit(Site) {
  if (!tl_runner) throw_outside_kernel("cp.async.commit_group");
  tl_runner->async_commit();
}
void cp_async_wait(Site site, int n) {
  if (!tl_runner) throw_outside_kernel("cp.async.wait_group");
  if (n < 0) throw std::runtime_error("cp.async.wait_group at " + where(site) + ": negative group count");
  tl_runner->async_wait(n);
}

}  // namespace ctg::cuda::emu::detail
