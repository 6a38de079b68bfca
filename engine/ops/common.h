// Shared checks for the op glue in engine/ops/.
#pragma once
#include <string>

#include "engine/autograd.h"
#include "engine/tensor.h"
#include "engine/trace.h"

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

// g += gy on either device (the engine's gradient accumulation).
void accumulate(const Tensor& gy, const Tensor& g);

// ---- One kernel entry for either device -----------------------------------
// Every kernel has the same name in every backend (needle-style): kernels/<op>.h
// declares <name>_cpu<T> (float or double, host pointers) and <name>_cuda
// (float, device pointers). The glue calls it once, as
//     CTG_KERNEL(conv2d_backward, gy, x, w, gy, gx, gw, gb, dims);
// and run_kernel picks the version for the device and dtype of tensor `on`.
// Each Tensor argument becomes a pointer to its elements in the memory that
// kernel reads (host for _cpu, device for _cuda; nullptr when the tensor is
// undefined, i.e. a gradient nobody needs); every other argument (sizes,
// flags, raw int32 argmax pointers) passes through unchanged. The call is
// bracketed by trace::kernel_begin/end, so `ctgrad trace` sees every kernel.

template <typename T>
T* kernel_arg(const Tensor& t, Device dev) {
  if (!t.defined()) return nullptr;
  return dev == Device::cuda ? t.device_data<T>() : t.data<T>();
}
template <typename T, typename A>
const A& kernel_arg(const A& a, Device) {
  return a;
}
// A raw buffer (maxpool's int32 argmax packed in an i64 tensor) for the kernel of t's device.
inline void* kernel_ptr(const Tensor& t) {
  return t.device() == Device::cuda ? t.device_raw_data() : t.raw_data();
}

// Brackets one kernel call for the trace recorder (one bool test when off).
struct KernelScope {
  const char* name;
  Device dev;
  bool on;
  KernelScope(const char* n, Device d) : name(n), dev(d), on(trace::active()) {
    if (on) trace::kernel_begin(name, dev);
  }
  ~KernelScope() {
    if (on) trace::kernel_end(name, dev);
  }
  KernelScope(const KernelScope&) = delete;
  KernelScope& operator=(const KernelScope&) = delete;
};

template <class Cpu, class Cuda, class... A>
void run_kernel(const char* name, const Tensor& on, Cpu&& cpu, Cuda&& cuda, const A&... args) {
  const Device dev = on.device();
  KernelScope scope(name, dev);
  if (dev == Device::cuda) {
    // check_float already refused anything but float32 on the GPU.
    cuda(kernel_arg<float>(args, dev)...);
  } else if (on.dtype() == DType::f32) {
    cpu(kernel_arg<float>(args, dev)...);
  } else if (on.dtype() == DType::f64) {
    cpu(kernel_arg<double>(args, dev)...);
  } else {
    throw Error(std::string(name) + ": unsupported dtype " + dtype_name(on.dtype()));
  }
}

}  // namespace ctg::ops::detail

#define CTG_KERNEL(name, on, ...)                                                  \
  ::ctg::ops::detail::run_kernel(                                                  \
      #name, (on), [&](auto&&... a_) { ::ctg::kernels::name##_cpu(a_...); },       \
      [&](auto&&... a_) { ::ctg::kernels::name##_cuda(a_...); }, __VA_ARGS__)
