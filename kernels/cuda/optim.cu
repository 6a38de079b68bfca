// Optimiser updates on the GPU — the CUDA twins of kernels/cpu/optim.cpp
// (math in kernels/optim.h). Each is one fused pass: read p, g and the state,
// write p and the state; one launch per parameter tensor. The step's scalars
// come from device memory (kernels/optim.h says why).
#include "kernels/cuda/common.h"
#include "kernels/optim.h"

namespace ctg::kernels {

CTG_GLOBAL void sgd_update_kernel(float* __restrict__ p, const float* __restrict__ g, float* __restrict__ buf,
                                  int64_t n, const float* __restrict__ scalars, float momentum, float wd,
                                  bool first_step) {
  const float lr = scalars[0];
  CTG_GRID_STRIDE_LOOP(i, n) {
    float d = g[i] + wd * p[i];
    if (buf) {
      buf[i] = first_step ? d : momentum * buf[i] + d;
      d = buf[i];
    }
    p[i] -= lr * d;
  }
}

CTG_GLOBAL void adam_update_kernel(float* __restrict__ p, const float* __restrict__ g, float* __restrict__ m,
                                   float* __restrict__ v, int64_t n, const float* __restrict__ scalars, float b1,
                                   float b2, float eps) {
  const float step_size = scalars[0], inv_sqrt_bc2 = scalars[1], decay = scalars[2], l2 = scalars[3];
  CTG_GRID_STRIDE_LOOP(i, n) {
    float pi = p[i] * decay;
    const float gi = g[i] + l2 * pi;
    const float mi = b1 * m[i] + (1.f - b1) * gi;
    const float vi = b2 * v[i] + (1.f - b2) * gi * gi;
    m[i] = mi;
    v[i] = vi;
    p[i] = pi - step_size * mi / (sqrtf(vi) * inv_sqrt_bc2 + eps);
  }
}

CTG_GLOBAL void optim_scalars_kernel(float* dst, OptimScalars s) {
  if (threadIdx.x < 4) dst[threadIdx.x] = s.v[threadIdx.x];
}

void optim_scalars_cuda(float* dst, OptimScalars s) {
  CTG_LAUNCH(optim_scalars_kernel, dim3(1), dim3(4), 0, cuda_detail::stream(), dst, s);
}

void sgd_update_cuda(float* p, const float* g, float* buf, int64_t n, const float* scalars, double momentum,
                     double wd, bool first_step) {
  if (n == 0) return;
  CTG_LAUNCH(sgd_update_kernel, dim3(cuda_detail::blocks_for(n, 256)), dim3(256), 0, cuda_detail::stream(), p, g,
             buf, n, scalars, (float)momentum, (float)wd, first_step);
}

void adam_update_cuda(float* p, const float* g, float* m, float* v, int64_t n, const float* scalars, double b1,
                      double b2, double eps) {
  if (n == 0) return;
  CTG_LAUNCH(adam_update_kernel, dim3(cuda_detail::blocks_for(n, 256)), dim3(256), 0, cuda_detail::stream(), p, g, m,
             v, n, scalars, (float)b1, (float)b2, (float)eps);
}

}  // namespace ctg::kernels
