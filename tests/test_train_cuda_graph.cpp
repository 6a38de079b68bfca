// `ctgrad train --device cuda --cuda-graph` on the emulation: the same epoch
// losses, weights, BatchNorm buffers and optimiser state, bit for bit, as the
// eager CUDA run (train/graph_step.h; the step-level cases are in
// tests/test_graph_step.cpp), over epochs whose lr decays and whose last
// batch is partial; config.json records the choice; the flag is refused
// where it cannot work, in one line each.
#include <doctest/doctest.h>

#include <cstring>

#include "engine/checkpoint.h"
#include "kernels/cuda/runtime.h"
#include "tests/test_util.h"
#include "train/config.h"
#include "train/trainer.h"
#include "train_fixture.h"

using namespace ctg;
using ctg::test::error_of;

namespace {
// Every tensor of a safetensors file, by name, as doubles.
std::map<std::string, std::vector<double>> tensors(const std::string& file) {
  std::map<std::string, std::vector<double>> out;
  for (const auto& nt : load_safetensors(file).tensors) out[nt.name] = nt.tensor.to_vector();
  return out;
}
bool same_bits(const std::vector<double>& a, const std::vector<double>& b) {
  return a.size() == b.size() && std::memcmp(a.data(), b.data(), a.size() * sizeof(double)) == 0;
}
}  // namespace

TEST_CASE("train --cuda-graph: the eager CUDA run's losses, weights and optimiser state bit for bit") {
  cuda::set_emulation(true);
  REQUIRE_MESSAGE(cuda::available(), cuda::device_description());
  test::TempDir t;
  train::TrainHooks quiet;
  quiet.quiet = true;
  for (const char* net : {"cnn1", "dense20"}) {
    CAPTURE(net);
    auto eager = test::tiny_options(net, t / (std::string(net) + "-eager"));
    eager.epochs = 2;
    eager.device = "cuda";
    eager.pin_memory = true;
    eager.lr_decay = 0.5;  // the schedule changes lr between the epochs: the graph must see it
    auto graph = eager;
    graph.out = t / (std::string(net) + "-graph");
    graph.cuda_graph = true;
    const auto re = train::run_training(eager, quiet);
    const auto rg = train::run_training(graph, quiet);
    REQUIRE(rg.rows.size() == 2);
    for (size_t i = 0; i < 2; ++i) {
      CHECK(rg.rows[i].train_loss == re.rows[i].train_loss);
      CHECK(rg.rows[i].val_auc == re.rows[i].val_auc);
    }
    for (const char* file : {"last.state.safetensors", "last.safetensors"}) {
      CAPTURE(file);
      const auto a = tensors(eager.out + "/" + file), b = tensors(graph.out + "/" + file);
      REQUIRE(a.size() == b.size());
      for (const auto& [name, v] : a) {
        CAPTURE(name);
        REQUIRE(b.count(name));
        CHECK(same_bits(v, b.at(name)));
      }
    }
    CHECK(train::read_json_file(graph.out + "/config.json").at("cuda_graph") == true);
    CHECK(train::read_json_file(eager.out + "/config.json").at("cuda_graph") == false);
  }
}

TEST_CASE("train --cuda-graph: refused on the CPU, with dropout and with --distributed, in one line each") {
  cuda::set_emulation(true);
  test::TempDir t;
  auto o = test::tiny_options("cnn1", t / "run");
  o.cuda_graph = true;
  CHECK(error_of([&] { train::validate(o); }).find("--cuda-graph: needs --device cuda") != std::string::npos);
  o.device = "cuda";
  CHECK(error_of([&] { train::validate(o); }) == "(no error)");
  o.distributed = true;
  CHECK(error_of([&] { train::validate(o); }).find("--cuda-graph: not with --distributed") != std::string::npos);
  o.distributed = false;
  o.net = "resnet18";  // dropout on by default (auto)
  CHECK(error_of([&] { train::validate(o); }).find("--cuda-graph: resnet18 has dropout here") != std::string::npos);
  o.dropout = "off";
  CHECK(error_of([&] { train::validate(o); }) == "(no error)");
}
