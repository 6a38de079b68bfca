// Tests of the CUDA emulation layer (kernels/cuda/emu/): the small kernels below
// are written in the dialect of kernels/cuda/dialect.h, exactly as kernel files
// are; compiled as C++ they run on the emulation. "Device memory" is host memory.
// Block-level behaviour here; warp intrinsics and atomics: test_cuda_emu_warp.cpp.
#include <doctest/doctest.h>

#include <cmath>
#include <random>
#include <stdexcept>
#include <vector>

#include "kernels/cuda/dialect.h"

namespace emu = ctg::cuda::emu;
using ctg::cuda::launch;

namespace {

// ---- kernels -------------------------------------------------------------------

// Counts how often each global thread runs and records what it saw.
CTG_GLOBAL void record_indices(int* hits, unsigned* seen, dim3 want_grid, dim3 want_block, int* bad_dims) {
  const unsigned block = blockIdx.x + gridDim.x * (blockIdx.y + gridDim.y * blockIdx.z);
  const unsigned thread = threadIdx.x + blockDim.x * (threadIdx.y + blockDim.y * threadIdx.z);
  const unsigned g = block * (blockDim.x * blockDim.y * blockDim.z) + thread;
  atomicAdd(&hits[g], 1);
  const unsigned v[6] = {threadIdx.x, threadIdx.y, threadIdx.z, blockIdx.x, blockIdx.y, blockIdx.z};
  for (int k = 0; k < 6; ++k) seen[6 * g + k] = v[k];
  if (blockDim.x != want_block.x || blockDim.y != want_block.y || blockDim.z != want_block.z ||
      gridDim.x != want_grid.x || gridDim.y != want_grid.y || gridDim.z != want_grid.z)
    atomicAdd(bad_dims, 1);
}

// Tree reduction of one block's 128 inputs in shared memory. With kPlantedBug the
// barrier inside the loop is missing: a thread may read partial[t + stride]
// before its owner added into it.
template <bool kPlantedBug>
CTG_GLOBAL void block_sum(const float* x, float* out, int n) {
  CTG_SHARED(float, partial, [128]);
  const int t = threadIdx.x;
  const int i = blockIdx.x * blockDim.x + t;
  partial[t] = i < n ? x[i] : 0.f;
  __syncthreads();
  for (int stride = blockDim.x / 2; stride > 0; stride >>= 1) {
    if (t < stride) partial[t] += partial[t + stride];
    if (!kPlantedBug) __syncthreads();
  }
  if (t == 0) out[blockIdx.x] = partial[0];
}

// The same reduction over dynamic shared memory (size given at launch).
CTG_GLOBAL void block_sum_dynamic(const float* x, float* out, int n) {
  CTG_DYNAMIC_SHARED(float, partial);
  const int t = threadIdx.x;
  const int i = blockIdx.x * blockDim.x + t;
  partial[t] = i < n ? x[i] : 0.f;
  __syncthreads();
  for (int stride = blockDim.x / 2; stride > 0; stride >>= 1) {
    if (t < stride) partial[t] += partial[t + stride];
    __syncthreads();
  }
  if (t == 0) out[blockIdx.x] = partial[0];
}

CTG_GLOBAL void barrier_in_branch(float* out) {
  if (threadIdx.x < 16) __syncthreads();
  out[threadIdx.x] = 1.f;
}

CTG_GLOBAL void barrier_two_sites(float* out) {
  if (threadIdx.x % 2)
    __syncthreads();
  else
    __syncthreads();
  out[threadIdx.x] = 1.f;
}

// Half a warp shuffles with the full mask while the other half waits at a barrier.
CTG_GLOBAL void shuffle_against_barrier(int* out) {
  int v = threadIdx.x;
  if (threadIdx.x < 16)
    v = __shfl_down_sync(0xffffffffu, v, 1);
  else
    __syncthreads();
  out[threadIdx.x] = v;
}

// Each block writes one half of a shared array (which half depends on the
// block) and reads the other half, which nothing wrote: poison, in every block.
CTG_GLOBAL void read_unwritten_shared(float* out_static, float* out_dynamic) {
  CTG_SHARED(float, buf, [64]);
  CTG_DYNAMIC_SHARED(float, dyn);
  const int t = threadIdx.x;  // 32 threads
  const int mine = (blockIdx.x % 2) ? 32 + t : t;
  const int other = (blockIdx.x % 2) ? t : 32 + t;
  buf[mine] = 1.f;
  dyn[mine] = 2.f;
  __syncthreads();
  out_static[blockIdx.x * 64 + mine] = buf[mine];
  out_static[blockIdx.x * 64 + other] = buf[other];
  out_dynamic[blockIdx.x * 64 + mine] = dyn[mine];
  out_dynamic[blockIdx.x * 64 + other] = dyn[other];
}

// With `big`, 40 000 bytes of static shared memory on top of the launch's
// dynamic shared memory: with 12 KiB dynamic that exceeds a block's 48 KiB.
CTG_GLOBAL void scalar_shared_and_too_much(float* out, int big) {
  CTG_SHARED(float, total, );
  const int g = blockIdx.x * blockDim.x + threadIdx.x;
  if (threadIdx.x == 0) total = 3.f;
  __syncthreads();
  out[g] = total;
  if (big) {
    CTG_SHARED(float, large, [10000]);
    large[threadIdx.x] = 1.f;
    out[g] += large[threadIdx.x];
  }
}

CTG_GLOBAL void noop(float* out) { out[0] = 0.f; }

// C[M×N] = A[M×K] · B[K×N], 16×16 tiles in shared memory, two barriers per tile.
constexpr int kTile = 16;
CTG_GLOBAL void sgemm_tiled(const float* A, const float* B, float* C, int M, int N, int K) {
  CTG_SHARED(float, As, [kTile][kTile]);
  CTG_SHARED(float, Bs, [kTile][kTile + 1]);
  const int tx = threadIdx.x, ty = threadIdx.y;
  const int row = blockIdx.y * kTile + ty, col = blockIdx.x * kTile + tx;
  float acc = 0.f;
  for (int k0 = 0; k0 < K; k0 += kTile) {
    As[ty][tx] = (row < M && k0 + tx < K) ? A[row * K + k0 + tx] : 0.f;
    Bs[ty][tx] = (k0 + ty < K && col < N) ? B[(k0 + ty) * N + col] : 0.f;
    __syncthreads();
    for (int k = 0; k < kTile; ++k) acc += As[ty][k] * Bs[k][tx];
    __syncthreads();
  }
  if (row < M && col < N) C[row * N + col] = acc;
}

// ---- helpers -------------------------------------------------------------------

// Small integers stored as floats: every order of summation gives the exact sum,
// so a schedule-dependent result can only come from a race.
std::vector<float> small_integers(int n, unsigned seed) {
  std::mt19937 rng(seed);
  std::uniform_int_distribution<int> d(-8, 9);
  std::vector<float> v(n);
  for (float& x : v) x = (float)d(rng);
  return v;
}

std::vector<float> block_sums_reference(const std::vector<float>& x, int block) {
  std::vector<float> out((x.size() + block - 1) / block, 0.f);
  for (size_t i = 0; i < x.size(); ++i) out[i / block] += x[i];
  return out;
}

template <bool kPlantedBug>
std::vector<float> run_block_sum(const std::vector<float>& x) {
  const int n = (int)x.size(), block = 128, grid = (n + block - 1) / block;
  std::vector<float> out(grid, -1.f);
  launch(kPlantedBug ? "block_sum<bug>" : "block_sum", block_sum<kPlantedBug>, grid, block, 0, nullptr, x.data(),
         out.data(), n);
  return out;
}

}  // namespace

// ---- tests ---------------------------------------------------------------------

TEST_CASE("emulation: thread and block indices cover a 3-D grid exactly once") {
  const dim3 grid(3, 2, 5), block(5, 3, 7);  // odd sizes; 105 threads: a partial warp
  const int total = 3 * 2 * 5 * 5 * 3 * 7;
  for (const emu::Schedule& s : emu::test_schedules(7)) {
    INFO("schedule " << s.name());
    emu::ScopedSchedule scope(s);
    std::vector<int> hits(total, 0), bad(1, 0);
    std::vector<unsigned> seen(6 * total, 999u);
    CTG_LAUNCH(record_indices, grid, block, 0, nullptr, hits.data(), seen.data(), grid, block, bad.data());
    CHECK(bad[0] == 0);
    int wrong = 0;
    for (int g = 0; g < total; ++g) {
      // Invert the linearisation the kernel used and compare with what it saw.
      const int per_block = 5 * 3 * 7, b = g / per_block, t = g % per_block;
      const unsigned want[6] = {(unsigned)(t % 5), (unsigned)(t / 5 % 3), (unsigned)(t / 15),
                                (unsigned)(b % 3), (unsigned)(b / 3 % 2), (unsigned)(b / 6)};
      bool ok = hits[g] == 1;
      for (int k = 0; k < 6; ++k) ok = ok && seen[6 * g + k] == want[k];
      wrong += !ok;
    }
    CHECK(wrong == 0);
  }
}

TEST_CASE("emulation: shared-memory block reduction is exact under every schedule") {
  const std::vector<float> x = small_integers(1000, 3);  // 8 blocks, the last one partial
  const std::vector<float> want = block_sums_reference(x, 128);
  for (const emu::Schedule& s : emu::test_schedules(7)) {
    INFO("schedule " << s.name());
    emu::ScopedSchedule scope(s);
    CHECK(run_block_sum<false>(x) == want);
    // The same with dynamic shared memory and 64-thread blocks.
    std::vector<float> out(16, -1.f);
    CTG_LAUNCH(block_sum_dynamic, 16, 64, 64 * sizeof(float), nullptr, x.data(), out.data(), 1000);
    CHECK(out == block_sums_reference(x, 64));
  }
}

TEST_CASE("emulation: a planted missing __syncthreads() is caught by comparing schedules") {
  const std::vector<float> x = small_integers(1000, 4);
  const std::vector<float> want = block_sums_reference(x, 128);
  std::vector<std::vector<float>> results;
  int wrong = 0;
  for (const emu::Schedule& s : emu::test_schedules(7)) {
    emu::ScopedSchedule scope(s);
    results.push_back(run_block_sum<true>(x));
    wrong += results.back() != want;
    MESSAGE("planted bug under " << s.name() << ": " << (results.back() == want ? "right" : "WRONG") << " answer");
  }
  // The harness's protocol: run under several orders and require one answer.
  const bool schedules_agree = results[0] == results[1] && results[1] == results[2];
  CHECK_FALSE(schedules_agree);
  CHECK(wrong >= 1);
}

TEST_CASE("emulation: a barrier reached by part of a block is reported, not hung on") {
  std::vector<float> out(64, 0.f);
  for (const emu::Schedule& s : emu::test_schedules(7)) {
    INFO("schedule " << s.name());
    emu::ScopedSchedule scope(s);
    CHECK_THROWS_WITH_AS(CTG_LAUNCH(barrier_in_branch, 2, 32, 0, nullptr, out.data()),
                         doctest::Contains("barrier divergence"), std::runtime_error);
    CHECK_THROWS_WITH_AS(CTG_LAUNCH(barrier_in_branch, 2, 32, 0, nullptr, out.data()),
                         doctest::Contains("16 threads have exited"), std::runtime_error);
    CHECK_THROWS_WITH_AS(CTG_LAUNCH(barrier_in_branch, 2, 32, 0, nullptr, out.data()),
                         doctest::Contains("kernel 'barrier_in_branch'"), std::runtime_error);
    CHECK_THROWS_WITH_AS(CTG_LAUNCH(barrier_two_sites, 1, 32, 0, nullptr, out.data()),
                         doctest::Contains("__syncthreads() at"), std::runtime_error);
    CHECK_THROWS_WITH_AS(CTG_LAUNCH(shuffle_against_barrier, 1, 32, 0, nullptr, (int*)nullptr),
                         doctest::Contains("__shfl_down_sync(mask 0xffffffff)"), std::runtime_error);
  }
  // The runner recovers: suspended fibers of the failed blocks are not reused as they were.
  const std::vector<float> x = small_integers(1000, 5);
  CHECK(run_block_sum<false>(x) == block_sums_reference(x, 128));
}

TEST_CASE("emulation: shared memory nothing wrote reads as NaN, in every block") {
  const int blocks = 6;
  std::vector<float> st(64 * blocks), dy(64 * blocks);
  CTG_LAUNCH(read_unwritten_shared, blocks, 32, 64 * sizeof(float), nullptr, st.data(), dy.data());
  int wrong = 0;
  for (int b = 0; b < blocks; ++b)
    for (int i = 0; i < 64; ++i) {
      const bool written = (b % 2) ? i >= 32 : i < 32;
      wrong += written ? st[64 * b + i] != 1.f : !std::isnan(st[64 * b + i]);
      wrong += written ? dy[64 * b + i] != 2.f : !std::isnan(dy[64 * b + i]);
    }
  CHECK(wrong == 0);
}

TEST_CASE("emulation: scalar shared variables - shared memory beyond 48 KiB is an error") {
  std::vector<float> out(64, 0.f);
  CTG_LAUNCH(scalar_shared_and_too_much, 2, 32, 0, nullptr, out.data(), 0);
  CHECK(out == std::vector<float>(64, 3.f));
  CHECK_NOTHROW(CTG_LAUNCH(scalar_shared_and_too_much, 2, 32, 8 * 1024, nullptr, out.data(), 1));
  CHECK(out == std::vector<float>(64, 4.f));
  CHECK_THROWS_WITH_AS(CTG_LAUNCH(scalar_shared_and_too_much, 2, 32, 12 * 1024, nullptr, out.data(), 1),
                       doctest::Contains("exceed the 48 KiB"), std::runtime_error);
}

TEST_CASE("emulation: invalid launch configurations fail like CUDA's, naming the kernel") {
  std::vector<float> out(1);
  CHECK_THROWS_WITH_AS(CTG_LAUNCH(noop, 1, 1025, 0, nullptr, out.data()),
                       doctest::Contains("launch of kernel 'noop' failed: invalid configuration argument"),
                       std::runtime_error);
  CHECK_THROWS_WITH_AS(CTG_LAUNCH(noop, 1, dim3(32, 32, 2), 0, nullptr, out.data()),
                       doctest::Contains("2048 threads per block"), std::runtime_error);
  CHECK_THROWS_WITH_AS(CTG_LAUNCH(noop, dim3(4, 0, 1), 32, 0, nullptr, out.data()),
                       doctest::Contains("zero"), std::runtime_error);
  CHECK_THROWS_WITH_AS(CTG_LAUNCH(noop, 1, 32, 64 * 1024, nullptr, out.data()),
                       doctest::Contains("dynamic shared memory exceed 48 KiB"), std::runtime_error);
  CHECK_NOTHROW(CTG_LAUNCH(noop, 1, 1024, 0, nullptr, out.data()));
  CHECK_THROWS_AS(__syncthreads(), std::logic_error);  // host code is not a kernel
}

TEST_CASE("emulation: tiled SGEMM with partial tiles matches the CPU loop under every schedule") {
  const int M = 37, N = 29, K = 41;  // not multiples of the 16×16 tile
  std::mt19937 rng(5);
  std::uniform_real_distribution<float> u(-1.f, 1.f);
  std::vector<float> A(M * K), B(K * N), want(M * N, 0.f);
  for (float& v : A) v = u(rng);
  for (float& v : B) v = u(rng);
  for (int i = 0; i < M; ++i)
    for (int j = 0; j < N; ++j)
      for (int k = 0; k < K; ++k) want[i * N + j] += A[i * K + k] * B[k * N + j];
  for (const emu::Schedule& s : emu::test_schedules(7)) {
    INFO("schedule " << s.name());
    emu::ScopedSchedule scope(s);
    std::vector<float> C(M * N, -1.f);
    CTG_LAUNCH(sgemm_tiled, dim3((N + kTile - 1) / kTile, (M + kTile - 1) / kTile), dim3(kTile, kTile), 0,
               nullptr, A.data(), B.data(), C.data(), M, N, K);
    float worst = 0.f;
    for (int i = 0; i < M * N; ++i) worst = std::max(worst, std::fabs(C[i] - want[i]));
    CHECK(worst <= 1e-4f);
  }
}

TEST_CASE("emulation: schedules parse from the CTGRAD_EMU_SCHEDULE spelling") {
  CHECK(emu::parse_schedule("inorder") == emu::Schedule(emu::Schedule::in_order));
  CHECK(emu::parse_schedule("reverse") == emu::Schedule(emu::Schedule::reversed));
  CHECK(emu::parse_schedule("random:42") == emu::Schedule(emu::Schedule::shuffled, 42));
  CHECK(emu::parse_schedule("random:42").name() == "random:42");
  CHECK_THROWS_AS(emu::parse_schedule("random:"), std::invalid_argument);
  CHECK_THROWS_AS(emu::parse_schedule("backwards"), std::invalid_argument);
  {
    emu::ScopedSchedule scope({emu::Schedule::shuffled, 9});
    CHECK(emu::current_schedule() == emu::Schedule(emu::Schedule::shuffled, 9));
  }
  CHECK(emu::current_schedule() != emu::Schedule(emu::Schedule::shuffled, 9));
}
