// conv2d: the CUDA kernels (kernels/cuda/conv2d.cu: im2col + our SGEMM, gather
// fold, bias reduction) vs the CPU entry points in float32 under a CUDA tuning
// the op never uses by default: a scratch so small that every image is its own
// im2col group. The default (all images in one group), through ops::conv2d on
// the same layer types, is the op table's (engine/op_table/gemm.cpp, run by
// tests/op_table_cuda.cpp). Gradients start from random values: backward must add.
//
// Tolerance: each output is a sum of K products of values in [-1, 1), K being
// C·KH·KW for y, O·KH·KW for gx, N·OH·OW for gW and gb; both sides round in
// float32 in different orders, an error ≈ √K·u·|partial sums| (u = 6e-8). We
// allow atol = 1e-5·√K with K the largest of these, rtol = 1e-4.
#include <algorithm>
#include <cmath>

#include "kernels/conv2d.h"
#include "tests/cuda_check.h"

using namespace ctg;

namespace {

using test::ptr;

// The study's layer types, a 1×1 pointwise and a non-square kernel with
// unequal strides and padding.
std::vector<test::ConvConf> confs() {
  std::vector<test::ConvConf> v = test::study_conv_layers();
  v.push_back({2, 3, 11, 13, 5, 1, 1, 1, 1, 0, 0, false, "k1 s1 p0 (pointwise)"});
  v.push_back({2, 3, 11, 13, 5, 3, 2, 2, 1, 1, 0, false, "k(3,2) s(2,1) p(1,0)"});
  return v;
}

double atol_for(const kernels::Conv2dDims& d) {
  const int64_t K = std::max({d.C * d.KH * d.KW, d.O * d.KH * d.KW, d.N * d.OH * d.OW});
  return 1e-5 * std::sqrt((double)K);
}

struct Inputs {
  Tensor x, w, b, gy, gx0, gw0, gb0;  // b, gx0, gb0 may be undefined
};

// y, gx, gW, gb from one forward and one backward on `dev`.
std::vector<Tensor> run_kernels(const Inputs& in, const kernels::Conv2dDims& d, Device dev,
                                const kernels::Conv2dCudaTuning& tune = {}) {
  auto on = [&](const Tensor& t) { return test::fresh_on(t, dev); };
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

TEST_CASE("cuda vs cpu: conv2d kernels with one image per im2col group (accumulating backward)") {
  std::mt19937_64 rng(31);
  for (const test::ConvConf& c : confs())
    for (bool bias : {true, false}) {
      const kernels::Conv2dDims d = c.dims();
      // The stem's input gradient is rarely needed (the image is a leaf): run it
      // without gx once, as the backward then does.
      const bool want_gx = !(bias && c.C == 1);
      Inputs in{test::rand_f32({d.N, d.C, d.H, d.W}, rng), test::rand_f32({d.O, d.C, d.KH, d.KW}, rng),
                bias ? test::rand_f32({d.O}, rng) : Tensor(), test::rand_f32({d.N, d.O, d.OH, d.OW}, rng),
                want_gx ? test::rand_f32({d.N, d.C, d.H, d.W}, rng) : Tensor(),
                test::rand_f32({d.O, d.C, d.KH, d.KW}, rng), bias ? test::rand_f32({d.O}, rng) : Tensor()};
      auto want = run_kernels(in, d, Device::cpu);
      CAPTURE(c.name); CAPTURE(bias);
      test::for_each_schedule([&] {
        auto got = run_kernels(in, d, Device::cuda, kernels::Conv2dCudaTuning{1});
        const char* names[] = {"conv2d forward y", "conv2d backward gx", "conv2d backward gW", "conv2d backward gb"};
        for (int i = 0; i < 4; ++i)
          if (want[i].defined()) test::check_close(got[i], want[i], atol_for(d), 1e-4, names[i]);
      });
    }
}
