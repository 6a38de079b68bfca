// The convolution observer behind `ctgrad bench conv` (kernels/cpu/conv2d_observer.h):
// one training step's forward and backward call it once per convolution and
// direction, with the convolution's dims, on both CPU implementations; unset,
// nothing calls it.
#include <doctest/doctest.h>

#include <array>
#include <map>

#include "engine/autograd.h"
#include "engine/ops.h"
#include "engine/trace.h"
#include "kernels/cpu/conv2d_observer.h"
#include "kernels/cpu_impl.h"
#include "nets/nets.h"

using namespace ctg;

namespace {

using Key = std::array<int64_t, 13>;  // N C H W O KH KW SH SW PH PW OH OW
Key key_of(const kernels::Conv2dDims& d) {
  return {d.N, d.C, d.H, d.W, d.O, d.KH, d.KW, d.SH, d.SW, d.PH, d.PW, d.OH, d.OW};
}
// Seen calls per dims: [forward, backward].
std::map<Key, std::array<int64_t, 2>> g_seen;
int64_t g_total = 0;
void record(const kernels::Conv2dDims& d, bool backward) {
  ++g_seen[key_of(d)][backward ? 1 : 0];
  ++g_total;
}

// One step's forward, loss and backward (as bench conv runs it), observed.
void observed_step(const std::string& net, int64_t batch, int64_t size) {
  auto model = nets::make_net(net, {size, 1, false});
  model->train();
  const auto [x, y] = trace::step_batch(batch, size, Device::cpu);
  g_seen.clear();
  g_total = 0;
  kernels::conv2d_observer() = record;
  Tensor loss = ops::bce_with_logits((*model)(x), y);
  autograd::backward(loss);
  kernels::conv2d_observer() = nullptr;
}

// Expected: dims (with OH, OW worked out by hand) → calls per direction.
using Expected = std::map<Key, std::array<int64_t, 2>>;
void add(Expected& e, Key k, int64_t calls) { e[k] = {calls, calls}; }

}  // namespace

TEST_CASE("bench conv observer: every convolution of a ResNet18 step, with its dims and counts (tuned CPU)") {
  kernels::ScopedCpuImpl impl(kernels::CpuImpl::tuned);
  observed_step("resnet18", 2, 32);
  // 32² input: stem 7×7/2 → 16², max pool 3/2 → 8², then layers at 8, 4, 2, 1.
  Expected e;
  add(e, {2, 1, 32, 32, 64, 7, 7, 2, 2, 3, 3, 16, 16}, 1);       // conv1
  add(e, {2, 64, 8, 8, 64, 3, 3, 1, 1, 1, 1, 8, 8}, 4);          // layer1: 2 blocks × 2
  add(e, {2, 64, 8, 8, 128, 3, 3, 2, 2, 1, 1, 4, 4}, 1);         // layer2.0.conv1
  add(e, {2, 128, 4, 4, 128, 3, 3, 1, 1, 1, 1, 4, 4}, 3);        // layer2.0.conv2, layer2.1 × 2
  add(e, {2, 64, 8, 8, 128, 1, 1, 2, 2, 0, 0, 4, 4}, 1);         // layer2.0.downsample
  add(e, {2, 128, 4, 4, 256, 3, 3, 2, 2, 1, 1, 2, 2}, 1);
  add(e, {2, 256, 2, 2, 256, 3, 3, 1, 1, 1, 1, 2, 2}, 3);
  add(e, {2, 128, 4, 4, 256, 1, 1, 2, 2, 0, 0, 2, 2}, 1);
  add(e, {2, 256, 2, 2, 512, 3, 3, 2, 2, 1, 1, 1, 1}, 1);
  add(e, {2, 512, 1, 1, 512, 3, 3, 1, 1, 1, 1, 1, 1}, 3);
  add(e, {2, 256, 2, 2, 512, 1, 1, 2, 2, 0, 0, 1, 1}, 1);
  add(e, {2, 512, 1, 1, 1, 1, 1, 1, 1, 0, 0, 1, 1}, 1);          // fc: the 1×1 head
  CHECK(g_total == 2 * 21);  // 21 convolutions, each once forward and once backward
  for (const auto& [k, calls] : e) {
    CAPTURE(k[1]);
    CAPTURE(k[2]);
    CAPTURE(k[4]);
    CAPTURE(k[5]);
    CHECK(g_seen[k] == calls);
  }
  CHECK(g_seen.size() == 12);  // g_seen[k] above added nothing: every seen dims was expected
}

TEST_CASE("bench conv observer: CNN1 on the reference CPU kernels too, and nothing when unset") {
  kernels::ScopedCpuImpl impl(kernels::CpuImpl::reference);
  observed_step("cnn1", 2, 32);
  // 5×5 convolutions, stride 3, 2, 2, pad 3, each followed by a 2×2 max pool:
  // 32 → 12 → 6 → 4 → 2 → 2 → 1.
  Expected e;
  add(e, {2, 1, 32, 32, 5, 5, 5, 3, 3, 3, 3, 12, 12}, 1);
  add(e, {2, 5, 6, 6, 5, 5, 5, 2, 2, 3, 3, 4, 4}, 1);
  add(e, {2, 5, 2, 2, 5, 5, 5, 2, 2, 3, 3, 2, 2}, 1);
  CHECK(g_seen == e);
  CHECK(g_total == 6);

  // Unset (observed_step cleared it): a whole step calls nothing.
  auto model = nets::make_net("cnn1", {32, 1, false});
  const auto [x, y] = trace::step_batch(2, 32, Device::cpu);
  g_total = 0;
  REQUIRE(!kernels::conv2d_observer());
  autograd::backward(ops::bce_with_logits((*model)(x), y));
  CHECK(g_total == 0);
}
