// DataLoader: every item exactly once per epoch for 0/1/3 workers, order
// determined by the seed alone, errors from workers reach the caller without
// a hang, cancellation, pinned vs pageable buffers, augmentation.
#include <doctest/doctest.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <filesystem>
#include <fstream>
#include <functional>
#include <thread>

#include "data/loader.h"
#include "kernels/cuda/runtime.h"
#include "tests/test_util.h"

using namespace ctg;
using namespace ctg::data;
namespace fs = std::filesystem;

namespace {

// Item i's image is filled with the value i (so a batch shows which items it
// holds); label i % 2. Optionally slow, or failing on one item like a bad file.
class FakeDataset : public Dataset {
 public:
  FakeDataset(int64_t n, int64_t side, int64_t bad = -1, int sleep_us = 0) : bad_(bad), sleep_us_(sleep_us) {
    side_ = side;
    for (int64_t i = 0; i < n; ++i)
      items_.push_back({"p" + std::to_string(i), "/fake/p" + std::to_string(i) + ".nii.gz", i, (int)(i % 2), 0});
  }
  void load(int64_t i, float* out) const override {
    if (sleep_us_) std::this_thread::sleep_for(std::chrono::microseconds(sleep_us_));
    if (i == bad_) throw Error(item(i).path + ": magic: not a NIfTI file");
    for (int64_t k = 0; k < side_ * side_; ++k) out[k] = (float)i + (float)k * 1e-4f;
  }
  std::string describe() const override { return "fake"; }

 private:
  int64_t bad_;
  int sleep_us_;
};

using ctg::test::error_of;

// All items of one epoch in delivery order, checking each batch's contents.
std::vector<int64_t> run_epoch(DataLoader& l, int64_t epoch) {
  std::vector<int64_t> seen;
  l.start_epoch(epoch);
  Batch b;
  int64_t k = 0;
  while (l.next(b)) {
    CHECK(b.index == k++);
    const int64_t side = l.dataset().side();
    REQUIRE(b.images.shape() == Shape{b.size(), 1, side, side});
    REQUIRE(b.labels.shape() == Shape{b.size(), 1});
    const Tensor img = b.images.to(Device::cpu), lab = b.labels.to(Device::cpu);
    for (int64_t j = 0; j < b.size(); ++j) {
      CHECK(img.data<float>()[j * side * side] == (float)b.items[(size_t)j]);
      CHECK(lab.data<float>()[j] == (float)(b.items[(size_t)j] % 2));
      CHECK(b.patients[(size_t)j] == "p" + std::to_string(b.items[(size_t)j]));
      CHECK(b.slices[(size_t)j] == b.items[(size_t)j]);
    }
    seen.insert(seen.end(), b.items.begin(), b.items.end());
  }
  return seen;
}

// Turns the CUDA emulation on for a scope (a "device" whose memory is host memory).
struct Emulated {
  bool was = cuda::available();
  Emulated() { cuda::set_emulation(true); }
  ~Emulated() { cuda::set_emulation(was); }
};

}  // namespace

TEST_CASE("loader: every item exactly once per epoch, batches in order, for 0, 1 and 3 workers") {
  auto ds = std::make_shared<FakeDataset>(53, 4);
  for (int workers : {0, 1, 3}) {
    for (bool drop_last : {false, true}) {
      LoaderOptions o;
      o.batch_size = 7, o.shuffle = true, o.seed = 11, o.num_workers = workers, o.drop_last = drop_last;
      DataLoader l(ds, o);
      CHECK(l.num_batches() == (drop_last ? 7 : 8));
      for (int64_t e = 0; e < 4; ++e) {
        auto seen = run_epoch(l, e);
        const auto order = l.epoch_order(e);
        CHECK(seen == std::vector<int64_t>(order.begin(), order.begin() + (int64_t)seen.size()));
        std::sort(seen.begin(), seen.end());
        CHECK(std::adjacent_find(seen.begin(), seen.end()) == seen.end());  // nothing twice
        CHECK(seen.size() == (drop_last ? 49u : 53u));                       // nothing lost
      }
    }
  }
}

TEST_CASE("loader: the order depends on (seed, epoch) only, not on the workers") {
  auto ds = std::make_shared<FakeDataset>(40, 2);
  LoaderOptions o;
  o.batch_size = 6, o.shuffle = true, o.seed = 3;
  DataLoader a(ds, o);
  o.num_workers = 3;
  DataLoader b(ds, o);
  for (int64_t e = 0; e < 3; ++e) CHECK(run_epoch(a, e) == run_epoch(b, e));
  CHECK(a.epoch_order(0) != a.epoch_order(1));
  o.seed = 4;
  CHECK(DataLoader(ds, o).epoch_order(0) != a.epoch_order(0));
  o.shuffle = false;
  std::vector<int64_t> iota(40);
  for (int i = 0; i < 40; ++i) iota[i] = i;
  CHECK(DataLoader(ds, o).epoch_order(5) == iota);
}

TEST_CASE("loader: a bad file stops the epoch with an error naming it - all threads join") {
  for (int workers : {0, 1, 3}) {
    auto ds = std::make_shared<FakeDataset>(60, 4, /*bad=*/23);
    LoaderOptions o;
    o.batch_size = 5, o.num_workers = workers, o.shuffle = true, o.seed = 1;
    DataLoader l(ds, o);
    l.start_epoch(0);
    Batch b;
    const std::string e = error_of([&] {
      while (l.next(b)) {
      }
    });
    CHECK_MESSAGE(e.find("/fake/p23.nii.gz: magic: not a NIfTI file") != std::string::npos, e);
    CHECK(e.find("item 23 (patient p23") != std::string::npos);
    CHECK(error_of([&] { l.next(b); }) == e);  // the epoch stays failed until restarted
    // A new epoch runs (and fails again at the same file); the destructor joins.
    l.start_epoch(1);
    CHECK(error_of([&] {
            while (l.next(b)) {
            }
          }).find("p23.nii.gz") != std::string::npos);
  }
  // The real NIfTI source: a file that is not a volume.
  const fs::path dir = fs::temp_directory_path() / ("ctgrad_loader_" + std::to_string(::getpid()));
  fs::create_directories(dir);
  const std::string bad = (dir / "study_0001.nii.gz").string();
  std::ofstream(bad) << "not a volume at all, just text that is long enough to hold a header ......";
  PreprocessOptions pre;
  pre.size = 16;
  auto ds = std::make_shared<NiftiDataset>(std::vector<SliceRef>{{"study_0001", bad, 3, 1, 2}}, pre);
  LoaderOptions o;
  o.num_workers = 2;
  DataLoader l(ds, o);
  l.start_epoch(0);
  Batch b;
  const std::string e = error_of([&] { l.next(b); });
  CHECK_MESSAGE(e.find(bad + ": ") != std::string::npos, e);
  fs::remove_all(dir);
}

TEST_CASE("loader: leaving an epoch early or destroying the loader does not wait for the epoch") {
  auto ds = std::make_shared<FakeDataset>(400, 4, -1, /*sleep_us=*/2000);  // 0.8 s for a full epoch
  const auto t0 = std::chrono::steady_clock::now();
  {
    LoaderOptions o;
    o.batch_size = 4, o.num_workers = 3;
    DataLoader l(ds, o);
    l.start_epoch(0);
    Batch b;
    CHECK(l.next(b));
    l.start_epoch(1);  // cancels epoch 0
    CHECK(l.next(b));
    CHECK(b.items[0] == 0);
  }  // destroyed mid-epoch
  const double s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  CHECK(s < 0.3);
}

TEST_CASE("loader: pinned ring and pageable buffers give the same batches - device batches too") {
  Emulated emu;
  auto ds = std::make_shared<FakeDataset>(30, 8);
  LoaderOptions o;
  o.batch_size = 4, o.shuffle = true, o.seed = 9, o.num_workers = 2, o.augment = reference_train_augment();
  auto epoch_images = [&](DataLoader& l, int64_t e, bool hoard) {
    std::vector<float> all;
    std::vector<Batch> kept;
    l.start_epoch(e);
    Batch b;
    while (l.next(b)) {
      const std::vector<double> v = b.images.to_vector();
      all.insert(all.end(), v.begin(), v.end());
      if (hoard) kept.push_back(b);  // holding every batch empties the ring: must not block
    }
    return all;
  };
  DataLoader pageable(ds, o);
  CHECK(!pageable.pinned());
  CHECK(pageable.describe().find("pin_memory: off") != std::string::npos);
  o.pin_memory = true;
  DataLoader pinned(ds, o);
  CHECK(pinned.pinned());
  CHECK(pinned.describe().find("pinned ring of 7") != std::string::npos);
  o.device = Device::cuda;
  DataLoader device(ds, o);
  const auto ref = epoch_images(pageable, 2, false);
  CHECK(epoch_images(pinned, 2, false) == ref);
  CHECK(epoch_images(pinned, 2, true) == ref);
  CHECK(pinned.ring_misses() > 0);
  CHECK(epoch_images(device, 2, false) == ref);
  device.start_epoch(0);
  Batch b;
  REQUIRE(device.next(b));
  CHECK(b.images.device() == Device::cuda);
  CHECK(b.labels.device() == Device::cuda);
  CHECK(b.pinned);
  {
    cuda::set_emulation(false);  // no device: pin_memory falls back to pageable and says so
    o.device = Device::cpu;
    DataLoader none(ds, o);
    CHECK(!none.pinned());
    CHECK(none.describe().find("pin_memory: requested, but no CUDA device: pageable buffers") != std::string::npos);
    cuda::set_emulation(true);
  }
}

// The batch copied ahead when an epoch is cut short: its device buffers go
// back to the caching allocator while the copy into them may still be queued
// on the copy stream (the emulation runs it only when waited for, as a GPU
// may run it late). A tensor the compute stream then gets from the same block
// must not be overwritten by that copy.
TEST_CASE("loader: a new epoch does not free device buffers that a queued copy still writes") {
  Emulated emu;
  if (!cuda::is_emulated()) return;  // the ordering is the emulation's model; on a GPU this is a race
  auto ds = std::make_shared<FakeDataset>(12, 8);
  for (bool pin : {true, false}) {
    CAPTURE(pin);
    LoaderOptions o;
    o.batch_size = 4, o.num_workers = 1, o.pin_memory = pin, o.device = Device::cuda;
    DataLoader l(ds, o);
    l.start_epoch(0);
    Batch b;
    REQUIRE(l.next(b));  // batch 0 handed out; batch 1's copy is queued ahead
    b = Batch();
    l.start_epoch(1);    // drops batch 1 — its device block returns to the cache
    // Same size as a batch's images: the caching allocator hands out that block.
    Tensor mine = Tensor::full({4, 1, 8, 8}, 7.0).to(Device::cuda);
    REQUIRE(l.next(b));  // waits for epoch 1's first copy (and so for everything queued before it)
    const std::vector<double> v = mine.to_vector();
    CHECK(std::count(v.begin(), v.end(), 7.0) == (long)v.size());
    CHECK(b.images.to_vector()[0] == 0.0);  // epoch 1, batch 0 starts with item 0 (no shuffle)
  }
}

TEST_CASE("loader: training noise is N(0, (1/255)²) per pixel, reproducible, and off by default") {
  std::vector<float> x(200000, 0.0f);
  uint64_t s = 77;
  add_gaussian_noise(x.data(), x.size(), 1.0, s);
  double m1 = 0, m2 = 0, m4 = 0, beyond3 = 0;
  for (float v : x) m1 += v, m2 += (double)v * v, m4 += std::pow((double)v, 4), beyond3 += std::fabs(v) > 3;
  const double n = (double)x.size();
  CHECK(std::fabs(m1 / n) < 0.01);
  CHECK(m2 / n == doctest::Approx(1.0).epsilon(0.015));
  CHECK(m4 / n == doctest::Approx(3.0).epsilon(0.05));       // Gaussian kurtosis
  CHECK(beyond3 / n == doctest::Approx(0.0027).epsilon(0.2));  // the tails are there

  auto ds = std::make_shared<FakeDataset>(12, 32);
  LoaderOptions o;
  o.batch_size = 12, o.seed = 2;
  DataLoader clean(ds, o);
  o.augment = reference_train_augment();
  DataLoader noisy(ds, o);
  o.num_workers = 2;
  DataLoader noisy2(ds, o);
  Batch a, b, c;
  clean.start_epoch(0), noisy.start_epoch(0), noisy2.start_epoch(0);
  REQUIRE((clean.next(a) && noisy.next(b) && noisy2.next(c)));
  const auto va = a.images.to_vector(), vb = b.images.to_vector(), vc = c.images.to_vector();
  CHECK(vb == vc);
  double d2 = 0;
  for (size_t i = 0; i < va.size(); ++i) d2 += (vb[i] - va[i]) * (vb[i] - va[i]);
  CHECK(std::sqrt(d2 / (double)va.size()) == doctest::Approx(1.0 / 255).epsilon(0.05));
  noisy.start_epoch(1);
  REQUIRE(noisy.next(b));
  CHECK(b.images.to_vector() != vb);  // fresh noise each epoch

  // Flip and shift keep the image's values, moved.
  o.augment = Augment{0, true, 3};
  o.num_workers = 0;
  DataLoader moved(ds, o);
  moved.start_epoch(0);
  REQUIRE(moved.next(b));
  const auto vm = b.images.to_vector();
  CHECK(vm != va);
  for (size_t i = 0; i < vm.size(); ++i) CHECK((vm[i] == 0.0 || std::floor(vm[i]) == std::floor(va[i / 1024 * 1024])));
}
