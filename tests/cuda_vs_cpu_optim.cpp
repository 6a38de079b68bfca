// The fused Adam/AdamW/SGD update kernels vs their CPU references over several
// steps, float32, on 1001 parameters (not a multiple of the 256-thread block).
// Tolerance: elementwise float math that differs only in rounding order
// (sqrt, division): atol 1e-6, rtol 1e-5. The ops' own CUDA-vs-CPU cases (relu,
// sigmoid, add, dropout, bce_with_logits, ...) are in the op table
// (engine/op_table/, run by tests/op_table_cuda.cpp).
#include "engine/optim.h"
#include "tests/cuda_check.h"

using namespace ctg;

TEST_CASE("cuda vs cpu: fused Adam, AdamW and SGD updates over several steps") {
  std::mt19937_64 rng(9);
  Tensor p0 = test::rand_f32({1001}, rng), g0 = test::rand_f32({1001}, rng);
  auto run = [&](Device dev, int kind) {
    Tensor p = test::fresh_on(p0, dev).set_requires_grad(true);
    std::unique_ptr<Optimizer> opt;
    if (kind == 0) opt = std::make_unique<Adam>(NamedTensorList{{"p", p}}, 1e-2, 1e-4);
    if (kind == 1) opt = std::make_unique<Adam>(NamedTensorList{{"p", p}}, 1e-2, 1e-2, true);
    if (kind == 2) opt = std::make_unique<SGD>(NamedTensorList{{"p", p}}, 1e-2, 0.9, 1e-4);
    for (int step = 0; step < 3; ++step) {
      p.impl().grad = g0.to(dev).impl_ptr();
      opt->step();
    }
    return p.to(Device::cpu);
  };
  for (int kind = 0; kind < 3; ++kind) {
    CAPTURE(kind);
    Tensor want = run(Device::cpu, kind);
    test::for_each_schedule([&] { test::check_close(run(Device::cuda, kind), want, 1e-6, 1e-5, "optimizer update"); });
  }
}
