// `train --source nifti`: the loader's workers decode and preprocess the
// training volumes on every load, as the study's DataLoader did. Same slices,
// same values, same order: the weights are bit-identical to a run from the
// cache. A corrupt volume fails the run with the file named, leaving no
// checkpoint behind.
#include <doctest/doctest.h>

#include <filesystem>

#include "engine/safetensors.h"
#include "tests/test_util.h"
#include "tests/train_fixture.h"
#include "train/config.h"
#include "train/trainer.h"

using namespace ctg;
using ctg::test::error_of;
using ctg::test::TempDir;

namespace {
std::vector<double> weights(const std::string& file, const std::string& key) {
  for (const auto& nt : load_safetensors(file).tensors)
    if (nt.name == key) return nt.tensor.to(DType::f64).to_vector();
  FAIL("no key " << key << " in " << file);
  return {};
}
}  // namespace

TEST_CASE("train --source nifti gives bit-identical weights to the cache source") {
  TempDir t;
  train::TrainHooks quiet;
  quiet.quiet = true;
  auto a = test::tiny_options("cnn1", t / "cache");
  a.epochs = 2;
  train::run_training(a, quiet);
  auto b = test::tiny_options("cnn1", t / "nifti");
  b.epochs = 2;
  b.source = "nifti";
  b.workers = 3;  // another worker count too: the order is the seed's alone
  train::run_training(b, quiet);
  for (const std::string key : {"conv1.weight", "bn2.running_var", "fc2.weight"}) {
    const auto wa = weights(t / "cache/last.safetensors", key), wb = weights(t / "nifti/last.safetensors", key);
    CHECK_MESSAGE(wa == wb, key);
  }
  CHECK(train::read_json_file(t / "nifti/config.json")["source"] == "nifti");
}

TEST_CASE("train --source nifti: a corrupt volume fails the run naming the file, with no checkpoint written") {
  TempDir t;
  test::make_tiny_cohort(t.str());
  std::string victim;
  for (const auto& e : std::filesystem::recursive_directory_iterator(t / "cohort"))
    if (e.path().string().find(".nii") != std::string::npos) {
      std::filesystem::resize_file(e.path(), 200);  // every volume: the first batch hits one
      victim = e.path().string();
    }
  auto o = test::tiny_options("cnn1", t / "run");
  o.data = t / "c.bin";
  o.source = "nifti";
  train::TrainHooks quiet;
  quiet.quiet = true;
  const std::string err = error_of([&] { train::run_training(o, quiet); });
  CAPTURE(err);
  CHECK(err.find("data loader worker") != std::string::npos);
  CHECK(err.find(t.str() + "/cohort/") != std::string::npos);
  CHECK(!std::filesystem::exists(t / "run/last.safetensors"));
  CHECK(!std::filesystem::exists(t / "run/best.safetensors"));

  o.source = "disk";
  CHECK(error_of([&] { train::run_training(o, quiet); }) == "--source: expected cache or nifti, got 'disk'");
}
