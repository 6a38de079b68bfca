// NCCL for the gradients of CUDA tensors in an MPI run (train/distributed.h).
// Compiled into the native executables only, when CMake finds NCCL
// (cmake/cuda_libraries.cmake); it defines the weak dist::make_nccl_allreduce.
//
// Setup, as NCCL's "one device per process" example: every rank selects GPU
// local_rank mod (GPUs on the host), rank 0 makes the ncclUniqueId and MPI
// broadcasts it, then ncclCommInitRank. Each sum is ncclAllReduce in place on
// ctgrad's compute stream, so it runs after the backward kernels that wrote
// the gradients and before the optimiser's kernels, with no host wait.
// NCCL picks ring or tree from the communicator and message size, both fixed
// for a fixed N, so the reduction order is the same every step.
#include <cuda_runtime.h>
#include <nccl.h>

#include <string>

#include "kernels/cuda/runtime.h"
#include "train/distributed.h"

namespace ctg::dist {

namespace {

void check_nccl(ncclResult_t r, const char* what) {
  if (r != ncclSuccess) throw Error(std::string("NCCL ") + what + ": " + ncclGetErrorString(r));
}
void check_cuda(cudaError_t r, const char* what) {
  if (r != cudaSuccess) throw Error(std::string("CUDA ") + what + ": " + cudaGetErrorString(r));
}

class NcclAllreduce : public DeviceAllreduce {
 public:
  explicit NcclAllreduce(Communicator& c) {
    int gpus = 0;
    check_cuda(cudaGetDeviceCount(&gpus), "cudaGetDeviceCount");
    if (gpus < 1) throw Error("NCCL: no GPU on this host");
    check_cuda(cudaSetDevice(c.local_rank() % gpus), "cudaSetDevice");
    ncclUniqueId id;
    if (c.is_root()) check_nccl(ncclGetUniqueId(&id), "ncclGetUniqueId");
    c.broadcast(&id, sizeof id, 0);
    check_nccl(ncclCommInitRank(&comm_, c.size(), id, c.rank()), "ncclCommInitRank");
  }
  ~NcclAllreduce() override { ncclCommDestroy(comm_); }
  void sum(float* p, int64_t n) override {
    auto stream = static_cast<cudaStream_t>(cuda::compute_stream());
    check_nccl(ncclAllReduce(p, p, (size_t)n, ncclFloat, ncclSum, comm_, stream), "ncclAllReduce");
  }

 private:
  ncclComm_t comm_ = nullptr;
};

}  // namespace

std::unique_ptr<DeviceAllreduce> make_nccl_allreduce(Communicator& c) { return std::make_unique<NcclAllreduce>(c); }

}  // namespace ctg::dist
