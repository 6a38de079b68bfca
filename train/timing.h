// The study's timing experiment (SEED_NOTES §5, its Figure 2): ResNet18
// trained at batch 9, the DataLoader's num_workers varied, with and without
// pinned memory, on a CPU and a GPU — and here also from two sources: the
// preprocessed cache, or the NIfTI volumes decoded and preprocessed by the
// loader's workers on every load (what the study's DataLoader did).
//
// Every step is split into phases that add up to the step:
//   data_wait  the host waits in DataLoader::next() for the batch;
//   h2d        the batch's host-to-device copy still running after that
//              (issued one batch ahead on a copy stream, so ≈ 0 when it overlaps);
//   forward    forward pass and loss;  backward  autograd;  optimizer  the update.
// On the CPU the phases come from a monotonic clock. On CUDA, data_wait and
// h2d from the host clock; forward, backward and optimizer from CUDA events on
// the compute stream (the step ends with a device synchronisation, so the
// next step's clock starts with an idle GPU).
#pragma once
#include <cstdint>
#include <functional>
#include <string>
#include <vector>

namespace ctg::train {

struct TimingCombo {
  std::string device;  // cpu | cuda
  std::string source;  // cache | nifti
  int workers = 0;
  bool pin_memory = false;
};

struct TimingOptions {
  std::string data;  // a cohort folder (or a prep cache: then nifti reads the cache's source files)
  std::string net = "resnet18";
  int64_t batch = 9, size = 512;
  std::vector<std::string> devices{"cpu"};
  std::vector<int> workers{0, 1, 2, 4, 8};
  std::vector<bool> pin_memory{true};
  std::vector<std::string> sources{"cache"};
  int steps = 5, warmup = 1;  // timed steps after warm-up steps (epochs = 0)
  int epochs = 0;             // > 0: time whole epochs over the training patients instead
  int threads = 0;            // CPU threads (0: the library default)
  uint64_t seed = 0;
};

// One timed step of one combination: a row of timing.csv.
struct TimingRow {
  std::string machine, device, net, source;
  int64_t batch = 0, size = 0;
  int workers = 0, threads = 0;
  bool pin_memory = false;
  int step = 0;
  double step_ms = 0, data_wait_ms = 0, h2d_ms = 0, forward_ms = 0, backward_ms = 0, optimizer_ms = 0;
  double images_per_s = 0;
  std::string commit;
  int64_t steps_per_epoch = 0;  // batches in one epoch over the training slices (time per epoch = step × this)
};

// The combinations of `o` in run order (device, source, pin_memory, workers);
// `skipped` gets one line per combination this machine cannot run (cuda
// without a device; pin_memory on, which needs the CUDA driver).
std::vector<TimingCombo> timing_combos(const TimingOptions& o, std::vector<std::string>* skipped);

// Checks every option before any work (one clear line naming the flag).
void check_timing_options(const TimingOptions& o);

// Runs every combination; `progress(i, n, combo, rows_of_combo)` after each.
std::vector<TimingRow> run_timing(
    const TimingOptions& o,
    const std::function<void(size_t, size_t, const TimingCombo&, const std::vector<TimingRow>&)>& progress = {});

// "AMD EPYC, 2 cores; GPU NVIDIA H200" (or "; GPU none").
std::string machine_description(bool with_gpu);

// timing.csv, atomically: machine, device, net, batch, size, source, workers,
// pin_memory, threads, step, step_ms, data_wait_ms, h2d_ms, forward_ms,
// backward_ms, optimizer_ms, images_per_s, ctgrad_commit, steps_per_epoch.
void write_timing_csv(const std::string& path, const std::vector<TimingRow>& rows);
// Reads one or more timing.csv files (report --timing); errors name the file and line.
std::vector<TimingRow> read_timing_csv(const std::string& path);

}  // namespace ctg::train
