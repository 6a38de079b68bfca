// conv2d on the GPU — the CUDA twin of kernels/cpu/conv2d.cpp (math in kernels/conv2d.h).
//   y[n,o,i,j] = b[o] + Σ_{c,p,q} W[o,c,p,q] · x[n,c, i·SH+p−PH, j·SW+q−PW]
// With K = C·KH·KW, P = OH·OW and cols_n [K,P] the unfolded image n:
//   forward:      y_n   = W[O,K] · cols_n                     (batched GEMM over n)
//   grad-weight:  gW   += Σ_n gy_n[O,P] · cols_nᵀ              (one GEMM summed over n)
//   grad-input:   dcols = Wᵀ · gy_n,  gx_n += fold(dcols)      (batched GEMM, then a gather)
//   grad-bias:    gb[o] += Σ_{n,i,j} gy[n,o,i,j]               (a block reduction per o)
//
// Why im2col + our tiled GEMM rather than an implicit GEMM: the convolution then
// rides on one kernel (kernels/cuda/gemm.cu) that the GEMM tests already hold
// against the CPU in all transpose combinations, and the unfold/fold kernels are
// plain index arithmetic, easy to read beside the CPU's. The price is the cols
// scratch (K·P floats per image) and one extra pass over it; images therefore go
// through in groups bounded by tune.max_scratch, and the scratch comes from the
// caching device allocator, so steady-state training never calls cudaMalloc.
// Under --precision tf32 (kernels/cuda/impl.h) the three products go instead to
// the implicit GEMMs of conv2d_tc.cu (tensor cores, the unfold folded into the
// tile staging, no scratch); the bias parts stay here.
//
// The shapes a plain port would serve badly (the C = 1 stem and the weight
// gradient need their own paths):
//  - The C = 1 stem (7×7, K = 49): im2col turns it into an ordinary GEMM with
//    K = 49 (three full 16-wide K steps and a partial one staged as zeros) and a
//    huge N = P, so the forward fills the GPU by itself.
//  - The weight gradient has few outputs (O×K: 64×49 for the stem, 64×576 for
//    ResNet's first stage) and a long reduction (the batch's pixels). gemm_cuda's
//    sum mode cuts that reduction into slots (whole images, or K-slices of one
//    image), each into its own partial, summed afterwards in a fixed order — the
//    GPU stays busy and the result is deterministic (no atomics).
//  - 1×1 stride-1 unpadded convolutions need no unfold: cols_n is x_n itself.
//  - grad-input folds with a gather: one thread per input pixel collects the
//    column entries that were copied from it, so each pixel is written once.
// v1 of every kernel here is the CPU loop with its index taken from the thread.
#include <algorithm>

#include "kernels/conv2d.h"
#include "kernels/cuda/common.h"
#include "kernels/cuda/gemm.h"
#include "kernels/cuda/impl.h"

namespace ctg::kernels {

constexpr int kConvThreads = 256;

// cols[img, r, pix] for g images: r = (c, p, q) runs over K, pix = (i, j) over P.
CTG_GLOBAL void conv2d_im2col_kernel(const float* __restrict__ x, float* __restrict__ cols, int64_t g,
                                     Conv2dDims d) {
  const int64_t P = d.OH * d.OW, K = d.C * d.KH * d.KW;
  CTG_GRID_STRIDE_LOOP(idx, g * K * P) {
    const int64_t pix = idx % P, r = (idx / P) % K, img = idx / (K * P);
    const int64_t i = pix / d.OW, j = pix % d.OW;
    const int64_t c = r / (d.KH * d.KW), p = (r / d.KW) % d.KH, q = r % d.KW;
    const int64_t h = i * d.SH + p - d.PH, w = j * d.SW + q - d.PW;
    cols[idx] = (h >= 0 && h < d.H && w >= 0 && w < d.W) ? x[((img * d.C + c) * d.H + h) * d.W + w] : 0.f;
  }
}

// gx[img,c,h,w] += Σ dcols[img, (c,p,q), (i,j)] over the (p,i) with i·SH + p − PH = h
// and the (q,j) with j·SW + q − PW = w: the entries im2col copied from this pixel.
// accumulate false (a first write): gx = the sum, stored without reading gx
// (0 for a pixel no window reads).
CTG_GLOBAL void conv2d_col2im_gather_kernel(const float* __restrict__ dcols, float* __restrict__ gx, int64_t g,
                                            Conv2dDims d, bool accumulate) {
  const int64_t P = d.OH * d.OW, K = d.C * d.KH * d.KW;
  CTG_GRID_STRIDE_LOOP(idx, g * d.C * d.H * d.W) {
    const int64_t w = idx % d.W, h = (idx / d.W) % d.H, c = (idx / (d.H * d.W)) % d.C,
                  img = idx / (d.C * d.H * d.W);
    const float* dk = dcols + (img * K + c * d.KH * d.KW) * P;  // rows (c, ·, ·)
    float s = 0.f;
    for (int64_t p = 0; p < d.KH; ++p) {
      const int64_t th = h + d.PH - p;
      if (th < 0 || th % d.SH != 0 || th / d.SH >= d.OH) continue;
      const int64_t i = th / d.SH;
      for (int64_t q = 0; q < d.KW; ++q) {
        const int64_t tw = w + d.PW - q;
        if (tw < 0 || tw % d.SW != 0 || tw / d.SW >= d.OW) continue;
        s += dk[(p * d.KW + q) * P + i * d.OW + tw / d.SW];
      }
    }
    gx[idx] = accumulate ? gx[idx] + s : s;
  }
}

// y[n,o,:] = b[o]: the starting value the forward GEMM adds onto.
CTG_GLOBAL void conv2d_fill_bias_kernel(const float* __restrict__ b, float* __restrict__ y, int64_t N, int64_t O,
                                        int64_t P) {
  CTG_GRID_STRIDE_LOOP(idx, N * O * P) y[idx] = b[(idx / P) % O];
}

// gb[o] += Σ_{n,pix} gy[n,o,pix]: block o, each thread a strided partial sum in
// a fixed order, then a tree in shared memory (as bce_with_logits.cu): deterministic.
CTG_GLOBAL void CTG_LAUNCH_BOUNDS(kConvThreads)
    conv2d_backward_bias_kernel(const float* __restrict__ gy, float* __restrict__ gb, int64_t N, int64_t O,
                                int64_t P) {
  CTG_SHARED(float, partial, [kConvThreads]);
  const int64_t o = blockIdx.x;
  float s = 0.f;
  for (int64_t n = 0; n < N; ++n) {
    const float* row = gy + (n * O + o) * P;
    for (int64_t pix = threadIdx.x; pix < P; pix += blockDim.x) s += row[pix];
  }
  partial[threadIdx.x] = s;
  __syncthreads();
  for (unsigned int half = blockDim.x / 2; half > 0; half /= 2) {
    if (threadIdx.x < half) partial[threadIdx.x] += partial[threadIdx.x + half];
    __syncthreads();
  }
  if (threadIdx.x == 0) gb[o] += partial[0];
}

namespace {

dim3 grid_for(int64_t n) { return dim3(cuda_detail::blocks_for(n, kConvThreads)); }

// Images per group: as many as tune.max_scratch floats of cols hold, balanced.
int64_t group_size(const Conv2dDims& d, const Conv2dCudaTuning& tune) {
  const int64_t per_image = std::max<int64_t>(1, d.C * d.KH * d.KW * d.OH * d.OW);
  const int64_t gmax = std::max<int64_t>(1, std::min(d.N, tune.max_scratch / per_image));
  const int64_t groups = (d.N + gmax - 1) / gmax;
  return (d.N + groups - 1) / groups;
}

// Device scratch for one call's cols, returned to the caching allocator on exit.
struct Scratch {
  float* p = nullptr;
  explicit Scratch(int64_t n) : p(static_cast<float*>(ctg::cuda::device_alloc((size_t)n * sizeof(float)))) {}
  ~Scratch() { ctg::cuda::device_free(p); }
  Scratch(const Scratch&) = delete;
  Scratch& operator=(const Scratch&) = delete;
};

void im2col(const float* x, float* cols, int64_t g, const Conv2dDims& d) {
  CTG_LAUNCH(conv2d_im2col_kernel, grid_for(g * d.C * d.KH * d.KW * d.OH * d.OW), dim3(kConvThreads), 0,
             cuda_detail::stream(), x, cols, g, d);
}

}  // namespace

void conv2d_forward_cuda(const float* x, const float* w, const float* b, float* y, const Conv2dDims& d,
                         const Conv2dCudaTuning& tune) {
  const int64_t K = d.C * d.KH * d.KW, P = d.OH * d.OW, O = d.O;
  if (d.N <= 0 || O <= 0 || P <= 0) return;
  if (conv_impl() == ConvImpl::cudnn) return conv2d_forward_cudnn(x, w, b, y, d);  // --conv-impl cudnn (impl.h)
  if (b)
    CTG_LAUNCH(conv2d_fill_bias_kernel, grid_for(d.N * O * P), dim3(kConvThreads), 0, cuda_detail::stream(), b,
               y, d.N, O, P);
  const float beta = b ? 1.f : 0.f;
  if (precision() == Precision::tf32) return conv2d_forward_tf32_cuda(x, w, y, d, b != nullptr);  // conv2d_tc.cu
  if (conv2d_is_pointwise(d)) {  // cols_n = x_n: y_n [O,P] (+)= W [O,C] · x_n [C,P], all images in one launch
    gemm_cuda(false, false, O, P, K, 1.f, w, K, x, P, beta, y, P, GemmBatch{d.N, 0, K * P, O * P});
    return;
  }
  const int64_t G = group_size(d, tune);
  Scratch cols(G * K * P);
  for (int64_t n0 = 0; n0 < d.N; n0 += G) {
    const int64_t g = std::min(G, d.N - n0);
    im2col(x + n0 * d.C * d.H * d.W, cols.p, g, d);
    gemm_cuda(false, false, O, P, K, 1.f, w, K, cols.p, P, beta, y + n0 * O * P, P, GemmBatch{g, 0, K * P, O * P});
  }
}

void conv2d_backward_cuda(const float* x, const float* w, const float* gy, float* gx, float* gw, float* gb,
                          const Conv2dDims& d, const Conv2dCudaTuning& tune, bool gx_accumulate) {
  const int64_t K = d.C * d.KH * d.KW, P = d.OH * d.OW, O = d.O;
  if (d.N <= 0 || O <= 0 || P <= 0) return;
  if (conv_impl() == ConvImpl::cudnn)  // --conv-impl cudnn
    return conv2d_backward_cudnn(x, w, gy, gx, gw, gb, d, gx_accumulate);
  if (gb)
    CTG_LAUNCH(conv2d_backward_bias_kernel, dim3((unsigned)O), dim3(kConvThreads), 0, cuda_detail::stream(), gy,
               gb, d.N, O, P);
  if (!gx && !gw) return;
  if (precision() == Precision::tf32)  // conv2d_tc.cu
    return conv2d_backward_tf32_cuda(x, w, gy, gx, gw, d, gx_accumulate);
  const float gx_beta = gx_accumulate ? 1.f : 0.f;  // a first write: beta 0 never reads gx
  // gW [O,K] += Σ_n gy_n [O,P] · cols_nᵀ [P,K]   (sum mode: deterministic over n)
  auto weight_grad = [&](const float* gy0, const float* cols0, int64_t g) {
    gemm_cuda(false, true, O, K, P, 1.f, gy0, P, cols0, P, 1.f, gw, K, GemmBatch{g, O * P, K * P, 0, true});
  };
  if (conv2d_is_pointwise(d)) {  // cols_n = x_n and dcols_n = gx_n: no scratch at all
    if (gw) weight_grad(gy, x, d.N);
    if (gx) gemm_cuda(true, false, K, P, O, 1.f, w, K, gy, P, gx_beta, gx, P, GemmBatch{d.N, 0, O * P, K * P});
    return;
  }
  const int64_t G = group_size(d, tune);
  Scratch cols(G * K * P);
  for (int64_t n0 = 0; n0 < d.N; n0 += G) {
    const int64_t g = std::min(G, d.N - n0);
    const float* gyn = gy + n0 * O * P;
    if (gw) {
      im2col(x + n0 * d.C * d.H * d.W, cols.p, g, d);
      weight_grad(gyn, cols.p, g);
    }
    if (!gx) continue;
    // The scratch is free again (kernels run in stream order): dcols_n [K,P] = Wᵀ [K,O] · gy_n [O,P].
    gemm_cuda(true, false, K, P, O, 1.f, w, K, gyn, P, 0.f, cols.p, P, GemmBatch{g, 0, O * P, K * P});
    CTG_LAUNCH(conv2d_col2im_gather_kernel, grid_for(g * d.C * d.H * d.W), dim3(kConvThreads), 0,
               cuda_detail::stream(), cols.p, gx + n0 * d.C * d.H * d.W, g, d, gx_accumulate);
  }
}

}  // namespace ctg::kernels
