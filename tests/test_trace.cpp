// `ctgrad trace`: one training step of CNN1 as Chrome trace-event JSON and
// as a table, checked against the counting rules of engine/trace.h and the
// tape's own saved_bytes. Runs the real binary (as test_train does).
#include <doctest/doctest.h>

#include <algorithm>
#include <cstdlib>
#include <map>
#include <nlohmann/json.hpp>

#include "engine/autograd.h"
#include "engine/ops.h"
#include "kernels/conv2d.h"
#include "nets/nets.h"
#include "tests/test_util.h"

using namespace ctg;
using nlohmann::json;

namespace {

constexpr int64_t kBatch = 2, kSize = 32;

// The X events of a trace, by category ("forward op", "backward node", "kernel").
std::vector<json> events_of(const json& doc, const std::string& cat) {
  std::vector<json> out;
  for (const json& e : doc.at("traceEvents"))
    if (e.value("ph", "") == "X" && e.value("cat", "") == cat) out.push_back(e);
  return out;
}

const json* op_event(const std::vector<json>& evs, const std::string& module, const std::string& op) {
  for (const json& e : evs)
    if (e["args"].value("module", "") == module && e["args"].value("op", "") == op) return &e;
  return nullptr;
}

// CNN1's stage-k convolution: kernel 5, padding 3, stride 3 then 2, 2
// (SEED_NOTES.md section 3), no bias.
struct ConvCase {
  int64_t C, O, H, S;
  int64_t out_side() const { return kernels::conv2d_output_size(H, 5, S, 3); }
  double flops() const {  // 2·N·O·OH·OW·C·KH·KW
    return 2.0 * kBatch * O * out_side() * out_side() * C * 5 * 5;
  }
};

}  // namespace

TEST_CASE("ctgrad trace --format chrome: trace-event JSON with the FLOPs and kernels and saved bytes of a CNN1 step") {
  test::TempDir tmp;
  const std::string path = tmp / "step.json";
  const test::Ran r = test::run_ctgrad("trace --net cnn1 --batch 2 --size 32 --format chrome --out " + path);
  INFO(r.out);
  REQUIRE(r.rc == 0);
  const json doc = json::parse(test::slurp(path));
  REQUIRE(doc.contains("traceEvents"));
  REQUIRE(doc["traceEvents"].is_array());

  // Every complete event carries the fields the trace-event format requires.
  std::map<int, std::string> track;  // tid -> thread_name
  size_t complete = 0;
  for (const json& e : doc["traceEvents"]) {
    REQUIRE(e.contains("ph"));
    if (e["ph"] == "M" && e.value("name", "") == "thread_name") track[e["tid"].get<int>()] = e["args"]["name"];
    if (e["ph"] != "X") continue;
    ++complete;
    for (const char* key : {"ph", "ts", "dur", "pid", "tid", "name", "args"}) CHECK_MESSAGE(e.contains(key), key);
    CHECK(e["ts"].is_number());
    CHECK(e["dur"].get<double>() >= 0);
    CHECK(e["args"].is_object());
  }
  CHECK(complete > 30);
  // Slices on one track must nest (Perfetto's JSON importer needs a stack per
  // thread): sorted by start, each lies inside the open one or after it ends.
  std::map<int, std::vector<std::pair<double, double>>> slices;
  for (const json& e : doc["traceEvents"])
    if (e["ph"] == "X") slices[e["tid"].get<int>()].push_back({e["ts"].get<double>(), e["dur"].get<double>()});
  for (auto& [tid, v] : slices) {
    std::sort(v.begin(), v.end(), [](const auto& a, const auto& b) {
      return a.first < b.first || (a.first == b.first && a.second > b.second);  // outer first
    });
    std::vector<double> open_ends;
    bool nested = true;
    for (const auto& [ts, dur] : v) {
      while (!open_ends.empty() && ts >= open_ends.back()) open_ends.pop_back();
      if (!open_ends.empty() && ts + dur > open_ends.back() + 1e-6) nested = false;
      open_ends.push_back(ts + dur);
    }
    CHECK_MESSAGE(nested, "track " << tid);
  }
  // Forward, backward and optimiser each on a track of their own.
  std::map<std::string, int> tid_of;
  for (const auto& [tid, name] : track) tid_of[name] = tid;
  REQUIRE(tid_of.size() >= 3);
  CHECK(tid_of.at("forward") != tid_of.at("backward"));
  CHECK(tid_of.at("backward") != tid_of.at("optimizer"));

  const auto fwd = events_of(doc, "forward op"), bwd = events_of(doc, "backward node"),
             kernels = events_of(doc, "kernel");
  for (const json& e : fwd) CHECK(e["tid"] == tid_of["forward"]);
  for (const json& e : bwd) CHECK(e["tid"] == tid_of["backward"]);

  // The convolutions' FLOPs against 2·N·O·OH·OW·C·KH·KW from the net's
  // known shapes (32 px: conv1 -> 12, pool -> 6; conv2 -> 4, pool -> 2).
  const ConvCase conv1{1, 5, kSize, 3}, conv2{5, 5, 6, 2};
  REQUIRE(conv1.out_side() == 12);
  const json* c1 = op_event(fwd, "conv1", "conv2d");
  const json* c2 = op_event(fwd, "conv2", "conv2d");
  REQUIRE(c1);
  REQUIRE(c2);
  CHECK((*c1)["args"]["output"] == "[2, 5, 12, 12]");
  CHECK((*c1)["args"]["flops"].get<double>() == conv1.flops());
  CHECK((*c2)["args"]["flops"].get<double>() == conv2.flops());
  // Backward: one GEMM per gradient; conv1's input (the batch) needs none.
  const json* b1 = op_event(bwd, "conv1", "conv2d");
  const json* b2 = op_event(bwd, "conv2", "conv2d");
  REQUIRE(b1);
  REQUIRE(b2);
  CHECK((*b1)["args"]["flops"].get<double>() == conv1.flops());
  CHECK((*b2)["args"]["flops"].get<double>() == 2 * conv2.flops());
  // A kernel slice carries its op's shapes, FLOPs and bytes.
  bool conv_kernel = false;
  for (const json& k : kernels)
    if (k["name"] == "conv2d_forward" && k["args"].value("module", "") == "conv1") {
      conv_kernel = true;
      CHECK(k["args"]["flops"].get<double>() == conv1.flops());
      CHECK(k["args"]["bytes_written"].get<double>() == 4.0 * kBatch * 5 * 12 * 12);
    }
  CHECK(conv_kernel);

  // Every backward node names at least one kernel (the tape reaches kernels).
  CHECK(bwd.size() >= 10);
  for (const json& e : bwd) {
    INFO(e.dump());
    CHECK(!e["args"]["kernels"].empty());
  }
  // Linear: 2·N·in·out (fc2 is Linear(180, 1)).
  const json* fc2 = op_event(fwd, "fc2", "linear");
  REQUIRE(fc2);
  CHECK((*fc2)["args"]["flops"].get<double>() == 2.0 * kBatch * 180 * 1);
  // Elementwise ops are bytes only.
  const json* relu = op_event(fwd, "", "relu");
  if (relu) CHECK((*relu)["args"]["flops"].get<double>() == 0);

  // Saved bytes: the ops' sum equals the tape's saved_bytes, here and when
  // the test builds the same graph itself.
  const json& other = doc.at("otherData");
  CHECK(other["saved_bytes_ops"] == other["saved_bytes_measured"]);
  auto net = nets::make_net("cnn1", {kSize, 1, false});
  net->train();
  Tensor x = Tensor::full({kBatch, 1, kSize, kSize}, 0.5);
  Tensor loss = ops::bce_with_logits((*net)(x), Tensor::full({kBatch, 1}, 1.0));
  CHECK(other["saved_bytes_measured"].get<size_t>() == autograd::saved_bytes(loss, true));
  CHECK(other["saved_bytes_measured"].get<size_t>() > 0);

  // The optimiser: one update kernel per parameter, named.
  size_t updates = 0;
  for (const json& k : kernels)
    if (k["tid"] == tid_of["optimizer"] && k["name"] == "adam_update") {
      ++updates;
      CHECK(k["args"].contains("parameter"));
    }
  CHECK(updates == net->named_parameters().size());
}

TEST_CASE("ctgrad trace: the table and CUDA launches on the emulation and bad flags in one line") {
  SUBCASE("table") {
    const test::Ran r = test::run_ctgrad("trace --net cnn1 --batch 2 --size 32");
    INFO(r.out);
    REQUIRE(r.rc == 0);
    for (const char* s : {"forward ops", "backward nodes", "optimizer step", "totals", "conv1", "conv2d_backward",
                          "adam_update", "(equal)", "72.00 kFLOP"})
      CHECK_MESSAGE(r.out.find(s) != std::string::npos, s);
  }
  SUBCASE("bench step --trace prints the same table to stderr") {
    const test::Ran r = test::run_ctgrad("bench step --net cnn1 --batch 2 --size 32 --steps 1 --warmup 0 --trace");
    INFO(r.out);
    REQUIRE(r.rc == 0);
    for (const char* s : {"backward nodes", "kernel conv2d_backward", "(equal)", "ms_per_step:"})
      CHECK_MESSAGE(r.out.find(s) != std::string::npos, s);
  }
  SUBCASE("cuda on the emulation: grid and block of every launch") {
    test::TempDir tmp;
    const std::string path = tmp / "cuda.json";
    ::setenv("CTGRAD_CUDA_EMULATE", "1", 1);
    const test::Ran r = test::run_ctgrad("trace --net cnn1 --batch 2 --size 32 --device cuda --warmup 0 "
                                         "--format chrome --out " + path);
    ::unsetenv("CTGRAD_CUDA_EMULATE");
    INFO(r.out);
    if (r.rc != 0 && r.out.find("no CUDA device") != std::string::npos) {
      MESSAGE("skipped: a native ctgrad binary without a GPU");
      return;
    }
    REQUIRE(r.rc == 0);
    const json doc = json::parse(test::slurp(path));
    size_t with_launch = 0, conv = 0;
    for (const json& k : events_of(doc, "kernel")) {
      if (!k["args"].contains("launches")) continue;
      ++with_launch;
      for (const json& l : k["args"]["launches"]) {
        CHECK(l["grid"].size() == 3);
        CHECK(l["block"].size() == 3);
        CHECK(l["block"][0].get<unsigned>() >= 1);
      }
      if (k["name"] == "conv2d_forward") ++conv;
    }
    CHECK(with_launch > 10);
    CHECK(conv == 3);
    CHECK(doc["otherData"]["timing"].get<std::string>().find("synchronised") != std::string::npos);
  }
  SUBCASE("bad flags") {
    for (const char* args : {"trace --net cnn1 --format xml", "trace --net nosuch", "trace --net cnn1 --device gpu",
                             "trace --net cnn1 --cpu-kernels fast"}) {
      const test::Ran r = test::run_ctgrad(args);
      INFO(args, r.out);
      CHECK(r.rc != 0);
      CHECK(std::count(r.out.begin(), r.out.end(), '\n') == 1);
    }
    const test::Ran h = test::run_ctgrad("trace --help");
    CHECK(h.rc == 0);
    CHECK(h.out.find("--format") != std::string::npos);
  }
}
