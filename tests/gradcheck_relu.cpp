#include "engine/ops.h"
#include "tests/gradcheck.h"

using namespace ctg;

TEST_CASE("relu forward: hand-computed") {
  Tensor x = Tensor::from_vector({-2, -0.5, 0.25, 3}, {4});
  CHECK(ops::relu(x).to_vector() == std::vector<double>{0, 0, 0.25, 3});
}

