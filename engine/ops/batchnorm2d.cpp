// Autograd glue for batchnorm2d and batchnorm2d_relu (kernels in kernels/batchnorm2d.h,
// kernels/batchnorm2d_relu.h).
#include "engine/ops.h"
#include "engine/ops/common.h"
#include "kernels/batchnorm2d.h"
#include "kernels/batchnorm2d_relu.h"

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

// batchnorm2d and batchnorm2d_relu share their checks, statistics and saved
// tensors; the fused op also saves its output, whose sign is ReLU's mask.
Tensor batchnorm2d_impl(const char* name, bool relu, const Tensor& x, const Tensor& gamma, const Tensor& beta,
                        Tensor& running_mean, Tensor& running_var, bool training, double momentum, double eps) {
  trace::ForwardOp op(name);
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
  if (relu)
    CTG_KERNEL(batchnorm2d_relu_forward, x, x, gamma, beta, running_mean, running_var, y, mean, invstd, N, C, HW,
               training, momentum, eps);
  else
    CTG_KERNEL(batchnorm2d_forward, x, x, gamma, beta, running_mean, running_var, y, mean, invstd, N, C, HW,
               training, momentum, eps);

  if (autograd::needs_grad({&x, &gamma, &beta})) {
    auto node = autograd::record(name, y, {x, gamma, beta});
    node->save("x", x);
    // The batch statistics the forward normalised with (per-batch buffers of
    // this op, counted with the activations).
    node->save_buffer("mean", mean);
    node->save_buffer("invstd", invstd);
    if (gamma.defined()) node->save("gamma", gamma);
    if (relu) node->save("y", y);  // the mask is y > 0
    node->backward = [N, C, HW, training, relu](Node& n, const Tensor& gy) {
      // gx is written in full (a first write stores it: no zero-fill pass);
      // gγ, gβ accumulate.
      const autograd::GradOut gx = autograd::input_grad_out(n, 0);
      Tensor ggamma = autograd::input_grad(n, 1), gbeta = autograd::input_grad(n, 2);
      const Tensor gamma = n.has_saved("gamma") ? n.saved_tensor("gamma") : Tensor();  // undefined: γ = 1
      const Tensor &x = n.saved_tensor("x"), &mean = n.saved_tensor("mean"), &invstd = n.saved_tensor("invstd");
      if (relu)
        CTG_KERNEL(batchnorm2d_relu_backward, gy, x, gamma, mean, invstd, n.saved_tensor("y"), gy, gx.grad, ggamma,
                   gbeta, N, C, HW, training, gx.accumulate);
      else
        CTG_KERNEL(batchnorm2d_backward, gy, x, gamma, mean, invstd, gy, gx.grad, ggamma, gbeta, N, C, HW, training,
                   gx.accumulate);
    };
  }
  return y;
}

}  // namespace

Tensor batchnorm2d(const Tensor& x, const Tensor& gamma, const Tensor& beta, Tensor& running_mean,
                   Tensor& running_var, bool training, double momentum, double eps) {
  return batchnorm2d_impl("batchnorm2d", false, x, gamma, beta, running_mean, running_var, training, momentum, eps);
}

Tensor batchnorm2d_relu(const Tensor& x, const Tensor& gamma, const Tensor& beta, Tensor& running_mean,
                        Tensor& running_var, bool training, double momentum, double eps) {
  return batchnorm2d_impl("batchnorm2d_relu", true, x, gamma, beta, running_mean, running_var, training, momentum,
                          eps);
}

}  // namespace ctg::ops
