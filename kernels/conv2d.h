// conv2d — 2-D cross-correlation as PyTorch's Conv2d (groups = 1, dilation = 1)
//   x [N,C,H,W], W [O,C,KH,KW], b [O] or none, y [N,O,OH,OW]
//   OH = (H + 2·PH − KH)/SH + 1,  OW = (W + 2·PW − KW)/SW + 1   (floor division)
//   y[n,o,i,j] = b[o] + Σ_{c,p,q} W[o,c,p,q] · x[n,c, i·SH+p−PH, j·SW+q−PW]
//   (x outside [0,H)×[0,W) reads as zero: zero padding)
// and backward, the same sums read the other way (each x·W product of the
// forward passes dL/dy[n,o,i,j] back to both of its factors):
//   dL/dW[o,c,p,q] += Σ_{n,i,j} dL/dy[n,o,i,j] · x[n,c, i·SH+p−PH, j·SW+q−PW]
//   dL/dx[n,c, i·SH+p−PH, j·SW+q−PW] += W[o,c,p,q] · dL/dy[n,o,i,j]  for every n,o,i,j,c,p,q
//                                        (padding positions get nothing)
//   dL/db[o] += Σ_{n,i,j} dL/dy[n,o,i,j]
//
// As a matrix product (im2col): with K = C·KH·KW and P = OH·OW, unfold each
// image into cols [K,P], cols[(c,p,q),(i,j)] = x[n,c, i·SH+p−PH, j·SW+q−PW], then
//   y[n]   = W[O,K] · cols                     forward
//   dL/dW += dL/dy[n] · colsᵀ                  [O,P]·[P,K]
//   dcols  = Wᵀ · dL/dy[n]                     [K,O]·[O,P]
//   dL/dx[n] += col2im(dcols)                  (fold: each column entry adds back
//                                               into the pixel it was copied from)
//   dL/db[o] += Σ_{n,i,j} dL/dy[n,o,i,j]
// Saved for backward: x and W (cols are recomputed, not stored).
// Backward accumulates (+=) into gx, gw, gb; any of them may be nullptr when
// that gradient is not needed. gx_accumulate = false (every backward entry
// point below): gx is a first write (engine/autograd.h input_grad_out):
// gx = dL/dx, every element stored (0 where no window reads it), its old
// contents never read; gw and gb still accumulate.
// Implementations (the first is the one to read; the others are tested against it):
//   reference  kernels/cpu/conv2d.cpp        the plain loops over the sums above
//   tuned CPU  kernels/cpu/conv2d_tuned.cpp  im2col tiles + a GEMM, col2im (dx of
//              stride-1 convolutions: a correlation of gy with the flipped kernel);
//              kernels/cpu/conv2d_direct.cpp for few channels (conv2d_use_direct's measured rule);
//              kernels/cpu/conv2d_winograd*.cpp for 3×3 stride-1 float layers (conv2d_winograd_tile)
//   CUDA       kernels/cuda/conv2d.cu        im2col + our SGEMM (tf32: conv2d_tc.cu)
// conv2d_forward_cpu / conv2d_backward_cpu run the reference or the tuned CPU
// kernel, as kernels/cpu_impl.h selects (default tuned).
#pragma once
#include <cstdint>

#include "base/intdiv.h"

namespace ctg::kernels {

// Every size of one convolution; OH and OW follow from the others (see above).
struct Conv2dDims {
  int64_t N, C, H, W;    // input
  int64_t O, KH, KW;     // weight [O,C,KH,KW]
  int64_t SH, SW, PH, PW;  // stride ≥ 1, zero padding ≥ 0
  int64_t OH, OW;        // output spatial size ≥ 1
};

// One output side: ⌊(in + 2·pad − kernel)/stride⌋ + 1 (PyTorch, dilation 1).
// Floor division, so a kernel that does not fit the padded input gives ≤ 0.
inline int64_t conv2d_output_size(int64_t in, int64_t kernel, int64_t stride, int64_t pad) {
  return floor_div(in + 2 * pad - kernel, stride) + 1;
}
// The dims of a convolution with OH, OW filled in.
inline Conv2dDims conv2d_dims(int64_t N, int64_t C, int64_t H, int64_t W, int64_t O, int64_t KH, int64_t KW,
                              int64_t SH, int64_t SW, int64_t PH, int64_t PW) {
  return {N, C, H, W, O, KH, KW, SH, SW, PH, PW, conv2d_output_size(H, KH, SH, PH),
          conv2d_output_size(W, KW, SW, PW)};
}
// 1×1, stride 1, no padding: cols is the image itself (K = C, P = H·W), so the
// im2col products read and write the tensors in place.
inline bool conv2d_is_pointwise(const Conv2dDims& d) {
  return d.KH == 1 && d.KW == 1 && d.SH == 1 && d.SW == 1 && d.PH == 0 && d.PW == 0;
}

// Tuned CPU (kernels/cpu/conv2d_tuned.cpp): how it cuts the work into im2col tiles.
// The defaults are tuned for ResNet18 on 2 cores; tests shrink them to run
// every path (several groups, one-row bands, partial bands) on small shapes.
struct Conv2dCpuTuning {
  int64_t wide_below = 2048;  // OH·OW below this: whole images grouped under one GEMM
  int64_t max_scratch = int64_t(1) << 24;  // elements of im2col scratch (64 MiB in float)
  // The direct kernel (2b below) instead of im2col: < 0 (default) where
  // conv2d_use_direct's measured rule says so (kernels/cpu/conv2d_direct.cpp);
  // 0 never; > 0 whenever O ≤ this (tests use 0 and a huge value to force
  // either path on any shape).
  int64_t direct_max_out = -1;
  // The unfold fused into ctgrad's SGEMM packing (kernels/cpu/im2col.h) instead
  // of written to scratch first: < 0 (default) as CTGRAD_IM2COL says (fused,
  // the default, or matrix); 0 never; > 0 always. Float on ctgrad's own
  // SGEMM only (OpenBLAS and double always write the matrix).
  int fused_im2col = -1;
  // Winograd F(m×m, 3×3) (2c below) for float 3×3 stride-1 convolutions (the
  // forward, the input and the weight gradient): < 0 (default) as CTGRAD_WINOGRAD says
  // (auto, the default: conv2d_winograd_tile's measured rule; off; 2; 4);
  // 0 never; 2 or 4 wherever it applies.
  int winograd = -1;
};

// The entry points the engine calls: the reference or the tuned kernel, as
// kernels/cpu_impl.h selects. `tune` only matters to the tuned one.
template <typename T>
void conv2d_forward_cpu(const T* x, const T* w, const T* b, T* y, const Conv2dDims& d,
                        const Conv2dCpuTuning& tune = {});
template <typename T>
void conv2d_backward_cpu(const T* x, const T* w, const T* gy, T* gx, T* gw, T* gb,
                         const Conv2dDims& d, const Conv2dCpuTuning& tune = {}, bool gx_accumulate = true);

// 1. Reference (kernels/cpu/conv2d.cpp): the sums above, one term at a time.
template <typename T>
void conv2d_forward_cpu_reference(const T* x, const T* w, const T* b, T* y, const Conv2dDims& d);
template <typename T>
void conv2d_backward_cpu_reference(const T* x, const T* w, const T* gy, T* gx, T* gw, T* gb,
                                   const Conv2dDims& d, bool gx_accumulate = true);

// 2. Tuned CPU (kernels/cpu/conv2d_tuned.cpp): im2col + OpenBLAS, tiled by `tune`.
template <typename T>
void conv2d_forward_cpu_tuned(const T* x, const T* w, const T* b, T* y, const Conv2dDims& d,
                              const Conv2dCpuTuning& tune = {});
template <typename T>
void conv2d_backward_cpu_tuned(const T* x, const T* w, const T* gy, T* gx, T* gw, T* gb,
                               const Conv2dDims& d, const Conv2dCpuTuning& tune = {},
                               bool gx_accumulate = true);

// 2b. Tuned CPU, direct (kernels/cpu/conv2d_direct.cpp, conv2d_direct_backward.cpp):
// phase-split input rows, register-blocked over output channels and output
// vectors, no im2col; the tuned entry points above pick it where
// conv2d_use_direct says so (few channels on large images, see its comment).
bool conv2d_use_direct(const Conv2dDims& d, const Conv2dCpuTuning& tune);
template <typename T>
void conv2d_forward_cpu_direct(const T* x, const T* w, const T* b, T* y, const Conv2dDims& d);
template <typename T>
void conv2d_backward_cpu_direct(const T* x, const T* w, const T* gy, T* gx, T* gw, T* gb,
                                const Conv2dDims& d, bool gx_accumulate = true);

// 2c. Tuned CPU, Winograd (kernels/cpu/conv2d_winograd.cpp, the transforms in
// kernels/cpu/winograd.h): F(m×m, 3×3), m = 2 or 4, for float convolutions
// with a 3×3 kernel and stride 1 (any padding): y = b + conv(x, W), or with
// accumulate y += conv(x, W) (b must be nullptr). The tuned float forward and
// the stride-1 input gradient (itself such a convolution) take it where
// conv2d_winograd_tile returns m > 0 (0: im2col or direct), the weight
// gradient too.
bool conv2d_winograd_applies(const Conv2dDims& d);
int conv2d_winograd_tile(const Conv2dDims& d, const Conv2dCpuTuning& tune);
void conv2d_forward_cpu_winograd(const float* x, const float* w, const float* b, float* y, const Conv2dDims& d,
                                 int m, bool accumulate = false);
// gw += dL/dW of such a convolution (kernels/cpu/conv2d_winograd_backward.cpp),
// the tiles in chunks of at most chunk_bytes of scratch (0: 256 MiB; tests
// shrink it to run several chunks on small shapes).
void conv2d_backward_weight_cpu_winograd(const float* x, const float* gy, float* gw, const Conv2dDims& d, int m,
                                         int64_t chunk_bytes = 0);

// 3. CUDA.
// How the CUDA kernel batches images (kernels/cuda/conv2d.cu): each group's
// im2col columns fit in max_scratch floats of device memory. Tests shrink it to
// run several groups on small shapes.
struct Conv2dCudaTuning {
  int64_t max_scratch = int64_t(1) << 26;  // 256 MiB of float scratch
};

// CUDA (float32): im2col + our own SGEMM (kernels/cuda/gemm.h).
void conv2d_forward_cuda(const float* x, const float* w, const float* b, float* y, const Conv2dDims& d,
                         const Conv2dCudaTuning& tune = {});
void conv2d_backward_cuda(const float* x, const float* w, const float* gy, float* gx, float* gw, float* gb,
                          const Conv2dDims& d, const Conv2dCudaTuning& tune = {}, bool gx_accumulate = true);

// CUDA, --precision tf32 (kernels/cuda/impl.h): implicit GEMMs on the tensor
// cores (kernels/cuda/conv2d_tc.cu), no im2col scratch. The forward writes
// y = conv(x, W) (accumulate: y += conv, onto a bias already in y); the
// backward adds into gw and, unless gx_accumulate is false, gx (either may be nullptr). conv2d_forward_cuda and
// conv2d_backward_cuda call these under tf32 and add the bias parts themselves.
void conv2d_forward_tf32_cuda(const float* x, const float* w, float* y, const Conv2dDims& d, bool accumulate);
void conv2d_backward_tf32_cuda(const float* x, const float* w, const float* gy, float* gx, float* gw,
                               const Conv2dDims& d, bool gx_accumulate = true);

}  // namespace ctg::kernels
