// batchnorm2d on the GPU — the CUDA twin of kernels/cpu/batchnorm2d.cpp
// (math in kernels/batchnorm2d.h). Per channel c, over its M = N·H·W values:
//   training: μ = Σx/M, σ² = Σ(x−μ)²/M (biased), invstd = 1/sqrt(σ² + eps),
//             running_mean ← (1−m)·running_mean + m·μ,
//             running_var  ← (1−m)·running_var  + m·σ²·M/(M−1)
//   eval:     μ = running_mean, invstd = 1/sqrt(running_var + eps)
//   y = γ·(x − μ)·invstd + β
//   backward: gγ += Σ gy·x̂,  gβ += Σ gy,
//             gx += γ·invstd/M·(M·gy − Σgy − x̂·Σ(gy·x̂))   (training)
//             gx += γ·invstd·gy                            (eval)
//
// Kernels (v1 is the CPU loop, channel by channel, with the channel's values
// spread over one block):
// - batchnorm2d_stats_kernel: one block per channel. Each thread walks the
//   channel's M values with a block-stride loop (value i is plane n = i / HW,
//   offset i mod HW) and sums d = x − shift and d² in double, shifted by the
//   channel's first value exactly as the CPU does; the block then adds the
//   per-thread sums with a shared-memory tree (halving with a barrier between
//   rounds), and thread 0 finishes the statistics in double. The order of
//   every addition is fixed by the launch shape, never by timing, so the
//   statistics are deterministic (no atomics).
// - batchnorm2d_affine_kernel: y = x·scale + bias over all N·C·HW values with
//   a grid-stride loop, so the elementwise pass uses the whole GPU even when C
//   is small. Eval mode first fills mean/invstd from the running statistics.
// - batchnorm2d_backward_kernel: one block per channel, the two sums Σgy and
//   Σgy·(x − μ) by the same block reduction, then the same block applies the
//   elementwise gx update to its channel. Fusing the two passes keeps the sums
//   in registers: the per-channel sums have no buffer of their own (gγ and gβ
//   accumulate and may be absent), and a scratch allocation per call is what
//   the fusion avoids.
// - batchnorm2d_backward_eval_kernel: gx += γ·invstd·gy, grid-stride, when eval
//   mode needs neither gγ nor gβ (no reduction at all).
// In training mode, channels of ≥ kBnSplitFrom values go to the split kernels
// of batchnorm2d_split.cu instead (many blocks per channel, deterministic).
#include <math.h>

#include "kernels/batchnorm2d.h"
#include "kernels/cuda/common.h"

namespace ctg::kernels {

// Threads per reduction block; a power of two, since the tree halves it.
constexpr int kBnThreads = 256;
// Channels of at least this many values (N·H·W) go to the split kernels, where
// one block per channel would walk ≥ 256 values per thread with most SMs idle
// (ResNet18's first stage at 512², batch 15: C = 64, N·H·W ≈ 1M).
constexpr int64_t kBnSplitFrom = 65536;

// Adds a and b over the block: every thread passes its own values and gets
// the block's totals back. The tree's order depends only on threadIdx.
CTG_DEVICE void block_sum2(double* part_a, double* part_b, double& a, double& b) {
  const unsigned int t = threadIdx.x;
  part_a[t] = a;
  part_b[t] = b;
  __syncthreads();  // every partial is written before anyone reads a neighbour's
  for (unsigned int half = blockDim.x / 2; half > 0; half /= 2) {
    if (t < half) {
      part_a[t] += part_a[t + half];
      part_b[t] += part_b[t + half];
    }
    __syncthreads();  // this round's sums are complete before the next round reads them
  }
  a = part_a[0];
  b = part_b[0];
}

// Element i of channel c's M = N·HW values, in the layout [N, C, HW].
CTG_DEVICE int64_t channel_offset(int64_t i, int64_t c, int64_t C, int64_t HW) {
  const int64_t n = i / HW;
  return (n * C + c) * HW + (i - n * HW);
}

CTG_GLOBAL void CTG_LAUNCH_BOUNDS(kBnThreads)
    batchnorm2d_stats_kernel(const float* __restrict__ x, float* __restrict__ running_mean,
                             float* __restrict__ running_var, float* __restrict__ mean, float* __restrict__ invstd,
                             int64_t N, int64_t C, int64_t HW, double momentum, double eps) {
  CTG_SHARED(double, part_s, [kBnThreads]);
  CTG_SHARED(double, part_ss, [kBnThreads]);
  const int64_t c = blockIdx.x, M = N * HW;
  // Σd and Σd² with d = x − shift: shifting by one of the channel's values
  // keeps E[d²] − E[d]² free of cancellation when |μ| ≫ σ (as on the CPU).
  const double shift = (double)x[c * HW];
  double s = 0, ss = 0;
  for (int64_t i = threadIdx.x; i < M; i += blockDim.x) {
    const double d = (double)x[channel_offset(i, c, C, HW)] - shift;
    s += d;
    ss += d * d;
  }
  block_sum2(part_s, part_ss, s, ss);
  if (threadIdx.x != 0) return;
  const double dmean = s / (double)M;
  const double var = fmax(ss / (double)M - dmean * dmean, 0.0);  // biased
  const double mu = shift + dmean;
  mean[c] = (float)mu;
  invstd[c] = (float)(1.0 / sqrt(var + eps));
  if (running_mean) running_mean[c] = (float)((1.0 - momentum) * (double)running_mean[c] + momentum * mu);
  if (running_var)  // the running estimate uses the unbiased variance
    running_var[c] =
        (float)((1.0 - momentum) * (double)running_var[c] + momentum * var * (double)M / (double)(M - 1));
}

CTG_GLOBAL void batchnorm2d_eval_stats_kernel(const float* __restrict__ running_mean,
                                              const float* __restrict__ running_var, float* __restrict__ mean,
                                              float* __restrict__ invstd, int64_t C, double eps) {
  CTG_GRID_STRIDE_LOOP(c, C) {
    mean[c] = running_mean[c];
    invstd[c] = (float)(1.0 / sqrt((double)running_var[c] + eps));
  }
}

// y = γ·(x − μ)·invstd + β = x·scale + bias, one multiply-add per value.
CTG_GLOBAL void batchnorm2d_affine_kernel(const float* __restrict__ x, const float* __restrict__ gamma,
                                          const float* __restrict__ beta, const float* __restrict__ mean,
                                          const float* __restrict__ invstd, float* __restrict__ y, int64_t C,
                                          int64_t HW, int64_t total) {
  CTG_GRID_STRIDE_LOOP(i, total) {
    const int64_t c = (i / HW) % C;
    const float scale = (gamma ? gamma[c] : 1.f) * invstd[c];
    const float bias = (beta ? beta[c] : 0.f) - mean[c] * scale;
    y[i] = x[i] * scale + bias;
  }
}

CTG_GLOBAL void CTG_LAUNCH_BOUNDS(kBnThreads)
    batchnorm2d_backward_kernel(const float* __restrict__ x, const float* __restrict__ gamma,
                                const float* __restrict__ mean, const float* __restrict__ invstd,
                                const float* __restrict__ gy, float* __restrict__ gx, float* __restrict__ ggamma,
                                float* __restrict__ gbeta, int64_t N, int64_t C, int64_t HW, bool training,
                                bool gx_accumulate) {
  CTG_SHARED(double, part_gy, [kBnThreads]);
  CTG_SHARED(double, part_gyxc, [kBnThreads]);
  const int64_t c = blockIdx.x, M = N * HW;
  const float mu = mean[c];
  const double inv = (double)invstd[c], g = gamma ? (double)gamma[c] : 1.0;
  // sum_gy = Σ gy,  sum_gyxc = Σ gy·(x − μ)  (so Σ gy·x̂ = invstd·sum_gyxc).
  double sum_gy = 0, sum_gyxc = 0;
  for (int64_t i = threadIdx.x; i < M; i += blockDim.x) {
    const int64_t k = channel_offset(i, c, C, HW);
    sum_gy += (double)gy[k];
    sum_gyxc += (double)gy[k] * (double)(x[k] - mu);
  }
  block_sum2(part_gy, part_gyxc, sum_gy, sum_gyxc);
  if (threadIdx.x == 0) {
    if (ggamma) ggamma[c] += (float)(sum_gyxc * inv);
    if (gbeta) gbeta[c] += (float)sum_gy;
  }
  if (!gx) return;
  // gx += k_gy·gy + k_xc·(x − μ) + k_0, the CPU's expansion of the formula.
  const float k_gy = (float)(g * inv);
  const float k_xc = training ? (float)(-g * inv * inv * inv * sum_gyxc / (double)M) : 0.f;
  const float k_0 = training ? (float)(-g * inv * sum_gy / (double)M) : 0.f;
  for (int64_t i = threadIdx.x; i < M; i += blockDim.x) {
    const int64_t k = channel_offset(i, c, C, HW);
    const float v = k_gy * gy[k] + k_xc * (x[k] - mu) + k_0;
    gx[k] = gx_accumulate ? gx[k] + v : v;  // a first write never reads gx
  }
}

CTG_GLOBAL void batchnorm2d_backward_eval_kernel(const float* __restrict__ gamma, const float* __restrict__ invstd,
                                                 const float* __restrict__ gy, float* __restrict__ gx, int64_t C,
                                                 int64_t HW, int64_t total, bool gx_accumulate) {
  CTG_GRID_STRIDE_LOOP(i, total) {
    const int64_t c = (i / HW) % C;
    const float v = (gamma ? gamma[c] : 1.f) * invstd[c] * gy[i];
    gx[i] = gx_accumulate ? gx[i] + v : v;
  }
}

void batchnorm2d_forward_cuda(const float* x, const float* gamma, const float* beta, float* running_mean,
                              float* running_var, float* y, float* mean, float* invstd, int64_t N, int64_t C,
                              int64_t HW, bool training, double momentum, double eps) {
  const int64_t total = N * C * HW;
  if (total == 0) return;
  if (training && N * HW >= kBnSplitFrom)  // large channels: many blocks each (batchnorm2d_split.cu)
    return batchnorm2d_forward_split_cuda(x, gamma, beta, running_mean, running_var, y, mean, invstd, N, C, HW,
                                          momentum, eps, false);
  if (training)
    CTG_LAUNCH(batchnorm2d_stats_kernel, dim3((unsigned int)C), dim3(kBnThreads), 0, cuda_detail::stream(), x,
               running_mean, running_var, mean, invstd, N, C, HW, momentum, eps);
  else
    CTG_LAUNCH(batchnorm2d_eval_stats_kernel, dim3(cuda_detail::blocks_for(C, 256)), dim3(256), 0,
               cuda_detail::stream(), running_mean, running_var, mean, invstd, C, eps);
  CTG_LAUNCH(batchnorm2d_affine_kernel, dim3(cuda_detail::blocks_for(total, 256)), dim3(256), 0,
             cuda_detail::stream(), x, gamma, beta, mean, invstd, y, C, HW, total);
}

void batchnorm2d_backward_cuda(const float* x, const float* gamma, const float* mean, const float* invstd,
                               const float* gy, float* gx, float* ggamma, float* gbeta, int64_t N, int64_t C,
                               int64_t HW, bool training, bool gx_accumulate) {
  const int64_t total = N * C * HW;
  if (total == 0) return;
  if (training && N * HW >= kBnSplitFrom)
    return batchnorm2d_backward_split_cuda(x, gamma, mean, invstd, gy, nullptr, gx, ggamma, gbeta, N, C, HW, true, 0,
                                           gx_accumulate);
  // Eval mode needs the per-channel sums only for gγ and gβ; training always.
  if (training || ggamma || gbeta)
    CTG_LAUNCH(batchnorm2d_backward_kernel, dim3((unsigned int)C), dim3(kBnThreads), 0, cuda_detail::stream(), x,
               gamma, mean, invstd, gy, gx, ggamma, gbeta, N, C, HW, training, gx_accumulate);
  else if (gx)
    CTG_LAUNCH(batchnorm2d_backward_eval_kernel, dim3(cuda_detail::blocks_for(total, 256)), dim3(256), 0,
               cuda_detail::stream(), gamma, invstd, gy, gx, C, HW, total, gx_accumulate);
}

}  // namespace ctg::kernels
