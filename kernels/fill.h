// fill — p[i] = v for every i < n.
// The engine's Tensor::fill_ on a CUDA float32 tensor (the loss gradient's seed
// 1, a loss weight): a kernel on the compute stream, so setting a device tensor
// to a constant needs no host copy and no synchronisation.
// Implementations: CPU in engine/tensor.cpp (a plain loop); CUDA kernels/cuda/fill.cu.
#pragma once
#include <cstdint>

namespace ctg::kernels {
void fill_cuda(float* p, float v, int64_t n);
}  // namespace ctg::kernels
