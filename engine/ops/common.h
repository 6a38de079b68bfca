// Shared checks for the op glue in engine/ops/.
#pragma once
#include <string>

#include "engine/autograd.h"
#include "engine/tensor.h"

namespace ctg::ops::detail {

// The op's kernels exist for CPU only until the CUDA backend lands; a tensor
// on another device is a hard error naming the op, never a silent fallback.
inline void check_cpu(const Tensor& t, const char* op, const char* what) {
  if (t.device() != Device::cpu)
    throw Error(std::string(op) + ": no CUDA kernel in this build (" + what + " is on " +
                device_name(t.device()) + ")");
}

inline void check_float(const Tensor& t, const char* op, const char* what) {
  if (!t.defined()) throw Error(std::string(op) + ": " + what + " is undefined");
  if (!t.is_floating())
    throw Error(std::string(op) + ": " + what + " has dtype " + dtype_name(t.dtype()) +
                ", expected float32 or float64");
  check_cpu(t, op, what);
}

inline void check_same_dtype(const Tensor& a, const Tensor& b, const char* op, const char* what) {
  if (b.defined() && a.dtype() != b.dtype())
    throw Error(std::string(op) + ": " + what + " has dtype " + dtype_name(b.dtype()) +
                " but the input is " + dtype_name(a.dtype()));
}

inline void check_dim(const Tensor& t, int64_t d, const char* op, const char* what) {
  if (t.dim() != d)
    throw Error(std::string(op) + ": " + what + " must be " + std::to_string(d) + "-D, got " +
                shape_str(t.shape()));
}

// Pointer to the data of an optional tensor (nullptr when undefined).
template <typename T>
T* ptr_or_null(const Tensor& t) {
  return t.defined() ? t.data<T>() : nullptr;
}

}  // namespace ctg::ops::detail
