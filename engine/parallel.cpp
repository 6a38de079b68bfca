#include "engine/parallel.h"

#include <omp.h>

#include <cstdlib>

#include "kernels/cpu/sgemm.h"

extern "C" void openblas_set_num_threads(int);
extern "C" char* openblas_get_config(void);
extern "C" char* openblas_get_corename(void);

namespace ctg {

void set_num_threads(int n) {
  if (n <= 0) return;
  omp_set_num_threads(n);
  openblas_set_num_threads(n);
}

int num_threads() { return omp_get_max_threads(); }

std::string blas_description() {
  std::string s = std::string("float GEMM: ") + kernels::cpu::cpu_gemm_description() + "; " + openblas_get_config() +
                  "; kernels: " + openblas_get_corename();
  if (const char* v = std::getenv("OPENBLAS_CORETYPE"); v && *v) s += " (OPENBLAS_CORETYPE=" + std::string(v) + ")";
  return s;
}

std::string cpu_code_description() {
  // What the compiler was allowed to emit outside the SGEMM micro-kernels
  // (those carry their own target attributes and are chosen by CPUID).
#if defined(__AVX512F__)
  return "compiled for AVX-512 (avx512f)";
#elif defined(__AVX2__) && defined(__FMA__)
  return "compiled for AVX2 + FMA (no AVX-512)";
#elif defined(__AVX__)
  return "compiled for AVX (no AVX2)";
#elif defined(__x86_64__)
  return "compiled for baseline x86-64 (SSE2)";
#else
  return "compiled for a non-x86 CPU";
#endif
}

}  // namespace ctg
