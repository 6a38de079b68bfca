// GradientReducer: the gradients' all-reduce, bucket by bucket, overlapped
// with backward (train/distributed.h), as PyTorch DDP's reducer does it:
//   1. buckets are fixed once, from the parameter list in reverse order, cut
//      at bucket_bytes and at device changes;
//   2. during backward, autograd's grad-ready hook reports each parameter
//      whose gradient is complete; when a bucket's last one arrives, its
//      gradients are packed into one flat buffer and its sum over the ranks
//      starts (non-blocking), while backward computes the next layers;
//   3. after backward, buckets that never completed (parameters backward did
//      not reach) start in bucket order, then every bucket is waited for and
//      unpacked into the gradients.
// The buckets start in the order backward completes them: the same on every
// rank for the same net (collectives must start in one order everywhere).
#include <cstring>
#include <unordered_map>

#include "engine/autograd.h"
#include "kernels/cuda/runtime.h"
#include "train/distributed.h"

namespace ctg::dist {

namespace {

// dst ← src (bytes), within one device.
void copy_bytes(void* dst, const void* src, size_t bytes, Device dev) {
  if (dev == Device::cpu) std::memcpy(dst, src, bytes);
  else cuda::copy_d2d(dst, src, bytes);
}

char* base(const Tensor& t) {
  return static_cast<char*>(t.device() == Device::cpu ? t.raw_data() : t.device_raw_data());
}

}  // namespace

GradientReducer::GradientReducer(Communicator& c, const NamedTensorList& params, size_t bucket_bytes)
    : comm_(c), params_(params), bucket_of_(params.size()) {
  for (size_t k = params_.size(); k-- > 0;) {
    const Tensor& p = params_[k].second;
    if (p.dtype() != DType::f32) throw Error("allreduce: parameter " + params_[k].first + " is not float32");
    const bool fits = !buckets_.empty() && buckets_.back().device == p.device() &&
                      (size_t)(buckets_.back().numel + p.numel()) * sizeof(float) <= bucket_bytes;
    if (!fits) {
      buckets_.emplace_back();
      buckets_.back().device = p.device();
    }
    buckets_.back().params.push_back(k);
    buckets_.back().numel += p.numel();
    bucket_of_[k] = buckets_.size() - 1;
  }
}

void GradientReducer::start(Bucket& b) {
  if (!b.flat.defined()) b.flat = Tensor::empty({b.numel}, DType::f32, b.device);
  size_t o = 0;
  for (size_t k : b.params) {  // pack (zeros for a parameter without a gradient)
    const Tensor& p = params_[k].second;
    const Tensor g = p.grad();
    const size_t bytes = p.nbytes();
    if (g.defined()) copy_bytes(base(b.flat) + o, base(g), bytes, b.device);
    else if (b.device == Device::cpu) std::memset(base(b.flat) + o, 0, bytes);
    else copy_bytes(base(b.flat) + o, base(Tensor::zeros(p.shape(), DType::f32, b.device)), bytes, b.device);
    o += bytes;
  }
  b.pending = comm_.start_allreduce_sum(b.flat);
}

void GradientReducer::backward(const Tensor& loss, const Tensor& seed) {
  if (comm_.size() == 1) {
    autograd::backward(loss, seed);
    return;
  }
  std::unordered_map<const TensorImpl*, size_t> index;
  for (size_t k = 0; k < params_.size(); ++k) index[params_[k].second.impl_ptr().get()] = k;
  for (Bucket& b : buckets_) b.waiting = (int)b.params.size(), b.pending.reset();
  early_ = 0;

  // The hook runs inside backward: start a bucket the moment it is complete,
  // and give MPI a chance to move the buckets already in flight.
  autograd::GradReadyHook previous = autograd::set_grad_ready_hook([&](const Tensor& leaf) {
    const auto it = index.find(leaf.impl_ptr().get());
    if (it == index.end()) return;  // a leaf that is not one of ours (an input)
    Bucket& b = buckets_[bucket_of_[it->second]];
    if (--b.waiting == 0) {
      start(b);
      ++early_;
    }
    for (Bucket& other : buckets_)
      if (other.pending) other.pending->test();
  });
  try {
    autograd::backward(loss, seed);
  } catch (...) {
    autograd::set_grad_ready_hook(std::move(previous));
    throw;
  }
  autograd::set_grad_ready_hook(std::move(previous));

  for (Bucket& b : buckets_)
    if (!b.pending) start(b);  // parameters backward did not reach: in bucket order
  for (Bucket& b : buckets_) {
    b.pending->wait();
    b.pending.reset();
    size_t o = 0;
    for (size_t k : b.params) {  // unpack
      const Tensor g = params_[k].second.grad();
      if (g.defined()) copy_bytes(base(g), base(b.flat) + o, g.nbytes(), b.device);
      o += params_[k].second.nbytes();
    }
  }
}

}  // namespace ctg::dist
