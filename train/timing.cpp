// The timing study: see timing.h for what is measured and how.
#include "train/timing.h"

#include <algorithm>
#include <chrono>
#include <fstream>
#include <sstream>
#include <thread>

#include "base/atomic_file.h"
#include "base/csv.h"
#include "data/cache.h"
#include "data/cohort.h"  // csv_field
#include "data/dataset.h"
#include "data/loader.h"
#include "engine/autograd.h"
#include "engine/ops.h"
#include "engine/optim.h"
#include "engine/parallel.h"
#include "kernels/cuda/runtime.h"
#include "nets/nets.h"
#include "train/config.h"
#include "train/data_source.h"
#include "train/trainer.h"

namespace ctg::train {

namespace {
using Clock = std::chrono::steady_clock;
double ms_between(Clock::time_point a, Clock::time_point b) {
  return std::chrono::duration<double, std::milli>(b - a).count();
}

std::string cpu_model() {
  std::ifstream f("/proc/cpuinfo");
  std::string line;
  while (std::getline(f, line))
    if (line.compare(0, 10, "model name") == 0) {
      const size_t c = line.find(':');
      return c == std::string::npos ? "unknown CPU" : line.substr(line.find_first_not_of(" \t", c + 1));
    }
  return "unknown CPU";
}

// CUDA events at the phase boundaries of one step on the compute stream.
struct StepEvents {
  cuda::Event e[4]{};
  StepEvents() {
    for (auto& x : e) x = cuda::create_timing_event();
  }
  ~StepEvents() {
    for (auto& x : e) cuda::destroy_event(x);
  }
  StepEvents(const StepEvents&) = delete;
  StepEvents& operator=(const StepEvents&) = delete;
  void mark(int i) { cuda::record_event(e[i], cuda::compute_stream()); }
};

std::vector<TimingRow> time_combo(const TimingOptions& o, const TimingCombo& c,
                                  const std::shared_ptr<const data::Cache>& cache, const std::string& machine,
                                  const std::string& commit) {
  const Device dev = parse_device(c.device);
  // The slices and the loader exactly as `ctgrad train` builds them, with its
  // default noise (1/255).
  auto ds = training_dataset(cache, c.source);
  const double noise = TrainOptions().noise;
  data::DataLoader loader(ds, training_loader_options(o.batch, o.seed, c.workers, c.pin_memory, dev, noise));
  auto net = nets::make_net(o.net, {cache->side(), o.seed, o.net == "resnet18"});
  net->to(dev);
  net->train();
  Adam optim(net->named_parameters(), 5e-3, 1e-4);
  std::unique_ptr<StepEvents> ev;
  if (dev == Device::cuda) ev = std::make_unique<StepEvents>();

  // Steps mode: warm-up + steps, chaining epochs when one runs out. Epochs
  // mode: warm-up steps on their own epoch, then `epochs` whole epochs.
  const int64_t per_epoch = loader.num_batches();
  const int64_t timed = o.epochs > 0 ? o.epochs * per_epoch : o.steps;
  int64_t epoch = 0;
  loader.start_epoch(epoch);
  std::vector<TimingRow> rows;
  data::Batch b;
  for (int64_t i = 0; i < o.warmup + timed;) {
    if (o.epochs > 0 && i == o.warmup && i > 0) loader.start_epoch(++epoch);  // timed epochs start fresh
    const auto t0 = Clock::now();
    if (!loader.next(b)) {
      loader.start_epoch(++epoch);
      continue;
    }
    const auto t1 = Clock::now();
    if (dev == Device::cuda && b.copy_event) cuda::event_synchronize(b.copy_event);
    const auto t2 = Clock::now();
    if (ev) ev->mark(0);
    optim.zero_grad();
    Tensor loss = ops::bce_with_logits((*net)(b.images), b.labels);
    const auto t3 = Clock::now();
    if (ev) ev->mark(1);
    autograd::backward(loss);
    const auto t4 = Clock::now();
    if (ev) ev->mark(2);
    optim.step();
    if (ev) {
      ev->mark(3);
      cuda::synchronize();
    }
    const auto t5 = Clock::now();
    if (i++ < o.warmup) continue;
    TimingRow r;
    r.machine = machine;
    r.device = c.device;
    r.net = o.net;
    r.source = c.source;
    r.batch = o.batch;
    r.size = cache->side();
    r.workers = c.workers;
    r.pin_memory = c.pin_memory;
    r.threads = num_threads();
    r.step = (int)rows.size();
    r.step_ms = ms_between(t0, t5);
    r.data_wait_ms = ms_between(t0, t1);
    r.h2d_ms = ms_between(t1, t2);
    if (ev) {
      r.forward_ms = cuda::event_elapsed_ms(ev->e[0], ev->e[1]);
      r.backward_ms = cuda::event_elapsed_ms(ev->e[1], ev->e[2]);
      r.optimizer_ms = cuda::event_elapsed_ms(ev->e[2], ev->e[3]);
    } else {
      r.forward_ms = ms_between(t2, t3);
      r.backward_ms = ms_between(t3, t4);
      r.optimizer_ms = ms_between(t4, t5);
    }
    r.images_per_s = 1000.0 * (double)b.size() / r.step_ms;
    r.commit = commit;
    r.steps_per_epoch = per_epoch;
    rows.push_back(r);
  }
  return rows;
}

const char* kHeader =
    "machine,device,net,batch,size,source,workers,pin_memory,threads,step,step_ms,data_wait_ms,h2d_ms,"
    "forward_ms,backward_ms,optimizer_ms,images_per_s,ctgrad_commit,steps_per_epoch";
}  // namespace

std::string machine_description(bool with_gpu) {
  std::string m = cpu_model() + ", " + std::to_string(std::max(1u, std::thread::hardware_concurrency())) + " cores";
  std::string gpu = "none";
  if (with_gpu && cuda::available()) gpu = cuda::device_description();
  return m + "; GPU " + gpu;
}

void check_timing_options(const TimingOptions& o) {
  const auto& names = nets::net_names();
  if (std::find(names.begin(), names.end(), o.net) == names.end()) throw Error("--net: unknown net '" + o.net + "'");
  if (o.batch < 1) throw Error("--batch: must be positive, got " + std::to_string(o.batch));
  if (o.size < 1) throw Error("--size: must be positive, got " + std::to_string(o.size));
  auto nonempty = [](bool empty, const char* flag) {
    if (empty) throw Error(std::string(flag) + ": the list is empty");
  };
  nonempty(o.devices.empty(), "--devices");
  nonempty(o.workers.empty(), "--workers");
  nonempty(o.pin_memory.empty(), "--pin-memory");
  nonempty(o.sources.empty(), "--source");
  for (const auto& d : o.devices)
    if (d != "cpu" && d != "cuda") throw Error("--devices: expected cpu or cuda, got '" + d + "'");
  for (int w : o.workers)
    if (w < 0) throw Error("--workers: must be ≥ 0, got " + std::to_string(w));
  for (const auto& s : o.sources)
    if (s != "cache" && s != "nifti") throw Error("--source: expected cache or nifti, got '" + s + "'");
  if (o.epochs < 0) throw Error("--epochs: must be ≥ 0, got " + std::to_string(o.epochs));
  if (o.epochs == 0 && o.steps < 1) throw Error("--steps: must be positive, got " + std::to_string(o.steps));
  if (o.warmup < 0) throw Error("--warmup: must be ≥ 0, got " + std::to_string(o.warmup));
}

std::vector<TimingCombo> timing_combos(const TimingOptions& o, std::vector<std::string>* skipped) {
  std::vector<TimingCombo> out;
  const bool gpu = cuda::available();
  for (const auto& d : o.devices) {
    if (d == "cuda" && !gpu) {
      if (skipped) skipped->push_back("device cuda skipped: " + cuda::device_description());
      continue;
    }
    for (const auto& s : o.sources)
      for (bool pin : o.pin_memory) {
        if (pin && !gpu) {
          if (skipped && d == o.devices.front() && s == o.sources.front())
            skipped->push_back("pin_memory on skipped: it needs the CUDA driver (" + cuda::device_description() + ")");
          continue;
        }
        for (int w : o.workers) out.push_back({d, s, w, pin});
      }
  }
  return out;
}

std::vector<TimingRow> run_timing(
    const TimingOptions& o,
    const std::function<void(size_t, size_t, const TimingCombo&, const std::vector<TimingRow>&)>& progress) {
  check_timing_options(o);
  const std::vector<TimingCombo> combos = timing_combos(o, nullptr);
  if (combos.empty()) throw Error("bench timing: nothing this machine can run (every combination was skipped)");
  const DataPlan plan = plan_data(o.data, o.size, 0);
  const DataSource src = prepare_data(plan, 2);
  set_num_threads(o.threads);
  const bool any_cuda = std::find(o.devices.begin(), o.devices.end(), "cuda") != o.devices.end();
  const std::string machine = machine_description(any_cuda);
  const nlohmann::json build = build_info();
  const std::string commit = build.value("configured_at_commit", std::string("unknown"));
  std::vector<TimingRow> all;
  for (size_t i = 0; i < combos.size(); ++i) {
    std::vector<TimingRow> rows = time_combo(o, combos[i], src.cache, machine, commit);
    if (progress) progress(i, combos.size(), combos[i], rows);
    all.insert(all.end(), rows.begin(), rows.end());
  }
  return all;
}

void write_timing_csv(const std::string& path, const std::vector<TimingRow>& rows) {
  std::ostringstream s;
  s.precision(6);
  s << kHeader << "\n";
  for (const TimingRow& r : rows)
    s << data::csv_field(r.machine) << ',' << r.device << ',' << r.net << ',' << r.batch << ',' << r.size << ','
      << r.source << ',' << r.workers << ',' << (r.pin_memory ? "on" : "off") << ',' << r.threads << ',' << r.step
      << ',' << r.step_ms << ',' << r.data_wait_ms << ',' << r.h2d_ms << ',' << r.forward_ms << ','
      << r.backward_ms << ',' << r.optimizer_ms << ',' << r.images_per_s << ',' << r.commit << ','
      << r.steps_per_epoch << "\n";
  write_file_atomic(path, s.str());
}

std::vector<TimingRow> read_timing_csv(const std::string& path) {
  std::ifstream f(path);
  if (!f) throw Error(path + ": cannot open the timing CSV");
  std::string line;
  if (!std::getline(f, line) || line != kHeader)
    throw Error(path + ": line 1: not a `ctgrad bench timing` CSV (expected the header " + kHeader + ")");
  std::vector<TimingRow> rows;
  for (int n = 2; std::getline(f, line); ++n) {
    if (line.empty()) continue;
    const std::vector<std::string> v = split_csv_line(line, path + ": line " + std::to_string(n));
    if (v.size() != 19) throw Error(path + ": line " + std::to_string(n) + ": " + std::to_string(v.size()) +
                                    " fields, expected 19");
    try {
      TimingRow r;
      r.machine = v[0], r.device = v[1], r.net = v[2], r.batch = std::stoll(v[3]), r.size = std::stoll(v[4]);
      r.source = v[5], r.workers = std::stoi(v[6]), r.pin_memory = v[7] == "on", r.threads = std::stoi(v[8]);
      r.step = std::stoi(v[9]), r.step_ms = std::stod(v[10]), r.data_wait_ms = std::stod(v[11]);
      r.h2d_ms = std::stod(v[12]), r.forward_ms = std::stod(v[13]), r.backward_ms = std::stod(v[14]);
      r.optimizer_ms = std::stod(v[15]), r.images_per_s = std::stod(v[16]), r.commit = v[17];
      r.steps_per_epoch = std::stoll(v[18]);
      rows.push_back(r);
    } catch (const std::logic_error&) {
      throw Error(path + ": line " + std::to_string(n) + ": a number field is not a number");
    }
  }
  return rows;
}

}  // namespace ctg::train
