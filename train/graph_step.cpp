// The captured training step (see graph_step.h).
#include "train/graph_step.h"

#include <functional>

#include "engine/autograd.h"
#include "engine/layers.h"
#include "engine/ops.h"

namespace ctg::train {

namespace {
void visit(Module& m, const std::function<void(Module&)>& f) {
  f(m);
  for (auto& [name, c] : m.children()) visit(*c, f);
}
// The step's work on the device: forward, loss, backward (the gradients as
// an eager step makes them), then the update launches.
Tensor forward_backward(Module& net, const Tensor& images, const Tensor& labels) {
  Tensor loss = ops::bce_with_logits(net(images), labels);
  autograd::backward(loss);
  return loss.detach();
}
}  // namespace

GraphStep::GraphStep(Module& net, Optimizer& opt) : net_(net), opt_(opt) {
  for (auto& [name, p] : net.named_parameters())
    if (p.device() != Device::cuda)
      throw Error("--cuda-graph: needs the net on the GPU (--device cuda); parameter '" + name + "' is on the " +
                  device_name(p.device()));
  bool dropout = false;
  visit(net, [&](Module& m) {
    dropout |= dynamic_cast<Dropout*>(&m) != nullptr;
    if (auto* bn = dynamic_cast<BatchNorm2d*>(&m)) batchnorms_.push_back(bn);
  });
  if (dropout)
    throw Error("--cuda-graph: the net has dropout, whose mask seed is drawn on the host at every step (a replayed "
                "graph would repeat one mask); use --dropout off");
}

GraphStep::~GraphStep() { cuda::destroy_graph(graph_); }

Tensor GraphStep::eager(const Tensor& images, const Tensor& labels) {
  opt_.zero_grad();
  Tensor loss = forward_backward(net_, images, labels);
  opt_.step();
  warm_images_ = images.shape(), warm_labels_ = labels.shape();
  eager_++;
  return loss;
}

void GraphStep::capture(const Tensor& images, const Tensor& labels) {
  images_ = Tensor::empty(images.shape(), images.dtype(), Device::cuda);
  labels_ = Tensor::empty(labels.shape(), labels.dtype(), Device::cuda);
  opt_.zero_grad();  // the gradients are first written inside the graph, as in an eager step
  cuda::begin_capture();
  try {
    loss_ = forward_backward(net_, images_, labels_);
    opt_.apply_step();
    graph_ = cuda::end_capture();
  } catch (...) {
    loss_ = Tensor();
    cuda::abort_capture();
    throw;
  }
}

Tensor GraphStep::step(const Tensor& images, const Tensor& labels) {
  if (images.device() != Device::cuda || labels.device() != Device::cuda)
    throw Error("--cuda-graph: the batch must be on the GPU");
  const bool fits = graph_ ? images.shape() == images_.shape() && labels.shape() == labels_.shape()
                           : eager_ > 0 && images.shape() == warm_images_ && labels.shape() == warm_labels_;
  if (!fits) return eager(images, labels);
  if (!graph_) {
    capture(images, labels);  // its forward ran on the host once: the host-side counts are done
  } else {
    // What a forward does on the host, a replay does not: BatchNorm2d's
    // num_batches_tracked is a host integer (engine/layers.cpp); count it here.
    for (BatchNorm2d* bn : batchnorms_)
      if (bn->is_training()) bn->num_batches_tracked.data<int64_t>()[0] += 1;
  }
  images_.copy_(images);  // device to device on the compute stream, before the graph
  labels_.copy_(labels);
  opt_.zero_grad();       // host only: the graph writes the gradients itself
  opt_.prepare_step();    // t and lr to device memory, outside the graph
  cuda::launch_graph(graph_);
  replays_++;
  return loss_.clone();   // the next replay overwrites loss_
}

}  // namespace ctg::train
