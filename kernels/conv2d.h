// conv2d — 2-D cross-correlation as PyTorch's Conv2d (groups = 1, dilation = 1)
//   x [N,C,H,W], W [O,C,KH,KW], b [O] or none, y [N,O,OH,OW]
//   OH = (H + 2·PH − KH)/SH + 1,  OW = (W + 2·PW − KW)/SW + 1   (floor division)
//   y[n,o,i,j] = b[o] + Σ_{c,p,q} W[o,c,p,q] · x[n,c, i·SH+p−PH, j·SW+q−PW]
//   (x outside [0,H)×[0,W) reads as zero: zero padding)
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
// that gradient is not needed.
// CPU reference: kernels/cpu/conv2d.cpp (im2col + OpenBLAS GEMM).
// CUDA: kernels/cuda/conv2d.cu (conv2d_forward_cuda, conv2d_backward_cuda).
#pragma once
#include <cstdint>

namespace ctg::kernels {

// Every size of one convolution; OH and OW follow from the others (see above).
struct Conv2dDims {
  int64_t N, C, H, W;    // input
  int64_t O, KH, KW;     // weight [O,C,KH,KW]
  int64_t SH, SW, PH, PW;  // stride ≥ 1, zero padding ≥ 0
  int64_t OH, OW;        // output spatial size ≥ 1
};

// How the CPU kernel cuts the work into im2col tiles (see kernels/cpu/conv2d.cpp).
// The defaults are tuned for ResNet18 on 2 cores; tests shrink them to run
// every path (several groups, one-row bands, partial bands) on small shapes.
struct Conv2dCpuTuning {
  int64_t wide_below = 2048;  // OH·OW below this: whole images grouped under one GEMM
  int64_t max_scratch = int64_t(1) << 24;  // elements of im2col scratch (64 MiB in float)
};

template <typename T>
void conv2d_forward_cpu(const T* x, const T* w, const T* b, T* y, const Conv2dDims& d,
                        const Conv2dCpuTuning& tune = {});
template <typename T>
void conv2d_backward_cpu(const T* x, const T* w, const T* gy, T* gx, T* gw, T* gb,
                         const Conv2dDims& d, const Conv2dCpuTuning& tune = {});

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
                          const Conv2dDims& d, const Conv2dCudaTuning& tune = {});

// CUDA, --precision tf32 (kernels/cuda/impl.h): implicit GEMMs on the tensor
// cores (kernels/cuda/conv2d_tc.cu), no im2col scratch. The forward writes
// y = conv(x, W) (accumulate: y += conv, onto a bias already in y); the
// backward adds into gx and gw (either may be nullptr). conv2d_forward_cuda and
// conv2d_backward_cuda call these under tf32 and add the bias parts themselves.
void conv2d_forward_tf32_cuda(const float* x, const float* w, float* y, const Conv2dDims& d, bool accumulate);
void conv2d_backward_tf32_cuda(const float* x, const float* w, const float* gy, float* gx, float* gw,
                               const Conv2dDims& d);

}  // namespace ctg::kernels
