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

}  // namespace ctg
