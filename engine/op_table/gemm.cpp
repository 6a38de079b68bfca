// The table's GEMM-shaped ops: conv2d and linear (engine/op_table.h).
//
// Tolerances. gradcheck: the defaults (eps 1e-6, rtol 1e-5, atol 1e-7 in
// double). cuda vs cpu in float32: every output is a sum of K products of
// values in [-1, 1) — conv2d: K = C·KH·KW for y, O·KH·KW for gx, N·OH·OW for
// gW and gb; linear: I for y, O for gx, N for gW and gb — rounded in another
// order on each side, an error ≈ √K·u·|partial sums| (u = 6e-8). atol =
// 1e-5·√K (K the largest of them) and rtol = 1e-4 hold that with a wide
// margin, far below what a missing or doubled term (≈ 0.25) would cause.
//
// FLOPs (bench): 2 per multiply-add of each GEMM — conv2d 2·N·O·OH·OW·C·KH·KW
// for the forward and the same for each backward GEMM (input, weight); linear
// 2·N·I·O likewise.
#include <algorithm>
#include <cmath>

#include "engine/op_table/families.h"
#include "engine/ops.h"
#include "kernels/conv2d.h"
#include "kernels/linear.h"

namespace ctg::op_table {

namespace {

// ---- conv2d -----------------------------------------------------------------

struct ConvSpec {
  int64_t N, C, H, W, O, KH, KW, SH, SW, PH, PW;
  bool bias;
  bool x_grad = true;  // false: the image is a leaf (the stem), no dL/dx
};

std::string conv_desc(const ConvSpec& c) {
  std::string s = dims_str({c.N, c.C, c.H, c.W}) + " k" + std::to_string(c.KH) + "x" + std::to_string(c.KW) + " s" +
                  std::to_string(c.SH) + "x" + std::to_string(c.SW) + " p" + std::to_string(c.PH) + "x" +
                  std::to_string(c.PW) + " ->" + std::to_string(c.O) + (c.bias ? " bias" : "");
  return c.x_grad ? s : s + " no-dx";
}

// One case of conv2d at spec c; `bench_name` set: a bench case named as the layer.
// accumulate false: no gradient yet, so dL/dx is a first write into NaN-poisoned
// memory (dW and db add into zero-filled buffers).
OpCase conv_case(const ConvSpec& c, bool gradcheck, bool cuda, const std::string& bench_name = "", int count = 1,
                 bool accumulate = true) {
  const kernels::Conv2dDims d = kernels::conv2d_dims(c.N, c.C, c.H, c.W, c.O, c.KH, c.KW, c.SH, c.SW, c.PH, c.PW);
  OpCase k;
  k.desc = conv_desc(c);
  k.gradcheck = gradcheck, k.cuda = cuda, k.bench = !bench_name.empty(), k.count = count;
  k.shapes = {{c.N, c.C, c.H, c.W}, {c.O, c.C, c.KH, c.KW}};
  if (c.bias) k.shapes.push_back({c.O});
  const int64_t K = std::max({d.C * d.KH * d.KW, d.O * d.KH * d.KW, d.N * d.OH * d.OW});
  const Tol tol{1e-5 * std::sqrt((double)K), 1e-4};
  k.inputs = {{"x", c.x_grad, false, tol}, {"weight", true, false, tol}};
  if (c.bias) k.inputs.push_back({"bias", true, false, tol});
  k.cuda_out = tol;
  k.accumulate = accumulate;
  if (!accumulate) k.desc += " first-write";
  k.make = uniform_inputs(k.shapes);
  const ops::Conv2dParams p{c.SH, c.SW, c.PH, c.PW};
  // Without bias the op gets an undefined tensor (the table holds defined inputs only).
  k.call = [p](const std::vector<Tensor>& in) { return ops::conv2d(in[0], in[1], in.size() > 2 ? in[2] : Tensor(), p); };
  k.flops = 2.0 * d.N * d.O * d.OH * d.OW * d.C * d.KH * d.KW;
  k.bytes = 4.0 * (d.N * d.C * d.H * d.W + d.O * d.C * d.KH * d.KW + d.N * d.O * d.OH * d.OW);
  if (!k.bench) return k;
  k.desc = bench_name + " " + dims_str({c.N, c.C, c.H, c.W}) + " k" + std::to_string(c.KH) + "s" + std::to_string(c.SH) +
           " ->" + std::to_string(c.O);
  const double flops = k.flops;
  const bool bias = c.bias;
  const std::string shape = k.desc;
  k.bench_setup = [d, flops, bias, shape, count](BenchSetup& s) {
    const int64_t nx = d.N * d.C * d.H * d.W, nw = d.O * d.C * d.KH * d.KW, ny = d.N * d.O * d.OH * d.OW;
    DeviceBuf *x = s.buf(nx, 1), *w = s.buf(nw, 2), *b = s.buf(d.O, 3), *y = s.buf(ny, 4), *gy = s.buf(ny, 5),
              *gx = s.buf(nx, 6), *gw = s.buf(nw, 7), *gb = s.buf(d.O, 8);
    const float* bp = bias ? b->f() : nullptr;
    float* gbp = bias ? gb->f() : nullptr;
    s.rows.push_back(
        {"conv2d", shape, count, Alt::conv,
         {{"forward", flops, true, [=] { kernels::conv2d_forward_cuda(x->f(), w->f(), bp, y->f(), d); }, y},
          {"backward-input", flops, true,
           [=] { kernels::conv2d_backward_cuda(x->f(), w->f(), gy->f(), gx->f(), nullptr, nullptr, d); }, gx},
          {"backward-weight", flops, true,
           [=] { kernels::conv2d_backward_cuda(x->f(), w->f(), gy->f(), nullptr, gw->f(), gbp, d); }, gw}}});
  };
  return k;
}

std::vector<OpCase> conv2d_cases(const StudySize& st) {
  std::vector<OpCase> v;
  // gradcheck: odd sizes, a 3×2 kernel with stride (2,1) and padding (1,2);
  // kernel 5 stride 3 pad 3 (the study's CNN); 1×1 stride 1 (the in-place
  // pointwise path); 1×1 stride 2 (ResNet downsample); 7×7 stride 2 pad 3
  // (ResNet stem); 3×3 same padding.
  for (const ConvSpec& c : {ConvSpec{2, 3, 7, 9, 4, 3, 2, 2, 1, 1, 2, true}, ConvSpec{2, 2, 11, 10, 3, 5, 5, 3, 3, 3, 3, true},
                            ConvSpec{2, 3, 5, 6, 4, 1, 1, 1, 1, 0, 0, true}, ConvSpec{2, 3, 7, 8, 4, 1, 1, 2, 2, 0, 0, false},
                            ConvSpec{1, 2, 12, 11, 3, 7, 7, 2, 2, 3, 3, false}, ConvSpec{2, 3, 6, 5, 2, 3, 3, 1, 1, 1, 1, false}})
    v.push_back(conv_case(c, true, false));
  // cuda: the study's layer types at 2x3x11x13 -> 5, with and without bias: 3×3
  // same, 5×5 stride 3, the 7×7 stride 2 stem on one channel (with bias: its
  // input gradient not requested, as for the image), 1×1 stride 2, 1×1, and a
  // non-square kernel with unequal strides and padding; and 32 channels at
  // 2x24x24, where the CPU side runs Winograd F(2×2, 3×3) (conv2d_winograd_tile:
  // ≥ 32 channels, ≥ 1024 output pixels) for y, dx and dW. Each both ways: the
  // gradients accumulating onto random values, and first writes.
  for (const ConvSpec& c : {ConvSpec{2, 3, 11, 13, 5, 3, 3, 1, 1, 1, 1, false}, ConvSpec{2, 32, 24, 24, 32, 3, 3, 1, 1, 1, 1, false},
                            ConvSpec{2, 3, 11, 13, 5, 5, 5, 3, 3, 3, 3, false},
                            ConvSpec{2, 1, 11, 13, 5, 7, 7, 2, 2, 3, 3, false}, ConvSpec{2, 3, 11, 13, 5, 1, 1, 2, 2, 0, 0, false},
                            ConvSpec{2, 3, 11, 13, 5, 1, 1, 1, 1, 0, 0, false}, ConvSpec{2, 3, 11, 13, 5, 3, 2, 2, 1, 1, 0, false}})
    for (bool bias : {true, false}) {
      ConvSpec b = c;
      b.bias = bias;
      b.x_grad = !(bias && c.C == 1);
      for (bool acc : {true, false}) v.push_back(conv_case(b, false, true, "", 1, acc));
    }
  // bench: ResNet18 at batch × size², one input channel. Each 3×3 s2 p1 layer
  // halves the side (rounding up); n = how often the net runs the layer.
  const int64_t N = st.batch, S = st.size;
  const ResNetSides rs = resnet18_sides(st);
  const int64_t* h = rs.layer;
  auto layer = [&](const std::string& name, int64_t C, int64_t H, int64_t O, int64_t k, int64_t s, int64_t p, bool bias,
                   int count) { v.push_back(conv_case({N, C, H, H, O, k, k, s, s, p, p, bias}, false, false, name, count)); };
  layer("conv1", 1, S, 64, 7, 2, 3, false, 1);
  layer("layer1", 64, h[1], 64, 3, 1, 1, false, 4);
  for (int i = 2; i <= 4; ++i) {
    const int64_t wd = int64_t(64) << (i - 1);
    const std::string l = "layer" + std::to_string(i);
    layer(l + ".0.conv1", wd / 2, h[i - 1], wd, 3, 2, 1, false, 1);
    layer(l, wd, h[i], wd, 3, 1, 1, false, 3);
    layer(l + ".0.down", wd / 2, h[i - 1], wd, 1, 2, 0, false, 1);
  }
  layer("fc(head)", 512, h[4], 1, 1, 1, 0, true, 1);
  return v;
}

// ---- linear -------------------------------------------------------------------

struct LinearSpec {
  int64_t N, I, O;
  bool bias;
  bool x_grad = true, w_grad = true, b_grad = true;
};

OpCase linear_case(const LinearSpec& c, bool gradcheck, bool cuda, const std::string& bench_name = "") {
  OpCase k;
  k.desc = dims_str({c.N, c.I}) + " ->" + std::to_string(c.O) + (c.bias ? " bias" : "");
  if (!c.x_grad) k.desc += " no-dx";
  if (!c.b_grad && c.bias) k.desc += " no-db";
  k.gradcheck = gradcheck, k.cuda = cuda, k.bench = !bench_name.empty();
  k.shapes = {{c.N, c.I}, {c.O, c.I}};
  if (c.bias) k.shapes.push_back({c.O});
  const Tol tol{1e-5 * std::sqrt((double)std::max({c.N, c.I, c.O})), 1e-4};
  k.inputs = {{"x", c.x_grad, false, tol}, {"weight", c.w_grad, false, tol}};
  if (c.bias) k.inputs.push_back({"bias", c.b_grad, false, tol});
  k.cuda_out = tol;
  k.accumulate = true;
  k.make = uniform_inputs(k.shapes);
  k.call = [](const std::vector<Tensor>& in) { return ops::linear(in[0], in[1], in.size() > 2 ? in[2] : Tensor()); };
  k.flops = 2.0 * c.N * c.I * c.O;
  k.bytes = 4.0 * (c.N * c.I + c.O * c.I + c.N * c.O);
  if (!k.bench) return k;
  k.desc = bench_name + " " + std::to_string(c.N) + "x" + std::to_string(c.I) + " ->" + std::to_string(c.O);
  const double flops = k.flops;
  const int64_t N = c.N, I = c.I, O = c.O;
  const std::string shape = k.desc;
  k.bench_setup = [=](BenchSetup& s) {
    DeviceBuf *x = s.buf(N * I, 1), *w = s.buf(O * I, 2), *b = s.buf(O, 3), *y = s.buf(N * O, 4), *gy = s.buf(N * O, 5),
              *gx = s.buf(N * I, 6), *gw = s.buf(O * I, 7), *gb = s.buf(O, 8);
    s.rows.push_back(
        {"linear", shape, 1, Alt::gemm,
         {{"forward", flops, true, [=] { kernels::linear_forward_cuda(x->f(), w->f(), b->f(), y->f(), N, I, O); }, y},
          {"backward-input", flops, true,
           [=] { kernels::linear_backward_cuda(x->f(), w->f(), gy->f(), gx->f(), nullptr, nullptr, N, I, O); }, gx},
          {"backward-weight", flops, true,
           [=] { kernels::linear_backward_cuda(x->f(), w->f(), gy->f(), nullptr, gw->f(), gb->f(), N, I, O); }, gw}}});
  };
  return k;
}

std::vector<OpCase> linear_cases(const StudySize& st) {
  std::vector<OpCase> v;
  // gradcheck: x, W, b; odd N=3, I=7, O=5; without bias; only the weight
  // requires grad, batch of 1.
  v.push_back(linear_case({2, 3, 4, true}, true, false));
  v.push_back(linear_case({3, 7, 5, true}, true, false));
  v.push_back(linear_case({3, 7, 5, false}, true, false));
  v.push_back(linear_case({1, 6, 3, true, false, true, false}, true, false));
  // cuda: (2, 1000, 3) is one small output tile and a long K — the forward GEMM
  // splits K across blocks by itself (the study's Dense net in miniature).
  // Each with bias, without, and with bias but no dL/dx (gW and gb only).
  for (LinearSpec s : {LinearSpec{3, 70, 5, true}, LinearSpec{1, 1, 1, true}, LinearSpec{2, 1000, 3, true},
                       LinearSpec{67, 9, 66, true}}) {
    v.push_back(linear_case(s, false, true));
    s.bias = false;
    v.push_back(linear_case(s, false, true));
    s.bias = true, s.x_grad = false;
    v.push_back(linear_case(s, false, true));
  }
  // bench: Dense(20)'s first layer on the flattened size² image.
  v.push_back(linear_case({st.batch, st.size * st.size, 20, true}, false, false, "fc1"));
  return v;
}

}  // namespace

std::vector<OpEntry> gemm_entries() { return {{"conv2d", conv2d_cases}, {"linear", linear_cases}}; }

}  // namespace ctg::op_table
