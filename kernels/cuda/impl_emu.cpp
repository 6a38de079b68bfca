// The emulation backend of kernels/cuda/impl.h: this executable runs the CUDA
// kernels on the CPU emulation (kernels/cuda/emu/), where cuBLAS and cuDNN do
// not exist. Only the native implementations can be selected; asking for an
// alternative is an error that says why, and the alternatives' entry points
// (reachable only through a selection, which cannot happen here) throw the same.
#include <atomic>
#include <cstdlib>
#include <cstring>

#include "kernels/cuda/impl.h"

namespace ctg::kernels {

namespace {
const char* const kNoCublas =
    "cuBLAS is only available in a native CUDA build (this binary runs the CUDA kernels on the CPU emulation)";
const char* const kNoCudnn =
    "cuDNN is only available in a native CUDA build (this binary runs the CUDA kernels on the CPU emulation)";

std::atomic<bool>& tf32_flag() {
  static std::atomic<bool> on{[] {
    const char* v = std::getenv("CTGRAD_ALLOW_TF32");
    return v && *v && std::strcmp(v, "0") != 0;
  }()};
  return on;
}
}  // namespace

void set_gemm_impl(GemmImpl impl) {
  if (impl != GemmImpl::native) throw Error(std::string("--gemm-impl cublas: ") + kNoCublas);
}
GemmImpl gemm_impl() { return GemmImpl::native; }
void set_conv_impl(ConvImpl impl) {
  if (impl != ConvImpl::native) throw Error(std::string("--conv-impl cudnn: ") + kNoCudnn);
}
ConvImpl conv_impl() { return ConvImpl::native; }

bool cublas_available() { return false; }
bool cudnn_available() { return false; }
std::string cublas_status() { return kNoCublas; }
std::string cudnn_status() { return kNoCudnn; }

void set_allow_tf32(bool on) { tf32_flag() = on; }
bool allow_tf32() { return tf32_flag(); }

void gemm_cublas(bool, bool, int64_t, int64_t, int64_t, float, const float*, int64_t, const float*, int64_t, float,
                 float*, int64_t, const GemmBatch&) {
  throw Error(std::string("gemm_cublas: ") + kNoCublas);
}
void conv2d_forward_cudnn(const float*, const float*, const float*, float*, const Conv2dDims&) {
  throw Error(std::string("conv2d_forward_cudnn: ") + kNoCudnn);
}
void conv2d_backward_cudnn(const float*, const float*, const float*, float*, float*, float*, const Conv2dDims&,
                           bool) {
  throw Error(std::string("conv2d_backward_cudnn: ") + kNoCudnn);
}

}  // namespace ctg::kernels
