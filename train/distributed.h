// Data-parallel training across processes (issue 17): the communicator seam.
//
// `mpirun -np N ctgrad train …` (or `srun`) starts N ranks. Each rank takes
// its shard of every global batch (data/loader.h: shard_rank/shard_count),
// runs forward and backward on it, and the gradients are summed across ranks
// before the same optimiser step runs everywhere. No transport is home-made:
//   - CPU tensors: MPI_Allreduce (Open MPI);
//   - CUDA tensors: NCCL's ncclAllReduce on the compute stream when the
//     build has NCCL (train/distributed_nccl.cu, native builds only), one GPU
//     per rank chosen by the local rank; otherwise staged through the host.
// Determinism for a fixed N: the buckets are fixed (parameter order, fixed
// byte size) and Open MPI's coll/tuned chooses its algorithm from the
// communicator size and the message size alone, so the same N sums in the
// same order every run; the trainer checks after every epoch that the
// weights are bit-identical on every rank.
#pragma once
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "engine/module.h"
#include "engine/tensor.h"

namespace ctg::dist {

class Communicator : public std::enable_shared_from_this<Communicator> {
 public:
  virtual ~Communicator() = default;
  int rank() const { return rank_; }
  int size() const { return size_; }
  int local_rank() const { return local_rank_; }  // rank among the ranks on this host
  bool is_root() const { return rank_ == 0; }
  // "single", "mpi" or "mpi+nccl".
  virtual std::string backend() const = 0;

  // Element-wise sum over the ranks, in place, on host memory; every rank
  // gets the same bits.
  virtual void allreduce_sum(double* p, int64_t n) = 0;
  virtual void allreduce_sum(float* p, int64_t n) = 0;
  // A float32 tensor on any device: NCCL for CUDA when built with it.
  virtual void allreduce_sum(Tensor& t);
  // The same sum, started now and completed by wait() (MPI_Iallreduce for
  // host memory; the base version finishes at once). test() drives the
  // transfer on (MPI progresses non-blocking collectives inside MPI calls).
  // Every rank must start the same sums in the same order, as for any
  // collective.
  struct Pending {
    virtual ~Pending() = default;
    virtual void test() {}
    virtual void wait() {}
  };
  virtual std::unique_ptr<Pending> start_allreduce_sum(Tensor& t);
  // Called before the net moves to `d`: with CUDA in an NCCL build, selects
  // this rank's GPU (the local rank) and sets up NCCL (a collective).
  virtual void use_device(Device d) {}
  virtual void broadcast(void* p, size_t bytes, int root) = 0;
  virtual void barrier() = 0;
  // Prints "ctgrad: rank R of N: MESSAGE" and stops every rank (MPI_Abort):
  // a rank that fails must never leave the others waiting in a collective.
  [[noreturn]] virtual void abort(const std::string& message) = 0;
  // The smallest and largest value of v over the ranks.
  void min_max(double v, double& lo, double& hi);

 protected:
  int rank_ = 0, size_ = 1, local_rank_ = 0;
};

// The rank count a launcher announces in the environment (Open MPI's
// OMPI_COMM_WORLD_SIZE, PMI_SIZE of MPICH/Slurm PMI2, PMIX's and srun's
// SLURM_STEP_NUM_TASKS); 1 when not launched by one.
int launcher_world_size();
bool built_with_mpi();

// The communicator of this process: MPI when `required` or when a launcher
// started more than one rank, else a single-process one. Without MPI in the
// build, a distributed run throws one line saying what to install.
// MPI_Init happens here, once; MPI_Finalize at exit.
std::shared_ptr<Communicator> init(bool required);
// A one-process communicator (every collective the identity).
std::shared_ptr<Communicator> single();

// Sums the gradients of `params` over the ranks during backward, as PyTorch
// DDP's reducer: the parameters are cut into buckets of about bucket_bytes
// (DDP's default 25 MiB) in reverse registration order (roughly the order
// backward finishes them), and a bucket's all-reduce starts as soon as
// backward has completed every gradient in it (autograd's grad-ready hook),
// so communication overlaps the rest of backward. Buckets come from the
// parameter list alone (never from timing): every rank and every step sums
// the same buffers, started in the same order. train/grad_reducer.cpp.
class GradientReducer {
 public:
  GradientReducer(Communicator& c, const NamedTensorList& params, size_t bucket_bytes = 25u << 20);
  // autograd::backward(loss, seed) with the buckets reduced on the way; on
  // return every parameter's grad() holds the sum over the ranks (a
  // parameter backward did not reach contributes zeros and keeps no gradient).
  void backward(const Tensor& loss, const Tensor& seed);
  size_t buckets() const { return buckets_.size(); }
  // Buckets whose all-reduce started while backward was still running, in
  // the last backward() (the rest started after it).
  size_t started_during_backward() const { return early_; }

 private:
  struct Bucket {
    std::vector<size_t> params;  // indices into params_
    int64_t numel = 0;
    Device device = Device::cpu;
    int waiting = 0;  // gradients not yet complete in this backward
    Tensor flat;
    std::unique_ptr<Communicator::Pending> pending;
  };
  void start(Bucket& b);
  Communicator& comm_;
  NamedTensorList params_;
  std::vector<Bucket> buckets_;
  std::vector<size_t> bucket_of_;  // per parameter
  size_t early_ = 0;
};

// Copies rank 0's buffers (BatchNorm running statistics) to every rank, as
// DDP's broadcast_buffers: ranks with per-rank statistics agree before
// validation and checkpoints.
void broadcast_buffers(Communicator& c, const NamedTensorList& buffers);

// A fingerprint of the parameters' bits (FNV-1a over every byte); equal on
// all ranks iff the weights agree (checked by the trainer after each epoch).
double weights_fingerprint(const NamedTensorList& params);

// [lo, hi) of the n items of a batch that rank r of `ranks` takes: contiguous
// chunks, the first n mod ranks ranks one item more.
void shard_range(int64_t n, int rank, int ranks, int64_t& lo, int64_t& hi);

// --sync-bn: every BatchNorm2d of `net` normalises with the statistics of the
// global batch (sums over the ranks), so N ranks compute what one process
// computes on the whole batch. `phantom` points at the trainer's flag for a
// rank whose shard of a batch is empty: it runs a dummy image through the net
// with loss weight 0 so that it joins every collective, and contributes
// nothing to the statistics.
void enable_sync_batchnorm(Module& net, std::shared_ptr<Communicator> c, const bool* phantom);

// Device memory all-reduce, provided by train/distributed_nccl.cu in builds
// with NCCL (a weak symbol: null otherwise).
struct DeviceAllreduce {
  virtual ~DeviceAllreduce() = default;
  virtual void sum(float* device_ptr, int64_t n) = 0;
};
std::unique_ptr<DeviceAllreduce> make_nccl_allreduce(Communicator& c) __attribute__((weak));

}  // namespace ctg::dist
