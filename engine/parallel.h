// CPU thread count for both OpenMP (our loops) and OpenBLAS (GEMMs).
#pragma once
#include <string>

namespace ctg {
void set_num_threads(int n);  // n ≤ 0: leave the libraries' defaults
int num_threads();
// The GEMM behind float CPU products (ours or OpenBLAS) and OpenBLAS's version and
// build, the kernel family it runs (its core name) and OPENBLAS_CORETYPE when
// set — a machine that pins an older core (e.g. Haswell's AVX2 kernels on an
// AVX-512 CPU, as some environments do because old OpenBLAS builds misbehave
// on new processors) runs GEMMs at a fraction of the CPU's peak, and a figure
// must say so.
std::string blas_description();
// The vector instructions the build targets (-march; CMake CTGRAD_MARCH), e.g.
// "compiled for AVX2 + FMA (no AVX-512)"; `bench step` prints it as `code:`.
std::string cpu_code_description();
}  // namespace ctg
