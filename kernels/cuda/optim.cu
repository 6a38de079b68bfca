// Optimiser updates on the GPU — the CUDA twins of kernels/cpu/optim.cpp
// (math in kernels/optim.h). Each is one fused pass: read p, g and the state,
// write p and the state; one launch per parameter tensor.
#include <cmath>

#include "kernels/cuda/common.h"
#include "kernels/optim.h"

namespace ctg::kernels {

CTG_GLOBAL void sgd_update_kernel(float* __restrict__ p, const float* __restrict__ g, float* __restrict__ buf,
                                  int64_t n, float lr, float momentum, float wd, bool first_step) {
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
                                   float* __restrict__ v, int64_t n, float step_size, float inv_sqrt_bc2, float b1,
                                   float b2, float eps, float decay, float l2) {
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

void sgd_update_cuda(float* p, const float* g, float* buf, int64_t n, double lr, double momentum, double wd,
                     bool first_step) {
  if (n == 0) return;
  CTG_LAUNCH(sgd_update_kernel, dim3(cuda_detail::blocks_for(n, 256)), dim3(256), 0, cuda_detail::stream(), p, g,
             buf, n, (float)lr, (float)momentum, (float)wd, first_step);
}

void adam_update_cuda(float* p, const float* g, float* m, float* v, int64_t n, double lr, double b1, double b2,
                      double eps, double wd, bool decoupled, int64_t step) {
  if (n == 0) return;
  // The step-dependent scalars are computed once on the host, in double, as the CPU does.
  const double bc1 = 1.0 - std::pow(b1, (double)step), bc2 = 1.0 - std::pow(b2, (double)step);
  CTG_LAUNCH(adam_update_kernel, dim3(cuda_detail::blocks_for(n, 256)), dim3(256), 0, cuda_detail::stream(), p, g, m,
             v, n, (float)(lr / bc1), (float)(1.0 / std::sqrt(bc2)), (float)b1, (float)b2, (float)eps,
             decoupled ? (float)(1.0 - lr * wd) : 1.f, decoupled ? 0.f : (float)wd);
}

}  // namespace ctg::kernels
