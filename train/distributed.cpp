// The communicator seam of data-parallel training: MPI on the host, NCCL for
// device memory where the build has it (train/distributed.h).
#include "train/distributed.h"

#include <cstdio>
#include <cstdlib>
#include <cstring>

#include "kernels/cuda/runtime.h"

#if CTGRAD_HAVE_MPI
#include <mpi.h>
#endif

namespace ctg::dist {

namespace {

int env_int(const char* name) {
  const char* v = std::getenv(name);
  return v && *v ? std::atoi(v) : 0;
}

// One process: every collective is the identity.
class SingleCommunicator : public Communicator {
 public:
  std::string backend() const override { return "single"; }
  void allreduce_sum(double*, int64_t) override {}
  void allreduce_sum(float*, int64_t) override {}
  void allreduce_sum(Tensor&) override {}
  void broadcast(void*, size_t, int) override {}
  void barrier() override {}
  [[noreturn]] void abort(const std::string& message) override {
    std::fprintf(stderr, "ctgrad: %s\n", message.c_str());
    std::exit(1);
  }
};

#if CTGRAD_HAVE_MPI
// MPI counts are int: long buffers go in chunks of at most 2^30 elements.
constexpr int64_t kChunk = int64_t(1) << 30;

// One MPI_Iallreduce in flight.
struct MpiPending : Communicator::Pending {
  MPI_Request request = MPI_REQUEST_NULL;
  void test() override {
    int done = 0;
    if (request != MPI_REQUEST_NULL) MPI_Test(&request, &done, MPI_STATUS_IGNORE);
  }
  void wait() override {
    if (request != MPI_REQUEST_NULL) MPI_Wait(&request, MPI_STATUS_IGNORE);
  }
  ~MpiPending() override { wait(); }  // never leave a buffer in MPI's hands
};

class MpiCommunicator : public Communicator {
 public:
  MpiCommunicator() {
    MPI_Comm_rank(MPI_COMM_WORLD, &rank_);
    MPI_Comm_size(MPI_COMM_WORLD, &size_);
    // The local rank picks this rank's GPU: its rank among the processes
    // that share this host's memory.
    MPI_Comm local;
    MPI_Comm_split_type(MPI_COMM_WORLD, MPI_COMM_TYPE_SHARED, rank_, MPI_INFO_NULL, &local);
    MPI_Comm_rank(local, &local_rank_);
    MPI_Comm_free(&local);
  }
  std::string backend() const override { return device_ ? "mpi+nccl" : "mpi"; }
  void allreduce_sum(double* p, int64_t n) override {
    for (int64_t o = 0; o < n; o += kChunk)
      MPI_Allreduce(MPI_IN_PLACE, p + o, (int)std::min(kChunk, n - o), MPI_DOUBLE, MPI_SUM, MPI_COMM_WORLD);
  }
  void allreduce_sum(float* p, int64_t n) override {
    for (int64_t o = 0; o < n; o += kChunk)
      MPI_Allreduce(MPI_IN_PLACE, p + o, (int)std::min(kChunk, n - o), MPI_FLOAT, MPI_SUM, MPI_COMM_WORLD);
  }
  void use_device(Device d) override {
    if (d == Device::cuda && !device_ && make_nccl_allreduce && !cuda::is_emulated())
      device_ = make_nccl_allreduce(*this);  // a collective: every rank calls it at the same point
  }
  void allreduce_sum(Tensor& t) override {
    if (t.device() == Device::cuda && device_) {
      if (t.dtype() != DType::f32) throw Error("allreduce: NCCL path takes float32 tensors");
      device_->sum(t.device_data<float>(), t.numel());
      return;
    }
    Communicator::allreduce_sum(t);
  }
  std::unique_ptr<Pending> start_allreduce_sum(Tensor& t) override {
    if (t.device() != Device::cpu || t.dtype() != DType::f32 || t.numel() > kChunk)
      return Communicator::start_allreduce_sum(t);
    auto p = std::make_unique<MpiPending>();
    MPI_Iallreduce(MPI_IN_PLACE, t.data<float>(), (int)t.numel(), MPI_FLOAT, MPI_SUM, MPI_COMM_WORLD, &p->request);
    return p;
  }
  void broadcast(void* p, size_t bytes, int root) override {
    char* c = static_cast<char*>(p);
    for (size_t o = 0; o < bytes; o += (size_t)kChunk)
      MPI_Bcast(c + o, (int)std::min((size_t)kChunk, bytes - o), MPI_BYTE, root, MPI_COMM_WORLD);
  }
  void barrier() override { MPI_Barrier(MPI_COMM_WORLD); }
  [[noreturn]] void abort(const std::string& message) override {
    std::fprintf(stderr, "ctgrad: rank %d of %d: %s\n", rank_, size_, message.c_str());
    std::fflush(stderr);
    MPI_Abort(MPI_COMM_WORLD, 1);
    std::exit(1);
  }

 private:
  std::unique_ptr<DeviceAllreduce> device_;
};

void finalize_mpi() {
  int done = 0;
  MPI_Finalized(&done);
  if (!done) MPI_Finalize();
}
#endif

}  // namespace

void Communicator::allreduce_sum(Tensor& t) {
  if (t.dtype() != DType::f32) throw Error("allreduce: expected a float32 tensor");
  if (t.device() == Device::cpu) {
    allreduce_sum(t.data<float>(), t.numel());
    return;
  }
  Tensor h = t.to(Device::cpu);  // staged through the host (no NCCL in this build)
  allreduce_sum(h.data<float>(), h.numel());
  t.copy_(h);
}

std::unique_ptr<Communicator::Pending> Communicator::start_allreduce_sum(Tensor& t) {
  allreduce_sum(t);  // NCCL enqueues on the compute stream; the host staging path is blocking
  return std::make_unique<Pending>();
}

void Communicator::min_max(double v, double& lo, double& hi) {
  // min(v) = −max(−v): one all-reduce of per-rank one-hot slots, read exactly.
  std::vector<double> all((size_t)size_, 0.0);
  all[(size_t)rank_] = v;
  allreduce_sum(all.data(), (int64_t)all.size());
  lo = hi = all[0];
  for (double x : all) lo = std::min(lo, x), hi = std::max(hi, x);
}

int launcher_world_size() {
  for (const char* k : {"OMPI_COMM_WORLD_SIZE", "PMI_SIZE", "PMIX_SIZE", "SLURM_STEP_NUM_TASKS"}) {
    const int n = env_int(k);
    if (n > 0) return n;
  }
  return 1;
}

bool built_with_mpi() {
#if CTGRAD_HAVE_MPI
  return true;
#else
  return false;
#endif
}

std::shared_ptr<Communicator> init(bool required) {
  static std::shared_ptr<Communicator> world;
  if (world) return world;
  const int launched = launcher_world_size();
  if (!required && launched <= 1) return world = std::make_shared<SingleCommunicator>();
#if CTGRAD_HAVE_MPI
  int ready = 0;
  MPI_Initialized(&ready);
  if (!ready) {
    MPI_Init(nullptr, nullptr);
    std::atexit(finalize_mpi);
  }
  world = std::make_shared<MpiCommunicator>();
  return world;
#else
  throw Error(std::string(required ? "--distributed" : "train: started as " + std::to_string(launched) + " ranks") +
              ": this ctgrad was built without MPI; apt-get install libopenmpi-dev openmpi-bin and rebuild "
              "(cmake -DCTGRAD_MPI=on)");
#endif
}

std::shared_ptr<Communicator> single() { return std::make_shared<SingleCommunicator>(); }

void broadcast_buffers(Communicator& c, const NamedTensorList& buffers) {
  if (c.size() == 1) return;
  for (const auto& [name, b] : buffers) {
    Tensor h = b.to(Device::cpu).clone();
    c.broadcast(h.raw_data(), h.nbytes(), 0);
    Tensor dst = b;
    dst.copy_(h);
  }
}

double weights_fingerprint(const NamedTensorList& params) {
  uint64_t h = 1469598103934665603ull;
  for (const auto& [name, p] : params) {
    const Tensor c = p.to(Device::cpu);
    const auto* b = static_cast<const unsigned char*>(c.raw_data());
    for (size_t k = 0; k < c.nbytes(); ++k) h = (h ^ b[k]) * 1099511628211ull;
  }
  return (double)(h >> 12);  // 52 bits: exact in a double
}

void shard_range(int64_t n, int rank, int ranks, int64_t& lo, int64_t& hi) {
  const int64_t q = n / ranks, r = n % ranks;
  lo = rank * q + std::min<int64_t>(rank, r);
  hi = lo + q + (rank < r ? 1 : 0);
}

}  // namespace ctg::dist
