// ctgrad tensor: an N-d array (up to 4-D, NCHW) over reference-counted storage.
//
// A Tensor is a cheap handle (shared_ptr to TensorImpl). Views made by
// reshape/flatten/detach share the Storage; nothing is copied. Storage is
// always contiguous and row-major; a tensor is (storage, offset, shape).
// Autograd state (requires_grad, grad, grad_fn) lives on the TensorImpl.
#pragma once
#include <cstddef>
#include <cstdint>
#include <memory>
#include <stdexcept>
#include <string>
#include <vector>

#include "base/error.h"  // ctg::Error

namespace ctg {

// f32 for training, f64 for gradient checks; i64 only as a storage type
// (BatchNorm's num_batches_tracked in PyTorch-compatible state dicts).
enum class DType : uint8_t { f32, f64, i64 };
// cuda storage comes from kernels/cuda/runtime.h (a GPU, or the CPU emulation).
enum class Device : uint8_t { cpu, cuda };

size_t dtype_size(DType d);
const char* dtype_name(DType d);
const char* device_name(Device d);
// The --device flag: "cpu", "cuda" (an error when no device can be used) or
// "auto" (cuda when available, else cpu). `flag` names the option in errors.
Device parse_device(const std::string& value, const std::string& flag = "--device");

using Shape = std::vector<int64_t>;
int64_t shape_numel(const Shape& s);
std::string shape_str(const Shape& s);

// A block of memory on one device. CPU storage is 64-byte aligned; CUDA
// storage comes from the caching device allocator.
struct Storage {
  void* data = nullptr;
  size_t bytes = 0;
  Device device = Device::cpu;
  Storage(size_t bytes, Device device);
  ~Storage();
  Storage(const Storage&) = delete;
  Storage& operator=(const Storage&) = delete;
};

struct Node;  // autograd.h

struct TensorImpl {
  std::shared_ptr<Storage> storage;
  size_t offset = 0;  // in elements
  Shape shape;
  DType dtype = DType::f32;
  bool requires_grad = false;
  std::shared_ptr<TensorImpl> grad;  // accumulated dL/dthis (same shape)
  std::shared_ptr<Node> grad_fn;     // the op that produced this (non-leaf)
};

class Tensor {
 public:
  Tensor() = default;
  explicit Tensor(std::shared_ptr<TensorImpl> impl) : impl_(std::move(impl)) {}

  // Factories. Contents of empty() are uninitialised.
  static Tensor empty(const Shape& shape, DType dtype = DType::f32, Device device = Device::cpu);
  static Tensor zeros(const Shape& shape, DType dtype = DType::f32, Device device = Device::cpu);
  static Tensor full(const Shape& shape, double value, DType dtype = DType::f32);
  static Tensor from_vector(const std::vector<double>& values, const Shape& shape,
                            DType dtype = DType::f32);

  bool defined() const { return impl_ != nullptr; }
  const Shape& shape() const { return impl().shape; }
  int64_t dim() const { return (int64_t)impl().shape.size(); }
  int64_t size(int64_t i) const;  // negative i counts from the end
  int64_t numel() const { return shape_numel(impl().shape); }
  size_t nbytes() const { return (size_t)numel() * dtype_size(dtype()); }
  DType dtype() const { return impl().dtype; }
  Device device() const { return impl().storage->device; }
  bool is_floating() const { return dtype() == DType::f32 || dtype() == DType::f64; }

  // Host pointers: the elements of a CPU tensor; throws if T does not match
  // dtype(), and throws on a CUDA tensor — device memory read from the host
  // crashes on a GPU, so the emulated build refuses it too. Copy first
  // (to(Device::cpu), to_vector(), item()).
  template <typename T>
  T* data() const;
  void* raw_data() const;
  // Device pointers: what a CUDA kernel or copy takes; throws on a CPU tensor.
  template <typename T>
  T* device_data() const;
  void* device_raw_data() const;

  // Autograd.
  bool requires_grad() const { return impl().requires_grad; }
  Tensor& set_requires_grad(bool on);
  bool is_leaf() const { return impl().grad_fn == nullptr; }
  Tensor grad() const;  // undefined Tensor when no gradient yet
  void zero_grad();     // drops the gradient buffer
  const std::shared_ptr<Node>& grad_fn() const { return impl().grad_fn; }

  // Same storage, no autograd history (a new leaf that does not require grad).
  Tensor detach() const;
  // Deep copy (no history).
  Tensor clone() const;
  // Copy with dtype conversion (no history).
  Tensor to(DType dtype) const;
  // Copy to another device (no history); the same tensor when already there.
  Tensor to(Device device) const;
  // Differentiable view with another shape (one dim may be -1).
  Tensor reshape(const Shape& shape) const;

  // Element access and bulk fills work on any device (CUDA through a copy).
  double item() const;  // numel()==1
  double at(int64_t flat_index) const;
  std::vector<double> to_vector() const;
  void fill_(double value);
  void copy_(const Tensor& src);  // same numel; converts dtype and device; no history

  const std::shared_ptr<TensorImpl>& impl_ptr() const { return impl_; }
  TensorImpl& impl() const;
  bool same_storage(const Tensor& o) const { return impl().storage == o.impl().storage; }

 private:
  std::shared_ptr<TensorImpl> impl_;
};

// Template map from C++ type to DType, used by data<T>() and the dispatcher.
template <typename T> struct dtype_of;
template <> struct dtype_of<float> { static constexpr DType value = DType::f32; };
template <> struct dtype_of<double> { static constexpr DType value = DType::f64; };
template <> struct dtype_of<int64_t> { static constexpr DType value = DType::i64; };

template <typename T>
T* Tensor::data() const {
  if (dtype() != dtype_of<T>::value)
    throw Error(std::string("tensor of dtype ") + dtype_name(dtype()) + " accessed as " +
                dtype_name(dtype_of<T>::value));
  return static_cast<T*>(raw_data());
}
template <typename T>
T* Tensor::device_data() const {
  if (dtype() != dtype_of<T>::value)
    throw Error(std::string("tensor of dtype ") + dtype_name(dtype()) + " accessed as " +
                dtype_name(dtype_of<T>::value));
  return static_cast<T*>(device_raw_data());
}

// Run `body` with scalar_t bound to float or double according to `dt`.
// `what` names the op for the error on other dtypes.
#define CTG_DISPATCH_FLOAT(dt, what, ...)                                              \
  do {                                                                                 \
    switch (dt) {                                                                      \
      case ::ctg::DType::f32: { using scalar_t = float; __VA_ARGS__; } break;          \
      case ::ctg::DType::f64: { using scalar_t = double; __VA_ARGS__; } break;         \
      default:                                                                         \
        throw ::ctg::Error(std::string(what) + ": unsupported dtype " +                \
                           ::ctg::dtype_name(dt));                                     \
    }                                                                                  \
  } while (0)

}  // namespace ctg
