// Autograd glue for batchnorm2d (kernels in kernels/batchnorm2d.h).
#include "engine/ops.h"
#include "engine/ops/common.h"
#include "kernels/batchnorm2d.h"

namespace ctg::ops {

namespace {

// gamma, beta and the running statistics are per-channel vectors [C].
void check_channel_vector(const Tensor& x, const Tensor& t, const char* what) {
  detail::check_float(t, "batchnorm2d", what);
  detail::check_same_dtype(x, t, "batchnorm2d", what);
  if (t.shape() != Shape{x.size(1)})
    throw Error(std::string("batchnorm2d: ") + what + " has shape " + shape_str(t.shape()) +
                " but the input " + shape_str(x.shape()) + " has " + std::to_string(x.size(1)) +
                " channels (expected [" + std::to_string(x.size(1)) + "])");
}

}  // namespace

Tensor batchnorm2d(const Tensor& x, const Tensor& gamma, const Tensor& beta, Tensor& running_mean,
                   Tensor& running_var, bool training, double momentum, double eps) {
  detail::check_float(x, "batchnorm2d", "input");
  detail::check_dim(x, 4, "batchnorm2d", "input");
  if (gamma.defined()) check_channel_vector(x, gamma, "gamma");
  if (beta.defined()) check_channel_vector(x, beta, "beta");
  // Training without running statistics is PyTorch's track_running_stats=False;
  // eval mode normalises with them, so there they are required.
  if (!training && (!running_mean.defined() || !running_var.defined()))
    throw Error("batchnorm2d: eval mode needs running_mean and running_var, but " +
                std::string(running_mean.defined() ? "running_var" : "running_mean") +
                " is undefined");
  if (running_mean.defined()) check_channel_vector(x, running_mean, "running_mean");
  if (running_var.defined()) check_channel_vector(x, running_var, "running_var");
  if (!(eps > 0)) throw Error("batchnorm2d: eps must be positive, got " + std::to_string(eps));

  const int64_t N = x.size(0), C = x.size(1), HW = x.size(2) * x.size(3);
  // The batch variance of a single value is 0/0 in the unbiased update.
  if (training && N * HW <= 1)
    throw Error("batchnorm2d: expected more than 1 value per channel when training, got input " +
                shape_str(x.shape()));

  Tensor y = Tensor::empty(x.shape(), x.dtype(), x.device());
  // The statistics the forward normalised with; backward needs exactly these.
  Tensor mean = Tensor::empty({C}, x.dtype(), x.device()), invstd = Tensor::empty({C}, x.dtype(), x.device());
  CTG_DISPATCH_DEVICE(x, "batchnorm2d",
                      kernels::batchnorm2d_forward_cpu(
                          x.data<scalar_t>(), detail::ptr_or_null<scalar_t>(gamma),
                          detail::ptr_or_null<scalar_t>(beta), detail::ptr_or_null<scalar_t>(running_mean),
                          detail::ptr_or_null<scalar_t>(running_var), y.data<scalar_t>(), mean.data<scalar_t>(),
                          invstd.data<scalar_t>(), N, C, HW, training, momentum, eps),
                      kernels::batchnorm2d_forward_cuda(
                          x.device_data<float>(), detail::device_ptr_or_null<float>(gamma), detail::device_ptr_or_null<float>(beta),
                          detail::device_ptr_or_null<float>(running_mean), detail::device_ptr_or_null<float>(running_var),
                          y.device_data<float>(), mean.device_data<float>(), invstd.device_data<float>(), N, C, HW, training, momentum,
                          eps));

  if (autograd::needs_grad({&x, &gamma, &beta})) {
    auto node = autograd::record("batchnorm2d", y, {x, gamma, beta});
    node->save(x);
    // mean/invstd are made here, so save() sees leaves; they are per-batch
    // buffers of this op, counted with the activations, not the parameters.
    node->save(mean);
    node->saved_is_leaf.back() = false;
    node->save(invstd);
    node->saved_is_leaf.back() = false;
    const bool has_gamma = gamma.defined();
    if (has_gamma) node->save(gamma);
    node->backward = [N, C, HW, training, has_gamma](Node& n, const Tensor& gy) {
      Tensor gx = autograd::input_grad(n, 0), ggamma = autograd::input_grad(n, 1),
             gbeta = autograd::input_grad(n, 2);
      detail::trace_kernel("batchnorm2d_backward", gy);
      CTG_DISPATCH_DEVICE(gy, "batchnorm2d",
                          kernels::batchnorm2d_backward_cpu(
                              n.saved[0].data<scalar_t>(), has_gamma ? n.saved[3].data<scalar_t>() : nullptr,
                              n.saved[1].data<scalar_t>(), n.saved[2].data<scalar_t>(), gy.data<scalar_t>(),
                              detail::ptr_or_null<scalar_t>(gx), detail::ptr_or_null<scalar_t>(ggamma),
                              detail::ptr_or_null<scalar_t>(gbeta), N, C, HW, training),
                          kernels::batchnorm2d_backward_cuda(
                              n.saved[0].device_data<float>(), has_gamma ? n.saved[3].device_data<float>() : nullptr,
                              n.saved[1].device_data<float>(), n.saved[2].device_data<float>(), gy.device_data<float>(),
                              detail::device_ptr_or_null<float>(gx), detail::device_ptr_or_null<float>(ggamma),
                              detail::device_ptr_or_null<float>(gbeta), N, C, HW, training));
    };
  }
  return y;
}

}  // namespace ctg::ops
