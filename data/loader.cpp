// DataLoader: ordered batches from worker threads, pinned ring, async copies.
#include "data/loader.h"

#include <algorithm>
#include <atomic>
#include <cmath>
#include <cstring>
#include <numeric>

#include "data/augment.h"
#include "kernels/cuda/runtime.h"

namespace ctg::data {

namespace {

// A loader's tensor over memory it does not own (a ring slot). Storage's
// constructor always allocates, so it gets a token allocation that the
// deleter puts back before the normal destructor frees it; `keep` (the slot
// lease) is released when the last tensor over the slot is gone.
Tensor alias_tensor(float* p, const Shape& shape, std::shared_ptr<void> keep) {
  auto* st = new Storage(64, Device::cpu);
  void* own = st->data;
  st->data = p;
  st->bytes = (size_t)shape_numel(shape) * sizeof(float);
  std::shared_ptr<Storage> sp(st, [own, keep](Storage* s) {
    s->data = own;
    s->bytes = 64;
    delete s;
  });
  auto impl = std::make_shared<TensorImpl>();
  impl->storage = std::move(sp);
  impl->shape = shape;
  impl->dtype = DType::f32;
  return Tensor(impl);
}

struct Cancelled {};  // thrown inside a build when the epoch is cancelled

}  // namespace

// ------------------------------------------------------------- pinned ring

class PinnedRing : public std::enable_shared_from_this<PinnedRing> {
 public:
  PinnedRing(size_t slot_bytes, int slots) : slot_bytes_(slot_bytes) {
    for (int i = 0; i < slots; ++i) {
      bufs_.push_back(cuda::pinned_alloc(slot_bytes));
      events_.push_back(cuda::create_event());
      free_.push_back(slots - 1 - i);
    }
  }
  ~PinnedRing() {
    for (size_t i = 0; i < bufs_.size(); ++i) {
      cuda::event_synchronize(events_[i]);  // a copy from the slot may still be running
      cuda::destroy_event(events_[i]);
      cuda::pinned_free(bufs_[i]);
    }
  }
  // Gives the slot back when destroyed; not copyable, so exactly one release.
  struct Lease {
    Lease(std::shared_ptr<PinnedRing> r, int s) : ring(std::move(r)), slot(s) {}
    Lease(const Lease&) = delete;
    Lease& operator=(const Lease&) = delete;
    ~Lease() { ring->release(slot); }
    std::shared_ptr<PinnedRing> ring;
    int slot;
  };
  // A free slot (after the last copy out of it finished), or null when all are out.
  std::shared_ptr<Lease> acquire() {
    int slot;
    {
      std::lock_guard<std::mutex> lock(mu_);
      if (free_.empty()) {
        misses_++;
        return nullptr;
      }
      slot = free_.back();
      free_.pop_back();
    }
    cuda::event_synchronize(events_[(size_t)slot]);
    return std::make_shared<Lease>(shared_from_this(), slot);
  }
  float* data(int slot) const { return static_cast<float*>(bufs_[(size_t)slot]); }
  void* event(int slot) const { return events_[(size_t)slot]; }
  int slots() const { return (int)bufs_.size(); }
  size_t slot_bytes() const { return slot_bytes_; }
  int64_t misses() const { return misses_; }

 private:
  void release(int slot) {
    std::lock_guard<std::mutex> lock(mu_);
    free_.push_back(slot);
  }
  size_t slot_bytes_;
  std::vector<void*> bufs_, events_;
  std::mutex mu_;
  std::vector<int> free_;
  std::atomic<int64_t> misses_{0};
};

// -------------------------------------------------------------- DataLoader

DataLoader::DataLoader(std::shared_ptr<const Dataset> dataset, const LoaderOptions& opt)
    : ds_(std::move(dataset)), opt_(opt) {
  if (!ds_) throw Error("DataLoader: no dataset");
  if (opt_.batch_size <= 0) throw Error("DataLoader: batch size must be positive, got " + std::to_string(opt_.batch_size));
  if (opt_.num_workers < 0) throw Error("DataLoader: num_workers must be ≥ 0, got " + std::to_string(opt_.num_workers));
  if (opt_.prefetch_factor < 1) throw Error("DataLoader: prefetch_factor must be ≥ 1");
  if (opt_.shard_count < 1 || opt_.shard_rank < 0 || opt_.shard_rank >= opt_.shard_count)
    throw Error("DataLoader: shard " + std::to_string(opt_.shard_rank) + " of " + std::to_string(opt_.shard_count));
  if (ds_->size() == 0) throw Error("DataLoader: the dataset is empty (" + ds_->describe() + ")");
  if (opt_.device == Device::cuda) cuda::require_device("DataLoader --device cuda");
  if (opt_.pin_memory && cuda::available()) {
    const int depth = opt_.num_workers > 0 ? opt_.prefetch_factor * opt_.num_workers : 1;
    // In flight: `depth` batches being built or waiting, plus the consumer's
    // current batch, the one whose copy runs ahead, and one spare.
    const size_t bytes = (size_t)opt_.batch_size * ((size_t)(ds_->side() * ds_->side()) + 1) * sizeof(float);
    ring_ = std::make_shared<PinnedRing>(bytes, depth + 3);
  }
  if (opt_.device == Device::cuda) {
    copy_stream_ = cuda::create_stream();
    compute_done_ = cuda::create_event();
    copy_done_[0] = cuda::create_event();
    copy_done_[1] = cuda::create_event();
  }
}

DataLoader::~DataLoader() {
  stop_workers();
  if (copy_stream_) {
    retire_ahead();
    for (void* e : copy_done_) cuda::event_synchronize(e);
    for (void* e : copy_done_) cuda::destroy_event(e);
    cuda::destroy_event(compute_done_);
    cuda::destroy_stream(copy_stream_);
  }
}

int64_t DataLoader::num_batches() const {
  const int64_t n = ds_->size(), b = opt_.batch_size;
  return opt_.drop_last ? n / b : (n + b - 1) / b;
}

std::vector<int64_t> DataLoader::epoch_order(int64_t epoch) const {
  std::vector<int64_t> order((size_t)ds_->size());
  std::iota(order.begin(), order.end(), 0);
  if (opt_.shuffle) {
    uint64_t state = mix_seed(opt_.seed, (uint64_t)epoch, 0x0DE5ull);
    shuffle_indices(order, state);
  }
  return order;
}

std::string DataLoader::describe() const {
  char buf[160];
  std::string pin;
  if (ring_) {
    std::snprintf(buf, sizeof buf, "pinned ring of %d × %.1f MiB", ring_->slots(), (double)ring_->slot_bytes() / 1048576.0);
    pin = buf;
  } else {
    pin = opt_.pin_memory ? "requested, but no CUDA device: pageable buffers" : "off (pageable buffers)";
  }
  std::snprintf(buf, sizeof buf, "loader: %d workers%s, batch %lld, shuffle %s, prefetch %d batches, device %s, pin_memory: ",
                opt_.num_workers, opt_.num_workers == 0 ? " (loading on the calling thread)" : "",
                (long long)opt_.batch_size, opt_.shuffle ? "on" : "off",
                opt_.num_workers > 0 ? opt_.prefetch_factor * opt_.num_workers : 0, device_name(opt_.device));
  return buf + pin;
}

int64_t DataLoader::ring_misses() const { return ring_ ? ring_->misses() : 0; }

void DataLoader::stop_workers() {
  {
    std::lock_guard<std::mutex> lock(mu_);
    stop_ = true;
  }
  cv_.notify_all();
  for (auto& t : threads_) t.join();
  threads_.clear();
  std::lock_guard<std::mutex> lock(mu_);
  ready_.clear();
  stop_ = false;
}

// The batch copied ahead is dropped (a new epoch, the destructor). Its
// device buffers go back to the caching allocator, whose blocks are reused in
// compute-stream order, while the copy stream may still be writing into them:
// the compute stream first waits for that copy, so no kernel queued later can
// be handed a block the copy still writes.
void DataLoader::retire_ahead() {
  if (!ahead_) return;
  cuda::stream_wait_event(cuda::compute_stream(), copy_done_[ahead_event_]);
  ahead_.reset();
}

void DataLoader::start_epoch(int64_t epoch) {
  stop_workers();
  retire_ahead();
  {
    std::lock_guard<std::mutex> lock(mu_);
    epoch_ = epoch;
    order_ = epoch_order(epoch);
    num_batches_ = num_batches();
    next_build_ = next_deliver_ = 0;
    error_ = nullptr;
  }
  for (int i = 0; i < opt_.num_workers; ++i) threads_.emplace_back(&DataLoader::worker, this, i);
}

// Builds batch k of the epoch. Runs on a worker, or on the caller when
// num_workers = 0. Reads only state that is fixed during an epoch (order,
// options, dataset), and stop_ under the mutex before each item, so a
// cancelled epoch ends after the item in progress rather than the batch.
Batch DataLoader::build(int64_t k, const std::vector<int64_t>& order, int64_t epoch) {
  const int64_t side = ds_->side(), px = side * side;
  const int64_t g0 = k * opt_.batch_size, gn = std::min(opt_.batch_size, (int64_t)order.size() - g0);
  // This rank's contiguous part of the global batch (the first gn mod count
  // shards one item longer), as dist::shard_range.
  const int64_t q = gn / opt_.shard_count, rem = gn % opt_.shard_count;
  const int64_t b0 = g0 + opt_.shard_rank * q + std::min<int64_t>(opt_.shard_rank, rem);
  const int64_t nb = q + (opt_.shard_rank < rem ? 1 : 0);
  Batch b;
  b.index = k;
  b.global_size = gn;
  float* img = nullptr;
  float* lab = nullptr;
  std::shared_ptr<PinnedRing::Lease> lease = ring_ ? ring_->acquire() : nullptr;
  if (lease) {
    img = ring_->data(lease->slot);
    lab = img + nb * px;
    b.images = alias_tensor(img, {nb, 1, side, side}, lease);
    b.labels = alias_tensor(lab, {nb, 1}, lease);
    b.pinned = true;
  } else {
    b.images = Tensor::empty({nb, 1, side, side});
    b.labels = Tensor::empty({nb, 1});
    img = b.images.data<float>();
    lab = b.labels.data<float>();
  }
  for (int64_t j = 0; j < nb; ++j) {
    if (opt_.num_workers > 0) {
      std::lock_guard<std::mutex> lock(mu_);
      if (stop_) throw Cancelled{};
    }
    const int64_t i = order[(size_t)(b0 + j)];
    const SliceRef& r = ds_->item(i);
    try {
      ds_->load(i, img + j * px);
    } catch (const std::exception& e) {
      throw Error("item " + std::to_string(i) + " (patient " + r.patient + ", slice " + std::to_string(r.z) +
                  ", batch " + std::to_string(k) + "): " + e.what());
    }
    if (opt_.augment.active()) augment_image(img + j * px, side, opt_.augment, mix_seed(opt_.seed, (uint64_t)epoch, (uint64_t)i));
    lab[j] = (float)r.label;
    b.items.push_back(i);
    b.patients.push_back(r.patient);
    b.slices.push_back(r.z);
  }
  return b;
}

void DataLoader::worker(int id) {
  for (;;) {
    int64_t k, epoch;
    {
      std::unique_lock<std::mutex> lock(mu_);
      const int64_t depth = (int64_t)opt_.prefetch_factor * opt_.num_workers;
      cv_.wait(lock, [&] { return stop_ || error_ || next_build_ >= num_batches_ || next_build_ < next_deliver_ + depth; });
      if (stop_ || error_ || next_build_ >= num_batches_) return;
      k = next_build_++;
      epoch = epoch_;
    }
    try {
      Batch b = build(k, order_, epoch);
      std::lock_guard<std::mutex> lock(mu_);
      ready_.emplace(k, std::move(b));
    } catch (const Cancelled&) {
      return;
    } catch (const std::exception& e) {
      std::lock_guard<std::mutex> lock(mu_);
      if (!error_) error_ = std::make_exception_ptr(Error("data loader worker " + std::to_string(id) + ": " + e.what()));
    }
    cv_.notify_all();
  }
}

bool DataLoader::next_host(Batch& out) {
  if (epoch_ < 0) throw Error("DataLoader::next: call start_epoch first");
  if (opt_.num_workers == 0) {
    if (error_) std::rethrow_exception(error_);
    if (next_deliver_ >= num_batches_) return false;
    try {
      out = build(next_deliver_, order_, epoch_);
    } catch (const std::exception& e) {
      error_ = std::make_exception_ptr(Error(std::string("data loader: ") + e.what()));
      std::rethrow_exception(error_);
    }
    ++next_deliver_;
    return true;
  }
  std::exception_ptr err;
  {
    std::unique_lock<std::mutex> lock(mu_);
    if (next_deliver_ >= num_batches_ && !error_) return false;
    cv_.wait(lock, [&] { return error_ || ready_.count(next_deliver_); });
    if (!error_) {
      auto it = ready_.find(next_deliver_);
      out = std::move(it->second);
      ready_.erase(it);
      ++next_deliver_;
    }
    err = error_;
  }
  if (err) {
    // Join before throwing: no worker outlives the failed epoch.
    stop_workers();
    std::rethrow_exception(err);
  }
  cv_.notify_all();  // a slot in the prefetch window opened
  return true;
}

Batch DataLoader::issue_copy(Batch host) {
  // The copy stream first waits for the compute queued so far: the device
  // blocks it writes into may have just been freed by kernels still queued.
  cuda::record_event(compute_done_, cuda::compute_stream());
  cuda::stream_wait_event(copy_stream_, compute_done_);
  Batch d = host;
  d.images = Tensor::empty(host.images.shape(), DType::f32, Device::cuda);
  d.labels = Tensor::empty(host.labels.shape(), DType::f32, Device::cuda);
  cuda::copy_h2d_async(d.images.device_raw_data(), host.images.raw_data(), host.images.nbytes(), copy_stream_);
  cuda::copy_h2d_async(d.labels.device_raw_data(), host.labels.raw_data(), host.labels.nbytes(), copy_stream_);
  copy_parity_ ^= 1;
  ahead_event_ = copy_parity_;
  cuda::record_event(copy_done_[copy_parity_], copy_stream_);
  d.copy_event = copy_done_[copy_parity_];
  // The ring slot is reused only after this copy out of it has finished
  // (PinnedRing::acquire waits on the slot's event).
  if (host.pinned && ring_) {
    for (int s = 0; s < ring_->slots(); ++s)
      if (ring_->data(s) == host.images.raw_data()) cuda::record_event(ring_->event(s), copy_stream_);
  }
  return d;
}

bool DataLoader::next(Batch& out) {
  if (opt_.device != Device::cuda) return next_host(out);
  if (!ahead_) {
    Batch h;
    if (!next_host(h)) return false;
    ahead_ = issue_copy(std::move(h));
  }
  Batch cur = std::move(*ahead_);
  ahead_.reset();
  // Kernels on cur queue after this point: make the compute stream wait for its copy.
  cuda::stream_wait_event(cuda::compute_stream(), copy_done_[ahead_event_]);
  Batch h;
  if (next_host(h)) ahead_ = issue_copy(std::move(h));
  out = std::move(cur);
  return true;
}

}  // namespace ctg::data
