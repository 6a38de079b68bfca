// Convolution observer (for `ctgrad bench conv`): when set, the CPU entry
// points conv2d_forward_cpu (backward = false) and conv2d_backward_cpu
// (backward = true) of kernels/cpu/conv2d.cpp call it with the convolution's
// dims before running it, on the calling thread, for float and double. The
// kernels they dispatch to (reference, tuned, direct) do not call it, so each
// convolution the engine runs is seen exactly once per direction. A plain
// function pointer, as gemm_observer in kernels/cpu/gemm.h, so that kernels/
// needs nothing above it.
#pragma once
#include "kernels/conv2d.h"

namespace ctg::kernels {

using Conv2dObserver = void (*)(const Conv2dDims& d, bool backward);
inline Conv2dObserver& conv2d_observer() {
  static Conv2dObserver observer = nullptr;
  return observer;
}

}  // namespace ctg::kernels
