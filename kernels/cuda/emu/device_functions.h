// CUDA device functions for the CPU emulation: atomics, bit casts, fast math.
// Included by cuda_emu.h; global namespace because CUDA declares them there.
//
// Atomics are real atomics (GCC __atomic builtins, sequentially consistent):
// blocks of one launch run concurrently on several OS threads. Floating-point
// atomicAdd is a compare-and-swap loop on the value, as on GPUs without a native
// instruction; the order of additions differs from run to run, so compare float
// results of atomics with a tolerance.
#pragma once

#include <math.h>  // fminf, fmaxf, expf, logf, sqrtf, ... in the global namespace, as CUDA has them

#include <cmath>
#include <cstdint>
#include <cstring>

// ---- atomics (each returns the old value, as in CUDA) ---------------------------
namespace ctg::cuda::emu::detail {
// Generic read-modify-write via compare-and-swap; `update` maps old → new.
template <typename T, typename F>
T atomic_update(T* address, F update) {
  T old;
  __atomic_load(address, &old, __ATOMIC_RELAXED);
  T desired;
  do {
    desired = update(old);
  } while (!__atomic_compare_exchange(address, &old, &desired, true, __ATOMIC_SEQ_CST, __ATOMIC_RELAXED));
  return old;
}
}  // namespace ctg::cuda::emu::detail

inline int atomicAdd(int* a, int v) { return __atomic_fetch_add(a, v, __ATOMIC_SEQ_CST); }
inline unsigned int atomicAdd(unsigned int* a, unsigned int v) { return __atomic_fetch_add(a, v, __ATOMIC_SEQ_CST); }
inline unsigned long long atomicAdd(unsigned long long* a, unsigned long long v) {
  return __atomic_fetch_add(a, v, __ATOMIC_SEQ_CST);
}
inline float atomicAdd(float* a, float v) {
  return ::ctg::cuda::emu::detail::atomic_update(a, [v](float old) { return old + v; });
}
inline double atomicAdd(double* a, double v) {
  return ::ctg::cuda::emu::detail::atomic_update(a, [v](double old) { return old + v; });
}
inline int atomicSub(int* a, int v) { return __atomic_fetch_sub(a, v, __ATOMIC_SEQ_CST); }
inline unsigned int atomicSub(unsigned int* a, unsigned int v) { return __atomic_fetch_sub(a, v, __ATOMIC_SEQ_CST); }

inline int atomicMax(int* a, int v) {
  return ::ctg::cuda::emu::detail::atomic_update(a, [v](int old) { return old > v ? old : v; });
}
inline unsigned int atomicMax(unsigned int* a, unsigned int v) {
  return ::ctg::cuda::emu::detail::atomic_update(a, [v](unsigned int old) { return old > v ? old : v; });
}
inline int atomicMin(int* a, int v) {
  return ::ctg::cuda::emu::detail::atomic_update(a, [v](int old) { return old < v ? old : v; });
}
inline unsigned int atomicMin(unsigned int* a, unsigned int v) {
  return ::ctg::cuda::emu::detail::atomic_update(a, [v](unsigned int old) { return old < v ? old : v; });
}

inline int atomicExch(int* a, int v) { return __atomic_exchange_n(a, v, __ATOMIC_SEQ_CST); }
inline unsigned int atomicExch(unsigned int* a, unsigned int v) { return __atomic_exchange_n(a, v, __ATOMIC_SEQ_CST); }
inline unsigned long long atomicExch(unsigned long long* a, unsigned long long v) {
  return __atomic_exchange_n(a, v, __ATOMIC_SEQ_CST);
}
inline float atomicExch(float* a, float v) {
  float old;
  __atomic_exchange(a, &v, &old, __ATOMIC_SEQ_CST);
  return old;
}

namespace ctg::cuda::emu::detail {
// Stores `desired` if *a == expected; returns the old value either way.
template <typename T>
inline T atomic_cas(T* a, T expected, T desired) {
  __atomic_compare_exchange_n(a, &expected, desired, false, __ATOMIC_SEQ_CST, __ATOMIC_SEQ_CST);
  return expected;  // on failure the builtin wrote the current value here
}
}  // namespace ctg::cuda::emu::detail
inline int atomicCAS(int* a, int expected, int desired) { return ::ctg::cuda::emu::detail::atomic_cas(a, expected, desired); }
inline unsigned int atomicCAS(unsigned int* a, unsigned int expected, unsigned int desired) {
  return ::ctg::cuda::emu::detail::atomic_cas(a, expected, desired);
}
inline unsigned long long atomicCAS(unsigned long long* a, unsigned long long expected,
                                    unsigned long long desired) {
  return ::ctg::cuda::emu::detail::atomic_cas(a, expected, desired);
}

// Memory fences: blocks on other OS threads may read what this thread wrote.
inline void __threadfence() { __atomic_thread_fence(__ATOMIC_SEQ_CST); }
inline void __threadfence_block() { __atomic_signal_fence(__ATOMIC_SEQ_CST); }

// ---- loads, bit casts, bit counts --------------------------------------------
// __ldg reads through the read-only cache on a GPU; on the CPU it is a load.
template <typename T>
inline T __ldg(const T* p) { return *p; }

namespace ctg::cuda::emu::detail {
template <typename To, typename From>
inline To bit_cast(From v) {
  static_assert(sizeof(To) == sizeof(From), "bit_cast between types of different size");
  To out;
  std::memcpy(&out, &v, sizeof(To));
  return out;
}
}  // namespace ctg::cuda::emu::detail
inline int __float_as_int(float v) { return ::ctg::cuda::emu::detail::bit_cast<int>(v); }
inline unsigned int __float_as_uint(float v) { return ::ctg::cuda::emu::detail::bit_cast<unsigned int>(v); }
inline float __int_as_float(int v) { return ::ctg::cuda::emu::detail::bit_cast<float>(v); }
inline float __uint_as_float(unsigned int v) { return ::ctg::cuda::emu::detail::bit_cast<float>(v); }
inline long long __double_as_longlong(double v) { return ::ctg::cuda::emu::detail::bit_cast<long long>(v); }
inline double __longlong_as_double(long long v) { return ::ctg::cuda::emu::detail::bit_cast<double>(v); }

inline int __popc(unsigned int v) { return __builtin_popcount(v); }
inline int __popcll(unsigned long long v) { return __builtin_popcountll(v); }
// Position (1-based) of the least significant set bit; 0 for 0, as in CUDA.
inline int __ffs(int v) { return __builtin_ffs(v); }
// Leading zeros of a 32-bit value; 32 for 0, as in CUDA (the builtin is undefined there).
inline int __clz(int v) { return v == 0 ? 32 : __builtin_clz((unsigned int)v); }

// ---- math -------------------------------------------------------------------
// CUDA's fast intrinsics trade accuracy for speed on the GPU; here they are the
// accurate std functions, so emulated results are at least as accurate.
inline float __expf(float x) { return std::exp(x); }
inline float __logf(float x) { return std::log(x); }
inline float __fdividef(float a, float b) { return a / b; }
inline float __saturatef(float x) { return x < 0.f ? 0.f : (x > 1.f ? 1.f : x); }
// glibc 2.41 declares C23's rsqrt family itself; define them only where it does not.
#if !(defined(__GLIBC__) && (__GLIBC__ > 2 || (__GLIBC__ == 2 && __GLIBC_MINOR__ >= 41)))
inline float rsqrtf(float x) { return 1.0f / std::sqrt(x); }
inline double rsqrt(double x) { return 1.0 / std::sqrt(x); }
#endif
