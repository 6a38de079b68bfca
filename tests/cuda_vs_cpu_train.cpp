// `ctgrad train` on the CUDA device vs the CPU: the whole trainer — batches
// copied from pinned buffers by the loader, the net and Adam on the device,
// checkpoints copied back, the optimiser state put back on the device when a
// run resumes. On a machine without a GPU the device is the emulation.
// Tolerance: relative 2e-3 on the epoch losses and 1e-3 (absolute, plus
// relative) on the final weights after two epochs of CNN1 — float32 kernels
// summing in other orders drift by ~1e-6 per op and Adam amplifies it; a
// wrong transfer or a lost state is off in the first digit.
#include <doctest/doctest.h>

#include "engine/checkpoint.h"
#include "tests/cuda_check.h"
#include "train/trainer.h"
#include "train_fixture.h"

using namespace ctg;

namespace {
std::vector<double> weights(const std::string& file) {
  std::vector<double> out;
  for (const auto& nt : load_safetensors(file).tensors)
    if (nt.tensor.dtype() == DType::f32)
      for (double v : nt.tensor.to_vector()) out.push_back(v);
  return out;
}
}  // namespace

TEST_CASE("training on the CUDA device matches the CPU, and a resumed device run matches an uninterrupted one") {
  cuda::set_emulation(true);
  REQUIRE_MESSAGE(cuda::available(), cuda::device_description());
  test::TempDir t;
  train::TrainHooks quiet;
  quiet.quiet = true;
  auto cpu = test::tiny_options("cnn1", t / "cpu");
  cpu.epochs = 2;
  const auto rc = train::run_training(cpu, quiet);
  auto gpu = test::tiny_options("cnn1", t / "gpu");
  gpu.epochs = 2;
  gpu.device = "cuda";
  gpu.pin_memory = true;
  const auto rg = train::run_training(gpu, quiet);
  REQUIRE(rg.rows.size() == 2);
  for (size_t i = 0; i < 2; ++i) CHECK(rg.rows[i].train_loss == doctest::Approx(rc.rows[i].train_loss).epsilon(2e-3));
  const auto wc = weights(t / "cpu/last.safetensors"), wg = weights(t / "gpu/last.safetensors");
  REQUIRE(wc.size() == wg.size());
  double worst = 0;
  for (size_t i = 0; i < wc.size(); ++i) worst = std::max(worst, std::fabs(wc[i] - wg[i]) / (1e-3 + std::fabs(wc[i])));
  MESSAGE("cpu vs device, worst relative weight difference: " << worst);
  CHECK(worst > 0);  // really two devices (float sums in other orders differ somewhere)
  CHECK(worst < 1e-3);

  // Killed after epoch 1 on the device, resumed on the device.
  auto k = gpu;
  k.out = t / "killed";
  train::TrainHooks kill = quiet;
  kill.on_epoch = [](const train::EpochRow& r) {
    if (r.epoch == 1) throw std::runtime_error("killed");
  };
  CHECK_THROWS(train::run_training(k, kill));
  k.resume = true;
  train::run_training(k, quiet);
  const auto wk = weights(t / "killed/last.safetensors");
  REQUIRE(wk.size() == wg.size());
  worst = 0;
  for (size_t i = 0; i < wk.size(); ++i) worst = std::max(worst, std::fabs(wk[i] - wg[i]) / (1e-3 + std::fabs(wg[i])));
  CHECK(worst < 1e-5);
}
