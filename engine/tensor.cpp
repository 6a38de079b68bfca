#include "engine/tensor.h"

#include <cstdlib>
#include <cstring>
#include <sstream>

#include "engine/autograd.h"
#include "base/caching_allocator.h"
#include "base/host_alloc.h"
#include "kernels/cuda/runtime.h"
#include "kernels/fill.h"

namespace ctg {

size_t dtype_size(DType d) {
  switch (d) {
    case DType::f32: return 4;
    case DType::f64: return 8;
    case DType::i64: return 8;
  }
  return 0;
}

const char* dtype_name(DType d) {
  switch (d) {
    case DType::f32: return "float32";
    case DType::f64: return "float64";
    case DType::i64: return "int64";
  }
  return "?";
}

const char* device_name(Device d) { return d == Device::cpu ? "cpu" : "cuda"; }

Device parse_device(const std::string& value, const std::string& flag) {
  if (value == "cpu") return Device::cpu;
  if (value == "auto") return cuda::available() ? Device::cuda : Device::cpu;
  if (value == "cuda") {
    cuda::require_device(flag.c_str());
    return Device::cuda;
  }
  throw Error(flag + ": expected cpu, cuda or auto, got '" + value + "'");
}

int64_t shape_numel(const Shape& s) {
  int64_t n = 1;
  for (int64_t d : s) n *= d;
  return n;
}

std::string shape_str(const Shape& s) {
  std::ostringstream os;
  os << '[';
  for (size_t i = 0; i < s.size(); ++i) os << (i ? ", " : "") << s[i];
  os << ']';
  return os.str();
}

// CPU storage: 64-byte aligned (AVX-512 loads, cache lines) from a caching
// allocator, so a training step reuses the previous step's pages instead of
// faulting in fresh ones (~0.5 s per 150 MB activation on this kind of VM).
static void* raw_host_alloc(size_t n) { return host_alloc(n); }  // base/host_alloc.h: THP from 2 MiB
static CachingAllocator& host_cache() {
  static CachingAllocator* c = new CachingAllocator(raw_host_alloc, host_free);  // never destroyed
  return *c;
}

// CTGRAD_CPU_POISON=1 (the test runner sets it): every fresh CPU buffer is
// filled with 0xFF bytes (NaN in float and double) before anyone sees it, as
// the CUDA emulation does for device memory, so code that reads memory it
// never wrote (Tensor::empty, a first-write gradient a kernel left partly
// unwritten) fails loudly instead of reading a recycled buffer's old values.
static bool cpu_poison() {
  static const bool on = [] {
    const char* v = std::getenv("CTGRAD_CPU_POISON");
    return v && *v && std::string(v) != "0";
  }();
  return on;
}

Storage::Storage(size_t nbytes, Device dev) : bytes(nbytes), device(dev) {
  data = dev == Device::cuda ? cuda::device_alloc(nbytes) : host_cache().alloc(nbytes);
  if (!data) throw Error("Storage: out of memory allocating " + std::to_string(nbytes) + " bytes");
  if (dev == Device::cpu && cpu_poison()) std::memset(data, 0xFF, nbytes);
}

Storage::~Storage() {
  if (device == Device::cuda) cuda::device_free(data);
  else host_cache().free(data);
}

static std::shared_ptr<TensorImpl> make_impl(const Shape& shape, DType dtype, Device device) {
  if (shape.size() > 4) throw Error("tensor: at most 4 dimensions, got " + shape_str(shape));
  for (int64_t d : shape)
    if (d < 0) throw Error("tensor: negative dimension in shape " + shape_str(shape));
  auto impl = std::make_shared<TensorImpl>();
  impl->shape = shape;
  impl->dtype = dtype;
  impl->storage = std::make_shared<Storage>((size_t)shape_numel(shape) * dtype_size(dtype), device);
  return impl;
}

Tensor Tensor::empty(const Shape& shape, DType dtype, Device device) {
  return Tensor(make_impl(shape, dtype, device));
}

Tensor Tensor::zeros(const Shape& shape, DType dtype, Device device) {
  Tensor t = empty(shape, dtype, device);
  if (device == Device::cuda) cuda::memset_zero(t.device_raw_data(), t.nbytes());
  else std::memset(t.raw_data(), 0, t.nbytes());
  return t;
}

Tensor Tensor::full(const Shape& shape, double value, DType dtype) {
  Tensor t = empty(shape, dtype);
  t.fill_(value);
  return t;
}

Tensor Tensor::from_vector(const std::vector<double>& values, const Shape& shape, DType dtype) {
  if ((int64_t)values.size() != shape_numel(shape))
    throw Error("from_vector: " + std::to_string(values.size()) + " values for shape " +
                shape_str(shape));
  Tensor t = empty(shape, dtype);
  for (size_t i = 0; i < values.size(); ++i) {
    switch (dtype) {
      case DType::f32: t.data<float>()[i] = (float)values[i]; break;
      case DType::f64: t.data<double>()[i] = values[i]; break;
      case DType::i64: t.data<int64_t>()[i] = (int64_t)values[i]; break;
    }
  }
  return t;
}

TensorImpl& Tensor::impl() const {
  if (!impl_) throw Error("use of an undefined tensor");
  return *impl_;
}

int64_t Tensor::size(int64_t i) const {
  int64_t d = dim();
  if (i < 0) i += d;
  if (i < 0 || i >= d) throw Error("tensor.size: dim " + std::to_string(i) + " out of range for " +
                                   shape_str(shape()));
  return shape()[(size_t)i];
}

// The element pointer on whichever device holds the storage: for copies
// inside this file only, where the device is always checked first.
static void* storage_ptr(const Tensor& t) {
  return static_cast<char*>(t.impl().storage->data) + t.impl().offset * dtype_size(t.dtype());
}

void* Tensor::raw_data() const {
  if (device() == Device::cuda)
    throw Error("host access to a cuda tensor (" + shape_str(shape()) + " " + dtype_name(dtype()) +
                "): device memory cannot be read or written from the host; copy it with .to(Device::cpu) "
                "(kernels take device_data())");
  return storage_ptr(*this);
}

void* Tensor::device_raw_data() const {
  if (device() != Device::cuda)
    throw Error("device_data() of a cpu tensor (" + shape_str(shape()) + " " + dtype_name(dtype()) +
                "): a CUDA kernel or copy was handed host memory");
  return storage_ptr(*this);
}

Tensor& Tensor::set_requires_grad(bool on) {
  if (on && !is_floating()) throw Error("requires_grad on a non-floating tensor");
  impl().requires_grad = on;
  return *this;
}

Tensor Tensor::grad() const { return impl().grad ? Tensor(impl().grad) : Tensor(); }

void Tensor::zero_grad() { impl().grad.reset(); }

Tensor Tensor::detach() const {
  auto v = std::make_shared<TensorImpl>();
  v->storage = impl().storage;
  v->offset = impl().offset;
  v->shape = impl().shape;
  v->dtype = impl().dtype;
  return Tensor(v);
}

Tensor Tensor::clone() const {
  Tensor t = empty(shape(), dtype(), device());
  if (device() == Device::cuda) cuda::copy_d2d(t.device_raw_data(), device_raw_data(), nbytes());
  else std::memcpy(t.raw_data(), raw_data(), nbytes());
  return t;
}

Tensor Tensor::to(Device dev) const {
  if (dev == device()) return *this;
  Tensor t = empty(shape(), dtype(), dev);
  if (dev == Device::cuda) cuda::copy_h2d(t.device_raw_data(), raw_data(), nbytes());
  else cuda::copy_d2h(t.raw_data(), device_raw_data(), nbytes());
  return t;
}

Tensor Tensor::to(DType dt) const {
  if (dt == dtype()) return clone();
  if (device() == Device::cuda) return to(Device::cpu).to(dt).to(Device::cuda);
  Tensor t = empty(shape(), dt, device());
  t.copy_(*this);
  return t;
}

double Tensor::at(int64_t i) const {
  if (i < 0 || i >= numel()) throw Error("tensor.at: index out of range");
  if (device() == Device::cuda) {
    Tensor one = empty({}, dtype());
    cuda::copy_d2h(one.raw_data(), static_cast<char*>(device_raw_data()) + i * dtype_size(dtype()), dtype_size(dtype()));
    return one.at(0);
  }
  switch (dtype()) {
    case DType::f32: return data<float>()[i];
    case DType::f64: return data<double>()[i];
    case DType::i64: return (double)data<int64_t>()[i];
  }
  return 0;
}

double Tensor::item() const {
  if (numel() != 1) throw Error("item() on a tensor of shape " + shape_str(shape()));
  return at(0);
}

std::vector<double> Tensor::to_vector() const {
  if (device() == Device::cuda) return to(Device::cpu).to_vector();
  std::vector<double> v((size_t)numel());
  for (int64_t i = 0; i < numel(); ++i) v[(size_t)i] = at(i);
  return v;
}

void Tensor::fill_(double value) {
  if (device() == Device::cuda) {
    // float32 (everything the kernels touch) by a kernel, without a host copy.
    if (dtype() == DType::f32) kernels::fill_cuda(device_data<float>(), (float)value, numel());
    else copy_(full(shape(), value, dtype()));
    return;
  }
  int64_t n = numel();
  switch (dtype()) {
    case DType::f32: { float* p = data<float>(); for (int64_t i = 0; i < n; ++i) p[i] = (float)value; } break;
    case DType::f64: { double* p = data<double>(); for (int64_t i = 0; i < n; ++i) p[i] = value; } break;
    case DType::i64: { int64_t* p = data<int64_t>(); for (int64_t i = 0; i < n; ++i) p[i] = (int64_t)value; } break;
  }
}

void Tensor::copy_(const Tensor& src) {
  if (src.numel() != numel())
    throw Error("copy_: source " + shape_str(src.shape()) + " and destination " +
                shape_str(shape()) + " differ in size");
  if (src.device() != Device::cpu || device() != Device::cpu) {
    // Cross-device or on-device: convert dtype on the host if needed, then copy.
    Tensor s = src.dtype() == dtype() ? src : src.to(Device::cpu).to(dtype());
    if (device() == Device::cuda && s.device() == Device::cuda) cuda::copy_d2d(device_raw_data(), s.device_raw_data(), nbytes());
    else if (device() == Device::cuda) cuda::copy_h2d(device_raw_data(), s.raw_data(), nbytes());
    else cuda::copy_d2h(raw_data(), s.device_raw_data(), nbytes());
    return;
  }
  if (src.dtype() == dtype()) {
    std::memmove(raw_data(), src.raw_data(), nbytes());
    return;
  }
  int64_t n = numel();
  for (int64_t i = 0; i < n; ++i) {
    double v = src.at(i);
    switch (dtype()) {
      case DType::f32: data<float>()[i] = (float)v; break;
      case DType::f64: data<double>()[i] = v; break;
      case DType::i64: data<int64_t>()[i] = (int64_t)v; break;
    }
  }
}

}  // namespace ctg
