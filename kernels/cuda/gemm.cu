// SGEMM on the GPU — the CUDA twin of kernels/cpu/gemm.h (cblas_sgemm); API in
// kernels/cuda/gemm.h.
//   C[m,n] = alpha · Σ_k op(A)[m,k] · op(B)[k,n] + beta · C[m,n]
//   op(A)[m,k] = ta ? A[k·lda + m] : A[m·lda + k]
//   op(B)[k,n] = tb ? B[n·ldb + k] : B[k·ldb + n]
//
// v1 (gemm_naive_kernel): one thread per C element runs the k loop, reading A
// and B straight from global memory — the CPU loop with m, n taken from the
// thread index. Clear and obviously right; every product reloads its operands.
//
// v2 (gemm_tiled_kernel): a block owns a 64×64 tile of C. For each 16-wide
// step along K, its 64 threads copy a 64×16 tile of op(A) and a 16×64 tile of
// op(B) into shared memory (coalesced: consecutive threads read consecutive
// addresses of whichever dimension is contiguous), then each thread computes an
// 8×8 block of C in registers: per k, 8 + 8 shared loads feed 64 FMAs.
//  - Both tiles are stored k-major (As[k][m], Bs[k][n]) so the inner loop reads
//    rows; the threads' outputs are strided (rows ty + 8i, columns tx + 8j), so a
//    warp reads 4 (As) or 8 (Bs) consecutive words per load: no bank conflicts.
//  - Rows are padded to 66 floats: a transposing store (16 threads walk k down a
//    column for row m, the next 16 for row m+1) hits bank (2k + m) mod 32 — all
//    32 distinct. With 64 they would all hit one bank; with 65, two ways.
//  - Out-of-range elements (M, N, K not multiples of the tile) are staged as 0,
//    so the FMA loop has no bounds tests; only the final store is guarded.
//  - Two barriers per K step: after staging (tiles complete before anyone reads)
//    and after the FMAs (nobody overwrites a tile another thread still reads).
//
// Slots (blockIdx.z) carry batches and split-K: slot q either owns batch items
// [q·items_per_slot, …) over all of K, or (k_splits > 1) one item's K-slice. A
// slot writes C directly when it is the only contributor to its output, else a
// private partial that gemm_reduce_slots_kernel sums in a fixed order.
#include "kernels/cuda/gemm.h"

#include <algorithm>
#include <string>

#include "base/intdiv.h"
#include "kernels/cuda/common.h"
#include "kernels/cuda/impl.h"

namespace ctg::kernels {

struct GemmArgs {
  int64_t M, N, K;
  float alpha, beta;
  const float* A;
  int64_t lda, stride_a;
  const float* B;
  int64_t ldb, stride_b;
  float* C;
  int64_t ldc, stride_c;  // slot q writes C + q·stride_c
  int64_t count;          // batch items
  int64_t items_per_slot, k_splits, k_chunk;
};

// ---- v1: direct port of the CPU loop ----------------------------------------
constexpr int kNaiveSide = 16;  // 16×16 threads per block

template <bool TA, bool TB>
CTG_GLOBAL void gemm_naive_kernel(GemmArgs g, bool sum) {
  const int64_t n = (int64_t)blockIdx.x * blockDim.x + threadIdx.x;
  const int64_t m = (int64_t)blockIdx.y * blockDim.y + threadIdx.y;
  if (m >= g.M || n >= g.N) return;
  const int64_t z_begin = sum ? 0 : blockIdx.z, z_end = sum ? g.count : z_begin + 1;
  float acc = 0.f;
  for (int64_t z = z_begin; z < z_end; ++z) {
    const float* A = g.A + z * g.stride_a;
    const float* B = g.B + z * g.stride_b;
    for (int64_t k = 0; k < g.K; ++k)
      acc += (TA ? A[k * g.lda + m] : A[m * g.lda + k]) * (TB ? B[n * g.ldb + k] : B[k * g.ldb + n]);
  }
  float* c = g.C + (sum ? 0 : z_begin * g.stride_c) + m * g.ldc + n;
  *c = g.alpha * acc + (g.beta != 0.f ? g.beta * *c : 0.f);
}

// ---- v2: shared-memory tiles, 8×8 register block per thread ------------------
constexpr int kTile = 64;                                  // C tile: kTile × kTile
constexpr int kTileK = 16;                                 // K step staged per barrier
constexpr int kThreadTile = 8;                             // each thread: 8×8 of C
constexpr int kTileSide = kTile / kThreadTile;             // 8×8 threads
constexpr int kTiledThreads = kTileSide * kTileSide;       // 64
constexpr int kTilePad = kTile + 2;                        // padded row (see top)

CTG_HOST_DEVICE int64_t min_i64(int64_t a, int64_t b) { return a < b ? a : b; }

template <bool TA, bool TB>
CTG_GLOBAL void CTG_LAUNCH_BOUNDS(kTiledThreads) gemm_tiled_kernel(GemmArgs g) {
  CTG_SHARED(float, As, [kTileK][kTilePad]);  // As[k][m] = op(A)[m0 + m, kt + k]
  CTG_SHARED(float, Bs, [kTileK][kTilePad]);  // Bs[k][n] = op(B)[kt + k, n0 + n]
  const int tid = threadIdx.x, tx = tid % kTileSide, ty = tid / kTileSide;
  const int64_t m0 = (int64_t)blockIdx.y * kTile, n0 = (int64_t)blockIdx.x * kTile;

  // This slot's batch items [z_begin, z_end) and K range [k_begin, k_end).
  const int64_t q = blockIdx.z;
  int64_t z_begin = q * g.items_per_slot, z_end = min_i64(g.count, z_begin + g.items_per_slot);
  int64_t k_begin = 0, k_end = g.K;
  if (g.k_splits > 1) {
    z_begin = q / g.k_splits, z_end = z_begin + 1;
    k_begin = (q % g.k_splits) * g.k_chunk, k_end = min_i64(g.K, k_begin + g.k_chunk);
  }

  float acc[kThreadTile][kThreadTile];
  CTG_UNROLL for (int i = 0; i < kThreadTile; ++i) {
    CTG_UNROLL for (int j = 0; j < kThreadTile; ++j) acc[i][j] = 0.f;
  }

  for (int64_t z = z_begin; z < z_end; ++z) {
    const float* A = g.A + z * g.stride_a;
    const float* B = g.B + z * g.stride_b;
    for (int64_t kt = k_begin; kt < k_end; kt += kTileK) {
      // Stage both tiles: kTile·kTileK / 64 threads = 16 elements each. The
      // element → (row, k) map follows the contiguous dimension in memory.
      for (int e = tid; e < kTile * kTileK; e += kTiledThreads) {
        const int am = TA ? e % kTile : e / kTileK, ak = TA ? e / kTile : e % kTileK;
        const int64_t m = m0 + am, ka = kt + ak;
        As[ak][am] = (m < g.M && ka < k_end) ? (TA ? A[ka * g.lda + m] : A[m * g.lda + ka]) : 0.f;
        const int bn = TB ? e / kTileK : e % kTile, bk = TB ? e % kTileK : e / kTile;
        const int64_t n = n0 + bn, kb = kt + bk;
        Bs[bk][bn] = (n < g.N && kb < k_end) ? (TB ? B[n * g.ldb + kb] : B[kb * g.ldb + n]) : 0.f;
      }
      __syncthreads();
      CTG_UNROLL for (int k = 0; k < kTileK; ++k) {
        float a[kThreadTile], b[kThreadTile];
        CTG_UNROLL for (int i = 0; i < kThreadTile; ++i) a[i] = As[k][ty + kTileSide * i];
        CTG_UNROLL for (int j = 0; j < kThreadTile; ++j) b[j] = Bs[k][tx + kTileSide * j];
        CTG_UNROLL for (int i = 0; i < kThreadTile; ++i) {
          CTG_UNROLL for (int j = 0; j < kThreadTile; ++j) acc[i][j] = fmaf(a[i], b[j], acc[i][j]);
        }
      }
      __syncthreads();
    }
  }

  float* C = g.C + q * g.stride_c;
  CTG_UNROLL for (int i = 0; i < kThreadTile; ++i) {
    const int64_t m = m0 + ty + kTileSide * i;
    if (m >= g.M) continue;
    CTG_UNROLL for (int j = 0; j < kThreadTile; ++j) {
      const int64_t n = n0 + tx + kTileSide * j;
      if (n >= g.N) continue;
      float* c = C + m * g.ldc + n;
      *c = g.alpha * acc[i][j] + (g.beta != 0.f ? g.beta * *c : 0.f);
    }
  }
}

// C_b = alpha·Σ_{s<per_out} P[b·per_out + s] + beta·C_b, for b in [0, outs);
// each partial P[q] is a dense M×N matrix. The s loop runs in order: deterministic.
CTG_GLOBAL void gemm_reduce_slots_kernel(const float* __restrict__ P, int64_t per_out, int64_t outs, int64_t M,
                                         int64_t N, float alpha, float beta, float* C, int64_t ldc,
                                         int64_t stride_c) {
  const int64_t MN = M * N;
  CTG_GRID_STRIDE_LOOP(i, outs * MN) {
    const int64_t b = i / MN, r = i % MN;
    const float* p = P + b * per_out * MN + r;
    float s = 0.f;
    for (int64_t k = 0; k < per_out; ++k) s += p[k * MN];
    float* c = C + b * stride_c + (r / N) * ldc + r % N;
    *c = alpha * s + (beta != 0.f ? beta * *c : 0.f);
  }
}

void gemm_reduce_slots_cuda(const float* P, int64_t per_out, int64_t outs, int64_t M, int64_t N, float alpha,
                            float beta, float* C, int64_t ldc, int64_t stride_c) {
  if (outs * M * N == 0) return;
  CTG_LAUNCH(gemm_reduce_slots_kernel, dim3(cuda_detail::blocks_for(outs * M * N, 256)), dim3(256), 0,
             cuda_detail::stream(), P, per_out, outs, M, N, alpha, beta, C, ldc, stride_c);
}

namespace {

// Enough blocks to fill a GPU: about two per SM of an H100 (132 SMs).
constexpr int64_t kTargetBlocks = 264;
// A K-slice shorter than this is not worth its partial's extra traffic.
constexpr int64_t kMinSliceK = 128;

template <bool TA, bool TB>
void launch_gemm(GemmKernel kernel, const GemmArgs& g, dim3 grid, bool sum) {
  const cudaStream_t s = cuda_detail::stream();
  if (kernel == GemmKernel::naive)
    CTG_LAUNCH((gemm_naive_kernel<TA, TB>), grid, dim3(kNaiveSide, kNaiveSide), 0, s, g, sum);
  else
    CTG_LAUNCH((gemm_tiled_kernel<TA, TB>), grid, dim3(kTiledThreads), 0, s, g);
}

void launch_gemm(bool ta, bool tb, GemmKernel kernel, const GemmArgs& g, dim3 grid, bool sum) {
  if (grid.x == 0 || grid.y == 0 || grid.z == 0) return;
  if (grid.y > 65535 || grid.z > 65535)
    throw std::runtime_error("gemm_cuda: grid (" + std::to_string(grid.x) + "," + std::to_string(grid.y) + "," +
                             std::to_string(grid.z) + ") exceeds CUDA's limit of 65535 in y or z (M = " +
                             std::to_string(g.M) + ", batch " + std::to_string(g.count) + ")");
  if (ta)
    tb ? launch_gemm<true, true>(kernel, g, grid, sum) : launch_gemm<true, false>(kernel, g, grid, sum);
  else
    tb ? launch_gemm<false, true>(kernel, g, grid, sum) : launch_gemm<false, false>(kernel, g, grid, sum);
}

}  // namespace

void gemm_cuda(bool ta, bool tb, int64_t M, int64_t N, int64_t K, float alpha, const float* A, int64_t lda,
               const float* B, int64_t ldb, float beta, float* C, int64_t ldc, const GemmBatch& batch,
               const GemmOptions& opt) {
  if (M <= 0 || N <= 0 || batch.count <= 0) return;
  if (gemm_impl() == GemmImpl::cublas) {  // --gemm-impl cublas (kernels/cuda/impl.h): for comparison only
    gemm_cublas(ta, tb, M, N, K, alpha, A, lda, B, ldb, beta, C, ldc, batch);
    return;
  }
  if (opt.kernel == GemmKernel::tf32 ||
      (opt.kernel == GemmKernel::tiled && opt.k_splits <= 0 && opt.items_per_slot <= 0 &&
       precision() == Precision::tf32)) {  // --precision tf32: the tensor-core kernel (gemm_tc.cu)
    gemm_tf32_cuda(ta, tb, M, N, K, alpha, A, lda, B, ldb, beta, C, ldc, batch);
    return;
  }
  const int64_t count = batch.count, outs = batch.sum ? 1 : count;
  GemmArgs g{M, N, std::max<int64_t>(K, 0), alpha, beta, A, lda, batch.stride_a, B, ldb, batch.stride_b,
             C, ldc, batch.stride_c, count, 1, 1, 0};
  if (opt.kernel == GemmKernel::naive) {
    launch_gemm(ta, tb, opt.kernel, g, dim3((unsigned)ceil_div(N, kNaiveSide), (unsigned)ceil_div(M, kNaiveSide),
                                            (unsigned)outs), batch.sum);
    return;
  }

  // Plan the slots: as many as it takes to give the GPU ~kTargetBlocks blocks.
  const int64_t tiles = ceil_div(M, kTile) * ceil_div(N, kTile);
  const int64_t max_splits = std::max<int64_t>(1, g.K / kMinSliceK);
  int64_t splits = opt.k_splits, per_slot = batch.sum ? opt.items_per_slot : 1;
  if (batch.sum && splits <= 0 && per_slot <= 0) {  // whole items per slot if there are enough
    const int64_t wanted = ceil_div(kTargetBlocks, tiles);
    per_slot = wanted <= count ? ceil_div(count, wanted) : 1;
    splits = wanted <= count ? 1 : std::min(max_splits, ceil_div(wanted, count));
  } else if (!batch.sum && splits <= 0) {
    splits = count * tiles >= kTargetBlocks ? 1 : std::min(max_splits, ceil_div(kTargetBlocks, count * tiles));
  }
  if (splits <= 0) splits = 1;
  if (per_slot <= 0 || splits > 1) per_slot = splits > 1 ? 1 : count;
  // Slices start on a multiple of the K tile; rounding may leave fewer of them.
  g.k_chunk = splits > 1 ? ceil_div(ceil_div(g.K, splits), kTileK) * kTileK : g.K;
  g.k_splits = splits = splits > 1 ? std::max<int64_t>(1, ceil_div(g.K, g.k_chunk)) : 1;
  g.items_per_slot = per_slot;
  const int64_t slots = splits > 1 ? count * splits : ceil_div(count, per_slot);
  const dim3 grid((unsigned)ceil_div(N, kTile), (unsigned)ceil_div(M, kTile), (unsigned)slots);

  if (slots == outs) {  // every output has one contributor: write C in place
    launch_gemm(ta, tb, opt.kernel, g, grid, batch.sum);
    return;
  }
  // Several contributors per output: private partials, then a fixed-order sum.
  float* partial = static_cast<float*>(ctg::cuda::device_alloc((size_t)(slots * M * N) * sizeof(float)));
  GemmArgs gp = g;
  gp.alpha = 1.f, gp.beta = 0.f, gp.C = partial, gp.ldc = N, gp.stride_c = M * N;
  try {
    launch_gemm(ta, tb, opt.kernel, gp, grid, batch.sum);
    gemm_reduce_slots_cuda(partial, slots / outs, outs, M, N, alpha, beta, C, ldc, batch.sum ? 0 : batch.stride_c);
  } catch (...) {
    ctg::cuda::device_free(partial);
    throw;
  }
  ctg::cuda::device_free(partial);
}

}  // namespace ctg::kernels
