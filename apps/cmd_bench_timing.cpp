// ctgrad bench timing: the study's timing experiment (Figure 2) — training
// steps split into data wait, host→device copy, forward, backward and
// optimiser, for every device × source × pin_memory × num_workers asked for.
// Writes OUT/timing.csv (a row per timed step), timing.md (medians) and
// timing.svg (the figure); `ctgrad report --timing A.csv B.csv` merges machines.
#include <cstdio>
#include <filesystem>
#include <sstream>

#include "apps/commands.h"
#include "engine/tensor.h"
#include "report/timing_figure.h"
#include "train/timing.h"

namespace ctg::apps {

using ctg::Error;

namespace {
std::vector<std::string> split_list(const std::string& s, const std::string& flag) {
  std::vector<std::string> out;
  std::stringstream in(s);
  std::string item;
  while (std::getline(in, item, ','))
    if (!item.empty()) out.push_back(item);
  if (out.empty()) throw Error(flag + ": the list is empty");
  return out;
}

struct TimingArgs {
  train::TimingOptions o;
  std::string devices = "cpu", workers = "0,1,2,4,8", pin = "on,off", sources = "cache", out = "runs/timing";
};

void bench_timing(TimingArgs a) {
  a.o.devices = split_list(a.devices, "--devices");
  a.o.sources = split_list(a.sources, "--source");
  a.o.workers.clear();
  for (const std::string& w : split_list(a.workers, "--workers")) {
    size_t end = 0;
    int n = -1;
    try {
      n = std::stoi(w, &end);
    } catch (const std::logic_error&) {
      end = 0;
    }
    if (end != w.size()) throw Error("--workers: '" + w + "' is not a whole number");
    a.o.workers.push_back(n);
  }
  a.o.pin_memory.clear();
  for (const std::string& p : split_list(a.pin, "--pin-memory")) {
    if (p != "on" && p != "off") throw Error("--pin-memory: expected on or off, got '" + p + "'");
    a.o.pin_memory.push_back(p == "on");
  }
  train::check_timing_options(a.o);
  std::vector<std::string> skipped;
  const auto combos = train::timing_combos(a.o, &skipped);
  for (const std::string& s : skipped) std::printf("bench timing: %s\n", s.c_str());
  std::printf("bench timing: %zu combinations of %s, batch %lld, %s, %s on %s\n", combos.size(), a.o.net.c_str(),
              (long long)a.o.batch,
              a.o.epochs > 0 ? (std::to_string(a.o.epochs) + " epoch(s) each").c_str()
                             : (std::to_string(a.o.steps) + " steps after " + std::to_string(a.o.warmup) + " warm-up").c_str(),
              a.o.data.c_str(), train::machine_description(false).c_str());
  std::fflush(stdout);
  const auto rows = train::run_timing(a.o, [](size_t i, size_t n, const train::TimingCombo& c,
                                              const std::vector<train::TimingRow>& rs) {
    const auto g = report::timing_groups(rs);
    if (g.empty()) return;
    std::printf("[%zu/%zu] %s %s workers %d pin %s: step %.1f ms (data wait %.1f, h2d %.1f, forward %.1f, "
                "backward %.1f, optimizer %.1f), %.1f images/s\n",
                i + 1, n, c.device.c_str(), c.source.c_str(), c.workers, c.pin_memory ? "on" : "off", g[0].step_ms,
                g[0].data_wait_ms, g[0].h2d_ms, g[0].forward_ms, g[0].backward_ms, g[0].optimizer_ms,
                g[0].images_per_s);
    std::fflush(stdout);
  });
  std::filesystem::create_directories(a.out);
  train::write_timing_csv(a.out + "/timing.csv", rows);
  report::write_timing_outputs(rows, a.out);
  std::printf("bench timing: %zu rows → %s/timing.csv, timing.md, timing.svg\n", rows.size(), a.out.c_str());
}
}  // namespace

static Registrar reg([](CLI::App& app) {
  auto* bench = subcommand_group(app, "bench", "Benchmarks");
  auto a = std::make_shared<TimingArgs>();
  auto* t = bench->add_subcommand("timing", "The study's timing experiment (Figure 2): training steps split into "
                                            "phases, per device × source × pin_memory × num_workers");
  t->add_option("--data", a->o.data, "cohort folder (or a prep cache)")->required();
  t->add_option("--net", a->o.net, "net (the study: resnet18)");
  t->add_option("--batch", a->o.batch, "batch size (the study: 9)");
  t->add_option("--size", a->o.size, "input side (the study: 512)");
  t->add_option("--devices", a->devices, "comma list of cpu,cuda (cuda skipped without a device)");
  t->add_option("--workers", a->workers, "comma list of DataLoader num_workers (default 0,1,2,4,8)");
  t->add_option("--pin-memory", a->pin, "comma list of on,off (default both; on needs the CUDA driver and is skipped without)");
  t->add_option("--source", a->sources, "comma list of cache,nifti (nifti: decode and preprocess per load)");
  t->add_option("--steps", a->o.steps, "timed steps per combination (default 5)");
  t->add_option("--warmup", a->o.warmup, "untimed warm-up steps (default 1)");
  t->add_option("--epochs", a->o.epochs, "time N whole epochs over the training patients instead of --steps");
  t->add_option("--threads", a->o.threads, "CPU threads (0: the library default)");
  t->add_option("--seed", a->o.seed, "shuffle and initialisation seed");
  t->add_option("--out", a->out, "output folder (default runs/timing)");
  t->callback([a]() { bench_timing(*a); });
});

}  // namespace ctg::apps
