// batchnorm2d with each channel's reduction split over many blocks, and the
// fused BN+ReLU forward / ReLU-backward+BN-backward (math: kernels/batchnorm2d.h).
//
// Why: batchnorm2d.cu gives each channel one block, so ResNet18's first
// stage (C = 64, M = N·H·W = 15·256² ≈ 1M values per channel) runs 64 blocks
// on a 132-SM GPU, each walking a million values. Here a channel's M values are
// cut into S contiguous chunks (S chosen from the shape alone), block (s, c)
// sums its chunk into a partial in double, and one thread per channel adds
// the S partials in the order s = 0, 1, … — deterministic, no atomics, the
// same for every run of a shape.
//   forward:  partial (Σd, Σd²), d = x − x[c, first] (the same shift as the
//             one-block kernel, against cancellation) → finish: μ, invstd,
//             running statistics → y = x·scale + bias, [relu: y = max(y, 0)]
//   backward: gy' = relu ? gy·[y_out > 0] : gy;  partial (Σgy', Σgy'·(x−μ)) →
//             finish: gγ, gβ, and gx's coefficients per channel → gx += k_gy·gy'
//             + k_xc·(x−μ) + k_0 over all values (grid-stride)
// The fused kernels read the ReLU's mask where they read gy and apply the ReLU
// where they write y: one pass over memory less each way. Their unfused twins
// (batchnorm2d_*_split_cuda with relu off, then relu.cu) are what the tests
// hold them against (tests/cuda_vs_cpu_batchnorm_fused.cpp).
#include <math.h>

#include <algorithm>

#include "kernels/batchnorm2d.h"
#include "kernels/batchnorm2d_relu.h"
#include "kernels/cuda/common.h"

namespace ctg::kernels {

namespace {
constexpr int kSplitThreads = 256;  // a power of two: the tree halves it
constexpr int64_t kSplitTargetBlocks = 528;  // ~4 per SM of an H100/H200

// Both values summed over the block (tree in shared memory, order fixed by threadIdx).
CTG_DEVICE void split_block_sum2(double* pa, double* pb, double& a, double& b) {
  const unsigned int t = threadIdx.x;
  pa[t] = a;
  pb[t] = b;
  __syncthreads();
  for (unsigned int half = blockDim.x / 2; half > 0; half /= 2) {
    if (t < half) pa[t] += pa[t + half], pb[t] += pb[t + half];
    __syncthreads();
  }
  a = pa[0];
  b = pb[0];
}

CTG_DEVICE int64_t split_offset(int64_t i, int64_t c, int64_t C, int64_t HW) {
  const int64_t n = i / HW;
  return (n * C + c) * HW + (i - n * HW);
}
}  // namespace

// Block (s = blockIdx.x, c = blockIdx.y): chunk s of channel c. mode 0: (Σd, Σd²);
// mode 1: (Σgy', Σgy'·(x − μ)) with gy' masked by y_out > 0 when y_out is given.
CTG_GLOBAL void CTG_LAUNCH_BOUNDS(kSplitThreads)
    batchnorm2d_split_partial_kernel(const float* __restrict__ x, const float* __restrict__ gy,
                                     const float* __restrict__ y_out, const float* __restrict__ mean,
                                     double* __restrict__ part, int64_t N, int64_t C, int64_t HW, int64_t S, int mode) {
  CTG_SHARED(double, pa, [kSplitThreads]);
  CTG_SHARED(double, pb, [kSplitThreads]);
  const int64_t s = blockIdx.x, c = blockIdx.y, M = N * HW, chunk = (M + S - 1) / S;
  const int64_t begin = s * chunk, end = begin + chunk < M ? begin + chunk : M;
  double a = 0, b = 0;
  if (mode == 0) {
    const double shift = (double)x[c * HW];
    for (int64_t i = begin + threadIdx.x; i < end; i += blockDim.x) {
      const double d = (double)x[split_offset(i, c, C, HW)] - shift;
      a += d, b += d * d;
    }
  } else {
    const float mu = mean[c];
    for (int64_t i = begin + threadIdx.x; i < end; i += blockDim.x) {
      const int64_t k = split_offset(i, c, C, HW);
      const double g = (y_out && !(y_out[k] > 0.f)) ? 0.0 : (double)gy[k];
      a += g, b += g * (double)(x[k] - mu);
    }
  }
  split_block_sum2(pa, pb, a, b);
  if (threadIdx.x == 0) part[(c * S + s) * 2] = a, part[(c * S + s) * 2 + 1] = b;
}

// One thread per channel: the S partials in order, then batchnorm2d.cu's formulas.
CTG_GLOBAL void batchnorm2d_split_finish_stats_kernel(const double* __restrict__ part, const float* __restrict__ x,
                                                      float* __restrict__ running_mean, float* __restrict__ running_var,
                                                      float* __restrict__ mean, float* __restrict__ invstd, int64_t N,
                                                      int64_t C, int64_t HW, int64_t S, double momentum, double eps) {
  CTG_GRID_STRIDE_LOOP(c, C) {
    const int64_t M = N * HW;
    double s = 0, ss = 0;
    for (int64_t k = 0; k < S; ++k) s += part[(c * S + k) * 2], ss += part[(c * S + k) * 2 + 1];
    const double dmean = s / (double)M, var = fmax(ss / (double)M - dmean * dmean, 0.0);
    const double mu = (double)x[c * HW] + dmean;
    mean[c] = (float)mu;
    invstd[c] = (float)(1.0 / sqrt(var + eps));
    if (running_mean) running_mean[c] = (float)((1.0 - momentum) * (double)running_mean[c] + momentum * mu);
    if (running_var)
      running_var[c] = (float)((1.0 - momentum) * (double)running_var[c] + momentum * var * (double)M / (double)(M - 1));
  }
}

// gγ, gβ and the coefficients of gx per channel: coef[c] = (k_gy, k_xc, k_0).
CTG_GLOBAL void batchnorm2d_split_finish_backward_kernel(const double* __restrict__ part,
                                                         const float* __restrict__ gamma,
                                                         const float* __restrict__ invstd, float* __restrict__ ggamma,
                                                         float* __restrict__ gbeta, float* __restrict__ coef, int64_t M,
                                                         int64_t C, int64_t S, bool training) {
  CTG_GRID_STRIDE_LOOP(c, C) {
    double sum_gy = 0, sum_gyxc = 0;
    for (int64_t k = 0; k < S; ++k) sum_gy += part[(c * S + k) * 2], sum_gyxc += part[(c * S + k) * 2 + 1];
    const double inv = (double)invstd[c], g = gamma ? (double)gamma[c] : 1.0;
    if (ggamma) ggamma[c] += (float)(sum_gyxc * inv);
    if (gbeta) gbeta[c] += (float)sum_gy;
    coef[3 * c] = (float)(g * inv);
    coef[3 * c + 1] = training ? (float)(-g * inv * inv * inv * sum_gyxc / (double)M) : 0.f;
    coef[3 * c + 2] = training ? (float)(-g * inv * sum_gy / (double)M) : 0.f;
  }
}

// y = x·scale + bias (relu: then max(y, 0), NaN kept as relu.cu does).
CTG_GLOBAL void batchnorm2d_split_affine_kernel(const float* __restrict__ x, const float* __restrict__ gamma,
                                                const float* __restrict__ beta, const float* __restrict__ mean,
                                                const float* __restrict__ invstd, float* __restrict__ y, int64_t C,
                                                int64_t HW, int64_t total, bool relu) {
  CTG_GRID_STRIDE_LOOP(i, total) {
    const int64_t c = (i / HW) % C;
    const float scale = (gamma ? gamma[c] : 1.f) * invstd[c];
    const float bias = (beta ? beta[c] : 0.f) - mean[c] * scale;
    const float v = x[i] * scale + bias;
    y[i] = relu && v <= 0.f ? 0.f : v;
  }
}

CTG_GLOBAL void batchnorm2d_split_apply_kernel(const float* __restrict__ x, const float* __restrict__ gy,
                                               const float* __restrict__ y_out, const float* __restrict__ mean,
                                               const float* __restrict__ coef, float* __restrict__ gx, int64_t C,
                                               int64_t HW, int64_t total, bool gx_accumulate) {
  CTG_GRID_STRIDE_LOOP(i, total) {
    const int64_t c = (i / HW) % C;
    const float g = (y_out && !(y_out[i] > 0.f)) ? 0.f : gy[i];
    const float v = coef[3 * c] * g + coef[3 * c + 1] * (x[i] - mean[c]) + coef[3 * c + 2];
    gx[i] = gx_accumulate ? gx[i] + v : v;  // a first write never reads gx
  }
}

int64_t batchnorm2d_splits(int64_t N, int64_t C, int64_t HW) {
  const int64_t M = N * HW;
  const int64_t by_gpu = (kSplitTargetBlocks + C - 1) / std::max<int64_t>(C, 1);
  const int64_t by_work = (M + 4 * kSplitThreads - 1) / (4 * kSplitThreads);  // ≥ 4 values per thread
  return std::max<int64_t>(1, std::min({by_gpu, by_work, int64_t(65535)}));
}

namespace {
struct DoubleScratch {
  double* p;
  explicit DoubleScratch(int64_t n) : p(static_cast<double*>(ctg::cuda::device_alloc((size_t)n * sizeof(double)))) {}
  ~DoubleScratch() { ctg::cuda::device_free(p); }
  DoubleScratch(const DoubleScratch&) = delete;
  DoubleScratch& operator=(const DoubleScratch&) = delete;
};
}  // namespace

void batchnorm2d_forward_split_cuda(const float* x, const float* gamma, const float* beta, float* running_mean,
                                    float* running_var, float* y, float* mean, float* invstd, int64_t N, int64_t C,
                                    int64_t HW, double momentum, double eps, bool relu, int64_t splits) {
  const int64_t total = N * C * HW;
  if (total == 0) return;
  const int64_t S = splits > 0 ? splits : batchnorm2d_splits(N, C, HW);
  const cudaStream_t st = cuda_detail::stream();
  DoubleScratch part(C * S * 2);
  CTG_LAUNCH(batchnorm2d_split_partial_kernel, dim3((unsigned)S, (unsigned)C), dim3(kSplitThreads), 0, st, x,
             (const float*)nullptr, (const float*)nullptr, (const float*)nullptr, part.p, N, C, HW, S, 0);
  CTG_LAUNCH(batchnorm2d_split_finish_stats_kernel, dim3(cuda_detail::blocks_for(C, 128)), dim3(128), 0, st,
             (const double*)part.p, x, running_mean, running_var, mean, invstd, N, C, HW, S, momentum, eps);
  CTG_LAUNCH(batchnorm2d_split_affine_kernel, dim3(cuda_detail::blocks_for(total, 256)), dim3(256), 0, st, x, gamma,
             beta, (const float*)mean, (const float*)invstd, y, C, HW, total, relu);
}

void batchnorm2d_backward_split_cuda(const float* x, const float* gamma, const float* mean, const float* invstd,
                                     const float* gy, const float* relu_y, float* gx, float* ggamma, float* gbeta,
                                     int64_t N, int64_t C, int64_t HW, bool training, int64_t splits,
                                     bool gx_accumulate) {
  const int64_t total = N * C * HW;
  if (total == 0) return;
  const int64_t S = splits > 0 ? splits : batchnorm2d_splits(N, C, HW);
  const cudaStream_t st = cuda_detail::stream();
  DoubleScratch part(C * S * 2);
  float* coef = static_cast<float*>(ctg::cuda::device_alloc((size_t)(3 * C) * sizeof(float)));
  try {
    CTG_LAUNCH(batchnorm2d_split_partial_kernel, dim3((unsigned)S, (unsigned)C), dim3(kSplitThreads), 0, st, x, gy,
               relu_y, mean, part.p, N, C, HW, S, 1);
    CTG_LAUNCH(batchnorm2d_split_finish_backward_kernel, dim3(cuda_detail::blocks_for(C, 128)), dim3(128), 0, st,
               (const double*)part.p, gamma, invstd, ggamma, gbeta, coef, N * HW, C, S, training);
    if (gx)
      CTG_LAUNCH(batchnorm2d_split_apply_kernel, dim3(cuda_detail::blocks_for(total, 256)), dim3(256), 0, st, x, gy,
                 relu_y, mean, (const float*)coef, gx, C, HW, total, gx_accumulate);
  } catch (...) {
    ctg::cuda::device_free(coef);
    throw;
  }
  ctg::cuda::device_free(coef);
}

// The fused op batchnorm2d_relu (kernels/batchnorm2d_relu.h) on the GPU.
void batchnorm2d_relu_forward_cuda(const float* x, const float* gamma, const float* beta, float* running_mean,
                                   float* running_var, float* y, float* mean, float* invstd, int64_t N, int64_t C,
                                   int64_t HW, bool training, double momentum, double eps) {
  if (training) {
    batchnorm2d_forward_split_cuda(x, gamma, beta, running_mean, running_var, y, mean, invstd, N, C, HW, momentum,
                                   eps, /*relu*/ true);
  } else {
    // Eval normalises with the running statistics: BatchNorm's eval kernel
    // fills mean/invstd from them, then the affine pass rewrites y clamped.
    const int64_t total = N * C * HW;
    if (total == 0) return;
    batchnorm2d_forward_cuda(x, gamma, beta, running_mean, running_var, y, mean, invstd, N, C, HW, false, momentum,
                             eps);
    CTG_LAUNCH(batchnorm2d_split_affine_kernel, dim3(cuda_detail::blocks_for(total, 256)), dim3(256), 0,
               cuda_detail::stream(), x, gamma, beta, (const float*)mean, (const float*)invstd, y, C, HW, total, true);
  }
}

void batchnorm2d_relu_backward_cuda(const float* x, const float* gamma, const float* mean, const float* invstd,
                                    const float* y, const float* gy, float* gx, float* ggamma, float* gbeta,
                                    int64_t N, int64_t C, int64_t HW, bool training, bool gx_accumulate) {
  batchnorm2d_backward_split_cuda(x, gamma, mean, invstd, gy, /*relu_y*/ y, gx, ggamma, gbeta, N, C, HW, training, 0,
                                  gx_accumulate);
}

}  // namespace ctg::kernels
