#include "train/config.h"

#include <sys/stat.h>

#include <cmath>
#include <ctime>
#include <fstream>
#include <sstream>

#include "base/atomic_file.h"
#include "engine/tensor.h"
#include "kernels/cuda/runtime.h"
#include "nets/nets.h"

namespace ctg::train {

namespace {
bool exists(const std::string& p) {
  struct stat st;
  return ::stat(p.c_str(), &st) == 0;
}
}  // namespace

data::ClassMapping TrainOptions::mapping() const { return data::parse_class_mapping(negative, positive); }

namespace {
nlohmann::json grade_names(const std::vector<int>& grades) {
  nlohmann::json a = nlohmann::json::array();
  for (int g : grades) a.push_back("CT-" + std::to_string(g));
  return a;
}
}  // namespace

void validate(const TrainOptions& o) {
  bool known = false;
  for (const auto& n : nets::net_names()) known = known || n == o.net;
  if (!known) {
    std::string list;
    for (const auto& n : nets::net_names()) list += (list.empty() ? "" : ", ") + n;
    throw Error("--net: unknown net '" + o.net + "' (known: " + list + ")");
  }
  if (o.data.empty()) throw Error("--data: a cohort folder or a prep cache is required");
  if (o.out.empty()) throw Error("--out: the run folder is required");
  if (o.epochs < 1) throw Error("--epochs: must be at least 1, got " + std::to_string(o.epochs));
  if (o.batch < 1) throw Error("--batch: must be at least 1, got " + std::to_string(o.batch));
  if (!(o.lr > 0) || !std::isfinite(o.lr)) throw Error("--lr: must be a positive number");
  if (!(o.lr_decay > 0 && o.lr_decay <= 1)) throw Error("--lr-decay: must be in (0, 1]");
  if (!(o.weight_decay >= 0) || !std::isfinite(o.weight_decay)) throw Error("--weight-decay: must be ≥ 0");
  if (o.optimizer != "adam" && o.optimizer != "sgd")
    throw Error("--optimizer: expected adam or sgd, got '" + o.optimizer + "'");
  if (!(o.momentum >= 0 && o.momentum < 1)) throw Error("--momentum: must be in [0, 1)");
  if (o.workers < 0) throw Error("--workers: must be ≥ 0");
  if (o.source != "cache" && o.source != "nifti")
    throw Error("--source: expected cache or nifti, got '" + o.source + "'");
  if (o.size != 0 && (o.size < 16 || o.size > 4096)) throw Error("--size: must be in [16, 4096]");
  if (o.dropout != "auto" && o.dropout != "on" && o.dropout != "off")
    throw Error("--dropout: expected auto, on or off, got '" + o.dropout + "'");
  if (o.dropout == "on" && o.net != "resnet18") throw Error("--dropout: only resnet18 has a dropout layer");
  if (!o.init.empty() && !o.resume && !exists(o.init)) throw Error("--init: " + o.init + ": no such file");
  if (o.threads < 0) throw Error("--threads: must be ≥ 0 (0: the library default)");
  if (!(o.noise >= 0) || !std::isfinite(o.noise)) throw Error("--noise: must be ≥ 0");
  if (o.eval_batch < 0) throw Error("--eval-batch: must be ≥ 0");
  o.mapping();  // throws naming --negative/--positive (unknown grade, one grade in both classes)
  if (o.per_class < 0) throw Error("--per-class: must be ≥ 0 (0 keeps every patient), got " + std::to_string(o.per_class));
  parse_device(o.device);  // throws naming --device (cuda without a GPU, unknown name)
  if (o.cuda_graph) {
    if (parse_device(o.device) != Device::cuda)
      throw Error("--cuda-graph: needs --device cuda (a CUDA graph replays GPU kernels), got '" + o.device + "'");
    if (o.dropout_on())
      throw Error("--cuda-graph: " + o.net + " has dropout here, whose mask seed is drawn on the host at every step "
                  "(a replayed graph would repeat one mask); use --dropout off");
    if (o.distributed)
      throw Error("--cuda-graph: not with --distributed (the gradient all-reduce runs between backward's buckets, "
                  "outside any graph)");
  }
}

nlohmann::json to_json(const TrainOptions& o) {
  return {{"net", o.net},
          {"data", o.data},
          {"epochs", o.epochs},
          {"batch", o.batch},
          {"lr", o.lr},
          {"lr_decay", o.lr_decay},
          {"weight_decay", o.weight_decay},
          {"optimizer", o.optimizer},
          {"momentum", o.momentum},
          {"device", o.device},
          {"workers", o.workers},
          {"pin_memory", o.pin_memory},
          {"source", o.source},
          {"size", o.size},
          {"seed", o.seed},
          {"dropout", o.dropout_on()},
          {"init", o.init},
          {"threads", o.threads},
          {"noise", o.noise},
          {"split_seed", o.split_seed},
          {"eval_batch", o.eval_batch},
          {"negative", grade_names(o.mapping().negative)},
          {"positive", grade_names(o.mapping().positive)},
          {"per_class", o.per_class},
          {"sync_bn", o.sync_bn},
          {"cuda_graph", o.cuda_graph}};
}

TrainOptions options_from_json(const nlohmann::json& j, const std::string& file) {
  TrainOptions o;
  auto get = [&](const char* key, auto& v) {
    if (!j.contains(key)) throw Error(file + ": missing key '" + key + "'");
    try {
      j.at(key).get_to(v);
    } catch (const std::exception&) {
      throw Error(file + ": key '" + key + "' has the wrong type");
    }
  };
  get("net", o.net);
  get("data", o.data);
  get("epochs", o.epochs);
  get("batch", o.batch);
  get("lr", o.lr);
  get("lr_decay", o.lr_decay);
  get("weight_decay", o.weight_decay);
  get("optimizer", o.optimizer);
  get("momentum", o.momentum);
  get("device", o.device);
  get("workers", o.workers);
  get("pin_memory", o.pin_memory);
  if (j.contains("source")) get("source", o.source);  // runs made before --source read the cache
  get("size", o.size);
  get("seed", o.seed);
  bool dropout = false;
  get("dropout", dropout);
  o.dropout = dropout ? "on" : "off";
  get("init", o.init);
  get("threads", o.threads);
  get("noise", o.noise);
  get("split_seed", o.split_seed);
  get("eval_batch", o.eval_batch);
  // The selection: absent in runs written before it existed (then the
  // default mapping and every patient, which is what those runs used).
  for (auto [key, value] : {std::make_pair("negative", &o.negative), std::make_pair("positive", &o.positive)}) {
    if (!j.contains(key)) continue;
    std::vector<std::string> names;
    get(key, names);
    std::string joined;
    for (const auto& n : names) joined += (joined.empty() ? "" : ",") + n;
    *value = joined;
  }
  if (j.contains("per_class")) get("per_class", o.per_class);
  if (j.contains("sync_bn")) get("sync_bn", o.sync_bn);  // runs before issue 17: one process
  if (j.contains("cuda_graph")) get("cuda_graph", o.cuda_graph);  // runs before --cuda-graph: eager
  try {
    o.mapping();
  } catch (const Error& e) {
    throw Error(file + ": " + e.what());
  }
  return o;
}

nlohmann::json read_json_file(const std::string& path) {
  std::ifstream f(path);
  if (!f) throw Error(path + ": cannot open");
  try {
    return nlohmann::json::parse(f);
  } catch (const std::exception& e) {
    throw Error(path + ": not valid JSON (" + std::string(e.what()) + ")");
  }
}

void write_json_file(const std::string& path, const nlohmann::json& j) {
  const std::string text = j.dump(2) + "\n";
  write_file_atomic(path, text);
}

nlohmann::json build_info() {
  nlohmann::json b;
#ifdef CTGRAD_GIT_COMMIT
  b["configured_at_commit"] = CTGRAD_GIT_COMMIT;
#endif
#if defined(__clang__)
  b["compiler"] = std::string("clang ") + __clang_version__;
#elif defined(__GNUC__)
  b["compiler"] = "g++ " + std::to_string(__GNUC__) + "." + std::to_string(__GNUC_MINOR__);
#endif
#ifdef NDEBUG
  b["build_type"] = "release";
#else
  b["build_type"] = "debug";
#endif
  b["cuda_backend"] = cuda::is_emulated() ? "emulated" : "native";
  b["cuda_device"] = cuda::available() ? cuda::device_description() : "none";
  return b;
}

std::string utc_now() {
  std::time_t t = std::time(nullptr);
  std::tm tm{};
  gmtime_r(&t, &tm);
  char buf[32];
  std::strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%SZ", &tm);
  return buf;
}

}  // namespace ctg::train
