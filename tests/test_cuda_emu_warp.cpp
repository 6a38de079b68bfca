// Tests of the CUDA emulation's warp intrinsics and atomics (kernels/cuda/emu/):
// the *_sync shuffles and votes against hand-computed values, CUDA's rules for
// out-of-range and absent source lanes, and atomics from blocks running on
// several OS threads. Block-level behaviour: test_cuda_emu.cpp.
#include <doctest/doctest.h>

#include <cmath>
#include <random>
#include <vector>

#include "kernels/cuda/dialect.h"

namespace emu = ctg::cuda::emu;

namespace {

// Warp intrinsics; every output has one slot per thread.
CTG_GLOBAL void warp_intrinsics(const int* in, int* down_sum, int* xor_sum, int* next, int* prev, int* bcast,
                                int* seg_down, int* seg_xor, unsigned* ballot, int* any_all) {
  const int g = blockIdx.x * blockDim.x + threadIdx.x;
  const int v = in[g];
  int s = v;
  for (int offset = 16; offset > 0; offset >>= 1) s += __shfl_down_sync(0xffffffffu, s, offset);
  down_sum[g] = s;  // lane 0 holds the warp's total
  int b = v;
  for (int m = 1; m < 32; m <<= 1) b += __shfl_xor_sync(0xffffffffu, b, m);
  xor_sum[g] = b;  // every lane holds the total
  next[g] = __shfl_down_sync(0xffffffffu, v, 1);  // lane 31: out of range, own value
  prev[g] = __shfl_up_sync(0xffffffffu, v, 1);    // lane 0: out of range, own value
  bcast[g] = __shfl_sync(0xffffffffu, v, 5);
  seg_down[g] = __shfl_down_sync(0xffffffffu, v, 2, 8);  // within segments of 8 lanes
  seg_xor[g] = __shfl_xor_sync(0xffffffffu, v, 8, 8);    // later segment: own value
  ballot[g] = __ballot_sync(0xffffffffu, v % 3 == 0);
  any_all[g] = __any_sync(0xffffffffu, v == 7) + 2 * __all_sync(0xffffffffu, v >= 0);
}

// Lanes 0..15 shuffle among themselves (mask 0xffff); the others do not take part.
CTG_GLOBAL void half_warp_shuffle(const int* in, int* out) {
  const int v = in[threadIdx.x];
  out[threadIdx.x] = threadIdx.x < 16 ? __shfl_down_sync(0xffffu, v, 4, 16) : -5;
}

// A float warp sum in a block of 48 threads: warp 1 has only 16 lanes, so its
// offset-16 step reads absent lanes and must come back poisoned (NaN).
CTG_GLOBAL void partial_warp_sum(const float* in, float* out) {
  float s = in[threadIdx.x];
  for (int offset = 16; offset > 0; offset >>= 1) s += __shfl_down_sync(0xffffffffu, s, offset);
  out[threadIdx.x] = s;
}

// Each thread repeats the integer atomics `repeats` times, so that blocks on
// different OS threads really do overlap.
CTG_GLOBAL void hammer_atomics(int repeats, int* icount, float* fsum, double* dsum, unsigned long long* ucount,
                               int* imax, unsigned* cas_count) {
  const int g = blockIdx.x * blockDim.x + threadIdx.x;
  atomicAdd(fsum, 0.1f);
  atomicMax(imax, g);
  for (int r = 0; r < repeats; ++r) {
    atomicAdd(icount, 1);
    atomicAdd(dsum, 0.25);
    atomicAdd(ucount, 3ull);
    // Lock-free increment by 2 with compare-and-swap, the classic CUDA loop.
    unsigned old = atomicCAS(cas_count, 0u, 0u), assumed;
    do {
      assumed = old;
      old = atomicCAS(cas_count, assumed, assumed + 2u);
    } while (old != assumed);
  }
}

}  // namespace

TEST_CASE("emulation: warp shuffles and votes follow CUDA's *_sync rules") {
  const int threads = 64, blocks = 3, total = threads * blocks;
  std::vector<int> in(total);
  std::mt19937 rng(11);
  for (int& v : in) v = (int)(rng() % 50);
  in[5] = 7;  // warp 0 has a 7 for __any_sync
  for (const emu::Schedule& s : emu::test_schedules(7)) {
    INFO("schedule " << s.name());
    emu::ScopedSchedule scope(s);
    std::vector<int> down(total), xr(total), next(total), prev(total), bcast(total), segd(total), segx(total),
        aa(total);
    std::vector<unsigned> ballot(total);
    CTG_LAUNCH(warp_intrinsics, blocks, threads, 0, nullptr, in.data(), down.data(), xr.data(), next.data(),
               prev.data(), bcast.data(), segd.data(), segx.data(), ballot.data(), aa.data());
    int wrong = 0;
    for (int w = 0; w < total / 32; ++w) {
      const int* v = &in[32 * w];
      int sum = 0, any7 = 0;
      unsigned want_ballot = 0;
      for (int l = 0; l < 32; ++l) {
        sum += v[l];
        any7 |= v[l] == 7;
        if (v[l] % 3 == 0) want_ballot |= 1u << l;
      }
      wrong += down[32 * w] != sum;
      for (int l = 0; l < 32; ++l) {
        const int g = 32 * w + l;
        wrong += xr[g] != sum;
        wrong += next[g] != (l == 31 ? v[l] : v[l + 1]);
        wrong += prev[g] != (l == 0 ? v[l] : v[l - 1]);
        wrong += bcast[g] != v[5];
        wrong += segd[g] != (l % 8 + 2 < 8 ? v[l + 2] : v[l]);
        wrong += segx[g] != ((l ^ 8) >= (l & ~7) + 8 ? v[l] : v[l ^ 8]);
        wrong += ballot[g] != want_ballot;
        wrong += aa[g] != any7 + 2;
      }
    }
    CHECK(wrong == 0);

    // Partial mask: 16 lanes in segments of 16.
    std::vector<int> half_out(32);
    CTG_LAUNCH(half_warp_shuffle, 1, 32, 0, nullptr, in.data(), half_out.data());
    for (int l = 0; l < 32; ++l) CHECK(half_out[l] == (l >= 16 ? -5 : l + 4 < 16 ? in[l + 4] : in[l]));
  }
}

TEST_CASE("emulation: a shuffle from an absent lane of a partial warp reads poison") {
  std::vector<float> in(48), out(48);
  for (int i = 0; i < 48; ++i) in[i] = 0.5f * (float)(i + 1);
  CTG_LAUNCH(partial_warp_sum, 1, 48, 0, nullptr, in.data(), out.data());
  float warp0 = 0.f;
  for (int i = 0; i < 32; ++i) warp0 += in[i];
  CHECK(out[0] == doctest::Approx(warp0));  // a full warp: lane 0 holds the sum
  CHECK(std::isnan(out[32]));               // lane 0 of warp 1 read lane 16, which does not exist
}

TEST_CASE("emulation: atomics from many blocks on OS threads sum exactly (ints) or closely (floats)") {
  const int blocks = 97, threads = 128, total = blocks * threads, repeats = 40;
  for (const emu::Schedule& s : emu::test_schedules(7)) {
    INFO("schedule " << s.name());
    emu::ScopedSchedule scope(s);
    int icount = 0, imax = -1;
    float fsum = 0.f;
    double dsum = 0.0;
    unsigned long long ucount = 0;
    unsigned cas_count = 0;
    CTG_LAUNCH(hammer_atomics, blocks, threads, 0, nullptr, repeats, &icount, &fsum, &dsum, &ucount, &imax,
               &cas_count);
    CHECK(icount == total * repeats);
    CHECK(ucount == 3ull * total * repeats);
    CHECK(cas_count == 2u * total * repeats);
    CHECK(dsum == 0.25 * total * repeats);  // exact: quarters are representable
    CHECK(imax == total - 1);
    CHECK(fsum == doctest::Approx(0.1 * total).epsilon(1e-3));
  }
}
