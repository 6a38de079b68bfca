// ctgrad bench loader: slices per second through the DataLoader, from the
// cache or from the raw NIfTI files, after one warm-up batch. Epochs are
// chained (start_epoch again) when --batches outruns one.
#include <sys/stat.h>

#include <chrono>
#include <cstdio>

#include "apps/commands.h"
#include "data/loader.h"
#include "kernels/cuda/runtime.h"

namespace ctg::apps {

namespace {

struct LoaderArgs {
  std::string source = "cache", data, split = "all", view = "ten", device = "cpu";
  int workers = 2, batches = 50;
  int64_t batch = 9, size = 512;
  bool pin_memory = false, shuffle = true, augment = false;
  uint64_t seed = 0;
};

bool is_regular_file(const std::string& p) {
  struct stat st {};
  return ::stat(p.c_str(), &st) == 0 && S_ISREG(st.st_mode);
}

std::shared_ptr<const data::Dataset> make_dataset(const LoaderArgs& a) {
  const bool all = a.split == "all";
  data::Split split = all ? data::Split::train : data::parse_split(a.split);
  std::shared_ptr<const data::Cache> cache;
  std::vector<int64_t> records;
  if (a.source == "cache" || is_regular_file(a.data)) {
    cache = data::Cache::open(a.data);
    if (all) {
      for (int64_t i = 0; i < cache->size(); ++i) records.push_back(i);
    } else {
      records = data::select_records(*cache, split, data::parse_cache_view(a.view));
    }
    if (records.empty()) throw Error(a.data + ": no records in split " + a.split);
  }
  if (a.source == "cache") return std::make_shared<data::CacheDataset>(cache, records);
  if (a.source != "nifti") throw Error("--source: expected cache or nifti, got '" + a.source + "'");
  data::PreprocessOptions pre;
  if (cache) {  // the cache's exact slices, decoded from their source files
    pre.size = cache->side();
    return std::make_shared<data::NiftiDataset>(data::slice_refs(*cache, records), pre);
  }
  pre.size = a.size;
  auto patients = data::scan_cohort(a.data, data::ClassMapping{});
  data::assign_splits(patients, a.seed);
  return std::make_shared<data::NiftiDataset>(data::slice_refs(patients, all ? nullptr : &split), pre);
}

void bench_loader(const LoaderArgs& a) {
  auto ds = make_dataset(a);
  data::LoaderOptions opt;
  opt.batch_size = a.batch;
  opt.num_workers = a.workers;
  opt.pin_memory = a.pin_memory;
  opt.shuffle = a.shuffle;
  opt.seed = a.seed;
  opt.device = parse_device(a.device);
  if (a.augment) opt.augment = data::reference_train_augment();
  data::DataLoader loader(ds, opt);
  std::fprintf(stderr, "%s\n", loader.describe().c_str());
  std::printf("source: %s\ndata: %s\ndataset: %s\nworkers: %d\nbatch: %lld\npin_memory: %s\npinned_ring: %s\n"
              "device: %s\naugment: %s\nshuffle: %s\n",
              a.source.c_str(), a.data.c_str(), ds->describe().c_str(), a.workers, (long long)a.batch,
              a.pin_memory ? "on" : "off", loader.pinned() ? "yes" : "no (pageable)", device_name(opt.device),
              a.augment ? "noise std 1/255" : "off", a.shuffle ? "on" : "off");
  int64_t epoch = 0, slices = 0;
  loader.start_epoch(epoch);
  data::Batch b;
  auto fetch = [&]() {
    while (!loader.next(b)) loader.start_epoch(++epoch);
  };
  fetch();  // warm-up: thread start, first page faults, allocator
  if (opt.device == Device::cuda) cuda::synchronize();
  const auto t0 = std::chrono::steady_clock::now();
  for (int i = 0; i < a.batches; ++i) {
    fetch();
    slices += b.size();
  }
  if (opt.device == Device::cuda) cuda::synchronize();
  const double s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  std::printf("batches: %d\nslices: %lld\nepochs: %lld\nseconds: %.3f\nring_misses: %lld\nslices_per_s: %.1f\n", a.batches,
              (long long)slices, (long long)epoch + 1, s, (long long)loader.ring_misses(), (double)slices / s);
}

}  // namespace

// `bench` is shared with apps/cmd_bench.cpp (`bench step`): subcommand_group
// creates it or finds it, whichever registrar runs first.
static Registrar reg([](CLI::App& app) {
  CLI::App* bench = subcommand_group(app, "bench", "Benchmarks");
  auto* cmd = bench->add_subcommand("loader", "Slices per second through the DataLoader (after one warm-up batch)");
  auto a = std::make_shared<LoaderArgs>();
  cmd->add_option("--source", a->source, "cache (a `ctgrad prep` file) or nifti (decode and preprocess per load)");
  cmd->add_option("--data", a->data,
                  "the cache file; for --source nifti a cohort folder (middle slice per patient) or a cache "
                  "(its slices, decoded from their source files)")
      ->required();
  cmd->add_option("--workers", a->workers, "loader threads (0: load on the calling thread)")->check(CLI::NonNegativeNumber);
  cmd->add_option("--batch", a->batch, "batch size")->check(CLI::PositiveNumber);
  cmd->add_flag("--pin-memory", a->pin_memory, "batch buffers from the pinned ring (when a CUDA device is present)");
  cmd->add_option("--batches", a->batches, "timed batches")->check(CLI::PositiveNumber);
  cmd->add_option("--split", a->split, "train, val, test or all records");
  cmd->add_option("--view", a->view, "with --split val/test: ten, central or all");
  cmd->add_option("--size", a->size, "--source nifti from a folder: slice side")->check(CLI::Range(8, 4096));
  cmd->add_option("--device", a->device, "cpu, cuda or auto: where batches are delivered");
  cmd->add_option("--seed", a->seed, "shuffle seed");
  cmd->add_flag("--augment", a->augment, "add the training noise (std 1/255)");
  cmd->add_flag("!--no-shuffle", a->shuffle, "visit items in index order");
  cmd->callback([a]() { bench_loader(*a); });
});

}  // namespace ctg::apps
