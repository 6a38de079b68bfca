// Warp intrinsics in the CUDA emulation: the *_sync shuffles and votes, with
// CUDA's rules (warp size 32, lane = linear thread id % 32). A lane entering an
// intrinsic deposits its operand and waits; the last live lane named in the
// mask computes every lane's result at once — the 32-slot exchange buffer is
// the lanes' own ThreadRec — and wakes the others. Lanes that have exited do
// not take part (as on a GPU); an intrinsic that can never complete is reported
// by run_block as a deadlock (see block.cpp).
#undef _FORTIFY_SOURCE  // see fiber.cpp: longjmp between stacks
#include <algorithm>
#include <sstream>
#include <stdexcept>

#include "kernels/cuda/emu/runner.h"

namespace ctg::cuda::emu::detail {
namespace {

// A shuffle reading from a lane that takes no part (exited, absent in a partial
// warp, or outside the mask) gets undefined data on a GPU; all-ones bits (NaN
// for floats, -1 for integers) make such a read visible in the results.
constexpr std::uint64_t kPoison = ~0ull;

// Out of line: keeps string building off the path every shuffle takes.
[[noreturn, gnu::noinline, gnu::cold]] void throw_warp_error(Site site, WarpOp op, int t, const std::string& what) {
  throw std::runtime_error(std::string(op_name(op)) + " at " + where(site) + " (warp " + std::to_string(t >> 5) +
                           ", lane " + std::to_string(t & 31) + "): " + what);
}

[[noreturn, gnu::noinline, gnu::cold]] void throw_divergent_warp(Site site, WarpOp op, int t, unsigned mask,
                                                                 int other_lane, const ThreadRec& o) {
  std::ostringstream m;
  m << "divergent warp intrinsics: mask 0x" << std::hex << mask << std::dec << " meets lane " << other_lane
    << " waiting in " << op_name(o.op) << "(mask 0x" << std::hex << o.mask << std::dec << ") at " << where(o.site);
  throw_warp_error(site, op, t, m.str());
}

}  // namespace

Fiber* BlockRunner::warp_arrive(Site site, WarpOp op, unsigned mask, std::uint64_t value, int arg, int width) {
  const int t = current_;
  const int w = t >> 5;
  WarpRec& wr = warps_[w];
  if (!((mask >> (t & 31)) & 1u)) throw_warp_error(site, op, t, "the calling lane is not in the mask");
  if (width < 1 || width > warpSize || (width & (width - 1)))
    throw_warp_error(site, op, t, "width " + std::to_string(width) + " is not a power of two in 1..32");
  // Lanes whose masks overlap must be in the same intrinsic with the same mask.
  // Checked once per pending group: the lanes of a group share its mask and op.
  for (std::uint32_t pending = wr.arrived; pending; pending &= ~threads_[(w << 5) + __builtin_ctz(pending)].mask) {
    const ThreadRec& o = threads_[(w << 5) + __builtin_ctz(pending)];
    if ((o.mask & mask) && (o.mask != mask || o.op != op))
      throw_divergent_warp(site, op, t, mask, __builtin_ctz(pending), o);
  }
  ThreadRec& r = threads_[t];
  r.site = site;
  r.op = op;
  r.mask = mask;
  r.value = value;
  r.arg = arg;
  r.width = width;
  wr.arrived |= 1u << (t & 31);
  if (try_complete(w, mask)) return nullptr;
  r.state = ThreadState::at_warp;
  return r.fiber;
}

// Completes the pending intrinsic of `mask` once every live lane in it arrived:
// computes all results at once (so no lane can overwrite a value before another
// read it) and wakes the waiting lanes in schedule order.
bool BlockRunner::try_complete(int w, std::uint32_t mask) {
  WarpRec& wr = warps_[w];
  const std::uint32_t need = mask & wr.present & ~wr.exited;
  if ((wr.arrived & need) != need) return false;
  compute_results(w, need);
  wr.arrived &= ~need;
  int lanes[32], k = 0;
  for (std::uint32_t p = need; p; p &= p - 1) lanes[k++] = __builtin_ctz(p);
  const Schedule::Order order = job_->schedule.order;
  if (order == Schedule::reversed) std::reverse(lanes, lanes + k);
  if (order == Schedule::shuffled)
    for (int i = k - 1; i > 0; --i) std::swap(lanes[i], lanes[next_random() % (i + 1)]);
  for (int i = 0; i < k; ++i)
    if ((w << 5) + lanes[i] != current_) make_ready((w << 5) + lanes[i]);
  return true;
}

void BlockRunner::compute_results(int w, std::uint32_t part) {
  ThreadRec* lane_rec = &threads_[w << 5];
  const WarpOp op = lane_rec[__builtin_ctz(part)].op;
  std::uint32_t votes = 0;
  for (std::uint32_t p = part; p; p &= p - 1)
    if (lane_rec[__builtin_ctz(p)].value) votes |= 1u << __builtin_ctz(p);
  for (std::uint32_t p = part; p; p &= p - 1) {
    const int lane = __builtin_ctz(p);
    ThreadRec& r = lane_rec[lane];
    const int seg = lane & ~(r.width - 1);  // first lane of this lane's width-segment
    int src = lane;
    switch (op) {
      case WarpOp::sync: r.result = 0; continue;
      case WarpOp::ballot: r.result = votes; continue;
      case WarpOp::any: r.result = votes != 0; continue;
      case WarpOp::all: r.result = votes == part; continue;
      case WarpOp::shfl_idx: src = seg + (r.arg & (r.width - 1)); break;  // source lane taken modulo width
      case WarpOp::shfl_up: src = lane - r.arg < seg ? lane : lane - r.arg; break;
      case WarpOp::shfl_down: src = lane + r.arg >= seg + r.width ? lane : lane + r.arg; break;
      case WarpOp::shfl_xor: src = lane ^ r.arg; if (src < 0 || src >= seg + r.width) src = lane; break;
    }
    // Out-of-range sources gave `src = lane` above: CUDA returns the caller's own value.
    r.result = ((part >> src) & 1u) ? lane_rec[src].value : kPoison;
  }
}

// Suspends like syncthreads() (block.cpp), for the same reason.
std::uint64_t warp_collective(Site site, WarpOp op, unsigned mask, std::uint64_t value, int arg, int width) {
  BlockRunner* r = tl_runner;
  if (!r) throw_outside_kernel(op_name(op));
  const int t = r->current();
  if (Fiber* f = r->warp_arrive(site, op, mask, value, arg, width)) {
    if (_setjmp(f->jb) == 0) r->dispatch();
    r->resume_as(t);
  }
  return r->result(t);
}

}  // namespace ctg::cuda::emu::detail
