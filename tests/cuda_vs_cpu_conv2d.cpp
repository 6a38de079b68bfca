// conv2d: CUDA (kernels/cuda/conv2d.cu: im2col + our SGEMM, gather fold,
// bias reduction) vs the CPU reference (kernels/cpu/conv2d.cpp) in float32,
// forward and backward, with and without bias, on the study's layer types at
// small odd sizes: 3×3 same, the CNN's 5×5 stride 3, ResNet's 7×7 stride 2 stem
// on one channel, 1×1 stride 2 downsample, 1×1 pointwise, and a non-square
// kernel with unequal strides and padding. Each runs with the default scratch
// (all images in one group) and with a scratch so small that every image is
// its own group. Gradients start from random values: backward must add to them.
//
// Tolerance: each output is a sum of K products of values in [-1, 1), K being
// C·KH·KW for y, O·KH·KW for gx, N·OH·OW for gW and gb; both sides round in
// float32 in different orders, an error ≈ √K·u·|partial sums| (u = 6e-8). We
// allow atol = 1e-5·√K with K the largest of these, rtol = 1e-4: a wide margin
// over rounding, far below what a missing or doubled term (≈ 0.25) would cause.
#include <algorithm>
#include <cmath>

#include "engine/autograd.h"
#include "engine/ops.h"
#include "kernels/conv2d.h"
#include "tests/cuda_check.h"

using namespace ctg;

namespace {

struct Conf {
  const char* name;
  int64_t N, C, H, W, O, KH, KW, SH, SW, PH, PW;
};

kernels::Conv2dDims dims_of(const Conf& c) {
  return {c.N, c.C, c.H, c.W, c.O, c.KH, c.KW, c.SH, c.SW, c.PH, c.PW,
          (c.H + 2 * c.PH - c.KH) / c.SH + 1, (c.W + 2 * c.PW - c.KW) / c.SW + 1};
}

const Conf kConfs[] = {
    {"k3 s1 p1", 2, 3, 11, 13, 5, 3, 3, 1, 1, 1, 1},
    {"k5 s3 p3 (the study's CNN)", 2, 3, 11, 13, 5, 5, 5, 3, 3, 3, 3},
    {"k7 s2 p3 C=1 (ResNet stem)", 2, 1, 11, 13, 5, 7, 7, 2, 2, 3, 3},
    {"k1 s2 p0 (downsample)", 2, 3, 11, 13, 5, 1, 1, 2, 2, 0, 0},
    {"k1 s1 p0 (pointwise)", 2, 3, 11, 13, 5, 1, 1, 1, 1, 0, 0},
    {"k(3,2) s(2,1) p(1,0)", 2, 3, 11, 13, 5, 3, 2, 2, 1, 1, 0},
};

double atol_for(const kernels::Conv2dDims& d) {
  const int64_t K = std::max({d.C * d.KH * d.KW, d.O * d.KH * d.KW, d.N * d.OH * d.OW});
  return 1e-5 * std::sqrt((double)K);
}

// The tensor's elements for the kernel of its device (nullptr when undefined).
float* ptr(const Tensor& t) {
  return !t.defined() ? nullptr : t.device() == Device::cuda ? t.device_data<float>() : t.data<float>();
}

struct Inputs {
  Tensor x, w, b, gy, gx0, gw0, gb0;  // b, gx0, gb0 may be undefined
};

// y, gx, gW, gb from one forward and one backward on `dev`.
std::vector<Tensor> run_kernels(const Inputs& in, const kernels::Conv2dDims& d, Device dev,
                                const kernels::Conv2dCudaTuning& tune = {}) {
  auto on = [&](const Tensor& t) { return t.defined() ? test::fresh_on(t, dev) : Tensor(); };
  Tensor x = on(in.x), w = on(in.w), b = on(in.b), gy = on(in.gy), gx = on(in.gx0), gw = on(in.gw0), gb = on(in.gb0);
  Tensor y = Tensor::empty({d.N, d.O, d.OH, d.OW}, DType::f32, dev);
  if (dev == Device::cuda) {
    kernels::conv2d_forward_cuda(ptr(x), ptr(w), ptr(b), ptr(y), d, tune);
    kernels::conv2d_backward_cuda(ptr(x), ptr(w), ptr(gy), ptr(gx), ptr(gw), ptr(gb), d, tune);
  } else {
    kernels::conv2d_forward_cpu<float>(ptr(x), ptr(w), ptr(b), ptr(y), d);
    kernels::conv2d_backward_cpu<float>(ptr(x), ptr(w), ptr(gy), ptr(gx), ptr(gw), ptr(gb), d);
  }
  std::vector<Tensor> out;
  for (const Tensor& t : {y, gx, gw, gb}) out.push_back(t.defined() ? t.to(Device::cpu) : Tensor());
  return out;
}

}  // namespace

TEST_CASE("cuda vs cpu: conv2d kernels forward and backward (accumulating) on the study's layer types") {
  std::mt19937_64 rng(31);
  for (const Conf& c : kConfs)
    for (bool bias : {true, false}) {
      const kernels::Conv2dDims d = dims_of(c);
      // The stem's input gradient is rarely needed (the image is a leaf): run it
      // without gx once, as the backward then does.
      const bool want_gx = !(bias && c.C == 1);
      Inputs in{test::rand_f32({d.N, d.C, d.H, d.W}, rng), test::rand_f32({d.O, d.C, d.KH, d.KW}, rng),
                bias ? test::rand_f32({d.O}, rng) : Tensor(), test::rand_f32({d.N, d.O, d.OH, d.OW}, rng),
                want_gx ? test::rand_f32({d.N, d.C, d.H, d.W}, rng) : Tensor(),
                test::rand_f32({d.O, d.C, d.KH, d.KW}, rng), bias ? test::rand_f32({d.O}, rng) : Tensor()};
      auto want = run_kernels(in, d, Device::cpu);
      CAPTURE(c.name); CAPTURE(bias);
      for (int64_t max_scratch : {int64_t(1) << 26, int64_t(1)}) {  // one group; one image per group
        CAPTURE(max_scratch);
        test::for_each_schedule([&] {
          auto got = run_kernels(in, d, Device::cuda, kernels::Conv2dCudaTuning{max_scratch});
          const char* names[] = {"conv2d forward y", "conv2d backward gx", "conv2d backward gW",
                                 "conv2d backward gb"};
          for (int i = 0; i < 4; ++i)
            if (want[i].defined()) test::check_close(got[i], want[i], atol_for(d), 1e-4, names[i]);
        });
      }
    }
}

TEST_CASE("cuda vs cpu: ops::conv2d dispatches forward and backward to the CUDA kernels") {
  std::mt19937_64 rng(32);
  const Conf& c = kConfs[1];  // k5 s3 p3
  const kernels::Conv2dDims d = dims_of(c);
  ops::Conv2dParams prm;
  prm.stride_h = c.SH, prm.stride_w = c.SW, prm.pad_h = c.PH, prm.pad_w = c.PW;
  Tensor x = test::rand_f32({d.N, d.C, d.H, d.W}, rng), w = test::rand_f32({d.O, d.C, d.KH, d.KW}, rng);
  Tensor b = test::rand_f32({d.O}, rng), cw = test::rand_f32({d.N, d.O, d.OH, d.OW}, rng, 0.5, 1.5);
  auto run = [&](Device dev) {
    Tensor xd = test::fresh_on(x, dev).set_requires_grad(true), wd = test::fresh_on(w, dev).set_requires_grad(true);
    Tensor bd = test::fresh_on(b, dev).set_requires_grad(true);
    Tensor y = ops::conv2d(xd, wd, bd, prm);
    CHECK(y.device() == dev);
    autograd::backward(y, cw.to(dev));  // L = Σ c·y
    return std::vector<Tensor>{y.to(Device::cpu), xd.grad().to(Device::cpu), wd.grad().to(Device::cpu),
                               bd.grad().to(Device::cpu)};
  };
  auto want = run(Device::cpu);
  test::for_each_schedule([&] {
    auto got = run(Device::cuda);
    const char* names[] = {"ops::conv2d y", "ops::conv2d dL/dx", "ops::conv2d dL/dW", "ops::conv2d dL/db"};
    for (int i = 0; i < 4; ++i) test::check_close(got[i], want[i], atol_for(d), 1e-4, names[i]);
  });
}
