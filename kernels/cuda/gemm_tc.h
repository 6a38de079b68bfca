// The tensor-core GEMM core (TF32 operands, FP32 accumulate) and its operand
// sources: kernels/cuda/gemm_tc.cu (dense products, gemm_cuda under
// --precision tf32) and kernels/cuda/conv2d_tc.cu (implicit-GEMM convolutions,
// no im2col in memory). Internal to kernels/cuda/.
//
//   C_z = alpha · op(A)_z · op(B)_z + beta · C_z      (or, sum mode, one C = alpha·Σ_z … + beta·C)
// where op(A)_z is M×K and op(B)_z is K×N, given not as matrices but as a
// Source: a type whose a(z, m, k) / b(z, k, n) return the address of that
// element, or nullptr for an element that is zero (a convolution's padding).
// The kernel asks only for m < M, n < N, k < K. A Source also says whether
// consecutive k are adjacent in memory (a_k_contiguous, b_k_contiguous), which
// decides how the block's threads are laid over a tile so that a warp's loads
// are coalesced.
#pragma once
#include <algorithm>
#include <cstdint>
#include <stdexcept>
#include <string>

#include "kernels/cuda/common.h"
#include "kernels/cuda/gemm.h"
#include "kernels/cuda/tensor_core.h"

namespace ctg::kernels::tc_detail {

// Where the products go: C + slot·stride_c, row stride ldc (see gemm_tc.cu for slots).
struct TcOut {
  float* C;
  int64_t ldc, stride_c;
  float alpha, beta;  // beta = 0 never reads C
};

struct TcShape {
  int64_t M, N, K;
  int64_t count;  // batch items z
  bool sum;       // one output summed over z (deterministic, in a fixed order)
  // 16-byte copies of 4 consecutive k (only for a k-contiguous operand): the
  // caller promises that a(z, m, k) is 16-byte aligned whenever k % 4 == 0.
  bool vec_a = false, vec_b = false;
};

// For vec_a / vec_b: a pointer, a leading dimension and a batch stride that keep
// every 4th element 16-byte aligned.
inline bool aligned4(const float* p, int64_t ld, int64_t stride) {
  return reinterpret_cast<std::uintptr_t>(p) % 16 == 0 && ld % 4 == 0 && stride % 4 == 0;
}

// ---- the kernel ------------------------------------------------------------
// A block of 128 threads (4 warps, 2×2) owns a 64×64 tile of C; each warp a
// 32×32 sub-tile = 2 (m16) × 4 (n8) mma tiles, 32 accumulators per thread in
// registers (the register-blocked warp tile). K advances 16 at a time through a
// 3-stage ring of shared-memory tiles filled by cp.async: while the tensor cores
// work on stage s, the copies of stages s+1 and s+2 are in flight.
//   As[stage][m][k], Bs[stage][n][k]: both k-contiguous, rows padded to 20
//   floats (80 bytes: 16-byte aligned for ldmatrix, and the 8 row addresses of
//   an ldmatrix phase, 20·r mod 32 = 0,20,8,28,16,4,24,12, hit 8 disjoint
//   4-bank groups: no conflicts).
// Fragments come from ldmatrix.x4 (for 32-bit data a lane receives word l%4 of
// row l/4, which is the TF32 A/B fragment layout), then cvt.rna to TF32.
// Elements outside M, N or the slot's K range, and a Source's nullptr, are
// staged as zeros by cp.async's src-size 0, so the mma loop has no bounds tests.
constexpr int kTcTile = 64, kTcK = 16, kTcStages = 3, kTcThreads = 128, kTcPad = kTcK + 4;
constexpr int64_t kTcTargetBlocks = 264;  // ~2 per SM of an H100/H200 (132 SMs)
constexpr int64_t kTcMinSliceK = 128;

struct TcSlots {
  int64_t count, items_per_slot, k_splits, k_chunk;
};

// The ring in one 16-byte-aligned object: ldmatrix needs 16-byte-aligned rows,
// and a plain __shared__ float array is only 4-byte aligned (30 KiB of 48).
struct alignas(16) TcTiles {
  float a[kTcStages][kTcTile][kTcPad];
  float b[kTcStages][kTcTile][kTcPad];
};

template <typename Source>
CTG_GLOBAL void CTG_LAUNCH_BOUNDS(kTcThreads) gemm_tc_kernel(Source src, TcShape shape, TcSlots sl, TcOut out) {
  CTG_SHARED(TcTiles, tiles, );
  auto& As = tiles.a;
  auto& Bs = tiles.b;
  const int tid = threadIdx.x, lane = tid & 31, warp = tid >> 5, wm = warp >> 1, wn = warp & 1;
  const int64_t m0 = (int64_t)blockIdx.y * kTcTile, n0 = (int64_t)blockIdx.x * kTcTile;

  // This slot's items [z_begin, z_end) and K range [k_begin, k_end), as gemm.cu.
  const int64_t q = blockIdx.z;
  int64_t z_begin = q * sl.items_per_slot;
  int64_t z_end = z_begin + sl.items_per_slot < sl.count ? z_begin + sl.items_per_slot : sl.count;
  int64_t k_begin = 0, k_end = shape.K;
  if (sl.k_splits > 1) {
    z_begin = q / sl.k_splits, z_end = z_begin + 1;
    k_begin = (q % sl.k_splits) * sl.k_chunk;
    k_end = k_begin + sl.k_chunk < shape.K ? k_begin + sl.k_chunk : shape.K;
  }
  const int64_t steps_per_item = (k_end - k_begin + kTcK - 1) / kTcK;
  const int64_t steps = z_end > z_begin ? (z_end - z_begin) * steps_per_item : 0;

  // Step s of the flattened (item, K step) loop into ring slot `stage`: each
  // thread issues 8 element copies per operand.
  // src-size 0 reads nothing, but the address must still be aligned: C rounded
  // down to 16 bytes stays inside its (256-byte-aligned) allocation.
  const float* const dummy = reinterpret_cast<const float*>(reinterpret_cast<std::uintptr_t>(out.C) & ~std::uintptr_t(15));
  auto load = [&](int64_t s, int stage) {
    const int64_t z = z_begin + s / steps_per_item, kt = k_begin + (s % steps_per_item) * kTcK;
    // 16-byte copies: 64 rows × 4 quads of k per operand, 2 per thread; a quad
    // crossing the end of K copies its valid part and zero-fills the rest.
    if (Source::a_k_contiguous && shape.vec_a)
      for (int v = tid; v < kTcTile * kTcK / 4; v += kTcThreads) {
        const int ar = v / (kTcK / 4), ak = (v % (kTcK / 4)) * 4;
        const int64_t m = m0 + ar, ka = kt + ak;
        const int64_t left = m < shape.M ? k_end - ka : 0;
        const int valid = left <= 0 ? 0 : left >= 4 ? 4 : (int)left;
        ctg::cuda::tc::cp_async<16>(&As[stage][ar][ak], valid ? src.a(z, m, ka) : dummy, 4 * valid);
      }
    if (Source::b_k_contiguous && shape.vec_b)
      for (int v = tid; v < kTcTile * kTcK / 4; v += kTcThreads) {
        const int br = v / (kTcK / 4), bk = (v % (kTcK / 4)) * 4;
        const int64_t n = n0 + br, kb = kt + bk;
        const int64_t left = n < shape.N ? k_end - kb : 0;
        const int valid = left <= 0 ? 0 : left >= 4 ? 4 : (int)left;
        ctg::cuda::tc::cp_async<16>(&Bs[stage][br][bk], valid ? src.b(z, kb, n) : dummy, 4 * valid);
      }
    const bool elem_a = !(Source::a_k_contiguous && shape.vec_a), elem_b = !(Source::b_k_contiguous && shape.vec_b);
    if (elem_a || elem_b)
    for (int e = tid; e < kTcTile * kTcK; e += kTcThreads) {
      const int ar = Source::a_k_contiguous ? e / kTcK : e % kTcTile, ak = Source::a_k_contiguous ? e % kTcK : e / kTcTile;
      const int64_t m = m0 + ar, ka = kt + ak;
      const float* pa = (elem_a && m < shape.M && ka < k_end) ? src.a(z, m, ka) : nullptr;
      if (elem_a) ctg::cuda::tc::cp_async<4>(&As[stage][ar][ak], pa ? pa : dummy, pa ? 4 : 0);
      const int br = Source::b_k_contiguous ? e / kTcK : e % kTcTile, bk = Source::b_k_contiguous ? e % kTcK : e / kTcTile;
      const int64_t n = n0 + br, kb = kt + bk;
      const float* pb = (elem_b && n < shape.N && kb < k_end) ? src.b(z, kb, n) : nullptr;
      if (elem_b) ctg::cuda::tc::cp_async<4>(&Bs[stage][br][bk], pb ? pb : dummy, pb ? 4 : 0);
    }
  };

  float acc[2][4][4];
  CTG_UNROLL for (int i = 0; i < 2; ++i) {
    CTG_UNROLL for (int j = 0; j < 4; ++j) {
      CTG_UNROLL for (int r = 0; r < 4; ++r) acc[i][j][r] = 0.f;
    }
  }

  // Prologue: stages 0 .. kTcStages-2 in flight, one commit group each (empty
  // groups too, so that "wait for all but the newest kTcStages-2" always means
  // "step s has landed").
  for (int st = 0; st < kTcStages - 1; ++st) {
    if (st < steps) load(st, st);
    ctg::cuda::tc::cp_async_commit();
  }
  const int mat = lane >> 3, row8 = lane & 7;  // this lane's ldmatrix row: matrix mat, row row8
  for (int64_t s = 0; s < steps; ++s) {
    ctg::cuda::tc::cp_async_wait<kTcStages - 2>();  // this thread's copies of step s landed
    __syncthreads();  // everyone's copies of step s visible; everyone done with step s-1
    // Refill the slot step s-1 used (free now) with step s + kTcStages - 1.
    if (s + kTcStages - 1 < steps) load(s + kTcStages - 1, (int)((s + kTcStages - 1) % kTcStages));
    ctg::cuda::tc::cp_async_commit();
    const int stage = (int)(s % kTcStages);
    CTG_UNROLL for (int kk = 0; kk < kTcK; kk += 8) {
      std::uint32_t a[2][4], b[4][2];
      // A: matrices (rows 0-7 | 8-15) × (k 0-3 | 4-7) in the order a0..a3.
      CTG_UNROLL for (int i = 0; i < 2; ++i)
        ctg::cuda::tc::ldmatrix<4>(a[i], &As[stage][wm * 32 + i * 16 + (mat & 1) * 8 + row8][kk + (mat >> 1) * 4]);
      // B: one x4 per pair of n8 tiles: (tile 2p: k 0-3, k 4-7), (tile 2p+1: k 0-3, k 4-7).
      CTG_UNROLL for (int p = 0; p < 2; ++p) {
        std::uint32_t r[4];
        ctg::cuda::tc::ldmatrix<4>(r, &Bs[stage][wn * 32 + p * 16 + (mat >> 1) * 8 + row8][kk + (mat & 1) * 4]);
        b[2 * p][0] = r[0], b[2 * p][1] = r[1], b[2 * p + 1][0] = r[2], b[2 * p + 1][1] = r[3];
      }
      CTG_UNROLL for (int i = 0; i < 2; ++i) {
        CTG_UNROLL for (int r = 0; r < 4; ++r) a[i][r] = ctg::cuda::tc::to_tf32(ctg::cuda::tc::tf32_value(a[i][r]));
      }
      CTG_UNROLL for (int j = 0; j < 4; ++j) {
        CTG_UNROLL for (int r = 0; r < 2; ++r) b[j][r] = ctg::cuda::tc::to_tf32(ctg::cuda::tc::tf32_value(b[j][r]));
      }
      CTG_UNROLL for (int i = 0; i < 2; ++i) {
        CTG_UNROLL for (int j = 0; j < 4; ++j) ctg::cuda::tc::mma_tf32(acc[i][j], a[i], b[j], acc[i][j]);
      }
    }
  }

  // Epilogue: c0 (g, 2t), c1 (g, 2t+1), c2 (g+8, 2t), c3 (g+8, 2t+1) of each mma tile.
  float* C = out.C + q * out.stride_c;
  const int g = lane >> 2, t = lane & 3;
  CTG_UNROLL for (int i = 0; i < 2; ++i) {
    CTG_UNROLL for (int j = 0; j < 4; ++j) {
      CTG_UNROLL for (int r = 0; r < 4; ++r) {
        const int64_t m = m0 + wm * 32 + i * 16 + g + (r >> 1) * 8, n = n0 + wn * 32 + j * 8 + 2 * t + (r & 1);
        if (m >= shape.M || n >= shape.N) continue;
        float* c = C + m * out.ldc + n;
        *c = out.alpha * acc[i][j][r] + (out.beta != 0.f ? out.beta * *c : 0.f);
      }
    }
  }
}

// Plans slots exactly as gemm_cuda does for its tiled kernel (kernels/cuda/gemm.cu):
// enough blocks to fill the GPU, split-K or whole items per slot; one
// contributor per output writes C in place, several write private partials
// that a second kernel sums in a fixed order (deterministic, no atomics).
template <typename Source>
void run_gemm_tc(const Source& src, const TcShape& shape, const TcOut& out) {
  if (shape.M <= 0 || shape.N <= 0 || shape.count <= 0) return;
  auto ceil_div = [](int64_t a, int64_t b) { return (a + b - 1) / b; };
  const int64_t count = shape.count, outs = shape.sum ? 1 : count, K = shape.K > 0 ? shape.K : 0;
  const int64_t tiles = ceil_div(shape.M, kTcTile) * ceil_div(shape.N, kTcTile);
  const int64_t max_splits = K / kTcMinSliceK > 1 ? K / kTcMinSliceK : 1;
  int64_t splits = 1, per_slot = 1;
  if (shape.sum) {
    const int64_t wanted = ceil_div(kTcTargetBlocks, tiles);
    per_slot = wanted <= count ? ceil_div(count, wanted) : 1;
    splits = wanted <= count ? 1 : std::min(max_splits, ceil_div(wanted, count));
  } else {
    splits = count * tiles >= kTcTargetBlocks ? 1 : std::min(max_splits, ceil_div(kTcTargetBlocks, count * tiles));
  }
  if (splits <= 0) splits = 1;
  if (splits > 1) per_slot = 1;
  TcSlots sl{count, per_slot, 1, K};
  if (splits > 1) {
    sl.k_chunk = ceil_div(ceil_div(K, splits), kTcK) * kTcK;
    splits = std::max<int64_t>(1, ceil_div(K, sl.k_chunk));
    sl.k_splits = splits;
  }
  const int64_t slots = splits > 1 ? count * splits : ceil_div(count, per_slot);
  const dim3 grid((unsigned)ceil_div(shape.N, kTcTile), (unsigned)ceil_div(shape.M, kTcTile), (unsigned)slots);
  if (grid.y > 65535 || grid.z > 65535)
    throw std::runtime_error("gemm (tf32): grid (" + std::to_string(grid.x) + "," + std::to_string(grid.y) + "," +
                             std::to_string(grid.z) + ") exceeds CUDA's limit of 65535 in y or z");
  const cudaStream_t stream = cuda_detail::stream();
  if (slots == outs) {
    TcOut o = out;
    if (shape.sum) o.stride_c = 0;
    CTG_LAUNCH(gemm_tc_kernel<Source>, grid, dim3(kTcThreads), 0, stream, src, shape, sl, o);
    return;
  }
  const int64_t MN = shape.M * shape.N;
  float* partial = static_cast<float*>(ctg::cuda::device_alloc((size_t)(slots * MN) * sizeof(float)));
  try {
    CTG_LAUNCH(gemm_tc_kernel<Source>, grid, dim3(kTcThreads), 0, stream, src, shape, sl,
               TcOut{partial, shape.N, MN, 1.f, 0.f});
    gemm_reduce_slots_cuda(partial, slots / outs, outs, shape.M, shape.N, out.alpha, out.beta, out.C, out.ldc,
                           shape.sum ? 0 : out.stride_c);  // the SIMT GEMM's fixed-order second pass
  } catch (...) {
    ctg::cuda::device_free(partial);
    throw;
  }
  ctg::cuda::device_free(partial);
}

}  // namespace ctg::kernels::tc_detail
