// The test runner. Our CUDA kernels default to TF32 on a real GPU
// (kernels/cuda/impl.h); the tests hold them against the CPU with FP32
// tolerances, so they run in FP32 unless CTGRAD_PRECISION says otherwise
// (the TF32 tests select it themselves). Child `ctgrad` processes inherit it.
#define DOCTEST_CONFIG_IMPLEMENT
#include <doctest/doctest.h>

#include <cstdlib>

int main(int argc, char** argv) {
  ::setenv("CTGRAD_PRECISION", "fp32", /*overwrite*/ 0);
  doctest::Context context(argc, argv);
  return context.run();
}
