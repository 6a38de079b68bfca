// The DataLoader: batches of a Dataset (data/dataset.h), PyTorch-style.
//
//   DataLoader loader(dataset, opt);
//   for (int64_t e = 0; e < epochs; ++e) {
//     loader.start_epoch(e);
//     Batch b;
//     while (loader.next(b)) step(b.images, b.labels);
//   }
//
// - Order: with shuffle, epoch e visits a permutation drawn from (seed, e);
//   without, index order. Batches come out in batch order whatever the
//   threads do (as PyTorch's in-order loader), and augmentation draws from
//   (seed, epoch, item), so a run is reproducible for any num_workers.
// - num_workers = 0 loads on the calling thread inside next(); N > 0 starts N
//   threads per epoch that build whole batches, at most prefetch_factor·N
//   batches ahead of the consumer (the bounded prefetch queue).
// - A failing load (a bad file) stops the epoch: next() joins the workers and
//   throws ctg::Error naming the worker, item and the file's error. Ending an
//   epoch early (start_epoch again, or destroying the loader) cancels the
//   workers; neither waits for more than the batch in progress.
// - pin_memory with a CUDA device: batch buffers come from a ring of pinned
//   host buffers allocated once (cudaHostAlloc per batch is slow); a batch's
//   tensors alias its ring slot and give it back when the last reference
//   drops. Without a device the buffers are pageable; describe() says which.
//   If the consumer holds more batches than the ring has slots, the extra
//   batches use pageable buffers instead of blocking (never a deadlock).
// - device = cuda: next() returns batches already on the device. The copy of
//   batch k+1 is issued (on a separate copy stream, from the pinned slot)
//   when batch k is handed out, so it overlaps batch k's compute; the compute
//   stream waits on an event for each batch's copy, never the host.
#pragma once
#include <condition_variable>
#include <cstdint>
#include <exception>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "data/augment.h"
#include "data/dataset.h"
#include "engine/tensor.h"

namespace ctg::data {

struct LoaderOptions {
  int64_t batch_size = 15;
  bool shuffle = false;
  uint64_t seed = 0;
  bool drop_last = false;
  int num_workers = 0;
  int prefetch_factor = 2;  // batches in flight per worker (PyTorch's default)
  bool pin_memory = false;
  Device device = Device::cpu;
  Augment augment;
  // Data-parallel runs (train/distributed.h): batch k holds only this rank's
  // contiguous part of global batch k (dist::shard_range's split of the
  // items epoch_order puts in it), so the N ranks together see exactly the
  // batches one process sees. A shard may be empty (a short last batch).
  int shard_rank = 0, shard_count = 1;
};

struct Batch {
  int64_t index = -1;                // batch number in the epoch
  int64_t global_size = 0;           // items of the whole batch, over every shard
  Tensor images;                     // [B, 1, S, S] float32
  Tensor labels;                     // [B, 1] float32 (0 mild, 1 severe)
  std::vector<int64_t> items;        // dataset indices
  std::vector<std::string> patients;
  std::vector<int64_t> slices;       // z of each image
  bool pinned = false;               // host buffers came from the pinned ring
  // device = cuda: recorded on the copy stream after this batch's copy; the
  // compute stream already waits on it. Valid until the next next() call;
  // cuda::event_synchronize on it measures how long the copy kept the host.
  void* copy_event = nullptr;
  int64_t size() const { return (int64_t)items.size(); }
};

class PinnedRing;  // loader.cpp

class DataLoader {
 public:
  DataLoader(std::shared_ptr<const Dataset> dataset, const LoaderOptions& opt);
  ~DataLoader();
  DataLoader(const DataLoader&) = delete;
  DataLoader& operator=(const DataLoader&) = delete;

  int64_t num_batches() const;
  // The item order of epoch e (the permutation, or 0..n−1).
  std::vector<int64_t> epoch_order(int64_t epoch) const;
  // Cancels any epoch in progress and starts epoch e.
  void start_epoch(int64_t epoch);
  // The next batch of the epoch; false at its end. Throws ctg::Error when a
  // load failed (the epoch is over then; start_epoch begins a new one).
  bool next(Batch& out);

  const Dataset& dataset() const { return *ds_; }
  const LoaderOptions& options() const { return opt_; }
  bool pinned() const { return ring_ != nullptr; }
  // The log line, e.g. "loader: 2 workers, batch 9, shuffle on, prefetch 4 batches,
  // device cuda, pin_memory: pinned ring of 7 × 9.0 MiB" (or "... pageable buffers").
  std::string describe() const;
  // Batches whose host buffers fell back to pageable memory because the ring was empty.
  int64_t ring_misses() const;

 private:
  Batch build(int64_t k, const std::vector<int64_t>& order, int64_t epoch);
  void worker(int id);
  void stop_workers();
  bool next_host(Batch& out);
  Batch issue_copy(Batch host);
  void retire_ahead();

  std::shared_ptr<const Dataset> ds_;
  LoaderOptions opt_;
  std::shared_ptr<PinnedRing> ring_;

  // Epoch state, guarded by mu_.
  std::mutex mu_;
  std::condition_variable cv_;
  int64_t epoch_ = -1, num_batches_ = 0, next_build_ = 0, next_deliver_ = 0;
  std::vector<int64_t> order_;
  std::map<int64_t, Batch> ready_;
  std::exception_ptr error_;
  bool stop_ = false;
  std::vector<std::thread> threads_;

  // device = cuda: the copy stream, and the batch whose copy is in flight.
  void* copy_stream_ = nullptr;
  void* compute_done_ = nullptr;      // event: the compute queued so far
  void* copy_done_[2] = {nullptr, nullptr};  // events: a batch's copy, alternating
  int copy_parity_ = 0;
  std::optional<Batch> ahead_;
  int ahead_event_ = 0;
};

}  // namespace ctg::data
