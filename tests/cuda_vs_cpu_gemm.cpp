// Our CUDA SGEMM (kernels/cuda/gemm.cu) vs OpenBLAS (kernels/cpu/gemm.h), and
// the tiled kernel (v2) vs the naive one (v1), in float32.
// Shapes are odd and not multiples of the 64×64×16 tile; all four transpose
// combinations, beta 0 (C starts as NaN: it must never be read) and beta 1,
// leading dimensions wider than the matrix, strided batches, and the sum mode
// with every way of cutting the reduction into slots (split-K, several items
// per slot, one slot for everything).
//
// Tolerance: each result is a sum of K products of inputs in [-1, 1). Both
// sides round every product and partial sum in float32 (u = 6e-8) but in a
// different order, so they differ by roughly √K·u·|partial sums| ≈ K·u/3 — about
// 1e-6 at K = 130. We allow atol = 1e-5·√K, rtol = 1e-4: comfortably above
// rounding, yet a dropped or doubled product moves a result by |a·b| ≈ 0.25 on
// average, 1000× more than the tolerance.
#include <cmath>
#include <limits>

#include "kernels/cpu/gemm.h"
#include "kernels/cuda/gemm.h"
#include "tests/cuda_check.h"

using namespace ctg;
using kernels::GemmBatch;
using kernels::GemmKernel;
using kernels::GemmOptions;

namespace {

struct Case {
  int64_t M, N, K;
  bool ta, tb;
  float alpha, beta;
  int64_t pad = 0;  // extra columns in every stored row: lda > the minimum
};

// Stored sizes: A is M×K (K×M when transposed) with row stride lda, etc.
struct Layout {
  int64_t a_rows, lda, b_rows, ldb, ldc;
  explicit Layout(const Case& c)
      : a_rows(c.ta ? c.K : c.M), lda((c.ta ? c.M : c.K) + c.pad), b_rows(c.tb ? c.N : c.K),
        ldb((c.tb ? c.K : c.N) + c.pad), ldc(c.N + c.pad) {}
};

double tol_for(int64_t K) { return 1e-5 * std::sqrt((double)std::max<int64_t>(K, 1)); }

// A batch of `count` independent inputs, C of `outs` outputs; the CPU loops over
// the items calling cblas, the GPU gets one gemm_cuda call.
struct Problem {
  Case c;
  GemmBatch batch;
  Tensor A, B, C0;  // CPU originals; C0 is only read when beta ≠ 0
};

Problem make_problem(const Case& c, const GemmBatch& batch, std::mt19937_64& rng) {
  Layout l(c);
  const int64_t outs = batch.sum ? 1 : batch.count;
  const int64_t na = batch.stride_a ? batch.count : 1, nb = batch.stride_b ? batch.count : 1;
  Problem p{c, batch, test::rand_f32({na * l.a_rows * l.lda}, rng), test::rand_f32({nb * l.b_rows * l.ldb}, rng),
            test::rand_f32({outs * c.M * l.ldc}, rng)};
  return p;
}

Tensor cpu_reference(const Problem& p) {
  const Case& c = p.c;
  Layout l(c);
  Tensor C = p.C0.clone();
  const float* A = p.A.data<float>();
  const float* B = p.B.data<float>();
  float* Cp = C.data<float>();
  for (int64_t z = 0; z < p.batch.count; ++z) {
    // Sum mode: the first item applies beta, the others add (beta = 1).
    const float beta = p.batch.sum && z > 0 ? 1.f : c.beta;
    float* Cz = Cp + (p.batch.sum ? 0 : z * p.batch.stride_c);
    if (beta == 0.f)  // what beta = 0 means, independent of the starting values
      for (int64_t m = 0; m < c.M; ++m)
        for (int64_t n = 0; n < c.N; ++n) Cz[m * l.ldc + n] = 0.f;
    kernels::cpu::gemm(c.ta, c.tb, c.M, c.N, c.K, c.alpha, A + z * p.batch.stride_a, l.lda,
                       B + z * p.batch.stride_b, l.ldb, beta, Cz, l.ldc);
  }
  return C;
}

Tensor run_cuda(const Problem& p, const GemmOptions& opt) {
  const Case& c = p.c;
  Layout l(c);
  Tensor A = p.A.to(Device::cuda), B = p.B.to(Device::cuda), C = p.C0.to(Device::cuda);
  if (c.beta == 0.f) C.fill_(std::numeric_limits<double>::quiet_NaN());
  kernels::gemm_cuda(c.ta, c.tb, c.M, c.N, c.K, c.alpha, A.device_data<float>(), l.lda, B.device_data<float>(), l.ldb, c.beta,
                     C.device_data<float>(), l.ldc, p.batch, opt);
  return C.to(Device::cpu);
}

// Only the M×N part of each stored row is a result; the padding must be untouched.
void check_gemm(const Problem& p, const GemmOptions& opt, const std::string& what) {
  Tensor want = cpu_reference(p);
  const int64_t K = p.batch.sum ? p.batch.count * p.c.K : p.c.K;
  CAPTURE(p.c.M); CAPTURE(p.c.N); CAPTURE(p.c.K); CAPTURE(p.c.ta); CAPTURE(p.c.tb); CAPTURE(p.c.beta);
  CAPTURE(p.batch.count); CAPTURE(p.batch.sum); CAPTURE(opt.k_splits); CAPTURE(opt.items_per_slot);
  test::for_each_schedule([&] {
    Tensor got = run_cuda(p, opt);
    if (p.c.beta == 0.f && p.c.pad == 0 && !p.batch.sum && p.batch.stride_c == p.c.M * p.c.N) {
      test::check_close(got, want, tol_for(K), 1e-4, what);
      return;
    }
    // Padding columns (and, with beta = 0, their NaN) are not results: compare rows.
    Layout l(p.c);
    std::vector<double> g = got.to_vector(), w = want.to_vector(), gr, wr;
    const int64_t outs = p.batch.sum ? 1 : p.batch.count;
    for (int64_t b = 0; b < outs; ++b)
      for (int64_t m = 0; m < p.c.M; ++m)
        for (int64_t n = 0; n < p.c.N; ++n) {
          const size_t i = (size_t)((b * p.c.M + m) * l.ldc + n);
          gr.push_back(g[i]), wr.push_back(w[i]);
        }
    test::check_close(Tensor::from_vector(gr, {(int64_t)gr.size()}), Tensor::from_vector(wr, {(int64_t)wr.size()}),
                      tol_for(K), 1e-4, what);
  });
}

}  // namespace

TEST_CASE("cuda vs cpu: gemm v1 and v2, odd shapes, all transposes, beta 0 and 1") {
  std::mt19937_64 rng(11);
  const int64_t shapes[][3] = {{37, 29, 41}, {1, 1, 1}, {65, 3, 130}, {3, 70, 5}, {64, 64, 16}};
  for (const auto& s : shapes)
    for (int t = 0; t < 4; ++t)
      for (float beta : {0.f, 1.f}) {
        Case c{s[0], s[1], s[2], (t & 1) != 0, (t & 2) != 0, beta == 0.f ? 1.f : -0.75f, beta};
        Problem p = make_problem(c, GemmBatch{}, rng);
        check_gemm(p, GemmOptions{GemmKernel::naive}, "gemm v1 (naive)");
        check_gemm(p, GemmOptions{GemmKernel::tiled, 1}, "gemm v2 (tiled)");
      }
}

TEST_CASE("cuda vs cpu: gemm v2 agrees with v1 on a larger odd shape") {
  std::mt19937_64 rng(12);
  for (int t = 0; t < 4; ++t) {
    Case c{131, 70, 77, (t & 1) != 0, (t & 2) != 0, 1.f, 1.f};
    Problem p = make_problem(c, GemmBatch{}, rng);
    test::for_each_schedule([&] {
      Tensor v1 = run_cuda(p, GemmOptions{GemmKernel::naive}), v2 = run_cuda(p, GemmOptions{GemmKernel::tiled, 1});
      test::check_close(v2, v1, tol_for(c.K), 1e-4, "gemm v2 vs v1");
    });
  }
}

TEST_CASE("cuda vs cpu: gemm leading dimensions wider than the matrix") {
  std::mt19937_64 rng(13);
  for (int t = 0; t < 4; ++t)
    for (float beta : {0.f, 1.f}) {
      Case c{37, 29, 41, (t & 1) != 0, (t & 2) != 0, 1.f, beta, /*pad*/ 3};
      Problem p = make_problem(c, GemmBatch{}, rng);
      check_gemm(p, GemmOptions{GemmKernel::naive}, "gemm v1, padded rows");
      check_gemm(p, GemmOptions{GemmKernel::tiled, 1}, "gemm v2, padded rows");
    }
}

TEST_CASE("cuda vs cpu: gemm split-K, strided batches and sums over a batch") {
  std::mt19937_64 rng(14);
  for (int t = 0; t < 4; ++t) {
    const bool ta = (t & 1) != 0, tb = (t & 2) != 0;
    // One product with K cut into slices: forced 4 (rounded to 16-wide slices),
    // forced 3, and the automatic choice (few tiles, K = 300 → two slices).
    Case c{19, 23, 300, ta, tb, 1.f, 1.f};
    Problem p = make_problem(c, GemmBatch{}, rng);
    for (int64_t splits : {4, 3, 0}) check_gemm(p, GemmOptions{GemmKernel::tiled, splits}, "gemm split-K");
    // A batch of 3 with a shared A (stride 0), beta 0, with and without split-K.
    Case cb{21, 33, 150, ta, tb, 1.f, 0.f};
    Layout l(cb);
    GemmBatch batch{3, 0, l.b_rows * l.ldb, cb.M * l.ldc};
    Problem pb = make_problem(cb, batch, rng);
    for (int64_t splits : {1, 2}) check_gemm(pb, GemmOptions{GemmKernel::tiled, splits}, "gemm strided batch");
    check_gemm(pb, GemmOptions{GemmKernel::naive}, "gemm v1 strided batch");
    // Sum over a batch of 5 (conv2d's weight gradient): every slot layout.
    Case cs{13, 27, 40, ta, tb, 1.f, 1.f};
    Layout ls(cs);
    GemmBatch sum{5, ls.a_rows * ls.lda, ls.b_rows * ls.ldb, 0, true};
    Problem ps = make_problem(cs, sum, rng);
    const GemmOptions layouts[] = {{GemmKernel::tiled, 1, 5},  // one slot runs all items: C in place
                                   {GemmKernel::tiled, 1, 2},  // slots of 2, 2, 1 items + reduction
                                   {GemmKernel::tiled, 3, 0},  // each item in 3 K-slices
                                   {GemmKernel::tiled, 0, 0},  // automatic
                                   {GemmKernel::naive, 0, 0}};
    for (const GemmOptions& o : layouts) check_gemm(ps, o, "gemm sum over a batch");
  }
}
