// maxpool2d — max over kh×kw windows of each plane of x [N,C,H,W] (PyTorch's
// MaxPool2d with dilation 1, ceil_mode=False):
//   y[n,c,i,j] = max_{0≤p<kh, 0≤q<kw} x[n,c, i·sh + p − ph, j·sw + q − pw]
//   OH = ⌊(H + 2·ph − kh)/sh⌋ + 1,  OW = ⌊(W + 2·pw − kw)/sw⌋ + 1
// Padding counts as −∞, so it never wins; ph ≤ kh/2 and pw ≤ kw/2 (checked by
// the op) guarantee that every window holds at least one real value.
// Ties: the first maximum in row-major window order (p, then q) wins; a NaN
// always wins (the last NaN of the window), so NaNs propagate as in PyTorch.
//
// argmax[n,c,i,j] = h·W + w, the index within the input plane of the value
// that won. int32 is enough for a plane and halves the saved buffer.
// Backward: the max is locally the identity on the winner and constant in the
// others, so gy routes entirely to the winner:
//   gx[n,c, argmax[n,c,i,j]] += gy[n,c,i,j]
// (overlapping windows, stride < kernel, may send several gy to one value).
//
// Saved for backward: argmax only (x and y are not needed).
// Implementations (the first is the one to read; the others are tested against it):
//   reference  kernels/cpu/maxpool2d.cpp        the plain window loop (forward and backward)
//   tuned CPU  kernels/cpu/maxpool2d_tuned.cpp  forward only: padded, phase-split row
//                                               buffers and branch-free vector loops
//   CUDA       kernels/cuda/maxpool2d.cu        float32; same y and argmax as the CPU
// maxpool2d_forward_cpu runs the reference or the tuned forward, as
// kernels/cpu_impl.h selects (default tuned); the backward scatter has only
// the reference.
#pragma once
#include <cstdint>

namespace ctg::kernels {

// Sizes of one max pooling call; planes = N·C.
struct MaxPool2dGeometry {
  int64_t planes, H, W, OH, OW;
  int64_t kernel_h, kernel_w, stride_h, stride_w, pad_h, pad_w;
};

// One output side: ⌊(in + 2·pad − kernel)/stride⌋ + 1 (ceil_mode=False).
// Floor division, so a kernel larger than the padded input gives ≤ 0.
inline int64_t maxpool2d_output_size(int64_t in, int64_t kernel, int64_t stride, int64_t pad) {
  const int64_t span = in + 2 * pad - kernel;
  return (span >= 0 ? span / stride : -((-span + stride - 1) / stride)) + 1;
}
// The geometry of pooling x [N,C,H,W], with OH, OW filled in.
inline MaxPool2dGeometry maxpool2d_geometry(int64_t N, int64_t C, int64_t H, int64_t W, int64_t kernel_h,
                                            int64_t kernel_w, int64_t stride_h, int64_t stride_w, int64_t pad_h,
                                            int64_t pad_w) {
  return {N * C,    H,        W,        maxpool2d_output_size(H, kernel_h, stride_h, pad_h),
          maxpool2d_output_size(W, kernel_w, stride_w, pad_w),
          kernel_h, kernel_w, stride_h, stride_w, pad_h, pad_w};
}

// The entry points the engine calls. Writes y [planes, OH, OW] and argmax [planes, OH, OW].
template <typename T>
void maxpool2d_forward_cpu(const T* x, T* y, int32_t* argmax, const MaxPool2dGeometry& g);
// gx [planes, H, W] += scatter of gy [planes, OH, OW] to argmax (the reference; no tuned variant).
// gx_accumulate = false: gx is a first write (engine/autograd.h input_grad_out):
// gx = the scatter, every element stored (0 where no window picked it), the old
// contents never read.
template <typename T>
void maxpool2d_backward_cpu(const int32_t* argmax, const T* gy, T* gx, const MaxPool2dGeometry& g,
                            bool gx_accumulate = true);

// 1. Reference forward (kernels/cpu/maxpool2d.cpp).
template <typename T>
void maxpool2d_forward_cpu_reference(const T* x, T* y, int32_t* argmax, const MaxPool2dGeometry& g);
// 2. Tuned CPU forward (kernels/cpu/maxpool2d_tuned.cpp).
template <typename T>
void maxpool2d_forward_cpu_tuned(const T* x, T* y, int32_t* argmax, const MaxPool2dGeometry& g);

// 3. CUDA (float32), same semantics; x, y, argmax, gy, gx are device memory.
void maxpool2d_forward_cuda(const float* x, float* y, int32_t* argmax, const MaxPool2dGeometry& g);
void maxpool2d_backward_cuda(const int32_t* argmax, const float* gy, float* gx, const MaxPool2dGeometry& g,
                             bool gx_accumulate = true);

}  // namespace ctg::kernels
