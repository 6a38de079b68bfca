// Shared checks for the op glue in engine/ops/.
#pragma once
#include <string>

#include "engine/autograd.h"
#include "engine/tensor.h"

namespace ctg::ops::detail {

// CUDA kernels are float32 only (float64 is for gradient checks on the CPU):
// anything else on the GPU is a hard error naming the op, never a fallback.
inline void check_cuda_dtype(const Tensor& t, const char* op, const char* what) {
  if (t.device() == Device::cuda && t.dtype() != DType::f32)
    throw Error(std::string(op) + ": " + what + " is " + dtype_name(t.dtype()) +
                " on cuda; the CUDA kernels take float32");
}

inline void check_float(const Tensor& t, const char* op, const char* what) {
  if (!t.defined()) throw Error(std::string(op) + ": " + what + " is undefined");
  if (!t.is_floating())
    throw Error(std::string(op) + ": " + what + " has dtype " + dtype_name(t.dtype()) +
                ", expected float32 or float64");
  check_cuda_dtype(t, op, what);
}

// For an op whose CUDA kernel is not written: a hard error naming the op,
// never a CPU kernel run on device memory.
inline void check_has_cuda_kernel(const Tensor& t, bool has_kernel, const char* op) {
  if (t.device() == Device::cuda && !has_kernel)
    throw Error(std::string(op) + ": no CUDA kernel for this op yet (input is on cuda)");
}

// Every operand of an op lives on the input's device.
inline void check_same_device(const Tensor& a, const Tensor& b, const char* op, const char* what) {
  if (b.defined() && a.device() != b.device())
    throw Error(std::string(op) + ": " + what + " is on " + device_name(b.device()) + " but the input is on " +
                device_name(a.device()));
}

inline void check_same_dtype(const Tensor& a, const Tensor& b, const char* op, const char* what) {
  check_same_device(a, b, op, what);
  if (b.defined() && a.dtype() != b.dtype())
    throw Error(std::string(op) + ": " + what + " has dtype " + dtype_name(b.dtype()) +
                " but the input is " + dtype_name(a.dtype()));
}

inline void check_dim(const Tensor& t, int64_t d, const char* op, const char* what) {
  if (t.dim() != d)
    throw Error(std::string(op) + ": " + what + " must be " + std::to_string(d) + "-D, got " +
                shape_str(t.shape()));
}

// Pointer to the data of an optional tensor (nullptr when undefined): host
// memory for a CPU kernel, device memory for a CUDA kernel.
template <typename T>
T* ptr_or_null(const Tensor& t) {
  return t.defined() ? t.data<T>() : nullptr;
}
template <typename T>
T* device_ptr_or_null(const Tensor& t) {
  return t.defined() ? t.device_data<T>() : nullptr;
}
// A raw buffer (maxpool's packed int32 argmax) for the kernel of t's device.
inline void* kernel_ptr(const Tensor& t) {
  return t.device() == Device::cuda ? t.device_raw_data() : t.raw_data();
}

}  // namespace ctg::ops::detail

namespace ctg::ops::detail {
// Trace mode: name the backward kernel that runs, e.g. "  relu_backward_cuda".
inline void trace_kernel(const char* kernel, const Tensor& on) {
  if (autograd::trace_enabled())
    autograd::trace(std::string("  ") + kernel + (on.device() == Device::cuda ? "_cuda" : "_cpu"));
}
// g += gy on either device (the engine's gradient accumulation).
void accumulate(const Tensor& gy, const Tensor& g);

}  // namespace ctg::ops::detail

// Run the op's CPU kernel (templated on scalar_t) or its CUDA kernel (float32)
// according to the device of tensor `t`; the two calls name the same op's
// _cpu and _cuda entry points.
#define CTG_DISPATCH_DEVICE(t, op, cpu_call, cuda_call)                        \
  do {                                                                         \
    if ((t).device() == ::ctg::Device::cuda) {                                 \
      cuda_call;                                                               \
    } else {                                                                   \
      CTG_DISPATCH_FLOAT((t).dtype(), op, cpu_call);                           \
    }                                                                          \
  } while (0)
