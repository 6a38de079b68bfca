// Tensor-core instructions in the CUDA dialect (kernels/cuda/dialect.h): inline
// PTX under nvcc, the CPU emulation (kernels/cuda/emu/warp.cpp, async_copy.cpp)
// under g++ — one spelling for kernel code, held against scalar models of the
// PTX ISA's semantics in tests/test_cuda_emu_mma.cpp.
//
//   to_tf32(x)             cvt.rna.tf32.f32: x rounded to TF32 (1 + 8 + 10 bits),
//                          to nearest, ties away from zero; the low 13 bits zero.
//   mma_tf32(d, a, b, c)   mma.sync.aligned.m16n8k8.row.col.f32.tf32.tf32.f32:
//                          D[16×8] = A[16×8]·B[8×8] + C, one warp, fragments as
//                          in PTX "Matrix Fragments for mma.m16n8k8" (warp.cpp).
//   ldmatrix<N>(r, row)    ldmatrix.sync.aligned.m8n8.xN.shared.b16 (N = 1, 2, 4);
//   ldmatrix_trans<N>      .trans; `row` is this lane's row address in shared memory.
//   cp_async<B>(dst, src, src_bytes = B)
//                          cp.async.ca (B = 4, 8) / .cg (B = 16) .shared.global:
//                          copies B bytes, the bytes past src_bytes zero-filled.
//   cp_async_commit()      cp.async.commit_group
//   cp_async_wait<N>()     cp.async.wait_group N: all but the N most recent groups landed.
// Every lane of a warp must execute mma_tf32 and ldmatrix together (.aligned).
// After cp_async_wait the copies are visible to the issuing thread only; other
// threads need a __syncthreads() as well.
#pragma once

#include <cstdint>
#include <cstring>

#include "kernels/cuda/dialect.h"

namespace ctg::cuda::tc {

#if defined(__CUDACC__) && (!defined(__CUDA_ARCH__) || __CUDA_ARCH__ >= 800)

CTG_DEVICE std::uint32_t to_tf32(float x) {
  std::uint32_t r;
  asm("cvt.rna.tf32.f32 %0, %1;\n" : "=r"(r) : "f"(x));
  return r;
}

CTG_DEVICE void mma_tf32(float (&d)[4], const std::uint32_t (&a)[4], const std::uint32_t (&b)[2],
                         const float (&c)[4]) {
  asm volatile(
      "mma.sync.aligned.m16n8k8.row.col.f32.tf32.tf32.f32 {%0,%1,%2,%3}, {%4,%5,%6,%7}, {%8,%9}, "
      "{%10,%11,%12,%13};\n"
      : "=f"(d[0]), "=f"(d[1]), "=f"(d[2]), "=f"(d[3])
      : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "r"(b[0]), "r"(b[1]), "f"(c[0]), "f"(c[1]), "f"(c[2]),
        "f"(c[3]));
}

CTG_DEVICE std::uint32_t shared_address(const void* p) {
  return static_cast<std::uint32_t>(__cvta_generic_to_shared(p));
}

template <int N>
CTG_DEVICE void ldmatrix(std::uint32_t (&r)[N], const void* row) {
  static_assert(N == 1 || N == 2 || N == 4, "ldmatrix loads 1, 2 or 4 matrices");
  const std::uint32_t s = shared_address(row);
  if constexpr (N == 1)
    asm volatile("ldmatrix.sync.aligned.m8n8.x1.shared.b16 {%0}, [%1];\n" : "=r"(r[0]) : "r"(s));
  else if constexpr (N == 2)
    asm volatile("ldmatrix.sync.aligned.m8n8.x2.shared.b16 {%0,%1}, [%2];\n" : "=r"(r[0]), "=r"(r[1]) : "r"(s));
  else
    asm volatile("ldmatrix.sync.aligned.m8n8.x4.shared.b16 {%0,%1,%2,%3}, [%4];\n"
                 : "=r"(r[0]), "=r"(r[1]), "=r"(r[2]), "=r"(r[3])
                 : "r"(s));
}

template <int N>
CTG_DEVICE void ldmatrix_trans(std::uint32_t (&r)[N], const void* row) {
  static_assert(N == 1 || N == 2 || N == 4, "ldmatrix loads 1, 2 or 4 matrices");
  const std::uint32_t s = shared_address(row);
  if constexpr (N == 1)
    asm volatile("ldmatrix.sync.aligned.m8n8.x1.trans.shared.b16 {%0}, [%1];\n" : "=r"(r[0]) : "r"(s));
  else if constexpr (N == 2)
    asm volatile("ldmatrix.sync.aligned.m8n8.x2.trans.shared.b16 {%0,%1}, [%2];\n"
                 : "=r"(r[0]), "=r"(r[1])
                 : "r"(s));
  else
    asm volatile("ldmatrix.sync.aligned.m8n8.x4.trans.shared.b16 {%0,%1,%2,%3}, [%4];\n"
                 : "=r"(r[0]), "=r"(r[1]), "=r"(r[2]), "=r"(r[3])
                 : "r"(s));
}

template <int B>
CTG_DEVICE void cp_async(void* dst, const void* src, int src_bytes = B) {
  static_assert(B == 4 || B == 8 || B == 16, "cp.async copies 4, 8 or 16 bytes");
  const std::uint32_t s = shared_address(dst);
  if constexpr (B == 16)  // .cg (L2 only) exists for 16 bytes; smaller copies use .ca
    asm volatile("cp.async.cg.shared.global [%0], [%1], 16, %2;\n" ::"r"(s), "l"(src), "r"(src_bytes) : "memory");
  else
    asm volatile("cp.async.ca.shared.global [%0], [%1], %2, %3;\n" ::"r"(s), "l"(src), "n"(B), "r"(src_bytes)
                 : "memory");
}

CTG_DEVICE void cp_async_commit() { asm volatile("cp.async.commit_group;\n" ::: "memory"); }

template <int N>
CTG_DEVICE void cp_async_wait() {
  asm volatile("cp.async.wait_group %0;\n" ::"n"(N) : "memory");
}

#elif defined(__CUDACC__)
// Built for a GPU without TF32 tensor cores or cp.async (before sm_80, e.g.
// -DCMAKE_CUDA_ARCHITECTURES=75): the FP32 kernels still work; a TF32 kernel
// traps, so --precision tf32 there fails at its first launch instead of the
// whole build failing in ptxas.
CTG_DEVICE std::uint32_t to_tf32(float) { __trap(); return 0; }
CTG_DEVICE void mma_tf32(float (&)[4], const std::uint32_t (&)[4], const std::uint32_t (&)[2], const float (&)[4]) {
  __trap();
}
template <int N>
CTG_DEVICE void ldmatrix(std::uint32_t (&)[N], const void*) { __trap(); }
template <int N>
CTG_DEVICE void ldmatrix_trans(std::uint32_t (&)[N], const void*) { __trap(); }
template <int B>
CTG_DEVICE void cp_async(void*, const void*, int = B) { __trap(); }
CTG_DEVICE void cp_async_commit() { __trap(); }
template <int N>
CTG_DEVICE void cp_async_wait() { __trap(); }

#else  // CPU emulation: the call site is recorded for error messages

using ::ctg::cuda::emu::Site;

// cvt.rna.tf32.f32 on the bits: adding half of the dropped 13 bits' unit to the
// magnitude and truncating rounds to nearest with ties away from zero; a carry
// into the exponent is the correct rounding up (to infinity at the top).
// Infinities stay; a NaN stays a (quiet) NaN.
inline std::uint32_t to_tf32(float x) {
  std::uint32_t u;
  std::memcpy(&u, &x, 4);
  if ((u & 0x7f800000u) == 0x7f800000u) return (u & 0x007fffffu) ? (u | 0x00400000u) & 0xffffe000u : u;
  return (u + 0x1000u) & 0xffffe000u;
}

inline void mma_tf32(float (&d)[4], const std::uint32_t (&a)[4], const std::uint32_t (&b)[2], const float (&c)[4],
                     Site site = Site{__builtin_FILE(), __builtin_LINE()}) {
  ::ctg::cuda::emu::detail::mma_m16n8k8_tf32(site, d, a, b, c);
}

template <int N>
inline void ldmatrix(std::uint32_t (&r)[N], const void* row, Site site = Site{__builtin_FILE(), __builtin_LINE()}) {
  static_assert(N == 1 || N == 2 || N == 4, "ldmatrix loads 1, 2 or 4 matrices");
  ::ctg::cuda::emu::detail::ldmatrix(site, N, false, r, row);
}
template <int N>
inline void ldmatrix_trans(std::uint32_t (&r)[N], const void* row,
                           Site site = Site{__builtin_FILE(), __builtin_LINE()}) {
  static_assert(N == 1 || N == 2 || N == 4, "ldmatrix loads 1, 2 or 4 matrices");
  ::ctg::cuda::emu::detail::ldmatrix(site, N, true, r, row);
}

template <int B>
inline void cp_async(void* dst, const void* src, int src_bytes = B, Site site = Site{__builtin_FILE(), __builtin_LINE()}) {
  static_assert(B == 4 || B == 8 || B == 16, "cp.async copies 4, 8 or 16 bytes");
  ::ctg::cuda::emu::detail::cp_async(site, dst, src, B, src_bytes);
}
inline void cp_async_commit(Site site = Site{__builtin_FILE(), __builtin_LINE()}) {
  ::ctg::cuda::emu::detail::cp_async_commit(site);
}
template <int N>
inline void cp_async_wait(Site site = Site{__builtin_FILE(), __builtin_LINE()}) {
  ::ctg::cuda::emu::detail::cp_async_wait(site, N);
}

#endif

// The TF32 bits as a float (what the tensor core multiplies).
CTG_HOST_DEVICE float tf32_value(std::uint32_t bits) {
  float f;
  std::memcpy(&f, &bits, 4);
  return f;
}

}  // namespace ctg::cuda::tc
