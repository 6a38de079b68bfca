// The differentiable ops of ctgrad: one function per op, each in
// engine/ops/<op>.cpp, which checks shapes, allocates the output, saves what
// backward needs and dispatches to the kernels declared in kernels/<op>.h.
// All ops take and return NCHW float32/float64 tensors.
#pragma once
#include <cstdint>

#include "engine/tensor.h"

namespace ctg::ops {

// y[n,o] = Σ_i x[n,i]·W[o,i] + b[o];  x [N,in], W [out,in], b [out] or undefined.
Tensor linear(const Tensor& x, const Tensor& weight, const Tensor& bias);

struct Conv2dParams {
  int64_t stride_h = 1, stride_w = 1, pad_h = 0, pad_w = 0;
};
// Cross-correlation as PyTorch's Conv2d (groups=1, dilation=1):
// y[n,o,i,j] = b[o] + Σ_{c,p,q} W[o,c,p,q]·x[n,c, i·sh+p−ph, j·sw+q−pw]  (zero padding).
Tensor conv2d(const Tensor& x, const Tensor& weight, const Tensor& bias, const Conv2dParams& p);

// Batch normalisation over (N,H,W) per channel. In training mode it uses the
// batch statistics and updates running_mean/var in place (momentum, unbiased
// variance, as PyTorch); in eval mode it uses the running statistics.
Tensor batchnorm2d(const Tensor& x, const Tensor& gamma, const Tensor& beta, Tensor& running_mean,
                   Tensor& running_var, bool training, double momentum = 0.1, double eps = 1e-5);

// relu(batchnorm2d(...)) as one op: the same values and gradients, with
// neither the normalised tensor nor its gradient written to memory
// (kernels/batchnorm2d_relu.h).
Tensor batchnorm2d_relu(const Tensor& x, const Tensor& gamma, const Tensor& beta, Tensor& running_mean,
                        Tensor& running_var, bool training, double momentum = 0.1, double eps = 1e-5);

struct Pool2dParams {
  int64_t kernel_h = 2, kernel_w = 2, stride_h = 2, stride_w = 2, pad_h = 0, pad_w = 0;
};
// y[n,c,i,j] = max over the window (padding counts as −∞); argmax saved.
Tensor maxpool2d(const Tensor& x, const Pool2dParams& p);
// Adaptive max pool to 1×1: y[n,c,0,0] = max_{h,w} x[n,c,h,w].
Tensor global_maxpool(const Tensor& x);

Tensor relu(const Tensor& x);     // max(x, 0)
Tensor sigmoid(const Tensor& x);  // 1 / (1 + e^−x)
// Inverted dropout: zero with probability p, scale survivors by 1/(1−p).
// The mask comes from a counter-based hash of (seed, element index), so it
// does not depend on how the work is split across threads or GPU blocks.
Tensor dropout(const Tensor& x, double p, bool training, uint64_t seed);
Tensor add(const Tensor& a, const Tensor& b);  // same shape
Tensor add_relu(const Tensor& a, const Tensor& b);  // relu(add(a, b)) as one op (kernels/add_relu.h)
// dst += src in place, on either device (gradient accumulation; not recorded).
void accumulate_(const Tensor& dst, const Tensor& src);
Tensor flatten(const Tensor& x);               // [N, ...] -> [N, rest] (a view)
// mean_i [ max(z,0) − z·y + log(1 + e^−|z|) ]: stable BCE on logits z, targets y.
Tensor bce_with_logits(const Tensor& logits, const Tensor& targets);

}  // namespace ctg::ops
