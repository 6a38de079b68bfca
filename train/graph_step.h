// `--cuda-graph` (issue 15): one whole training step on the GPU — forward,
// BCE loss, backward, optimiser update — captured once as a CUDA graph and
// replayed for every later batch of the same shape, so a step costs one
// graph launch instead of hundreds of kernel launches.
//
// What makes a replay compute what an eager step would (kernels/cuda/runtime.h):
//   1. The first batch runs eagerly (warm-up): the optimiser state (Adam's
//      moments, SGD's momentum) and its device scalars are allocated there, at
//      addresses every later step keeps; captured, their zero fill would be
//      replayed every step.
//   2. The next batch of that shape is captured into the graph's private
//      memory pool: activations, gradients and the loss get fixed addresses;
//      the inputs are static buffers the batch is copied into first
//      (device to device, on the compute stream, from the loader's tensor).
//   3. Each replay: the batch into the static buffers, the optimiser's
//      prepare_step() outside the graph (the step count t and the lr of the
//      schedule written to device memory: kernels/optim.h), the graph, and a
//      copy of the loss into a tensor of its own (read later, asynchronously
//      to the step, as the trainer reads every loss).
//   A batch of another shape (an epoch's last, partial batch) runs eagerly;
//   the graph stays for the next full batch (no drop_last: every image
//   trains, as without the flag). Eager and replayed steps give the same
//   weights bit for bit (tests/test_graph_step.cpp).
// Host-side effects of a forward are not in the graph: BatchNorm2d's
// num_batches_tracked (a host integer) is counted per replay here.
// Refused with one line: a net with dropout (its mask seed is drawn on the
// host per step: a replay would repeat the captured mask), a CPU net.
#pragma once
#include <cstdint>
#include <vector>

#include "engine/layers.h"
#include "engine/module.h"
#include "engine/optim.h"
#include "kernels/cuda/runtime.h"

namespace ctg::train {

class GraphStep {
 public:
  // net and opt must outlive the GraphStep; net on the GPU, in training mode.
  GraphStep(Module& net, Optimizer& opt);
  ~GraphStep();
  GraphStep(const GraphStep&) = delete;
  GraphStep& operator=(const GraphStep&) = delete;

  // One optimiser step on the batch; the batch's mean loss as a device tensor of its own.
  Tensor step(const Tensor& images, const Tensor& labels);

  int64_t replays() const { return replays_; }     // steps that launched the graph (the captured one too)
  int64_t eager_steps() const { return eager_; }   // steps run kernel by kernel
  bool captured() const { return graph_ != nullptr; }

 private:
  Tensor eager(const Tensor& images, const Tensor& labels);
  void capture(const Tensor& images, const Tensor& labels);

  Module& net_;
  std::vector<BatchNorm2d*> batchnorms_;  // their host-side counters, advanced per replay
  Optimizer& opt_;
  Shape warm_images_, warm_labels_;  // shapes of the last eager step
  cuda::Graph graph_ = nullptr;
  Tensor images_, labels_, loss_;  // the graph's static input and output buffers
  int64_t replays_ = 0, eager_ = 0;
};

}  // namespace ctg::train
