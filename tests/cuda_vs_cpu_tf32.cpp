// --precision tf32: the tensor-core GEMM (kernels/cuda/gemm_tc.cu) and the
// implicit-GEMM convolutions (kernels/cuda/conv2d_tc.cu) vs the float32 CPU
// reference, on odd shapes (no multiple of the 64×64×16 tile), every transpose,
// beta 0 (C starts as NaN: never read) and 1, batches, the sum mode with split-K,
// and the study's convolution types — under every emulated schedule, so a
// missing cp.async wait or barrier shows.
//
// Tolerance, growing with K: TF32 keeps 10 of float's 23 mantissa bits, so
// each operand is off by at most 2⁻¹¹ relative and each product of values in
// [-1, 1) by about 2⁻¹⁰·|a·b|, with random signs: the sum of K products is off
// by ≈ √K·2⁻¹⁰·E|a·b|·(1/√3) ≈ 1.5e-4·√K. We allow atol = 1e-3·√K (≈ 7σ),
// rtol = 2e-3 — still a hundred times below a dropped or doubled product
// (≈ 0.25 on average). Each check also asserts that the result is NOT the FP32
// one (some element differs by more than FP32 rounding could), so a silent
// fall-back to the SIMT path fails.
#include <cmath>
#include <limits>

#include "kernels/conv2d.h"
#include "kernels/cpu/gemm.h"
#include "kernels/cuda/gemm.h"
#include "kernels/cuda/impl.h"
#include "tests/cuda_check.h"

using namespace ctg;
using kernels::GemmBatch;

namespace {

double tf32_atol(int64_t K) { return 1e-3 * std::sqrt((double)std::max<int64_t>(K, 1)); }

// got vs the FP32 reference within the TF32 tolerance, and visibly not FP32.
void check_tf32(const std::vector<double>& got, const std::vector<double>& want, int64_t K, const std::string& what) {
  test::check_close(Tensor::from_vector(got, {(int64_t)got.size()}), Tensor::from_vector(want, {(int64_t)want.size()}),
                    tf32_atol(K), 2e-3, what);
  double worst = 0;
  for (size_t i = 0; i < got.size(); ++i) worst = std::max(worst, std::fabs(got[i] - want[i]));
  if (K >= 8) CHECK_MESSAGE(worst > 1e-5 * std::sqrt((double)K), what << ": no TF32 rounding visible (" << worst << ")");
}

struct GemmCase {
  int64_t M, N, K;
  bool ta, tb;
  float alpha, beta;
  GemmBatch batch;
  int64_t pad = 0;  // extra columns in A's and B's stored rows (lda, ldb > minimum)
};

void check_gemm_tf32(const GemmCase& c, std::mt19937_64& rng) {
  const int64_t lda = (c.ta ? c.M : c.K) + c.pad, ldb = (c.tb ? c.K : c.N) + c.pad, ldc = c.N;
  const int64_t na = c.batch.stride_a ? c.batch.count : 1, nb = c.batch.stride_b ? c.batch.count : 1;
  const int64_t outs = c.batch.sum ? 1 : c.batch.count;
  Tensor A = test::rand_f32({na * (c.ta ? c.K : c.M) * lda}, rng), B = test::rand_f32({nb * (c.tb ? c.N : c.K) * ldb}, rng),
         C0 = test::rand_f32({outs * c.M * c.N}, rng);
  // CPU reference (cblas), item by item; sum mode: later items add (beta 1).
  Tensor want = C0.clone();
  for (int64_t z = 0; z < c.batch.count; ++z) {
    const float beta = c.batch.sum && z > 0 ? 1.f : c.beta;
    float* Cz = want.data<float>() + (c.batch.sum ? 0 : z * c.batch.stride_c);
    if (beta == 0.f) std::fill(Cz, Cz + c.M * c.N, 0.f);
    kernels::cpu::gemm(c.ta, c.tb, c.M, c.N, c.K, c.alpha, A.data<float>() + z * c.batch.stride_a, lda,
                       B.data<float>() + z * c.batch.stride_b, ldb, beta, Cz, ldc);
  }
  CAPTURE(c.M); CAPTURE(c.N); CAPTURE(c.K); CAPTURE(c.ta); CAPTURE(c.tb); CAPTURE(c.beta);
  CAPTURE(c.batch.count); CAPTURE(c.batch.sum);
  test::for_each_schedule([&] {
    Tensor a = A.to(Device::cuda), b = B.to(Device::cuda), C = C0.to(Device::cuda);
    if (c.beta == 0.f) C.fill_(std::numeric_limits<double>::quiet_NaN());
    {
      kernels::ScopedPrecision tf32(kernels::Precision::tf32);  // gemm_cuda's default kernel becomes the TC one
      kernels::gemm_cuda(c.ta, c.tb, c.M, c.N, c.K, c.alpha, a.device_data<float>(), lda, b.device_data<float>(),
                         ldb, c.beta, C.device_data<float>(), ldc, c.batch);
    }
    check_tf32(C.to(Device::cpu).to_vector(), want.to_vector(), c.batch.sum ? c.batch.count * c.K : c.K,
               "gemm tf32");
  });
}

}  // namespace

TEST_CASE("cuda vs cpu: tf32 tensor-core gemm, odd shapes, all transposes, beta 0 and 1") {
  std::mt19937_64 rng(41);
  // K = 48: rows of A (not transposed) and B (transposed) are 16-byte aligned,
  // so those operands are staged by 16-byte cp.async; the others by 4-byte ones.
  const int64_t shapes[][3] = {{37, 29, 41}, {1, 1, 1}, {65, 3, 130}, {3, 70, 5}, {70, 67, 19}, {33, 35, 48}};
  for (const auto& s : shapes)
    for (int t = 0; t < 4; ++t)
      for (float beta : {0.f, 1.f})
        check_gemm_tf32({s[0], s[1], s[2], (t & 1) != 0, (t & 2) != 0, beta == 0.f ? 1.f : -0.75f, beta, {}}, rng);
}

TEST_CASE("cuda vs cpu: tf32 gemm batches, sum mode and split-K") {
  std::mt19937_64 rng(42);
  // Batched, a shared B (stride 0), as conv2d's pointwise forward.
  check_gemm_tf32({21, 35, 17, false, false, 1.f, 1.f, GemmBatch{3, 21 * 17, 0, 21 * 35}}, rng);
  // Sum mode over 4 items (conv2d's weight gradient), whole items per slot.
  check_gemm_tf32({9, 13, 33, false, true, 1.f, 1.f, GemmBatch{4, 9 * 33, 13 * 33, 0, true}}, rng);
  // Few outputs and a long K: split into K-slices, partials summed in order.
  check_gemm_tf32({5, 7, 700, true, false, 1.f, 0.f, GemmBatch{}}, rng);
  check_gemm_tf32({5, 7, 300, false, true, 0.5f, 1.f, GemmBatch{2, 5 * 300, 7 * 300, 0, true}}, rng);
  // Padded rows (lda = ldb = 44) with K = 41: 16-byte copies whose last quad
  // holds one valid float and three zero-filled ones.
  check_gemm_tf32({37, 29, 41, false, true, 1.f, 0.f, GemmBatch{}, 3}, rng);
  check_gemm_tf32({19, 70, 41, false, true, 1.f, 1.f, GemmBatch{}, 3}, rng);
}

using test::ptr;
using Conf = test::ConvConf;

TEST_CASE("cuda vs cpu: tf32 implicit-GEMM conv2d forward, grad-input, grad-weight") {
  std::vector<Conf> confs = test::study_conv_layers();
  confs.push_back({2, 3, 9, 7, 4, 3, 2, 2, 1, 1, 0, false, "k(3,2) s(2,1) p(1,0)"});
  confs.push_back({2, 4, 8, 6, 5, 3, 3, 1, 1, 1, 1, false, "k3 s1 p1, C=4 (K = 36, P = 48: 16-byte copies)"});
  std::mt19937_64 rng(43);
  for (const Conf& c : confs)
    for (bool bias : {true, false}) {
      const kernels::Conv2dDims d = c.dims();
      CAPTURE(c.name); CAPTURE(bias);
      Tensor x = test::rand_f32({d.N, d.C, d.H, d.W}, rng), w = test::rand_f32({d.O, d.C, d.KH, d.KW}, rng),
             b = bias ? test::rand_f32({d.O}, rng) : Tensor(), gy = test::rand_f32({d.N, d.O, d.OH, d.OW}, rng),
             gx0 = test::rand_f32({d.N, d.C, d.H, d.W}, rng), gw0 = test::rand_f32({d.O, d.C, d.KH, d.KW}, rng),
             gb0 = bias ? test::rand_f32({d.O}, rng) : Tensor();
      Tensor y = Tensor::empty({d.N, d.O, d.OH, d.OW}, DType::f32, Device::cpu), gx = gx0.clone(), gw = gw0.clone(),
             gb = bias ? gb0.clone() : Tensor();
      kernels::conv2d_forward_cpu<float>(ptr(x), ptr(w), ptr(b), ptr(y), d);
      kernels::conv2d_backward_cpu<float>(ptr(x), ptr(w), ptr(gy), ptr(gx), ptr(gw), ptr(gb), d);
      test::for_each_schedule([&] {
        auto on = [](const Tensor& t) { return test::fresh_on(t, Device::cuda); };
        Tensor xd = on(x), wd = on(w), bd = on(b), gyd = on(gy), gxd = on(gx0), gwd = on(gw0), gbd = on(gb0);
        Tensor yd = Tensor::empty({d.N, d.O, d.OH, d.OW}, DType::f32, Device::cuda);  // NaN-poisoned
        {
          kernels::ScopedPrecision tf32(kernels::Precision::tf32);
          kernels::conv2d_forward_cuda(ptr(xd), ptr(wd), ptr(bd), ptr(yd), d);
          kernels::conv2d_backward_cuda(ptr(xd), ptr(wd), ptr(gyd), ptr(gxd), ptr(gwd), ptr(gbd), d);
        }
        check_tf32(yd.to(Device::cpu).to_vector(), y.to_vector(), d.C * d.KH * d.KW, "conv2d tf32 forward y");
        check_tf32(gxd.to(Device::cpu).to_vector(), gx.to_vector(), d.O * d.KH * d.KW, "conv2d tf32 gx");
        check_tf32(gwd.to(Device::cpu).to_vector(), gw.to_vector(), d.N * d.OH * d.OW, "conv2d tf32 gW");
        if (bias)  // the bias gradient is no product: FP32 as before
          test::check_close(gbd.to(Device::cpu), gb, 1e-5 * std::sqrt((double)(d.N * d.OH * d.OW)), 1e-4,
                            "conv2d gb");
      });
    }
}

TEST_CASE("precision: --precision values and the scoped setter") {
  CHECK(kernels::parse_precision("tf32") == kernels::Precision::tf32);
  CHECK(kernels::parse_precision("fp32") == kernels::Precision::fp32);
  CHECK_THROWS_WITH_AS(kernels::parse_precision("bf16"), doctest::Contains("--precision: expected fp32 or tf32"),
                       Error);
  const kernels::Precision before = kernels::precision();
  {
    kernels::ScopedPrecision p(kernels::Precision::tf32);
    CHECK(kernels::precision() == kernels::Precision::tf32);
  }
  CHECK(kernels::precision() == before);
}
