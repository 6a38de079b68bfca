// --sync-bn: BatchNorm2d over the global batch of a data-parallel run
// (PyTorch's SyncBatchNorm; train/distributed.h). With M the number of values
// of a channel summed over every rank's shard:
//   forward   μ = (1/M) Σ_ranks Σ x,   σ² = (1/M) Σ_ranks Σ (x − μ)²   (two passes,
//             so no cancellation), invstd = 1/√(σ² + eps), y = γ·(x − μ)·invstd + β,
//             running_var gets the unbiased σ²·M/(M − 1), as PyTorch;
//   backward  with G1 = Σ_ranks Σ gy and G2 = Σ_ranks Σ gy·x̂ (the same sums
//             kernels/batchnorm2d.h takes over one batch):
//             gx = γ·invstd/M · (M·gy − G1 − x̂·G2);  gγ += Σ gy·x̂ and gβ += Σ gy
//             over this rank's values only: the gradient all-reduce sums them.
// So N ranks produce, up to the order of float sums, what one process's
// batchnorm2d produces on the whole batch. The arithmetic runs on the host
// (a CUDA tensor is copied there and back): a correct reference, not a fast
// GPU path; the per-layer statistics are 2·C + 1 numbers per collective.
#include <cmath>

#include "engine/autograd.h"
#include "engine/layers.h"
#include "train/distributed.h"

namespace ctg::dist {

namespace {

void visit(Module& m, const std::function<void(Module&)>& f) {
  f(m);
  for (auto& [name, c] : m.children()) visit(*c, f);
}

// a += b on any device (b on the host).
void add_into(Tensor& a, const std::vector<float>& b) {
  Tensor h = a.to(Device::cpu).clone();
  float* p = h.data<float>();
  for (size_t i = 0; i < b.size(); ++i) p[i] += b[i];
  a.copy_(h);
}

Tensor sync_forward(BatchNorm2d& bn, const Tensor& x, Communicator& comm, bool phantom) {
  if (x.dim() != 4 || x.dtype() != DType::f32) throw Error("sync-bn: expected a float32 [N,C,H,W] input");
  const int64_t N = x.size(0), C = x.size(1), HW = x.size(2) * x.size(3);
  const Tensor xh = x.to(Device::cpu).clone();
  const float* xp = xh.data<float>();
  auto at = [&](int64_t n, int64_t c) { return xp + (n * C + c) * HW; };
  std::vector<double> s((size_t)C + 1, 0.0);
  if (!phantom) {
    for (int64_t c = 0; c < C; ++c)
      for (int64_t n = 0; n < N; ++n)
        for (int64_t i = 0; i < HW; ++i) s[(size_t)c] += at(n, c)[i];
    s[(size_t)C] = (double)(N * HW);
  }
  comm.allreduce_sum(s.data(), (int64_t)s.size());
  const double M = s[(size_t)C];
  if (M <= 1) throw Error("sync-bn: expected more than 1 value per channel over the ranks when training");
  std::vector<double> mean((size_t)C), var((size_t)C, 0.0), invstd((size_t)C);
  for (int64_t c = 0; c < C; ++c) mean[(size_t)c] = s[(size_t)c] / M;
  if (!phantom)
    for (int64_t c = 0; c < C; ++c)
      for (int64_t n = 0; n < N; ++n)
        for (int64_t i = 0; i < HW; ++i) {
          const double d = at(n, c)[i] - mean[(size_t)c];
          var[(size_t)c] += d * d;
        }
  comm.allreduce_sum(var.data(), C);
  for (int64_t c = 0; c < C; ++c) {
    var[(size_t)c] /= M;
    invstd[(size_t)c] = 1.0 / std::sqrt(var[(size_t)c] + bn.eps);
  }
  const std::vector<double> gamma = bn.weight.to_vector(), beta = bn.bias.to_vector();
  Tensor yh = Tensor::empty(x.shape());
  float* yp = yh.data<float>();
  for (int64_t n = 0; n < N; ++n)
    for (int64_t c = 0; c < C; ++c)
      for (int64_t i = 0; i < HW; ++i)
        yp[(n * C + c) * HW + i] =
            (float)((at(n, c)[i] - mean[(size_t)c]) * invstd[(size_t)c] * gamma[(size_t)c] + beta[(size_t)c]);
  if (bn.running_mean.defined()) {  // the same update on every rank: the statistics are global
    std::vector<double> rm = bn.running_mean.to_vector(), rv = bn.running_var.to_vector();
    for (int64_t c = 0; c < C; ++c) {
      rm[(size_t)c] = (1 - bn.momentum) * rm[(size_t)c] + bn.momentum * mean[(size_t)c];
      rv[(size_t)c] = (1 - bn.momentum) * rv[(size_t)c] + bn.momentum * var[(size_t)c] * M / (M - 1);
    }
    bn.running_mean.copy_(Tensor::from_vector(rm, {C}));
    bn.running_var.copy_(Tensor::from_vector(rv, {C}));
  }
  Tensor y = x.device() == Device::cpu ? yh : yh.to(x.device());
  if (!autograd::needs_grad({&x, &bn.weight, &bn.bias})) return y;
  auto node = autograd::record("sync_batchnorm2d", y, {x, bn.weight, bn.bias});
  Communicator* cp = &comm;
  node->backward = [xh, mean, invstd, gamma, N, C, HW, M, cp](Node& nd, const Tensor& gy) {
    const Tensor gh = gy.to(Device::cpu).clone();
    const float* g = gh.data<float>();
    const float* xp = xh.data<float>();
    auto xhat = [&](int64_t k, int64_t c) { return (xp[k] - mean[(size_t)c]) * invstd[(size_t)c]; };
    std::vector<double> sums((size_t)(2 * C), 0.0);  // Σgy, Σgy·x̂ per channel, this rank
    for (int64_t n = 0; n < N; ++n)
      for (int64_t c = 0; c < C; ++c)
        for (int64_t i = 0; i < HW; ++i) {
          const int64_t k = (n * C + c) * HW + i;
          sums[(size_t)c] += g[k];
          sums[(size_t)(C + c)] += g[k] * xhat(k, c);
        }
    Tensor ggamma = autograd::input_grad(nd, 1), gbeta = autograd::input_grad(nd, 2);
    if (ggamma.defined()) add_into(ggamma, std::vector<float>(sums.begin() + C, sums.end()));
    if (gbeta.defined()) add_into(gbeta, std::vector<float>(sums.begin(), sums.begin() + C));
    cp->allreduce_sum(sums.data(), 2 * C);  // every rank: its x's gradient needs the global sums
    Tensor gx = autograd::input_grad(nd, 0);
    if (!gx.defined()) return;
    std::vector<float> d((size_t)(N * C * HW));
    for (int64_t n = 0; n < N; ++n)
      for (int64_t c = 0; c < C; ++c) {
        const double f = gamma[(size_t)c] * invstd[(size_t)c] / M;
        for (int64_t i = 0; i < HW; ++i) {
          const int64_t k = (n * C + c) * HW + i;
          d[(size_t)k] = (float)(f * (M * g[k] - sums[(size_t)c] - xhat(k, c) * sums[(size_t)(C + c)]));
        }
      }
    add_into(gx, d);
  };
  return y;
}

}  // namespace

void enable_sync_batchnorm(Module& net, std::shared_ptr<Communicator> c, const bool* phantom) {
  visit(net, [&](Module& m) {
    if (auto* bn = dynamic_cast<BatchNorm2d*>(&m))
      bn->sync_forward = [c, phantom](BatchNorm2d& b, const Tensor& x) { return sync_forward(b, x, *c, *phantom); };
  });
}

}  // namespace ctg::dist
