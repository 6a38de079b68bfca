// `ctgrad study` (train/study.h): the plan of runs, the checks before any
// work, and the loop that trains, resumes and scores them.
#include "train/study.h"

#include <sys/stat.h>

#include <algorithm>
#include <filesystem>
#include <map>
#include <sstream>

#include "engine/checkpoint.h"
#include "nets/nets.h"
#include "train/data_source.h"
#include "train/evaluate.h"
#include "train/run.h"
#include "train/trainer.h"

namespace ctg::train {

namespace fs = std::filesystem;

namespace {

bool exists(const std::string& p) {
  struct stat st;
  return ::stat(p.c_str(), &st) == 0;
}

std::vector<std::string> split_list(const std::string& s, const std::string& flag, const std::string& example) {
  std::vector<std::string> out;
  std::stringstream ss(s);
  std::string tok;
  while (std::getline(ss, tok, ',')) {
    tok.erase(0, tok.find_first_not_of(" \t"));
    tok.erase(tok.find_last_not_of(" \t") + 1);
    if (tok.empty()) throw Error(flag + ": an empty entry in '" + s + "'");
    if (std::find(out.begin(), out.end(), tok) != out.end()) throw Error(flag + ": '" + tok + "' listed twice");
    out.push_back(tok);
  }
  if (out.empty()) throw Error(flag + ": an empty list (e.g. " + flag + " " + example + ")");
  return out;
}

std::string known_nets() {
  std::string list;
  for (const auto& n : nets::net_names()) list += (list.empty() ? "" : ", ") + n;
  return list;
}

// Epochs finished by the run in `dir` (its committed state and metrics.csv), 0 for none.
int64_t epochs_done(const std::string& dir) {
  if (!exists(run_file(dir, "last.state.safetensors")) || !exists(run_file(dir, "metrics.csv"))) return 0;
  return (int64_t)read_metrics_csv(run_file(dir, "metrics.csv")).size();
}

// The settings a study folder keeps fixed, with the flag that sets each.
const std::vector<std::pair<const char*, const char*>>& fixed_keys() {
  static const std::vector<std::pair<const char*, const char*>> k = {
      {"data", "--data"},       {"size", "--size"},           {"batch", "--batch"},
      {"lr_decay", "--lr-decay"}, {"weight_decay", "--weight-decay"}, {"seed", "--seed"},
      {"split_seed", "--split-seed"}, {"negative", "--negative"}, {"positive", "--positive"},
      {"per_class", "--per-class"}, {"init_resnet18", "--init-resnet18"}};
  return k;
}

nlohmann::json study_settings(const StudyOptions& o) {
  TrainOptions t;
  t.negative = o.negative, t.positive = o.positive;
  const auto m = t.mapping();
  auto names = [](const std::vector<int>& g) {
    nlohmann::json a = nlohmann::json::array();
    for (int x : g) a.push_back("CT-" + std::to_string(x));
    return a;
  };
  auto abs = [](const std::string& p) { return p.empty() ? p : fs::absolute(p).lexically_normal().string(); };
  return {{"data", abs(o.data)},         {"size", o.size},
          {"batch", o.batch},            {"lr_decay", o.lr_decay},
          {"weight_decay", o.weight_decay}, {"seed", o.seed},
          {"split_seed", o.split_seed},  {"negative", names(m.negative)},
          {"positive", names(m.positive)}, {"per_class", o.per_class},
          {"init_resnet18", abs(o.init_resnet18)}};
}

// A run folder's config.json must describe the run the plan would train
// there (the study.json check makes a mismatch rare: a folder copied in, or
// edited by hand); resuming it with other settings would mix two runs.
void check_run_config(const StudyRun& r) {
  const std::string cfg = run_file(r.dir, "config.json");
  if (!exists(cfg)) return;
  const TrainOptions have = options_from_json(read_json_file(cfg), cfg);
  const TrainOptions& want = r.options;
  auto differs = [&](const std::string& key, const std::string& a, const std::string& b) {
    if (a != b) throw Error(cfg + ": " + key + " is " + a + " but the study's run " + r.name + " has " + b +
                            " (move the folder away, or use another --out)");
  };
  differs("net", have.net, want.net);
  differs("optimizer", have.optimizer, want.optimizer);
  differs("lr", exact(have.lr), exact(want.lr));
  differs("batch", std::to_string(have.batch), std::to_string(want.batch));
  differs("size", std::to_string(have.size), std::to_string(want.size));
  differs("seed", std::to_string(have.seed), std::to_string(want.seed));
  differs("split_seed", std::to_string(have.split_seed), std::to_string(want.split_seed));
  differs("lr_decay", exact(have.lr_decay), exact(want.lr_decay));
  differs("weight_decay", exact(have.weight_decay), exact(want.weight_decay));
  differs("negative", data::grade_list(have.mapping().negative), data::grade_list(want.mapping().negative));
  differs("positive", data::grade_list(have.mapping().positive), data::grade_list(want.mapping().positive));
  differs("per_class", std::to_string(have.per_class), std::to_string(want.per_class));
  const auto abs = [](const std::string& p) { return p.empty() ? p : fs::absolute(p).lexically_normal().string(); };
  differs("init", abs(have.init), abs(want.init));
}

}  // namespace

std::vector<std::string> parse_net_list(const std::string& s) {
  auto v = split_list(s, "--nets", "dense20,cnn2,resnet18");
  for (const auto& n : v)
    if (std::find(nets::net_names().begin(), nets::net_names().end(), n) == nets::net_names().end())
      throw Error("--nets: unknown net '" + n + "' (known: " + known_nets() + ")");
  return v;
}

std::vector<double> parse_lr_list(const std::string& s) {
  std::vector<double> out;
  for (const auto& tok : split_list(s, "--lrs", "5e-3,1e-3,1e-4")) {
    char* end = nullptr;
    const double v = std::strtod(tok.c_str(), &end);
    if (end == tok.c_str() || *end != '\0' || !(v > 0) || !std::isfinite(v))
      throw Error("--lrs: '" + tok + "' is not a positive number");
    out.push_back(v);
  }
  return out;
}

std::vector<std::string> parse_optimizer_list(const std::string& s) {
  auto v = split_list(s, "--optimizers", "adam,sgd");
  for (const auto& n : v)
    if (n != "adam" && n != "sgd") throw Error("--optimizers: expected adam and/or sgd, got '" + n + "'");
  return v;
}

std::string lr_name(double lr) {
  if (!(lr > 0) || !std::isfinite(lr)) return exact(lr);
  // m·10^e with 1 ≤ m < 10, m to 6 significant digits without trailing zeros.
  int e = (int)std::floor(std::log10(lr));
  char buf[48];
  std::snprintf(buf, sizeof buf, "%.6g", lr / std::pow(10.0, e));
  if (std::string(buf) == "10") ++e, std::snprintf(buf, sizeof buf, "1");  // 9.9999999e-4 → 1e-3
  return std::string(buf) + "e" + std::to_string(e);
}

const std::vector<std::string>& family_order() {
  static const std::vector<std::string> f = {"Dense", "CNN", "ResNet18", "ResNet18*"};
  return f;
}

std::string family_of(const std::string& net, bool imagenet_init) {
  if (net.rfind("dense", 0) == 0) return "Dense";
  if (net.rfind("cnn", 0) == 0) return "CNN";
  return imagenet_init ? "ResNet18*" : "ResNet18";
}

std::vector<StudyRun> plan_study(const StudyOptions& o) {
  if (o.data.empty()) throw Error("--data: a cohort folder or a prep cache is required");
  if (o.out.empty()) throw Error("--out: the study folder is required");
  if (o.nets.empty()) throw Error("--nets: an empty list (e.g. --nets dense20,cnn2,resnet18)");
  if (o.lrs.empty()) throw Error("--lrs: an empty list (e.g. --lrs 5e-3,1e-3,1e-4)");
  if (o.optimizers.empty()) throw Error("--optimizers: an empty list (e.g. --optimizers adam,sgd)");
  for (const auto& n : o.nets)
    if (std::find(nets::net_names().begin(), nets::net_names().end(), n) == nets::net_names().end())
      throw Error("--nets: unknown net '" + n + "' (known: " + known_nets() + ")");
  for (double lr : o.lrs)
    if (!(lr > 0) || !std::isfinite(lr)) throw Error("--lrs: " + exact(lr) + " is not a positive number");
  for (const auto& n : o.optimizers)
    if (n != "adam" && n != "sgd") throw Error("--optimizers: expected adam and/or sgd, got '" + n + "'");
  if (o.size < 16) throw Error("--size: must be at least 16, got " + std::to_string(o.size));
  if (!o.own_scan.empty() && !exists(o.own_scan)) throw Error("--own-scan: " + o.own_scan + ": no such file");
  if (!o.init_resnet18.empty() && std::find(o.nets.begin(), o.nets.end(), "resnet18") == o.nets.end())
    throw Error("--init-resnet18: given, but resnet18 is not in --nets");

  std::vector<StudyRun> runs;
  for (const auto& family : family_order())
    for (const auto& net : nets::net_names()) {  // the study's order within a family
      if (std::find(o.nets.begin(), o.nets.end(), net) == o.nets.end()) continue;
      const bool star = family == "ResNet18*";
      if (star && o.init_resnet18.empty()) continue;
      if (family_of(net, star) != family) continue;
      for (const auto& opt : o.optimizers)
        for (double lr : o.lrs) {
          StudyRun r;
          r.family = family;
          r.name = (star ? "resnet18_imagenet" : net) + "_" + opt + "_lr" + lr_name(lr);
          r.dir = (fs::path(o.out) / "runs" / r.name).string();
          TrainOptions& t = r.options;
          t.net = net, t.data = o.data, t.out = r.dir;
          t.epochs = o.epochs, t.batch = o.batch, t.lr = lr, t.lr_decay = o.lr_decay, t.weight_decay = o.weight_decay;
          t.optimizer = opt, t.device = o.device, t.workers = o.workers, t.size = o.size;
          t.seed = o.seed, t.split_seed = o.split_seed, t.threads = o.threads;
          t.init = star ? o.init_resnet18 : "";
          t.negative = o.negative, t.positive = o.positive, t.per_class = o.per_class;
          for (const auto& other : runs)
            if (other.name == r.name) throw Error("--lrs: two learning rates give the run name " + r.name);
          runs.push_back(std::move(r));
        }
    }
  // Every run's settings, as `ctgrad train` checks them (names the flag).
  for (const auto& r : runs) {
    try {
      validate(r.options);
    } catch (const Error& e) {
      const std::string m = e.what();
      throw Error(m.rfind("--init:", 0) == 0 ? "--init-resnet18:" + m.substr(7) : m);
    }
  }
  return runs;
}

StudyOutcome run_study(const StudyOptions& o, const StudyHooks& hooks) {
  StudyOutcome out;
  out.options = o;
  std::vector<StudyRun> runs = plan_study(o);

  // --- every check before any work ---
  const DataPlan plan = plan_data(o.data, o.size, o.split_seed, runs.front().options.mapping(), o.per_class);
  out.study_json = (fs::path(o.out) / "study.json").string();
  const nlohmann::json settings = study_settings(o);
  if (exists(out.study_json)) {
    const nlohmann::json had = read_json_file(out.study_json);
    for (const auto& [key, flag] : fixed_keys())
      if (had.value(key, nlohmann::json()) != settings[key])
        throw Error(std::string(flag) + ": " + settings[key].dump() + " but the study in " + o.out + " was run with " +
                    had.value(key, nlohmann::json()).dump() + " (" + out.study_json + "); use another --out");
  }
  std::vector<int64_t> done(runs.size());
  for (size_t i = 0; i < runs.size(); ++i) {
    check_run_config(runs[i]);
    done[i] = epochs_done(runs[i].dir);
    if (done[i] > o.epochs)
      throw Error("--epochs: " + std::to_string(o.epochs) + " but the run " + runs[i].dir + " has already finished " +
                  std::to_string(done[i]) + " epochs");
  }
  if (!o.init_resnet18.empty()) {
    auto net = nets::make_net("resnet18", {o.size, o.seed, true});
    try {
      load_module(o.init_resnet18, *net);
    } catch (const Error& e) {
      throw Error("--init-resnet18: " + std::string(e.what()) + " (a resnet18 checkpoint from `ctgrad import`?)");
    }
  }

  // --- the data, once ---
  fs::create_directories(fs::path(o.out) / "runs");
  StudyProgress p;
  p.runs = (int64_t)runs.size();
  p.stage = "prep";  // the cohort's preprocessing, once (batch/batches: patients done/total)
  prepare_data(plan, o.workers, [&](int64_t d, int64_t n) {
    p.batch = d, p.batches = n;
    if (hooks.on_progress) hooks.on_progress(p);
  });
  nlohmann::json record = settings;
  record["nets"] = o.nets, record["lrs"] = o.lrs, record["optimizers"] = o.optimizers, record["epochs"] = o.epochs;
  record["updated"] = utc_now();
  write_json_file(out.study_json, record);

  // --- the ETA: remaining epochs × each net's mean epoch time so far ---
  std::map<std::string, std::pair<double, int64_t>> per_net;  // net → (Σ seconds, epochs)
  auto add_sample = [&](const std::string& net, double s) {
    per_net[net].first += s;
    per_net[net].second += 1;
  };
  for (size_t i = 0; i < runs.size(); ++i)
    if (done[i] > 0)
      for (const auto& row : read_metrics_csv(run_file(runs[i].dir, "metrics.csv"))) add_sample(runs[i].options.net, row.epoch_seconds);
  auto eta = [&]() {
    double all = 0;
    int64_t n = 0;
    for (const auto& [net, v] : per_net) all += v.first, n += v.second;
    if (n == 0) return (double)NAN;
    double t = 0;
    for (size_t i = 0; i < runs.size(); ++i) {
      const auto it = per_net.find(runs[i].options.net);
      const double each = it != per_net.end() ? it->second.first / (double)it->second.second : all / (double)n;
      t += (double)(o.epochs - done[i]) * each;
    }
    return t;
  };

  auto report = [&]() {
    if (hooks.on_progress) hooks.on_progress(p);
  };
  for (size_t i = 0; i < runs.size(); ++i) {
    StudyRun& r = runs[i];
    StudyRunResult res;
    p.run = (int64_t)i + 1, p.name = r.name, p.epochs = o.epochs, p.epoch = done[i], p.batch = p.batches = 0;
    p.val_auc = NAN, p.eta_seconds = eta(), p.stage = "train";
    report();
    if (done[i] < o.epochs || !exists(run_file(r.dir, "summary.json"))) {
      r.options.resume = done[i] > 0;
      TrainHooks th;
      th.quiet = true;  // the study's progress view replaces the trainer's lines
      th.on_batch = [&](int64_t epoch, int64_t b, int64_t nb) {
        p.epoch = epoch, p.batch = b, p.batches = nb;  // epoch `epoch` under way
        report();
      };
      th.on_epoch = [&](const EpochRow& row) {
        done[i] = row.epoch;
        add_sample(r.options.net, row.epoch_seconds);
        p.epoch = row.epoch, p.batch = p.batches = 0, p.val_auc = row.val_auc, p.eta_seconds = eta();
        report();
        if (hooks.on_epoch) hooks.on_epoch(r, row);
      };
      run_training(r.options, th);
      res.trained_now = true;
    }
    // Scored every time (a finished run is only re-scored): validation for the
    // choices, test for the report, the central slice for Figure 8.
    p.stage = "score", p.batch = p.batches = 0, p.eta_seconds = eta();
    report();
    EvalOptions eo;
    eo.device = o.device, eo.workers = o.workers, eo.batch = 2 * o.batch;
    for (const auto& [split, central] : {std::make_pair("val", false), std::make_pair("test", false),
                                         std::make_pair("test", true)}) {
      eo.split = split, eo.central = central;
      evaluate_run(r.dir, eo);
    }
    const nlohmann::json s = read_json_file(run_file(r.dir, "summary.json"));
    res.best_epoch = s.at("best_epoch").get<int64_t>();
    res.best_val_auc = s.at("best_val_auc").get<double>();
    res.train_seconds = s.at("train_seconds").get<double>();
    res.run = r;
    out.runs.push_back(res);
    p.stage = "done";
    report();
  }
  // The best of each family by validation AUC; the earliest on ties.
  for (const auto& family : family_order()) {
    int best = -1;
    for (size_t i = 0; i < out.runs.size(); ++i)
      if (out.runs[i].run.family == family && (best < 0 || out.runs[i].best_val_auc > out.runs[(size_t)best].best_val_auc))
        best = (int)i;
    if (best >= 0) out.best.push_back({family, (size_t)best});
  }
  return out;
}

}  // namespace ctg::train
