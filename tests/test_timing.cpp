// The timing study (train/timing.h, report/timing_figure.h, `ctgrad bench
// timing`): the phases add up to the step, the CSV has its columns and a row
// per timed step and combination, NIfTI and cache sources feed the same
// slices, a corrupt volume fails with its file named, bad flags get one line.
#include <doctest/doctest.h>

#include <filesystem>
#include <fstream>

#include "data/prep.h"
#include "data/synth.h"
#include "kernels/cuda/runtime.h"
#include "report/timing_figure.h"
#include "tests/test_util.h"
#include "tests/train_fixture.h"
#include "train/timing.h"

using namespace ctg;
using test::error_of;
using test::TempDir;

namespace {
train::TimingOptions tiny_timing() {
  train::TimingOptions o;
  o.data = test::tiny_cache();
  o.net = "cnn1";
  o.batch = 4;
  o.size = 48;
  o.workers = {0, 2};
  o.pin_memory = {false};
  o.sources = {"cache", "nifti"};
  o.steps = 3;
  o.warmup = 1;
  return o;
}

// Every row's phases add up to its step within 2 % (the clock reads between
// phases are all that is left out).
void check_phases_add_up(const std::vector<train::TimingRow>& rows) {
  for (const auto& r : rows) {
    const double sum = r.data_wait_ms + r.h2d_ms + r.forward_ms + r.backward_ms + r.optimizer_ms;
    CAPTURE(r.device);
    CAPTURE(r.source);
    CAPTURE(r.workers);
    CHECK(r.step_ms > 0);
    CHECK(r.forward_ms > 0);
    CHECK(r.backward_ms > 0);
    CHECK(std::fabs(sum - r.step_ms) <= 0.02 * r.step_ms + 0.05);
  }
}
}  // namespace

TEST_CASE("bench timing: phases add up to the step, with a CSV row per timed step and combination") {
  const train::TimingOptions o = tiny_timing();
  std::vector<std::string> seen;
  const auto rows = train::run_timing(o, [&](size_t i, size_t n, const train::TimingCombo& c, const auto& rs) {
    CHECK(n == 4);
    CHECK(rs.size() == 3);
    seen.push_back(c.source + "/" + std::to_string(c.workers));
  });
  CHECK(seen == std::vector<std::string>{"cache/0", "cache/2", "nifti/0", "nifti/2"});
  REQUIRE(rows.size() == 12);
  check_phases_add_up(rows);
  CHECK(rows[0].steps_per_epoch > 0);
  CHECK(rows[0].size == 48);
  CHECK(rows[0].machine.find("cores; GPU none") != std::string::npos);

  TempDir t;
  train::write_timing_csv(t / "timing.csv", rows);
  std::ifstream f(t / "timing.csv");
  std::string header;
  std::getline(f, header);
  CHECK(header ==
        "machine,device,net,batch,size,source,workers,pin_memory,threads,step,step_ms,data_wait_ms,h2d_ms,"
        "forward_ms,backward_ms,optimizer_ms,images_per_s,ctgrad_commit,steps_per_epoch");
  const auto back = train::read_timing_csv(t / "timing.csv");
  REQUIRE(back.size() == rows.size());
  CHECK(back[5].machine == rows[5].machine);  // quoted: it holds a comma
  CHECK(back[5].source == rows[5].source);
  CHECK(back[5].step_ms == doctest::Approx(rows[5].step_ms).epsilon(1e-5));

  // Medians per combination, the table and Figure 2.
  const auto groups = report::timing_groups(rows);
  REQUIRE(groups.size() == 4);
  CHECK(groups[0].steps == 3);
  const std::string md = report::timing_markdown(groups);
  CHECK(std::count(md.begin(), md.end(), '\n') >= 2 + 4);
  const std::string svg = report::timing_svg(groups);
  CHECK(svg.find("Time per epoch against num_workers") != std::string::npos);
  CHECK(svg.find("Where a step's time goes") != std::string::npos);
  CHECK(svg.find("· nifti · pin off") != std::string::npos);
  report::write_timing_outputs(rows, t / "out");
  CHECK(std::filesystem::file_size(t / "out/timing.svg") > 1000);
}

TEST_CASE("bench timing: on the (emulated) CUDA device the phases come from events and still add up") {
  cuda::set_emulation(true);
  train::TimingOptions o = tiny_timing();
  o.devices = {"cuda"};
  o.sources = {"cache"};
  o.workers = {1};
  o.pin_memory = {true, false};
  o.steps = 2;
  const auto rows = train::run_timing(o);
  REQUIRE(rows.size() == 4);
  check_phases_add_up(rows);
  CHECK(rows[0].pin_memory);
  CHECK(rows[0].device == "cuda");
}

TEST_CASE("bench timing: without a GPU, cuda and pin_memory on are skipped with a line, not an error") {
  if (!cuda::is_emulated()) return;  // a GPU build with a GPU runs them
  cuda::set_emulation(false);
  train::TimingOptions o = tiny_timing();
  o.devices = {"cpu", "cuda"};
  o.pin_memory = {true, false};
  std::vector<std::string> skipped;
  const auto combos = train::timing_combos(o, &skipped);
  CHECK(combos.size() == 4);  // cpu × {cache, nifti} × pin off × {0, 2}
  REQUIRE(skipped.size() == 2);
  CHECK(skipped[0].find("pin_memory on skipped") != std::string::npos);
  CHECK(skipped[1].find("device cuda skipped") != std::string::npos);
  o.devices = {"cuda"};
  CHECK(error_of([&] { train::run_timing(o); }).find("nothing this machine can run") != std::string::npos);
  cuda::set_emulation(true);
}

TEST_CASE("bench timing: a corrupt volume stops the run with the file named") {
  TempDir t;
  data::SynthOptions so;
  so.patients_per_grade = 6, so.size = 64, so.slices = 24, so.seed = 5, so.workers = 2;  // as tiny_cache
  data::synth_cohort(t / "cohort", so);
  data::PrepOptions po;
  po.data_dir = t / "cohort", po.out = t / "c.bin", po.size = 32, po.workers = 2;
  data::prep_cache(po);
  for (const auto& e : std::filesystem::recursive_directory_iterator(t / "cohort"))
    if (e.path().string().find(".nii") != std::string::npos) std::filesystem::resize_file(e.path(), 100);
  train::TimingOptions o = tiny_timing();
  o.data = t / "c.bin";
  o.size = 32;
  o.sources = {"nifti"};
  o.workers = {2};
  const std::string err = error_of([&] { train::run_timing(o); });
  CAPTURE(err);
  CHECK(err.find("data loader worker") != std::string::npos);
  CHECK(err.find(".nii") != std::string::npos);
}

TEST_CASE("bench timing: bad flags get one clear line and exit 1") {
  const std::string data = test::tiny_cache();
  auto bad = [&](const std::string& args, const std::string& want) {
    const test::Ran r = test::run_ctgrad("bench timing --data " + data + " --size 48 " + args);
    CAPTURE(args);
    CAPTURE(r.out);
    CHECK(r.rc != 0);
    CHECK(r.out.find(want) != std::string::npos);
  };
  bad("--workers 0,-1", "--workers: must be ≥ 0, got -1");
  bad("--workers 0,x", "--workers: 'x' is not a whole number");
  bad("--devices cpu,tpu", "--devices: expected cpu or cuda, got 'tpu'");
  bad("--source cache,disk", "--source: expected cache or nifti, got 'disk'");
  bad("--pin-memory maybe", "--pin-memory: expected on or off, got 'maybe'");
  bad("--workers ,", "--workers: the list is empty");
  bad("--net vgg", "--net: unknown net 'vgg'");
}

TEST_CASE("report --timing merges machines into one figure and table, and a bad CSV is named") {
  train::TimingOptions o = tiny_timing();
  o.sources = {"cache"};
  o.workers = {0};
  o.steps = 2;
  auto rows = train::run_timing(o);
  TempDir t;
  train::write_timing_csv(t / "a.csv", rows);
  for (auto& r : rows) r.machine = "Laptop i5-8250U, 4 cores; GPU none";  // a second machine, as the study had
  train::write_timing_csv(t / "b.csv", rows);
  const test::Ran r = test::run_ctgrad("report --timing " + t / "a.csv" + " --timing " + t / "b.csv" + " --out " +
                                       t / "rep");
  CAPTURE(r.out);
  REQUIRE(r.rc == 0);
  const std::string html = test::slurp(t / "rep/report.html");
  CHECK(html.find("The timing study (Figure 2)") != std::string::npos);
  CHECK(html.find("Laptop i5-8250U") != std::string::npos);
  CHECK(html.find(train::machine_description(false).substr(0, 8)) != std::string::npos);  // the first machine
  CHECK(std::filesystem::exists(t / "rep/timing.md"));
  CHECK(std::filesystem::exists(t / "rep/timing.svg"));

  std::ofstream(t / "bad.csv") << "machine,device\nx,y\n";
  const test::Ran bad = test::run_ctgrad("report --timing " + t / "bad.csv" + " --out " + t / "rep2");
  CHECK(bad.rc == 1);
  CHECK(bad.out.find(t / "bad.csv" + ": line 1: not a `ctgrad bench timing` CSV") != std::string::npos);
  CHECK(test::run_ctgrad("report --out " + t / "rep3").out.find("give run directories, --timing CSV files") !=
        std::string::npos);
}
