// ctgrad's own AVX-512 SGEMM (kernels/cpu/sgemm.h) against a plain triple
// loop in double, on odd shapes (edges of every block: M, N, K around
// multiples of MR = 8, NR = 48, KC = 256, MC = 96, NC = 2064), every
// transpose, alpha and beta, row strides larger than the rows (the last row
// exactly as long as it is, so a read past a matrix's end is a read past its
// buffer), on 1, 2 and 3 threads, and beta = 0 over NaN (C must not be read). Tolerance: |got − want| ≤ 1e-6·Σ_k |a·b| + 1e-6·|beta·C| per
// element (float rounding of a K-term sum; the bound scales with the terms).
// On a CPU without AVX-512 the kernel cannot run; the test then checks that
// cpu::gemm is on OpenBLAS and that asking for ours is refused.
#include <doctest/doctest.h>

#include <cmath>
#include <limits>
#include <random>
#include <vector>

#include "base/error.h"
#include "engine/parallel.h"
#include "kernels/cpu/gemm.h"
#include "kernels/cpu/sgemm.h"

using namespace ctg;
using namespace ctg::kernels;

namespace {

struct Shape3 {
  int64_t M, N, K;
};

void check_one(const Shape3& s, bool ta, bool tb, float alpha, float beta, std::mt19937_64& rng) {
  const int64_t pad = 3;  // row strides larger than the rows
  const int64_t ar = ta ? s.K : s.M, ac = ta ? s.M : s.K, br = tb ? s.N : s.K, bc = tb ? s.K : s.N;
  const int64_t lda = ac + pad, ldb = bc + pad, ldc = s.N + pad;
  std::uniform_real_distribution<float> u(-1.f, 1.f);
  // Padding between rows, none after the last one.
  std::vector<float> A((size_t)((ar - 1) * lda + ac)), B((size_t)((br - 1) * ldb + bc)),
      C((size_t)((s.M - 1) * ldc + s.N));
  for (float& v : A) v = u(rng);
  for (float& v : B) v = u(rng);
  for (float& v : C) v = beta == 0.f ? std::numeric_limits<float>::quiet_NaN() : u(rng);
  const std::vector<float> C0 = C;
  cpu::sgemm(ta, tb, s.M, s.N, s.K, alpha, A.data(), lda, B.data(), ldb, beta, C.data(), ldc);
  int64_t bad = 0;
  for (int64_t i = 0; i < s.M; ++i)
    for (int64_t j = 0; j < ldc && i * ldc + j < (int64_t)C.size(); ++j) {
      const float got = C[(size_t)(i * ldc + j)];
      if (j >= s.N) {  // the padding between rows is never written
        if (!(std::isnan(got) && std::isnan(C0[(size_t)(i * ldc + j)])) && got != C0[(size_t)(i * ldc + j)]) ++bad;
        continue;
      }
      double sum = 0, mag = 0;
      for (int64_t k = 0; k < s.K; ++k) {
        const double a = ta ? A[(size_t)(k * lda + i)] : A[(size_t)(i * lda + k)];
        const double b = tb ? B[(size_t)(j * ldb + k)] : B[(size_t)(k * ldb + j)];
        sum += a * b;
        mag += std::fabs(a * b);
      }
      const double c0 = beta == 0.f ? 0.0 : (double)C0[(size_t)(i * ldc + j)];
      const double want = alpha * sum + beta * c0;
      const double tol = 1e-6 * (std::fabs(alpha) * mag + std::fabs(beta * c0)) + 1e-30;
      if (!(std::fabs(got - want) <= tol)) ++bad;
    }
  INFO("M " << s.M << " N " << s.N << " K " << s.K << " ta " << ta << " tb " << tb << " alpha " << alpha << " beta "
            << beta);
  CHECK(bad == 0);
}

}  // namespace

TEST_CASE("sgemm: our AVX-512 kernel matches the triple loop on odd shapes, transposes, alpha and beta") {
  if (!cpu::sgemm_available()) {
    CHECK(cpu::cpu_gemm() == cpu::CpuGemm::openblas);
    CHECK_THROWS_AS(cpu::set_cpu_gemm(cpu::CpuGemm::own), Error);
    MESSAGE("no AVX-512 on this CPU: cpu::gemm runs OpenBLAS, our SGEMM is not run");
    return;
  }
  std::mt19937_64 rng(7);
  const Shape3 shapes[] = {{1, 1, 1},      {5, 7, 3},      {8, 48, 256},  {9, 49, 257},   {7, 47, 255},
                           {16, 96, 300},  {17, 97, 513},  {97, 65, 300}, {64, 200, 576}, {30, 2100, 9},
                           {200, 20, 520}, {1, 3000, 40}};
  const int before = num_threads();
  for (const Shape3& s : shapes)
    for (bool ta : {false, true})
      for (bool tb : {false, true}) check_one(s, ta, tb, 1.f, 0.f, rng);
  // Shared between threads (work ≥ 2²¹): split along N across an NC edge,
  // along M, at 2 and 3 threads.
  for (int t : {2, 3}) {
    set_num_threads(t);
    for (bool ta : {false, true})
      for (bool tb : {false, true}) {
        check_one(Shape3{30, 4200, 40}, ta, tb, 1.f, 0.f, rng);
        check_one(Shape3{300, 41, 400}, ta, tb, -0.5f, 2.f, rng);
      }
  }
  set_num_threads(before);
  // C of one sliver, K long (work ≥ 2²¹): split over K across 2 and 3
  // threads (Dense(20)'s forward), uneven K ranges, alpha and beta.
  for (int t : {2, 3}) {
    set_num_threads(t);
    for (bool ta : {false, true})
      for (bool tb : {false, true}) {
        check_one(Shape3{9, 20, 13001}, ta, tb, 1.f, 0.f, rng);
        check_one(Shape3{3, 5, 150001}, ta, tb, 2.f, -1.f, rng);
      }
  }
  set_num_threads(before);
  for (const Shape3& s : {Shape3{37, 70, 130}, Shape3{100, 45, 600}})
    for (float beta : {0.f, 1.f, -0.5f}) check_one(s, false, true, 0.75f, beta, rng);
}

TEST_CASE("sgemm: the result does not depend on the thread count, and K = 0 or alpha = 0 only scales C") {
  if (!cpu::sgemm_available()) return;  // the test above says why
  std::mt19937_64 rng(8);
  const int64_t M = 70, N = 300, K = 700;
  std::uniform_real_distribution<float> u(-1.f, 1.f);
  std::vector<float> A((size_t)(M * K)), B((size_t)(K * N)), C1((size_t)(M * N)), C2((size_t)(M * N));
  for (float& v : A) v = u(rng);
  for (float& v : B) v = u(rng);
  const int before = num_threads();
  set_num_threads(1);
  cpu::sgemm(false, false, M, N, K, 1.f, A.data(), K, B.data(), N, 0.f, C1.data(), N);
  set_num_threads(2);
  cpu::sgemm(false, false, M, N, K, 1.f, A.data(), K, B.data(), N, 0.f, C2.data(), N);
  set_num_threads(before);
  CHECK(C1 == C2);
  // Called inside a parallel region (nesting off: a team of one), as a
  // kernel might: the whole of C is still computed.
  std::vector<float> C3((size_t)(M * N), 0.f);
#pragma omp parallel num_threads(2)
  {
#pragma omp single
    cpu::sgemm(false, false, M, N, K, 1.f, A.data(), K, B.data(), N, 0.f, C3.data(), N);
  }
  CHECK(C3 == C1);
  std::vector<float> C(6, 2.f);
  cpu::sgemm(false, false, 2, 3, 0, 1.f, A.data(), 1, B.data(), 3, 0.5f, C.data(), 3);
  CHECK(C == std::vector<float>(6, 1.f));
  cpu::sgemm(false, false, 2, 3, 4, 0.f, A.data(), 4, B.data(), 3, 0.f, C.data(), 3);
  CHECK(C == std::vector<float>(6, 0.f));
}

TEST_CASE("sgemm: cpu::gemm follows the selection, and OpenBLAS and ours agree") {
  if (!cpu::sgemm_available()) return;
  std::mt19937_64 rng(9);
  const int64_t M = 50, N = 90, K = 333;
  std::uniform_real_distribution<float> u(-1.f, 1.f);
  std::vector<float> A((size_t)(M * K)), B((size_t)(N * K)), Co((size_t)(M * N)), Cb((size_t)(M * N));
  for (float& v : A) v = u(rng);
  for (float& v : B) v = u(rng);
  const cpu::CpuGemm before = cpu::cpu_gemm();
  cpu::set_cpu_gemm(cpu::CpuGemm::own);
  cpu::gemm(false, true, M, N, K, 1.f, A.data(), K, B.data(), K, 0.f, Co.data(), N);
  cpu::set_cpu_gemm(cpu::CpuGemm::openblas);
  cpu::gemm(false, true, M, N, K, 1.f, A.data(), K, B.data(), K, 0.f, Cb.data(), N);
  cpu::set_cpu_gemm(before);
  double worst = 0;
  for (size_t i = 0; i < Co.size(); ++i) worst = std::max(worst, (double)std::fabs(Co[i] - Cb[i]));
  CHECK(worst < 1e-4);  // K = 333 terms of |a·b| ≤ 1: float rounding of two summation orders
}
