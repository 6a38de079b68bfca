// The table's elementwise ops, views and the loss: relu, add, sigmoid,
// dropout, flatten, bce_with_logits (engine/op_table.h).
//
// cuda vs cpu tolerances (float32): relu is exact (a comparison and a copy);
// add, elementwise float math that differs only in rounding order: atol 1e-6,
// rtol 1e-6; exp-based kernels (sigmoid, the loss): rtol 1e-5 (expf on the GPU
// is within 2 ulp); dropout draws the same mask from the same counter-based hash
// on both devices, so only the scaling rounds: atol 1e-7, rtol 1e-6.
// cuda shapes {1}, {257}, 3x5x7x11 and 2x3x37x41 are no multiples of the
// 256-thread block; bce_with_logits' 1000 values need more than one pass of it.
//
// Bytes (bench, float32): relu forward reads x and writes y (8 per element),
// backward reads y, gy and gx and writes gx (16); add forward reads a, b and
// writes y (12), backward reads gy and the gradient and writes it (12); the
// fused add+ReLU backward reads y, gy and both gradients and writes both (28).
#include "engine/op_table/families.h"
#include "engine/ops.h"
#include "kernels/add.h"
#include "kernels/add_relu.h"
#include "kernels/relu.h"

namespace ctg::op_table {

namespace {

using MakeFn = std::function<Tensor(const Shape&, std::mt19937_64&, DType)>;

// A one-input elementwise case: x made by `make`, y = f(x).
OpCase unary_case(const Shape& s, bool gradcheck, bool cuda, const MakeFn& make,
                  const std::function<Tensor(const Tensor&)>& f, Tol tol, const std::string& note = "") {
  OpCase k;
  k.desc = dims_str(s) + note;
  k.gradcheck = gradcheck, k.cuda = cuda;
  k.shapes = {s};
  k.inputs = {{"x", true, false, tol}};
  k.cuda_out = tol;
  k.make = [s, make](std::mt19937_64& rng, DType dt, Device dev) { return std::vector<Tensor>{make(s, rng, dt).to(dev)}; };
  k.call = [f](const std::vector<Tensor>& in) { return f(in[0]); };
  k.bytes = 8.0 * (double)shape_numel(s);
  return k;
}

MakeFn uniform_in(double lo, double hi) {
  return [lo, hi](const Shape& s, std::mt19937_64& rng, DType dt) { return uniform(s, rng, lo, hi, dt); };
}

const std::vector<Shape> kCudaShapes = {{1}, {257}, {3, 5, 7, 11}, {2, 3, 37, 41}};

// ---- relu ---------------------------------------------------------------------

std::vector<OpCase> relu_cases(const StudySize& st) {
  auto relu = [](const Tensor& x) { return ops::relu(x); };
  std::vector<OpCase> v;
  // gradcheck: random signs, magnitudes ≥ 0.05 ≫ ε (away from the kink at 0).
  v.push_back(unary_case({2, 3, 5, 7}, true, false,
                         [](const Shape& s, std::mt19937_64& rng, DType dt) {
                           return signed_away_from_zero(s, rng, 0.05, 1.0, dt);
                         },
                         relu, {0, 0}, " signs away from 0"));
  for (const Shape& s : kCudaShapes) v.push_back(unary_case(s, false, true, uniform_in(-1, 1), relu, {0, 0}));
  // bench: the stem's ReLU, then four per layer (two per basic block).
  const ResNetSides rs = resnet18_sides(st);
  for (int i = 0; i <= 4; ++i) {
    const int64_t C = i == 0 ? 64 : int64_t(32) << i, H = i == 0 ? rs.stem : rs.layer[i], n = st.batch * C * H * H;
    OpCase b = unary_case({st.batch, C, H, H}, false, false, uniform_in(-1, 1), relu, {0, 0});
    b.bench = true, b.count = i == 0 ? 1 : 4;
    const std::string shape = b.desc;
    const int count = b.count;
    b.bench_setup = [=](BenchSetup& s) {
      DeviceBuf *u = s.buf(n, 1), *g = s.buf(n, 2), *y = s.buf(n, 3), *gx = s.buf(n, 4);
      s.rows.push_back({"relu", shape, count, Alt::none,
                        {{"forward", 8.0 * n, false, [=] { kernels::relu_forward_cuda(u->f(), y->f(), n); }},
                         {"backward", 12.0 * n, false, [=] { kernels::relu_backward_cuda(y->f(), g->f(), gx->f(), n, false); }}}});
    };
    v.push_back(b);
  }
  return v;
}

// ---- add ----------------------------------------------------------------------

OpCase add_case(const Shape& s, bool gradcheck, bool cuda, bool a_twice) {
  OpCase k;
  k.desc = dims_str(s) + (a_twice ? " (a+b)+a" : "");
  k.gradcheck = gradcheck, k.cuda = cuda;
  k.shapes = {s, s};
  k.inputs = {{"a", true, false, {1e-6, 1e-6}}, {"b", true, false, {1e-6, 1e-6}}};
  k.cuda_out = {1e-6, 1e-6};
  k.make = [s](std::mt19937_64& rng, DType dt, Device dev) {
    Tensor a = uniform(s, rng, -1, 1, dt), b = uniform(s, rng, -1, 1, dt);
    return std::vector<Tensor>{a.to(dev), b.to(dev)};
  };
  // (a + b) + a: a used twice, its gradient is 2c (the ResNet skip connection's case).
  k.call = [a_twice](const std::vector<Tensor>& in) {
    Tensor y = ops::add(in[0], in[1]);
    return a_twice ? ops::add(y, in[0]) : y;
  };
  k.bytes = 12.0 * (double)shape_numel(s);
  return k;
}

std::vector<OpCase> add_cases(const StudySize& st) {
  std::vector<OpCase> v{add_case({2, 3, 4, 5}, true, false, false), add_case({2, 3, 17, 19}, false, true, true)};
  // bench: the two residual adds of each layer, and the add fused with the ReLU after it (issue 15).
  const ResNetSides rs = resnet18_sides(st);
  for (int i = 1; i <= 4; ++i) {
    const int64_t C = int64_t(32) << i, H = rs.layer[i], n = st.batch * C * H * H;
    OpCase b = add_case({st.batch, C, H, H}, false, false, false);
    b.bench = true, b.count = 2;
    const std::string shape = b.desc;
    b.bench_setup = [=](BenchSetup& s) {
      DeviceBuf *u = s.buf(n, 1), *g = s.buf(n, 2), *y = s.buf(n, 3), *gx = s.buf(n, 4);
      s.rows.push_back({"add", shape, 2, Alt::none,
                        {{"forward", 12.0 * n, false, [=] { kernels::add_forward_cuda(u->f(), g->f(), y->f(), n); }},
                         {"backward", 12.0 * n, false, [=] { kernels::add_backward_cuda(g->f(), gx->f(), n); }},
                         {"add+relu fwd", 12.0 * n, false, [=] { kernels::add_relu_forward_cuda(u->f(), g->f(), y->f(), n); }},
                         {"add+relu bwd", 16.0 * n, false,  // first writes, as in the net
                          [=] { kernels::add_relu_backward_cuda(y->f(), g->f(), gx->f(), u->f(), n, false, false); }}}});
    };
    v.push_back(b);
  }
  return v;
}

// add_relu: relu(a + b) fused (kernels/add_relu.h); a + b stays away from 0 by
// more than the finite differences' ε for these seeds. Its bench rows are
// add's "add+relu" ones.
std::vector<OpCase> add_relu_cases(const StudySize&) {
  std::vector<OpCase> v;
  for (auto [s, gradcheck] : {std::pair<Shape, bool>{{2, 3, 4, 5}, true}, {{2, 3, 17, 19}, false}}) {
    OpCase k = add_case(s, gradcheck, !gradcheck, false);
    k.call = [](const std::vector<Tensor>& in) { return ops::add_relu(in[0], in[1]); };
    v.push_back(k);
  }
  // a read twice, as a ResNet block's input: relu(relu(a + b) + a) — the outer
  // node's first write into a's gradient, then the inner node's add — and
  // relu(a + a), one buffer behind both of the node's gradients.
  for (bool gradcheck : {true, false}) {
    const Shape s = gradcheck ? Shape{2, 3, 4, 5} : Shape{2, 3, 17, 19};
    OpCase k = add_case(s, gradcheck, !gradcheck, false);
    k.desc += " relu(relu(a+b)+a)";
    k.call = [](const std::vector<Tensor>& in) { return ops::add_relu(ops::add_relu(in[0], in[1]), in[0]); };
    v.push_back(k);
    OpCase t = add_case(s, gradcheck, !gradcheck, false);
    t.desc += " relu(a+a)";
    t.inputs.resize(1);
    t.shapes.resize(1);
    t.make = [s](std::mt19937_64& rng, DType dt, Device dev) { return std::vector<Tensor>{uniform(s, rng, -1, 1, dt).to(dev)}; };
    t.call = [](const std::vector<Tensor>& in) { return ops::add_relu(in[0], in[0]); };
    v.push_back(t);
  }
  return v;
}

// ---- sigmoid, dropout -----------------------------------------------------------

std::vector<OpCase> sigmoid_cases(const StudySize&) {
  auto sigmoid = [](const Tensor& x) { return ops::sigmoid(x); };
  std::vector<OpCase> v{unary_case({2, 3, 5, 7}, true, false, uniform_in(-4, 4), sigmoid, {1e-7, 1e-5})};
  // cuda: large |x| too (σ saturates; no NaN/inf on either side).
  for (const Shape& s : kCudaShapes) v.push_back(unary_case(s, false, true, uniform_in(-30, 30), sigmoid, {1e-7, 1e-5}));
  return v;
}

std::vector<OpCase> dropout_cases(const StudySize&) {
  // A fixed seed: the mask is a function of (seed, index), the same in every
  // call of the finite differences and on both devices.
  std::vector<OpCase> v{unary_case({3, 5, 7}, true, false, uniform_in(-1, 1),
                                   [](const Tensor& x) { return ops::dropout(x, 0.35, true, 2024); }, {1e-7, 1e-6},
                                   " p0.35")};
  for (const Shape& s : kCudaShapes)
    v.push_back(unary_case(s, false, true, uniform_in(-1, 1),
                           [](const Tensor& x) { return ops::dropout(x, 0.3, true, 1234); }, {1e-7, 1e-6}, " p0.3"));
  return v;
}

// ---- flatten (a view) -------------------------------------------------------------

std::vector<OpCase> flatten_cases(const StudySize&) {
  OpCase f = unary_case({2, 3, 2, 5}, true, false, uniform_in(-1, 1), [](const Tensor& x) { return ops::flatten(x); },
                        {0, 0});
  f.bytes = 0;  // a view: nothing moves
  // Composed with non-trivial ops, so the view's gradient is not just all c.
  OpCase g = f;
  g.desc = "2x3x2x5 sigmoid(linear(flatten(x), W)) W 4x30";
  g.shapes = {{2, 3, 2, 5}, {4, 30}};
  // float32 (tuned vs reference): a 30-term product sum, then σ: rounding only.
  g.inputs = {{"x", true, false, {1e-6, 1e-5}}, {"weight", true, false, {1e-6, 1e-5}}};
  g.cuda_out = {1e-6, 1e-5};
  g.make = [](std::mt19937_64& rng, DType dt, Device dev) {
    Tensor x = uniform({2, 3, 2, 5}, rng, -1, 1, dt), w = uniform({4, 30}, rng, -1, 1, dt);
    return std::vector<Tensor>{x.to(dev), w.to(dev)};
  };
  g.call = [](const std::vector<Tensor>& in) {
    return ops::sigmoid(ops::linear(ops::flatten(in[0]), in[1], Tensor()).reshape({-1}));
  };
  return {f, g};
}

// ---- bce_with_logits --------------------------------------------------------------

OpCase bce_case(int64_t n, int64_t m, bool gradcheck, bool cuda, double zmax, bool binary) {
  OpCase k;
  k.desc = dims_str({n, m}) + (binary ? " binary targets" : " soft targets");
  k.gradcheck = gradcheck, k.cuda = cuda;
  k.shapes = {{n, m}, {n, m}};
  // The loss is a mean over a block reduction; its gradient (σ(z) − y)/n is tiny: atol 1e-9.
  k.inputs = {{"logits", true, false, {1e-9, 1e-5}}, {"targets", false, false, {}}};
  k.cuda_out = {1e-6, 1e-5};
  k.make = [n, m, zmax, binary](std::mt19937_64& rng, DType dt, Device dev) {
    Tensor z = uniform({n, m}, rng, -zmax, zmax, dt);
    Tensor y = binary ? bernoulli({n, m}, rng, dt) : uniform({n, m}, rng, 0, 1, dt);
    return std::vector<Tensor>{z.to(dev), y.to(dev)};
  };
  k.call = [](const std::vector<Tensor>& in) { return ops::bce_with_logits(in[0], in[1]); };
  k.bytes = 8.0 * (double)(n * m);
  return k;
}

std::vector<OpCase> bce_cases(const StudySize&) {
  std::vector<OpCase> v{bce_case(5, 3, true, false, 4, false)};
  // cuda: logits up to ±40 (log1p(e^−|z|) underflows gracefully), 0/1 targets.
  for (int64_t n : {1, 15, 300, 1000}) v.push_back(bce_case(n, 1, false, true, 40, true));
  return v;
}

}  // namespace

std::vector<OpEntry> elementwise_entries() {
  return {{"relu", relu_cases},       {"add", add_cases},         {"add_relu", add_relu_cases},         {"sigmoid", sigmoid_cases},
          {"dropout", dropout_cases}, {"flatten", flatten_cases}, {"bce_with_logits", bce_cases}};
}

}  // namespace ctg::op_table
