// ctgrad's own SGEMM (kernels/cpu/sgemm.h), each micro-kernel this CPU can
// run (AVX-512 8×48, AVX2 6×16), against a plain triple loop in double, on
// odd shapes (edges of every block: M, N, K around multiples of MR = 8 and 6,
// NR = 48 and 16, KC = 256, MC = 96 and 72, NC = 2064), every
// transpose, alpha and beta, row strides larger than the rows (the last row
// exactly as long as it is, so a read past a matrix's end is a read past its
// buffer), on 1, 2 and 3 threads, and beta = 0 over NaN (C must not be read). Tolerance: |got − want| ≤ 1e-6·Σ_k |a·b| + 1e-6·|beta·C| per
// element (float rounding of a K-term sum; the bound scales with the terms).
// A kernel this CPU cannot run is not run; the test then checks that asking
// for it is refused and that the default is the widest one it has.
#include <doctest/doctest.h>

#include <cmath>
#include <cstdlib>
#include <string>
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

void check_one(cpu::CpuGemm kernel, const Shape3& s, bool ta, bool tb, float alpha, float beta, std::mt19937_64& rng) {
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
  cpu::sgemm(kernel, ta, tb, s.M, s.N, s.K, alpha, A.data(), lda, B.data(), ldb, beta, C.data(), ldc);
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
  INFO("kernel " << (int)kernel << " M " << s.M << " N " << s.N << " K " << s.K << " ta " << ta << " tb " << tb << " alpha " << alpha << " beta "
            << beta);
  CHECK(bad == 0);
}

// The kernels of ours this CPU runs; the others are checked to be refused.
std::vector<cpu::CpuGemm> runnable_kernels() {
  std::vector<cpu::CpuGemm> out;
  for (cpu::CpuGemm g : {cpu::CpuGemm::avx512, cpu::CpuGemm::avx2}) {
    if (cpu::cpu_gemm_available(g)) {
      out.push_back(g);
    } else {
      CHECK_THROWS_AS(cpu::set_cpu_gemm(g), Error);
      MESSAGE("this CPU cannot run the " << (g == cpu::CpuGemm::avx512 ? "AVX-512" : "AVX2") << " kernel: not run");
    }
  }
  return out;
}

}  // namespace

TEST_CASE("sgemm: the default is the widest kernel this CPU runs") {
  const bool env_set = std::getenv("CTGRAD_GEMM") != nullptr;
  if (env_set) return;  // a run that chose one on purpose
  const cpu::CpuGemm want = cpu::cpu_gemm_available(cpu::CpuGemm::avx512) ? cpu::CpuGemm::avx512
                            : cpu::cpu_gemm_available(cpu::CpuGemm::avx2) ? cpu::CpuGemm::avx2
                                                                           : cpu::CpuGemm::openblas;
  CHECK(cpu::cpu_gemm() == want);
  CHECK_THROWS_AS(cpu::sgemm(cpu::CpuGemm::openblas, false, false, 1, 1, 1, 1.f, nullptr, 1, nullptr, 1, 0.f,
                             nullptr, 1),
                  Error);
}

TEST_CASE("sgemm: each of our kernels matches the triple loop on odd shapes, transposes, alpha and beta") {
  std::mt19937_64 rng(7);
  // Block edges of both kernels: MR 8/6, NR 48/16, KC 256, MC 96/72.
  const Shape3 shapes[] = {{1, 1, 1},     {5, 7, 3},      {8, 48, 256},   {9, 49, 257},  {7, 47, 255},
                           {6, 16, 256},  {5, 15, 255},   {13, 33, 258},  {72, 32, 40},  {73, 31, 41},
                           {16, 96, 300}, {17, 97, 513},  {97, 65, 300},  {64, 200, 576}, {30, 2100, 9},
                           {200, 20, 520}, {1, 3000, 40}, {145, 17, 100}};
  const int before = num_threads();
  for (cpu::CpuGemm g : runnable_kernels()) {
    for (const Shape3& s : shapes)
      for (bool ta : {false, true})
        for (bool tb : {false, true}) check_one(g, s, ta, tb, 1.f, 0.f, rng);
    // Shared between threads (work ≥ 2²¹): split along N across an NC edge,
    // along M, at 2 and 3 threads.
    for (int t : {2, 3}) {
      set_num_threads(t);
      for (bool ta : {false, true})
        for (bool tb : {false, true}) {
          check_one(g, Shape3{30, 4200, 40}, ta, tb, 1.f, 0.f, rng);
          check_one(g, Shape3{300, 41, 400}, ta, tb, -0.5f, 2.f, rng);
        }
    }
    set_num_threads(before);
    // C of one sliver, K long (work ≥ 2²¹): split over K across 2 and 3
    // threads (Dense(20)'s forward), uneven K ranges, alpha and beta.
    for (int t : {2, 3}) {
      set_num_threads(t);
      for (bool ta : {false, true})
        for (bool tb : {false, true}) {
          check_one(g, Shape3{9, 20, 13001}, ta, tb, 1.f, 0.f, rng);
          check_one(g, Shape3{3, 5, 150001}, ta, tb, 2.f, -1.f, rng);
        }
    }
    set_num_threads(before);
    for (const Shape3& s : {Shape3{37, 70, 130}, Shape3{100, 45, 600}})
      for (float beta : {0.f, 1.f, -0.5f}) check_one(g, s, false, true, 0.75f, beta, rng);
  }
}

TEST_CASE("sgemm: the result does not depend on the thread count, and K = 0 or alpha = 0 only scales C") {
  std::mt19937_64 rng(8);
  const int64_t M = 70, N = 300, K = 700;
  std::uniform_real_distribution<float> u(-1.f, 1.f);
  std::vector<float> A((size_t)(M * K)), B((size_t)(K * N));
  for (float& v : A) v = u(rng);
  for (float& v : B) v = u(rng);
  const int before = num_threads();
  for (cpu::CpuGemm g : runnable_kernels()) {
    INFO("kernel " << (int)g);
    std::vector<float> C1((size_t)(M * N)), C2((size_t)(M * N));
    set_num_threads(1);
    cpu::sgemm(g, false, false, M, N, K, 1.f, A.data(), K, B.data(), N, 0.f, C1.data(), N);
    set_num_threads(2);
    cpu::sgemm(g, false, false, M, N, K, 1.f, A.data(), K, B.data(), N, 0.f, C2.data(), N);
    set_num_threads(before);
    CHECK(C1 == C2);
    // Called inside a parallel region (nesting off: a team of one), as a
    // kernel might: the whole of C is still computed.
    std::vector<float> C3((size_t)(M * N), 0.f);
#pragma omp parallel num_threads(2)
    {
#pragma omp single
      cpu::sgemm(g, false, false, M, N, K, 1.f, A.data(), K, B.data(), N, 0.f, C3.data(), N);
    }
    CHECK(C3 == C1);
    std::vector<float> C(6, 2.f);
    cpu::sgemm(g, false, false, 2, 3, 0, 1.f, A.data(), 1, B.data(), 3, 0.5f, C.data(), 3);
    CHECK(C == std::vector<float>(6, 1.f));
    cpu::sgemm(g, false, false, 2, 3, 4, 0.f, A.data(), 4, B.data(), 3, 0.f, C.data(), 3);
    CHECK(C == std::vector<float>(6, 0.f));
  }
}

TEST_CASE("sgemm: cpu::gemm follows the selection, and OpenBLAS and each of ours agree") {
  std::mt19937_64 rng(9);
  const int64_t M = 50, N = 90, K = 333;
  std::uniform_real_distribution<float> u(-1.f, 1.f);
  std::vector<float> A((size_t)(M * K)), B((size_t)(N * K)), Cb((size_t)(M * N));
  for (float& v : A) v = u(rng);
  for (float& v : B) v = u(rng);
  const cpu::CpuGemm before = cpu::cpu_gemm();
  cpu::set_cpu_gemm(cpu::CpuGemm::openblas);
  cpu::gemm(false, true, M, N, K, 1.f, A.data(), K, B.data(), K, 0.f, Cb.data(), N);
  CHECK(std::string(cpu::cpu_gemm_description()) == "OpenBLAS");
  for (cpu::CpuGemm g : runnable_kernels()) {
    std::vector<float> Co((size_t)(M * N)), Cd((size_t)(M * N));
    cpu::set_cpu_gemm(g);
    cpu::gemm(false, true, M, N, K, 1.f, A.data(), K, B.data(), K, 0.f, Co.data(), N);
    CHECK(std::string(cpu::cpu_gemm_description()).find(g == cpu::CpuGemm::avx512 ? "AVX-512" : "AVX2") !=
          std::string::npos);
    // cpu::gemm ran this kernel: bitwise what it gives when called directly.
    cpu::sgemm(g, false, true, M, N, K, 1.f, A.data(), K, B.data(), K, 0.f, Cd.data(), N);
    CHECK(Co == Cd);
    double worst = 0;
    for (size_t i = 0; i < Co.size(); ++i) worst = std::max(worst, (double)std::fabs(Co[i] - Cb[i]));
    CHECK(worst < 1e-4);  // K = 333 terms of |a·b| ≤ 1: float rounding of two summation orders
  }
  cpu::set_cpu_gemm(before);
}
