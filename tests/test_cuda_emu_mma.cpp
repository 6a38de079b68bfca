// Tests of the emulated tensor-core instructions (kernels/cuda/tensor_core.h):
// each against a scalar model of its PTX ISA semantics written here from the
// documentation, not from the emulation —
//   cvt.rna.tf32.f32   against frexp/round arithmetic (ties away from zero);
//   mma.m16n8k8.tf32   lanes load their fragments by the documented (row, col)
//                      formulas and D is compared with A·B + C in double;
//   ldmatrix           every lane's registers against the documented element map;
//   cp.async           groups land only at the covering wait_group, zero-fill,
//                      a missing wait reads the NaN poison.
#include <doctest/doctest.h>

#include <cmath>
#include <cstring>
#include <random>
#include <stdexcept>
#include <string>
#include <vector>

#include "kernels/cuda/tensor_core.h"

namespace emu = ctg::cuda::emu;
namespace tc = ctg::cuda::tc;

namespace {

float bits_float(std::uint32_t u) {
  float f;
  std::memcpy(&f, &u, 4);
  return f;
}
std::uint32_t float_bits(float f) {
  std::uint32_t u;
  std::memcpy(&u, &f, 4);
  return u;
}

// Scalar model of cvt.rna.tf32.f32 for normal numbers: keep 11 significant
// bits (1 implicit + 10 stored), rounding to nearest, ties away from zero
// (std::round rounds halves away from zero).
float tf32_model(float x) {
  int e;
  const double m = std::frexp((double)x, &e);  // x = m·2^e, 0.5 ≤ |m| < 1
  return (float)std::ldexp(std::round(std::ldexp(m, 11)), e - 11);
}

// One warp: lane l loads A, B, C fragments by the PTX formulas (g = l>>2, t = l%4):
//   A: a0 (g,t) a1 (g+8,t) a2 (g,t+4) a3 (g+8,t+4);  B: b0 (t,g) b1 (t+4,g)
//   C/D: c0 (g,2t) c1 (g,2t+1) c2 (g+8,2t) c3 (g+8,2t+1)
// A row-major 16×8, B row-major 8×8 (k, n), C/D row-major 16×8.
// convert: operands through to_tf32 first; else the raw float bits go in.
CTG_GLOBAL void mma_kernel(const float* A, const float* B, const float* C, float* D, bool convert) {
  const int l = threadIdx.x, g = l >> 2, t = l & 3;
  auto op = [&](float v) { return convert ? tc::to_tf32(v) : float_bits(v); };
  const std::uint32_t a[4] = {op(A[g * 8 + t]), op(A[(g + 8) * 8 + t]), op(A[g * 8 + t + 4]),
                              op(A[(g + 8) * 8 + t + 4])};
  const std::uint32_t b[2] = {op(B[t * 8 + g]), op(B[(t + 4) * 8 + g])};
  float c[4] = {C[g * 8 + 2 * t], C[g * 8 + 2 * t + 1], C[(g + 8) * 8 + 2 * t], C[(g + 8) * 8 + 2 * t + 1]};
  tc::mma_tf32(c, a, b, c);  // d aliasing c, as an accumulating GEMM loop does
  D[g * 8 + 2 * t] = c[0];
  D[g * 8 + 2 * t + 1] = c[1];
  D[(g + 8) * 8 + 2 * t] = c[2];
  D[(g + 8) * 8 + 2 * t + 1] = c[3];
}

std::vector<double> mma_model(const std::vector<float>& A, const std::vector<float>& B, const std::vector<float>& C,
                              float (*round)(float)) {
  std::vector<double> D(128);
  for (int i = 0; i < 16; ++i)
    for (int j = 0; j < 8; ++j) {
      double s = C[i * 8 + j];
      for (int k = 0; k < 8; ++k) s += (double)round(A[i * 8 + k]) * round(B[k * 8 + j]);
      D[i * 8 + j] = s;
    }
  return D;
}

// 16 threads: half a warp reaches the mma.
CTG_GLOBAL void mma_half_warp(float* D) {
  const std::uint32_t a[4] = {0, 0, 0, 0}, b[2] = {0, 0};
  float c[4] = {1, 1, 1, 1};
  tc::mma_tf32(c, a, b, c);
  D[threadIdx.x] = c[0];
}

// Shared memory holds `mats` 8×8 matrices of 16-bit values, row r of matrix i
// stored at row slot perm[8i + r] (rows scattered, 16 bytes each). Lane l gives
// the address of row l%8 of matrix l/8.
template <int N, bool Trans>
CTG_GLOBAL void ldmatrix_kernel(const std::uint16_t* src, const int* perm, std::uint32_t* out) {
  CTG_SHARED(std::uint16_t, sm, [32][8]);
  const int l = threadIdx.x;
  for (int e = 0; e < 8; ++e) sm[l][e] = src[l * 8 + e];  // slot l
  __syncthreads();
  std::uint32_t r[N];
  const int row_slot = perm[(l / 8) % N * 8 + l % 8];
  if constexpr (Trans)
    tc::ldmatrix_trans<N>(r, &sm[row_slot][0]);
  else
    tc::ldmatrix<N>(r, &sm[row_slot][0]);
  for (int i = 0; i < N; ++i) out[l * N + i] = r[i];
}

CTG_GLOBAL void ldmatrix_misaligned(std::uint32_t* out) {
  CTG_SHARED(std::uint16_t, sm, [40][8]);
  for (int e = 0; e < 8; ++e) sm[threadIdx.x][e] = 0;
  __syncthreads();
  std::uint32_t r[1];
  tc::ldmatrix<1>(r, &sm[threadIdx.x][1]);  // 2 bytes past a row start
  out[threadIdx.x] = r[0];
}

// Three cp.async groups of one float per thread; `mode` picks what is observed:
//   0: wait_group 1 after three commits: groups 0, 1 landed, group 2 still poison;
//      then wait_group 0: all landed; group 1 used src_bytes = 0 (zero-fill).
//   1: no wait at all, only __syncthreads(): everything reads poison.
//   2: the source changes between issue and wait: the wait copies the new value.
CTG_GLOBAL void cp_async_kernel(float* g, float* out, int mode) {
  CTG_SHARED(float, sm, [3][64]);
  const int t = threadIdx.x;
  tc::cp_async<4>(&sm[0][t], g + t);
  tc::cp_async_commit();
  tc::cp_async<4>(&sm[1][t], g + 64 + t, 0);  // src-size 0: zero-filled, nothing read
  tc::cp_async_commit();
  if (mode == 2) g[128 + t] = 1000.f + t;  // before the copy's wait: the emulation reads at the wait
  tc::cp_async<4>(&sm[2][t], g + 128 + t);
  tc::cp_async_commit();
  if (mode == 0) {
    tc::cp_async_wait<1>();
    out[t] = sm[0][t], out[64 + t] = sm[1][t], out[128 + t] = sm[2][t];
    tc::cp_async_wait<0>();
    out[192 + t] = sm[2][t];
  } else if (mode == 1) {
    __syncthreads();
    out[t] = sm[0][t], out[64 + t] = sm[1][t], out[128 + t] = sm[2][t];
  } else {
    tc::cp_async_wait<0>();
    out[t] = sm[2][t];
  }
}

// 16-byte copies with a partial src-size: 3 floats copied, the 4th zero.
CTG_GLOBAL void cp_async16_kernel(const float* g, float* out) {
  CTG_SHARED(float, sm, [8][4]);
  const int t = threadIdx.x;
  tc::cp_async<16>(&sm[t][0], g + 4 * t, 12);
  tc::cp_async_commit();
  tc::cp_async_wait<0>();
  for (int e = 0; e < 4; ++e) out[4 * t + e] = sm[t][e];
}

CTG_GLOBAL void cp_async_to_global(float* g) { tc::cp_async<4>(g + 1, g); }

}  // namespace

TEST_CASE("emulation: to_tf32 is cvt.rna.tf32.f32 (nearest, ties away from zero, 10-bit mantissa)") {
  std::mt19937 rng(3);
  std::uniform_real_distribution<float> mant(1.f, 2.f);
  std::uniform_int_distribution<int> ex(-60, 60);
  int wrong = 0;
  for (int i = 0; i < 20000; ++i) {
    const float x = std::ldexp(mant(rng), ex(rng)) * (i % 2 ? -1.f : 1.f);
    const std::uint32_t r = tc::to_tf32(x);
    wrong += (r & 0x1fffu) != 0 || bits_float(r) != tf32_model(x);
  }
  CHECK(wrong == 0);
  // Ties: 1 + 2^-11 lies halfway between 1 and 1 + 2^-10 and rounds away from zero.
  CHECK(bits_float(tc::to_tf32(1.f + 0x1p-11f)) == 1.f + 0x1p-10f);
  CHECK(bits_float(tc::to_tf32(-1.f - 0x1p-11f)) == -1.f - 0x1p-10f);
  CHECK(bits_float(tc::to_tf32(1.f + 0x1p-11f - 0x1p-23f)) == 1.f);  // just below the tie: down
  CHECK(bits_float(tc::to_tf32(0x1.fffffep127f)) == INFINITY);         // rounds up past the largest TF32
  CHECK(std::isnan(bits_float(tc::to_tf32(NAN))));
  CHECK(bits_float(tc::to_tf32(-INFINITY)) == -INFINITY);
}

TEST_CASE("emulation: mma.m16n8k8.tf32 follows the PTX fragment layouts") {
  std::mt19937 rng(8);
  std::vector<float> A(128), B(64), C(128), D(128);
  SUBCASE("small integers: exact, so any layout slip shows") {
    std::uniform_int_distribution<int> u(-8, 8);
    for (float& v : A) v = (float)u(rng);
    for (float& v : B) v = (float)u(rng);
    for (float& v : C) v = (float)(u(rng) * 16);
    for (const emu::Schedule& s : emu::test_schedules(2)) {
      emu::ScopedSchedule scope(s);
      CAPTURE(s.name());
      CTG_LAUNCH(mma_kernel, 1, 32, 0, nullptr, A.data(), B.data(), C.data(), D.data(), true);
      const std::vector<double> want = mma_model(A, B, C, tf32_model);
      int wrong = 0;
      for (int i = 0; i < 128; ++i) wrong += D[i] != want[i];
      CHECK(wrong == 0);
    }
  }
  SUBCASE("random floats: operands rounded as cvt.rna; unconverted ones lose their low 13 bits") {
    std::uniform_real_distribution<float> u(-2.f, 2.f);
    for (float& v : A) v = u(rng);
    for (float& v : B) v = u(rng);
    for (float& v : C) v = u(rng);
    for (bool convert : {true, false}) {
      CAPTURE(convert);
      CTG_LAUNCH(mma_kernel, 1, 32, 0, nullptr, A.data(), B.data(), C.data(), D.data(), convert);
      auto truncate = [](float x) { return bits_float(float_bits(x) & 0xffffe000u); };
      const std::vector<double> want = mma_model(A, B, C, convert ? tf32_model : +truncate);
      const std::vector<double> fp32 = mma_model(A, B, C, [](float x) { return x; });
      int wrong = 0, differs_from_fp32 = 0;
      for (int i = 0; i < 128; ++i) {
        wrong += std::fabs(D[i] - want[i]) > 1e-6 * (1 + std::fabs(want[i]));
        differs_from_fp32 += std::fabs(D[i] - fp32[i]) > 1e-5;
      }
      CHECK(wrong == 0);
      CHECK(differs_from_fp32 > 64);  // the reduced precision is really there
    }
  }
}

TEST_CASE("emulation: mma.sync in a partial warp fails naming the instruction") {
  std::vector<float> D(16);
  try {
    CTG_LAUNCH(mma_half_warp, 1, 16, 0, nullptr, D.data());
    FAIL("no error");
  } catch (const std::runtime_error& e) {
    CHECK(std::string(e.what()).find("mma.sync.m16n8k8") != std::string::npos);
    CHECK(std::string(e.what()).find("all 32 lanes") != std::string::npos);
  }
}

TEST_CASE("emulation: ldmatrix x1/x2/x4 and .trans deliver the documented elements") {
  std::vector<std::uint16_t> src(32 * 8);
  for (size_t i = 0; i < src.size(); ++i) src[i] = (std::uint16_t)(1000 + 7 * i);  // distinct
  std::vector<int> perm(32);
  for (int i = 0; i < 32; ++i) perm[i] = (i * 13 + 5) % 32;  // row r of matrix m sits in slot perm[8m + r]
  // Model: element (row, col) of matrix m is src[perm[8m + row]·8 + col]; lane l gets
  //   plain: (l/4, 2(l%4)) low, (l/4, 2(l%4)+1) high;  .trans: (2(l%4), l/4) low, (2(l%4)+1, l/4) high.
  auto check = [&](int n, bool trans, const std::vector<std::uint32_t>& out) {
    int wrong = 0;
    for (int l = 0; l < 32; ++l)
      for (int m = 0; m < n; ++m) {
        auto el = [&](int row, int col) { return (std::uint32_t)src[perm[8 * m + row] * 8 + col]; };
        const int q = l / 4, e = 2 * (l % 4);
        const std::uint32_t want = trans ? el(e, q) | el(e + 1, q) << 16 : el(q, e) | el(q, e + 1) << 16;
        wrong += out[l * n + m] != want;
      }
    CHECK(wrong == 0);
  };
  for (const emu::Schedule& s : emu::test_schedules(4)) {
    emu::ScopedSchedule scope(s);
    CAPTURE(s.name());
    std::vector<std::uint32_t> o1(32), o2(64), o4(128);
    CTG_LAUNCH((ldmatrix_kernel<1, false>), 1, 32, 0, nullptr, src.data(), perm.data(), o1.data());
    check(1, false, o1);
    CTG_LAUNCH((ldmatrix_kernel<2, false>), 1, 32, 0, nullptr, src.data(), perm.data(), o2.data());
    check(2, false, o2);
    CTG_LAUNCH((ldmatrix_kernel<4, false>), 1, 32, 0, nullptr, src.data(), perm.data(), o4.data());
    check(4, false, o4);
    CTG_LAUNCH((ldmatrix_kernel<4, true>), 1, 32, 0, nullptr, src.data(), perm.data(), o4.data());
    check(4, true, o4);
    CTG_LAUNCH((ldmatrix_kernel<2, true>), 1, 32, 0, nullptr, src.data(), perm.data(), o2.data());
    check(2, true, o2);
  }
}

TEST_CASE("emulation: ldmatrix refuses a row address that is not 16-byte aligned") {
  std::vector<std::uint32_t> out(32);
  try {
    CTG_LAUNCH(ldmatrix_misaligned, 1, 32, 0, nullptr, out.data());
    FAIL("no error");
  } catch (const std::runtime_error& e) {
    CHECK(std::string(e.what()).find("not 16-byte aligned") != std::string::npos);
  }
}

TEST_CASE("emulation: cp.async lands only at the covering wait_group, and a missing wait reads poison") {
  std::vector<float> g(192), out(256);
  auto fill = [&] {
    for (int i = 0; i < 192; ++i) g[i] = 0.5f + i;
  };
  for (const emu::Schedule& s : emu::test_schedules(6)) {
    emu::ScopedSchedule scope(s);
    CAPTURE(s.name());
    fill();
    CTG_LAUNCH(cp_async_kernel, 1, 64, 0, nullptr, g.data(), out.data(), 0);
    int wrong = 0;
    for (int t = 0; t < 64; ++t) {
      wrong += out[t] != g[t];              // group 0 landed at wait_group 1
      wrong += out[64 + t] != 0.f;          // group 1: src-size 0, zero-filled
      wrong += !std::isnan(out[128 + t]);   // group 2 still in flight: poison
      wrong += out[192 + t] != g[128 + t];  // landed at wait_group 0
    }
    CHECK(wrong == 0);
    fill();
    CTG_LAUNCH(cp_async_kernel, 1, 64, 0, nullptr, g.data(), out.data(), 1);
    int not_nan = 0;
    for (int i = 0; i < 192; ++i) not_nan += !std::isnan(out[i]);
    CHECK(not_nan == 0);  // __syncthreads() completes no cp.async
    fill();
    CTG_LAUNCH(cp_async_kernel, 1, 64, 0, nullptr, g.data(), out.data(), 2);
    int stale = 0;
    for (int t = 0; t < 64; ++t) stale += out[t] != 1000.f + t;
    CHECK(stale == 0);  // the copy read its source at the wait
  }
  std::vector<float> g16(32), o16(32);
  for (int i = 0; i < 32; ++i) g16[i] = 1.f + i;
  CTG_LAUNCH(cp_async16_kernel, 1, 8, 0, nullptr, g16.data(), o16.data());
  int wrong = 0;
  for (int i = 0; i < 32; ++i) wrong += o16[i] != (i % 4 == 3 ? 0.f : g16[i]);
  CHECK(wrong == 0);
  // The destination must be shared memory.
  CHECK_THROWS_WITH_AS(CTG_LAUNCH(cp_async_to_global, 1, 1, 0, nullptr, g.data()),
                       doctest::Contains("not in the block's shared memory"), std::runtime_error);
}
