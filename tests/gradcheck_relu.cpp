#include "engine/ops.h"
#include "tests/gradcheck.h"

using namespace ctg;

TEST_CASE("relu forward: hand-computed") {
  Tensor x = Tensor::from_vector({-2, -0.5, 0.25, 3}, {4});
  CHECK(ops::relu(x).to_vector() == std::vector<double>{0, 0, 0.25, 3});
}

TEST_CASE("gradcheck relu (inputs kept away from the kink at 0)") {
  std::mt19937_64 rng(1);
  Tensor x = test::rand_tensor({2, 3, 5, 7}, rng, 0.05, 1.0);
  // Random signs, magnitudes ≥ 0.05 ≫ ε.
  double* p = x.data<double>();
  for (int64_t i = 0; i < x.numel(); ++i) if (rng() & 1) p[i] = -p[i];
  x.set_requires_grad(true);
  test::gradcheck([](const std::vector<Tensor>& in) { return ops::relu(in[0]); }, {x});
}
