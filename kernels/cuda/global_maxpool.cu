// global_maxpool on the GPU — the CUDA twin of kernels/cpu/global_maxpool.cpp
// (math in kernels/global_maxpool.h):
//   y[n,c] = max_{h,w} x[n,c,h,w],  argmax[n,c] = h·W + w of the winner
//   gx[n,c, argmax[n,c]] += gy[n,c]
//
// The CPU scans a plane in row-major order with "strictly larger or NaN takes
// over", so its winner is the last NaN if the plane holds one, else the first
// (lowest index) maximum. As a rule on (value, index) pairs that is a total
// order, `beats` below, and a max-reduction under it has one answer whatever
// the order of comparisons — which is what lets a block split the plane.
//
// Forward: one block per (n, c) plane. Each thread scans the plane with a
// block-stride loop keeping its best (value, index); the block then reduces
// the pairs with a shared-memory tree, halving with a barrier between rounds.
// A thread that saw no value holds (−∞, INT32_MAX): it loses every tie to a
// real value, so an all −∞ plane still names index 0, as on the CPU.
// Backward: one thread per plane adds gy to the winner (planes never share a
// winner, so no atomics are needed and the result is the CPU's exactly).
#include <math.h>

#include "kernels/cuda/common.h"
#include "kernels/global_maxpool.h"

namespace ctg::kernels {

constexpr int kGlobalMaxThreads = 256;  // a power of two, since the tree halves it

// Does (v, i) win over (best, arg)? NaN beats numbers, and of two NaNs the
// later one wins; of two numbers the larger, and on a tie the earlier index.
CTG_DEVICE bool beats(float v, int32_t i, float best, int32_t arg) {
  const bool v_nan = v != v, best_nan = best != best;
  if (v_nan || best_nan) return v_nan && (!best_nan || i > arg);
  return v > best || (v == best && i < arg);
}

CTG_GLOBAL void CTG_LAUNCH_BOUNDS(kGlobalMaxThreads)
    global_maxpool_forward_kernel(const float* __restrict__ x, float* __restrict__ y, int32_t* __restrict__ argmax,
                                  int64_t HW) {
  CTG_SHARED(float, best_value, [kGlobalMaxThreads]);
  CTG_SHARED(int32_t, best_index, [kGlobalMaxThreads]);
  const int64_t plane = blockIdx.x;
  const float* xp = x + plane * HW;
  const unsigned int t = threadIdx.x;
  float best = -INFINITY;
  int32_t arg = INT32_MAX;
  for (int64_t i = t; i < HW; i += blockDim.x)
    if (beats(xp[i], (int32_t)i, best, arg)) best = xp[i], arg = (int32_t)i;
  best_value[t] = best;
  best_index[t] = arg;
  __syncthreads();  // all pairs are written before the tree reads them
  for (unsigned int half = blockDim.x / 2; half > 0; half /= 2) {
    if (t < half && beats(best_value[t + half], best_index[t + half], best_value[t], best_index[t])) {
      best_value[t] = best_value[t + half];
      best_index[t] = best_index[t + half];
    }
    __syncthreads();  // this round's winners are in place before the next round reads them
  }
  if (t == 0) {
    y[plane] = best_value[0];
    argmax[plane] = best_index[0];
  }
}

CTG_GLOBAL void global_maxpool_backward_kernel(const int32_t* __restrict__ argmax, const float* __restrict__ gy,
                                               float* __restrict__ gx, int64_t planes, int64_t HW) {
  CTG_GRID_STRIDE_LOOP(plane, planes) gx[plane * HW + argmax[plane]] += gy[plane];
}

void global_maxpool_forward_cuda(const float* x, float* y, int32_t* argmax, int64_t planes, int64_t HW) {
  if (planes == 0) return;
  CTG_LAUNCH(global_maxpool_forward_kernel, dim3((unsigned int)planes), dim3(kGlobalMaxThreads), 0,
             cuda_detail::stream(), x, y, argmax, HW);
}

void global_maxpool_backward_cuda(const int32_t* argmax, const float* gy, float* gx, int64_t planes, int64_t HW) {
  if (planes == 0) return;
  CTG_LAUNCH(global_maxpool_backward_kernel, dim3(cuda_detail::blocks_for(planes, 256)), dim3(256), 0,
             cuda_detail::stream(), argmax, gy, gx, planes, HW);
}

}  // namespace ctg::kernels
