// CUDA maxpool2d (kernels/cuda/maxpool2d.cu) vs the CPU reference, float32:
// the argmax, which the op keeps to itself (through the entry points), and the
// tie and NaN rules. Tolerance: none. The forward picks one of the input values
// by the same rule in the same window order, and the backward gather adds into
// each gx value in the CPU scatter's order, so y, argmax and gx must be
// bit-identical. The op's y and accumulated gx on distinct inputs are the op
// table's cases (engine/op_table/norm_pool.cpp, run by tests/op_table_cuda.cpp).
// Shapes are odd, and with them inputs (one backward thread each) and most
// outputs (one forward thread each) span several 256-thread blocks.
// Geometries: k2 s2, ResNet's k3 s2 p1, and a non-square (3,2) s(2,1) p(1,0).
#include <cstring>

#include "engine/autograd.h"
#include "engine/ops.h"
#include "kernels/maxpool2d.h"
#include "tests/cuda_check.h"

using namespace ctg;

namespace {

ops::Pool2dParams pool(int64_t kh, int64_t kw, int64_t sh, int64_t sw, int64_t ph, int64_t pw) {
  ops::Pool2dParams p;
  p.kernel_h = kh, p.kernel_w = kw, p.stride_h = sh, p.stride_w = sw, p.pad_h = ph, p.pad_w = pw;
  return p;
}
std::string pool_name(const ops::Pool2dParams& p) {
  return "k(" + std::to_string(p.kernel_h) + "," + std::to_string(p.kernel_w) + ") s(" + std::to_string(p.stride_h) +
         "," + std::to_string(p.stride_w) + ") p(" + std::to_string(p.pad_h) + "," + std::to_string(p.pad_w) + ")";
}
const std::vector<ops::Pool2dParams> kGeometries = {pool(2, 2, 2, 2, 0, 0), pool(3, 3, 2, 2, 1, 1),
                                                    pool(3, 2, 2, 1, 1, 0)};
const std::vector<Shape> kShapes = {{2, 3, 13, 11}, {3, 5, 17, 9}};

kernels::MaxPool2dGeometry geometry(const Shape& s, const ops::Pool2dParams& p) {
  return kernels::maxpool2d_geometry(s[0], s[1], s[2], s[3], p.kernel_h, p.kernel_w, p.stride_h, p.stride_w, p.pad_h,
                                     p.pad_w);
}

// The kernels' own outputs on one device: y and the int32 argmax (the op keeps
// argmax to itself, so the entry points are called directly here).
struct Forward {
  std::vector<float> y;
  std::vector<int32_t> argmax;
};
Forward forward_entry_point(const Tensor& x_cpu, const kernels::MaxPool2dGeometry& g, Device dev) {
  const int64_t n_out = g.planes * g.OH * g.OW;
  Tensor x = test::fresh_on(x_cpu, dev);
  Tensor y = Tensor::empty({n_out}, DType::f32, dev);
  Tensor am = Tensor::empty({(n_out + 1) / 2}, DType::i64, dev);  // int32 packed two per i64, as in the op
  int32_t* am32 = static_cast<int32_t*>(dev == Device::cuda ? am.device_raw_data() : am.raw_data());
  if (dev == Device::cuda)
    kernels::maxpool2d_forward_cuda(x.device_data<float>(), y.device_data<float>(), am32, g);
  else
    kernels::maxpool2d_forward_cpu(x.data<float>(), y.data<float>(), am32, g);
  Forward f;
  Tensor yh = y.to(Device::cpu), amh = am.to(Device::cpu);
  f.y.assign(yh.data<float>(), yh.data<float>() + n_out);
  const int32_t* a = static_cast<const int32_t*>(amh.raw_data());
  f.argmax.assign(a, a + n_out);
  return f;
}

void check_same_forward(const Forward& got, const Forward& want) {
  REQUIRE(got.argmax.size() == want.argmax.size());
  size_t bad = 0, first = 0;
  for (size_t i = 0; i < want.argmax.size(); ++i) {
    const bool same_y = std::memcmp(&got.y[i], &want.y[i], sizeof(float)) == 0;  // NaN == NaN here
    if ((got.argmax[i] != want.argmax[i] || !same_y) && bad++ == 0) first = i;
  }
  INFO(bad << " outputs differ; first at " << first << ": cuda (" << got.y[first] << ", " << got.argmax[first]
           << ") cpu (" << want.y[first] << ", " << want.argmax[first] << ")");
  CHECK(bad == 0);
}

// y = maxpool2d(x) and dL/dx for L = Σ c·y, the gradient added to gx0 (so the
// backward's accumulation is checked too).
struct Result {
  Tensor y, gx;
};
Result run_op(const Tensor& x_cpu, const Tensor& c_cpu, const Tensor& gx0, const ops::Pool2dParams& p, Device dev) {
  Tensor x = test::fresh_on(x_cpu, dev).set_requires_grad(true);
  x.impl().grad = test::fresh_on(gx0, dev).impl_ptr();
  Tensor y = ops::maxpool2d(x, p);
  autograd::backward(y, c_cpu.to(dev));
  return {y.to(Device::cpu), x.grad().to(Device::cpu)};
}

}  // namespace

TEST_CASE("cuda vs cpu: maxpool2d argmax on distinct values (k2 s2, k3 s2 p1, (3,2) s(2,1) p(1,0))") {
  std::mt19937_64 rng(11);
  for (const Shape& s : kShapes)
    for (const ops::Pool2dParams& p : kGeometries) {
      const kernels::MaxPool2dGeometry g = geometry(s, p);
      CAPTURE(shape_str(s));
      const std::string geom = pool_name(p);
      CAPTURE(geom);
      // No window holds a tie (op_table::distinct: gaps ≥ 1e-2).
      const Tensor x = op_table::distinct(s, rng, 1e-2, DType::f32);
      const Forward want = forward_entry_point(x, g, Device::cpu);
      test::for_each_schedule([&] { check_same_forward(forward_entry_point(x, g, Device::cuda), want); });
    }
}

TEST_CASE("cuda vs cpu: maxpool2d ties go to the first maximum in window order, NaN propagates") {
  // Values from {0, 1, 2}: most windows hold ties, and some hold only one value.
  std::mt19937_64 rng(12);
  const Shape s{2, 3, 13, 11};
  std::vector<double> v((size_t)shape_numel(s));
  for (double& e : v) e = (double)(rng() % 3);
  for (size_t i = 0; i < 11 * 13; ++i) v[i] = -INFINITY;  // a plane of −∞: argmax names a real element
  v[11 * 13 + 20] = NAN, v[11 * 13 + 21] = NAN, v[11 * 13 + 33] = NAN;  // NaNs in the second plane
  Tensor x = Tensor::from_vector(v, s, DType::f32);
  for (const ops::Pool2dParams& p : kGeometries) {
    const kernels::MaxPool2dGeometry g = geometry(s, p);
    const std::string geom = pool_name(p);
    CAPTURE(geom);
    const Forward want = forward_entry_point(x, g, Device::cpu);
    test::for_each_schedule([&] { check_same_forward(forward_entry_point(x, g, Device::cuda), want); });
  }
  // The backward routes along the same argmax, ties included (finite input).
  Tensor xf = x.clone();
  for (int64_t i = 0; i < 2 * 11 * 13; ++i) xf.data<float>()[i] = 1.f;  // planes of equal values
  const ops::Pool2dParams p = kGeometries[1];
  const kernels::MaxPool2dGeometry g = geometry(s, p);
  Tensor c = test::rand_f32({s[0], s[1], g.OH, g.OW}, rng, 0.5, 1.5), gx0 = test::rand_f32(s, rng);
  const Result want = run_op(xf, c, gx0, p, Device::cpu);
  test::for_each_schedule([&] {
    const Result got = run_op(xf, c, gx0, p, Device::cuda);
    test::check_close(got.y, want.y, 0, 0, "maxpool2d forward with ties");
    test::check_close(got.gx, want.gx, 0, 0, "maxpool2d backward with ties");
  });
}
