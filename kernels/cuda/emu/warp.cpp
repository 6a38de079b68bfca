// Warp intrinsics in the CUDA emulation: the *_sync shuffles and votes, with
// CUDA's rules (warp size 32, lane = linear thread id % 32). A lane entering an
// intrinsic deposits its operand and waits; the last live lane named in the
// mask computes every lane's result at once — the 32-slot exchange buffer is
// the lanes' own ThreadRec — and wakes the others. Lanes that have exited do
// not take part (as on a GPU); an intrinsic that can never complete is reported
// by run_block as a deadlock (see block.cpp).
#undef _FORTIFY_SOURCE  // see fiber.cpp: longjmp between stacks
#include <algorithm>
#include <cstring>
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
  if (op == WarpOp::mma) return compute_mma(w, part);
  if (op == WarpOp::ldmatrix) return compute_ldmatrix(w, part);
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
      case WarpOp::mma:
      case WarpOp::ldmatrix: continue;  // handled above
      case WarpOp::shfl_idx: src = seg + (r.arg & (r.width - 1)); break;  // source lane taken modulo width
      case WarpOp::shfl_up: src = lane - r.arg < seg ? lane : lane - r.arg; break;
      case WarpOp::shfl_down: src = lane + r.arg >= seg + r.width ? lane : lane + r.arg; break;
      case WarpOp::shfl_xor: src = lane ^ r.arg; if (src < 0 || src >= seg + r.width) src = lane; break;
    }
    // Out-of-range sources gave `src = lane` above: CUDA returns the caller's own value.
    r.result = ((part >> src) & 1u) ? lane_rec[src].value : kPoison;
  }
}

// ---- tensor-core instructions ------------------------------------------------
// Both are .aligned: all 32 lanes of the warp execute the same instruction. A
// warp with a missing lane (exited, or a block size not a multiple of 32) or
// lanes disagreeing on the variant is a kernel bug: the block fails, naming it,
// and the lanes' outputs are NaN (all-ones) so nothing downstream looks right.
bool BlockRunner::whole_warp(int w, std::uint32_t part) {
  ThreadRec* lane_rec = &threads_[w << 5];
  const ThreadRec& first = lane_rec[__builtin_ctz(part)];
  std::string why;
  if (part != 0xffffffffu) {
    std::ostringstream m;
    m << "needs all 32 lanes of warp " << w << " (.aligned), but only lanes 0x" << std::hex << part
      << " take part (the others exited or do not exist)";
    why = m.str();
  }
  for (std::uint32_t p = part; p && why.empty(); p &= p - 1)
    if (lane_rec[__builtin_ctz(p)].arg != first.arg) why = "lanes of one warp ask for different variants";
  if (why.empty()) return true;
  fail(std::string(op_name(first.op)) + " at " + where(first.site) + ": " + why);
  for (std::uint32_t p = part; p; p &= p - 1) {
    const ThreadRec& r = lane_rec[__builtin_ctz(p)];
    if (r.op == WarpOp::mma) std::memset(reinterpret_cast<const MmaLane*>(r.value)->d, 0xFF, 4 * sizeof(float));
    else std::memset(reinterpret_cast<const LdmatrixLane*>(r.value)->out, 0xFF, (r.arg & 7) * 4);
  }
  return false;
}

namespace {
// What the tensor core reads of a .tf32 operand: sign, exponent and the top 10
// mantissa bits; the low 13 bits are ignored (kernels convert with cvt.rna first,
// tensor_core.h's to_tf32, so they are already zero).
inline double tf32_operand(std::uint32_t bits) {
  float f;
  bits &= 0xffffe000u;
  std::memcpy(&f, &bits, 4);
  return f;
}
}  // namespace

// D = A·B + C for A 16×8 (row), B 8×8 (col), C/D 16×8, f32 accumulate.
// Fragment layouts, PTX ISA "Matrix Fragments for mma.m16n8k8" (.tf32), with
// g = laneid >> 2 (groupID) and t = laneid % 4 (threadID_in_group):
//   A: a0 (g, t)   a1 (g+8, t)   a2 (g, t+4)   a3 (g+8, t+4)      (row, col)
//   B: b0 (t, g)   b1 (t+4, g)                                    (row k, col n)
//   C, D: c0 (g, 2t)  c1 (g, 2t+1)  c2 (g+8, 2t)  c3 (g+8, 2t+1)
// The products of two TF32 values are exact in double; each sum is formed in
// double and rounded once to float (the hardware's internal order is not
// documented; this is at least as accurate as any order in float).
void BlockRunner::compute_mma(int w, std::uint32_t part) {
  if (!whole_warp(w, part)) return;
  ThreadRec* lane_rec = &threads_[w << 5];
  double A[16][8], B[8][8], C[16][8];
  for (int lane = 0; lane < 32; ++lane) {
    const MmaLane& o = *reinterpret_cast<const MmaLane*>(lane_rec[lane].value);
    const int g = lane >> 2, t = lane & 3;
    A[g][t] = tf32_operand(o.a[0]);
    A[g + 8][t] = tf32_operand(o.a[1]);
    A[g][t + 4] = tf32_operand(o.a[2]);
    A[g + 8][t + 4] = tf32_operand(o.a[3]);
    B[t][g] = tf32_operand(o.b[0]);
    B[t + 4][g] = tf32_operand(o.b[1]);
    C[g][2 * t] = o.c[0];
    C[g][2 * t + 1] = o.c[1];
    C[g + 8][2 * t] = o.c[2];
    C[g + 8][2 * t + 1] = o.c[3];
  }
  auto dot = [&](int i, int j) {
    double s = C[i][j];
    for (int k = 0; k < 8; ++k) s += A[i][k] * B[k][j];
    return (float)s;
  };
  for (int lane = 0; lane < 32; ++lane) {  // every C was read above: d may alias c
    float* d = reinterpret_cast<const MmaLane*>(lane_rec[lane].value)->d;
    const int g = lane >> 2, t = lane & 3;
    d[0] = dot(g, 2 * t);
    d[1] = dot(g, 2 * t + 1);
    d[2] = dot(g + 8, 2 * t);
    d[3] = dot(g + 8, 2 * t + 1);
  }
}

// ldmatrix.sync.aligned.m8n8.x{1,2,4}[.trans].shared.b16: loads 1, 2 or 4 8×8
// matrices of 16-bit elements; lanes 8i..8i+7 give the 8 row addresses (16
// bytes each, 16-byte aligned) of matrix i. Lane l receives in register i:
//   plain:  row l/4 of matrix i, elements 2(l%4) and 2(l%4)+1 (low half first)
//   .trans: column l/4 of matrix i, elements of rows 2(l%4) and 2(l%4)+1
// (PTX ISA, "Warp-level matrix load instruction: ldmatrix"). For 32-bit data
// (TF32) a row is 4 words and lane l gets word l%4 of row l/4: exactly the A
// and B fragments of mma.m16n8k8.tf32.
void BlockRunner::compute_ldmatrix(int w, std::uint32_t part) {
  if (!whole_warp(w, part)) return;
  ThreadRec* lane_rec = &threads_[w << 5];
  const int num = lane_rec[0].arg & 7;
  const bool trans = (lane_rec[0].arg & 8) != 0;
  std::uint16_t m[4][8][8];  // matrix, row, column
  for (int i = 0; i < num; ++i)
    for (int r = 0; r < 8; ++r) {
      const ThreadRec& src = lane_rec[8 * i + r];
      const unsigned char* row =
          static_cast<const unsigned char*>(reinterpret_cast<const LdmatrixLane*>(src.value)->row);
      const bool in_shared = row >= shared_ && row + 16 <= shared_ + kSharedBytes;
      if (!in_shared || reinterpret_cast<std::uintptr_t>(row) % 16) {
        fail(std::string("ldmatrix.sync at ") + where(src.site) + ": lane " + std::to_string(8 * i + r) +
             "'s row address is " + (in_shared ? "not 16-byte aligned" : "not in the block's shared memory"));
        for (int lane = 0; lane < 32; ++lane)
          std::memset(reinterpret_cast<const LdmatrixLane*>(lane_rec[lane].value)->out, 0xFF, num * 4);
        return;
      }
      std::memcpy(m[i][r], row, 16);
    }
  for (int lane = 0; lane < 32; ++lane) {
    std::uint32_t* out = reinterpret_cast<const LdmatrixLane*>(lane_rec[lane].value)->out;
    const int q = lane >> 2, e = 2 * (lane & 3);
    for (int i = 0; i < num; ++i) {
      const std::uint16_t lo = trans ? m[i][e][q] : m[i][q][e];
      const std::uint16_t hi = trans ? m[i][e + 1][q] : m[i][q][e + 1];
      out[i] = (std::uint32_t)lo | ((std::uint32_t)hi << 16);
    }
  }
}

void mma_m16n8k8_tf32(Site site, float* d, const std::uint32_t* a, const std::uint32_t* b, const float* c) {
  const MmaLane lane{a, b, c, d};
  warp_collective(site, WarpOp::mma, 0xffffffffu, reinterpret_cast<std::uint64_t>(&lane), 0, warpSize);
}

void ldmatrix(Site site, int num, bool trans, std::uint32_t* out, const void* row) {
  const LdmatrixLane lane{row, out};
  warp_collective(site, WarpOp::ldmatrix, 0xffffffffu, reinterpret_cast<std::uint64_t>(&lane),
                  num | (trans ? 8 : 0), warpSize);
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
