// fill on the GPU (kernels/fill.h): one grid-stride store per element.
#include "kernels/cuda/common.h"
#include "kernels/fill.h"

namespace ctg::kernels {

CTG_GLOBAL void fill_kernel(float* __restrict__ p, float v, int64_t n) { CTG_GRID_STRIDE_LOOP(i, n) p[i] = v; }

void fill_cuda(float* p, float v, int64_t n) {
  if (n == 0) return;
  CTG_LAUNCH(fill_kernel, dim3(cuda_detail::blocks_for(n, 256)), dim3(256), 0, cuda_detail::stream(), p, v, n);
}

}  // namespace ctg::kernels
