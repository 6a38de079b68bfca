// The table's per-channel and pooling ops: batchnorm2d, maxpool2d,
// global_maxpool (engine/op_table.h).
//
// cuda vs cpu tolerances (float32):
// - batchnorm2d: mean, invstd and the running statistics are summed in double
//   on both devices and rounded once to float: atol 1e-7, rtol 1e-6. y is
//   x·scale + bias with scale/bias formed in float on the GPU (double on the
//   CPU), a few ulp of |x·scale| ≤ ~30: atol 2e-5, rtol 1e-5. gx = γ·invstd·(gy −
//   mean terms), float terms that largely cancel: atol 2e-5, rtol 1e-5. gγ, gβ:
//   sums over N·H·W in double on both sides, rounded once, then added to the
//   old gradient in float: atol 1e-5, rtol 1e-5.
// - maxpool2d, global_maxpool: none. The forward picks one input value by the
//   same rule in the same window order and the backward adds each gy into one
//   gx value in the CPU's order, so y and gx are bit-identical.
// Inputs stay away from the kinks: max pooling gets distinct values (no
// near-ties within ε), so its numeric derivative is defined.
//
// Bytes (bench, float32): batchnorm2d training forward reads x twice and
// writes y (12 per element), backward reads x and gy twice and reads and
// writes gx (24); maxpool2d forward reads x and writes y and the int32 argmax,
// backward reads argmax and gy and reads and writes gx.
#include "engine/op_table/families.h"
#include "engine/ops.h"
#include "kernels/batchnorm2d.h"
#include "kernels/maxpool2d.h"

namespace ctg::op_table {

namespace {

// ---- batchnorm2d ------------------------------------------------------------

constexpr double kMomentum = 0.1, kEps = 1e-5;

struct BnSpec {
  Shape s;
  bool training = true;
  bool affine = true, stats = true;      // gamma/beta present; running statistics present
  bool x_grad = true, params_grad = true;
  double lo = -1, hi = 1;                // x's range
  const char* note = "";
  bool relu = false;                     // batchnorm2d_relu: the fused BN+ReLU
};

OpCase bn_case(const BnSpec& b, bool gradcheck, bool cuda) {
  OpCase k;
  k.desc = dims_str(b.s) + (b.training ? " train" : " eval") + (b.affine ? "" : " no-affine") +
           (b.stats ? "" : " no-stats") + (b.x_grad ? "" : " no-dx") + (b.affine && !b.params_grad ? " dx-only" : "") +
           b.note;
  k.gradcheck = gradcheck, k.cuda = cuda;
  const Shape cs{b.s[1]};
  k.shapes = {b.s};
  k.inputs = {{"x", b.x_grad, false, {2e-5, 1e-5}}};
  if (b.affine) {
    k.shapes.insert(k.shapes.end(), {cs, cs});
    k.inputs.push_back({"gamma", b.params_grad, false, {1e-5, 1e-5}});
    k.inputs.push_back({"beta", b.params_grad, false, {1e-5, 1e-5}});
  }
  if (b.stats) {
    k.shapes.insert(k.shapes.end(), {cs, cs});
    k.inputs.push_back({"running_mean", false, true, {1e-7, 1e-6}});
    k.inputs.push_back({"running_var", false, true, {1e-7, 1e-6}});
  }
  k.cuda_out = {2e-5, 1e-5};
  k.accumulate = true;
  k.make = [b, cs](std::mt19937_64& rng, DType dt, Device dev) {
    std::vector<Tensor> v{uniform(b.s, rng, b.lo, b.hi, dt)};
    if (b.affine) v.push_back(uniform(cs, rng, 0.5, 1.5, dt)), v.push_back(uniform(cs, rng, -1, 1, dt));
    if (b.stats) v.push_back(uniform(cs, rng, -1, 1, dt)), v.push_back(uniform(cs, rng, 0.5, 2, dt));
    for (Tensor& t : v) t = t.to(dev);
    return v;
  };
  const bool training = b.training, affine = b.affine, stats = b.stats, relu = b.relu;
  k.call = [training, affine, stats, relu](const std::vector<Tensor>& in) {
    Tensor none, rm = stats ? in[affine ? 3 : 1] : none, rv = stats ? in[affine ? 4 : 2] : none;
    const Tensor &g = affine ? in[1] : none, &be = affine ? in[2] : none;
    return relu ? ops::batchnorm2d_relu(in[0], g, be, rm, rv, training, kMomentum, kEps)
                : ops::batchnorm2d(in[0], g, be, rm, rv, training, kMomentum, kEps);
  };
  k.bytes = 12.0 * (double)shape_numel(b.s);
  return k;
}

// bench: the training kernels, then (issue 15) the split reduction and the
// fused BN+ReLU forward / ReLU+BN backward (y doubles as the ReLU mask).
OpCase bn_bench_case(int64_t N, int64_t C, int64_t H, int count) {
  OpCase k = bn_case({{N, C, H, H}}, false, false);
  k.bench = true, k.count = count;
  k.desc = "train " + dims_str({N, C, H, H});
  const std::string shape = k.desc;
  k.bench_setup = [=](BenchSetup& s) {
    const int64_t n = N * C * H * H, HW = H * H;
    DeviceBuf *x = s.buf(n, 1), *y = s.buf(n, 2), *gy = s.buf(n, 3), *gx = s.buf(n, 4), *g = s.buf(C, 5),
              *be = s.buf(C, 6), *rm = s.buf(C, 7), *rv = s.buf(C, 8), *mean = s.buf(C, 9), *inv = s.buf(C, 10),
              *gg = s.buf(C, 11), *gbe = s.buf(C, 12);
    auto fwd = [=] {
      kernels::batchnorm2d_forward_cuda(x->f(), g->f(), be->f(), rm->f(), rv->f(), y->f(), mean->f(), inv->f(), N, C,
                                        HW, true, kMomentum, kEps);
    };
    fwd();  // mean and invstd for the backward
    auto fwd_split = [=](bool relu) {
      kernels::batchnorm2d_forward_split_cuda(x->f(), g->f(), be->f(), rm->f(), rv->f(), y->f(), mean->f(), inv->f(),
                                              N, C, HW, kMomentum, kEps, relu);
    };
    auto bwd_split = [=](const float* mask) {
      kernels::batchnorm2d_backward_split_cuda(x->f(), g->f(), mean->f(), inv->f(), gy->f(), mask, gx->f(), gg->f(),
                                               gbe->f(), N, C, HW, true);
    };
    s.rows.push_back({"batchnorm2d", shape, count, Alt::none,
                      {{"forward", 12.0 * n, false, fwd},
                       {"backward", 24.0 * n, false, [=] {
                          kernels::batchnorm2d_backward_cuda(x->f(), g->f(), mean->f(), inv->f(), gy->f(), gx->f(),
                                                             gg->f(), gbe->f(), N, C, HW, true);
                        }}}});
    s.rows.push_back({"bn-split", shape, count, Alt::none,
                      {{"forward", 12.0 * n, false, [=] { fwd_split(false); }},
                       {"backward", 24.0 * n, false, [=] { bwd_split(nullptr); }},
                       {"fwd+relu fused", 12.0 * n, false, [=] { fwd_split(true); }},
                       {"relu+bwd fused", 28.0 * n, false, [=] { bwd_split(y->f()); }}}});  // reads y (mask) as well
  };
  return k;
}

std::vector<OpCase> batchnorm2d_cases(const StudySize& st) {
  std::vector<OpCase> v;
  // gradcheck: training mode through the batch statistics — x, γ, β; x alone
  // (gγ, gβ skipped); γ and β alone (gx skipped); without affine parameters or
  // running statistics; eval mode with the running statistics.
  BnSpec t{{2, 3, 4, 5}};
  t.lo = -2, t.hi = 3;
  v.push_back(bn_case(t, true, false));
  BnSpec tx = t;
  tx.params_grad = false;
  v.push_back(bn_case(tx, true, false));
  BnSpec tp = t;
  tp.x_grad = false;
  v.push_back(bn_case(tp, true, false));
  BnSpec na{{3, 2, 3, 3}};
  na.affine = na.stats = false;
  v.push_back(bn_case(na, true, false));
  BnSpec ev{{2, 3, 4, 5}};
  ev.training = false;
  v.push_back(bn_case(ev, true, false));
  // cuda: N·H·W = 286 and 459 values per channel (fewer than two strides of the
  // 256-thread block) and 2·37·29 = 2146 (the block-stride loop runs 8–9 times).
  const std::vector<Shape> shapes = {{2, 3, 13, 11}, {3, 5, 17, 9}, {2, 3, 37, 29}};
  for (const Shape& s : shapes) v.push_back(bn_case({s}, false, true));
  BnSpec off{{2, 3, 13, 11}};  // |μ| ≫ σ: the shifted sums must not cancel on either device
  off.lo = 10, off.hi = 12, off.note = " offset";
  v.push_back(bn_case(off, false, true));
  for (const Shape& s : shapes) {
    BnSpec e{s};  // eval: the running stats are compared after the call, unchanged on both
    e.training = false;
    v.push_back(bn_case(e, false, true));
    e.params_grad = false;  // gx only: the elementwise eval backward, no reduction
    v.push_back(bn_case(e, false, true));
  }
  BnSpec a{{3, 5, 17, 9}};
  a.affine = false;  // affine=False: γ = 1, β = 0
  v.push_back(bn_case(a, false, true));
  BnSpec r{{3, 5, 17, 9}};
  r.stats = false;  // track_running_stats=False
  v.push_back(bn_case(r, false, true));
  BnSpec g{{3, 5, 17, 9}};
  g.x_grad = false;  // gγ and gβ only (the first layer's input needs no gradient)
  v.push_back(bn_case(g, false, true));
  // The tuned CPU kernel's chunks (kernels/cpu/batchnorm2d_tuned.cpp): M = N·H·W
  // = 6042 per channel, a whole chunk of 4096 and a partial one, the second
  // crossing from plane 0 into plane 1 (HW = 3021, odd); C = 3. (Its parallel
  // (channel × chunk) split needs > 65536 values, more than a small case holds:
  // tests/test_batchnorm_tuned.cpp.)
  v.push_back(bn_case({{2, 3, 57, 53}, true}, false, true));
  // bench: every BatchNorm of ResNet18 (the stem's, then four per layer; five in
  // layers 2-4, whose first block has a downsample branch).
  const ResNetSides rs = resnet18_sides(st);
  v.push_back(bn_bench_case(st.batch, 64, rs.stem, 1));
  for (int i = 1; i <= 4; ++i) v.push_back(bn_bench_case(st.batch, int64_t(32) << i, rs.layer[i], i == 1 ? 4 : 5));
  return v;
}

// batchnorm2d_relu: the same cases with the ReLU fused (kernels/batchnorm2d_relu.h).
// The inputs give normalised values well away from ReLU's kink at 0 (no value
// within the finite differences' ε of it for these seeds), so gradcheck holds.
// Its bench rows are batchnorm2d's "fwd+relu fused" and "relu+bwd fused".
std::vector<OpCase> batchnorm2d_relu_cases(const StudySize&) {
  std::vector<OpCase> v;
  BnSpec t{{2, 3, 4, 5}};
  t.lo = -2, t.hi = 3, t.relu = true;
  v.push_back(bn_case(t, true, false));
  BnSpec ev = t;
  ev.training = false;
  v.push_back(bn_case(ev, true, false));
  for (const Shape& s : {Shape{2, 3, 13, 11}, Shape{3, 5, 17, 9}, Shape{2, 3, 37, 29}})
    for (bool training : {true, false}) {
      BnSpec c{s};
      c.training = training, c.relu = true;
      v.push_back(bn_case(c, false, true));
    }
  BnSpec a{{3, 5, 17, 9}};
  a.affine = false, a.relu = true;
  v.push_back(bn_case(a, false, true));
  for (bool training : {true, false}) {  // the tuned kernel's work split, as for batchnorm2d
    BnSpec c{{2, 3, 57, 53}};
    c.training = training, c.relu = true;
    v.push_back(bn_case(c, false, true));
  }
  return v;
}

// ---- maxpool2d ----------------------------------------------------------------

struct PoolSpec {
  Shape s;
  ops::Pool2dParams p;  // {kh, kw, sh, sw, ph, pw}
};

OpCase pool_case(const PoolSpec& c, bool gradcheck, bool cuda, bool accumulate = true) {
  const ops::Pool2dParams p = c.p;
  OpCase k;
  k.desc = dims_str(c.s) + " k" + std::to_string(p.kernel_h) + "x" + std::to_string(p.kernel_w) + " s" +
           std::to_string(p.stride_h) + "x" + std::to_string(p.stride_w) + " p" + std::to_string(p.pad_h) + "x" +
           std::to_string(p.pad_w);
  k.gradcheck = gradcheck, k.cuda = cuda;
  k.shapes = {c.s};
  k.inputs = {{"x", true, false, {0, 0}}};
  k.cuda_out = {0, 0};
  k.accumulate = accumulate;  // false: a first write into NaN-poisoned memory
  if (!accumulate) k.desc += " first-write";
  const Shape s = c.s;
  k.make = [s](std::mt19937_64& rng, DType dt, Device dev) { return std::vector<Tensor>{distinct(s, rng, 1e-2, dt).to(dev)}; };
  k.call = [p](const std::vector<Tensor>& in) { return ops::maxpool2d(in[0], p); };
  const kernels::MaxPool2dGeometry g = kernels::maxpool2d_geometry(s[0], s[1], s[2], s[3], p.kernel_h, p.kernel_w,
                                                                   p.stride_h, p.stride_w, p.pad_h, p.pad_w);
  const double ni = (double)shape_numel(s), no = (double)(g.planes * g.OH * g.OW);
  k.bytes = 4.0 * (ni + 2 * no);  // reads x, writes y and argmax
  return k;
}

std::vector<OpCase> maxpool2d_cases(const StudySize& st) {
  std::vector<OpCase> v;
  // gradcheck: kernel 2 stride 2; ResNet's 3 s2 p1 on odd sizes; a non-square
  // (3,2) s(2,1) p(1,0); overlapping windows (3 s1 p1); a runtime stride 3;
  // odd sizes whose last row/column is dropped; output widths that are whole
  // multiples of the kernel's 16-column blocks (32 and 16 columns).
  for (const PoolSpec& c : {PoolSpec{{2, 3, 6, 8}, {2, 2, 2, 2, 0, 0}}, PoolSpec{{2, 3, 7, 9}, {3, 3, 2, 2, 1, 1}},
                            PoolSpec{{2, 3, 7, 9}, {3, 2, 2, 1, 1, 0}}, PoolSpec{{1, 2, 5, 6}, {3, 3, 1, 1, 1, 1}},
                            PoolSpec{{1, 2, 8, 10}, {3, 3, 3, 3, 1, 1}}, PoolSpec{{2, 1, 5, 7}, {2, 2, 2, 2, 0, 0}},
                            PoolSpec{{1, 2, 5, 64}, {3, 3, 2, 2, 1, 1}}, PoolSpec{{1, 1, 4, 33}, {2, 2, 2, 2, 0, 0}}})
    v.push_back(pool_case(c, true, false));
  // cuda: odd shapes whose inputs (one backward thread each) and most outputs
  // (one forward thread each) span several 256-thread blocks; k2 s2, ResNet's
  // k3 s2 p1 and a non-square (3,2) s(2,1) p(1,0).
  for (const Shape& s : {Shape{2, 3, 13, 11}, Shape{3, 5, 17, 9}})
    for (const ops::Pool2dParams& p : {ops::Pool2dParams{2, 2, 2, 2, 0, 0}, ops::Pool2dParams{3, 3, 2, 2, 1, 1},
                                       ops::Pool2dParams{3, 2, 2, 1, 1, 0}})
      for (bool acc : {true, false}) v.push_back(pool_case({s, p}, false, true, acc));
  // bench: ResNet18's 3×3 s2 p1 pool after the stem.
  const int64_t N = st.batch, C = 64, H = resnet18_sides(st).stem;
  OpCase b = pool_case({{N, C, H, H}, {3, 3, 2, 2, 1, 1}}, false, false);
  b.bench = true;
  b.desc = "3x3s2 " + dims_str({N, C, H, H});
  const std::string shape = b.desc;
  b.bench_setup = [=](BenchSetup& s) {
    const kernels::MaxPool2dGeometry g = kernels::maxpool2d_geometry(N, C, H, H, 3, 3, 2, 2, 1, 1);
    const int64_t ni = N * C * H * H, no = g.planes * g.OH * g.OW;
    DeviceBuf *x = s.buf(ni, 1), *y = s.buf(no, 2), *arg = s.buf(no, 0, false), *gy = s.buf(no, 3), *gx = s.buf(ni, 4);
    auto* am = static_cast<int32_t*>(arg->p);
    auto fwd = [=] { kernels::maxpool2d_forward_cuda(x->f(), y->f(), am, g); };
    fwd();  // argmax for the backward
    s.rows.push_back({"maxpool2d", shape, 1, Alt::none,
                      {{"forward", 4.0 * (ni + 2 * no), false, fwd},
                       {"backward", 4.0 * (2 * ni + 2 * no), false,
                        [=] { kernels::maxpool2d_backward_cuda(am, gy->f(), gx->f(), g); }}}});
  };
  v.push_back(b);
  return v;
}

// ---- global_maxpool -------------------------------------------------------------

OpCase global_pool_case(const Shape& s, bool gradcheck, bool cuda) {
  OpCase k;
  k.desc = dims_str(s);
  k.gradcheck = gradcheck, k.cuda = cuda;
  k.shapes = {s};
  k.inputs = {{"x", true, false, {0, 0}}};
  k.cuda_out = {0, 0};
  k.accumulate = true;
  // Distinct values for the numeric derivative; continuous random values on
  // the GPU (a tie inside a plane has probability ~0; the ties test is apart).
  k.make = [s, gradcheck](std::mt19937_64& rng, DType dt, Device dev) {
    return std::vector<Tensor>{(gradcheck ? distinct(s, rng, 1e-2, dt) : uniform(s, rng, -1, 1, dt)).to(dev)};
  };
  k.call = [](const std::vector<Tensor>& in) { return ops::global_maxpool(in[0]); };
  k.bytes = 4.0 * (double)shape_numel(s);
  return k;
}

std::vector<OpCase> global_maxpool_cases(const StudySize&) {
  // cuda: planes of 143 and 153 values leave threads of the 256-thread block
  // idle; 37×29 = 1073 values make each thread's block-stride loop run 4–5 times.
  return {global_pool_case({2, 3, 5, 7}, true, false), global_pool_case({2, 3, 13, 11}, false, true),
          global_pool_case({3, 5, 17, 9}, false, true), global_pool_case({2, 3, 37, 29}, false, true)};
}

}  // namespace

std::vector<OpEntry> norm_pool_entries() {
  return {{"batchnorm2d", batchnorm2d_cases},
          {"batchnorm2d_relu", batchnorm2d_relu_cases},
          {"maxpool2d", maxpool2d_cases},
          {"global_maxpool", global_maxpool_cases}};
}

}  // namespace ctg::op_table
