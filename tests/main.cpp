// The test runner. Our CUDA kernels default to TF32 on a real GPU
// (kernels/cuda/impl.h); the tests hold them against the CPU with FP32
// tolerances, so they run in FP32 unless CTGRAD_PRECISION says otherwise
// (the TF32 tests select it themselves). Fresh CPU memory is poisoned with
// NaN bytes (CTGRAD_CPU_POISON, engine/tensor.cpp), as the CUDA emulation
// poisons device memory, so a read of never-written memory fails the tests.
// Child `ctgrad` processes inherit both.
#define DOCTEST_CONFIG_IMPLEMENT
#include <doctest/doctest.h>

#include <cstdlib>

int main(int argc, char** argv) {
  ::setenv("CTGRAD_PRECISION", "fp32", /*overwrite*/ 0);
  ::setenv("CTGRAD_CPU_POISON", "1", /*overwrite*/ 0);
  doctest::Context context(argc, argv);
  return context.run();
}
