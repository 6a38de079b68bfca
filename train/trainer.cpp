#include "train/trainer.h"

#include <sys/stat.h>

#include <chrono>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <sstream>

#include "data/cohort.h"
#include "data/dataset.h"
#include "data/loader.h"
#include "engine/autograd.h"
#include "engine/checkpoint.h"
#include "engine/layers.h"
#include "engine/ops.h"
#include "engine/optim.h"
#include "engine/parallel.h"
#include "nets/nets.h"
#include "train/data_source.h"
#include "train/run.h"
#include "train/scoring.h"

namespace ctg::train {

namespace {

using Clock = std::chrono::steady_clock;
double since(Clock::time_point t0) { return std::chrono::duration<double>(Clock::now() - t0).count(); }
bool exists(const std::string& p) {
  struct stat st;
  return ::stat(p.c_str(), &st) == 0;
}

void visit(Module& m, const std::function<void(Module&)>& f) {
  f(m);
  for (auto& [name, c] : m.children()) visit(*c, f);
}
void reseed_dropout(Module& net, uint64_t seed) {
  int64_t k = 0;
  visit(net, [&](Module& m) {
    if (auto* d = dynamic_cast<Dropout*>(&m)) d->reseed(data::mix_seed(seed, (uint64_t)k++, 0xD7));
  });
}

// A list of tensors with a prefix, on the host (safetensors are host files).
void add_prefixed(std::vector<NamedTensor>& out, const std::string& prefix, const NamedTensorList& l) {
  for (auto& [n, t] : l) out.push_back({prefix + n, t.to(Device::cpu)});
}
NamedTensorList strip_prefix(const std::vector<NamedTensor>& l, const std::string& prefix) {
  NamedTensorList out;
  for (auto& nt : l)
    if (nt.name.compare(0, prefix.size(), prefix) == 0) out.emplace_back(nt.name.substr(prefix.size()), nt.tensor);
  return out;
}
void save_model(const std::string& path, const Module& m, const std::map<std::string, std::string>& meta) {
  std::vector<NamedTensor> t;
  add_prefixed(t, "", m.state_dict());
  save_safetensors(path, t, meta);
}

std::string fmt(double v) {
  char b[40];
  std::snprintf(b, sizeof b, "%.9g", v);
  return b;
}

// 17 significant digits: a double survives the round trip through text
// (the resumed run compares AUCs against the stored best).
std::string exact(double v) {
  char b[40];
  std::snprintf(b, sizeof b, "%.17g", v);
  return b;
}

void write_metrics_csv(const std::string& path, const std::vector<EpochRow>& rows) {
  std::ostringstream os;
  os << "epoch,train_loss,val_loss,val_auc,lr,images_per_s,epoch_seconds,elapsed_seconds\n";
  for (const auto& r : rows)
    os << r.epoch << ',' << fmt(r.train_loss) << ',' << fmt(r.val_loss) << ',' << fmt(r.val_auc) << ','
       << fmt(r.lr) << ',' << fmt(r.images_per_s) << ',' << fmt(r.epoch_seconds) << ',' << fmt(r.elapsed_seconds)
       << '\n';
  const std::string s = os.str();
  data::write_file_atomic(path, s);
}

nlohmann::json split_lists(const data::Cache& c) {
  nlohmann::json j = {{"train", nlohmann::json::array()}, {"val", nlohmann::json::array()},
                      {"test", nlohmann::json::array()}};
  std::string last;
  for (const auto& r : c.records())
    if (r.patient != last) j[data::split_name(r.split)].push_back(r.patient), last = r.patient;
  return j;
}

}  // namespace

std::vector<EpochRow> read_metrics_csv(const std::string& path) {
  std::ifstream f(path);
  if (!f) throw Error(path + ": cannot open");
  std::string line;
  std::getline(f, line);
  if (line.rfind("epoch,train_loss,val_loss,val_auc,lr,images_per_s,epoch_seconds,elapsed_seconds", 0) != 0)
    throw Error(path + ": line 1: not a ctgrad metrics.csv header");
  std::vector<EpochRow> rows;
  for (int ln = 2; std::getline(f, line); ++ln) {
    if (line.empty()) continue;
    EpochRow r;
    long long e = 0;
    if (std::sscanf(line.c_str(), "%lld,%lf,%lf,%lf,%lf,%lf,%lf,%lf", &e, &r.train_loss, &r.val_loss, &r.val_auc,
                    &r.lr, &r.images_per_s, &r.epoch_seconds, &r.elapsed_seconds) != 8)
      throw Error(path + ": line " + std::to_string(ln) + ": expected 8 numbers");
    r.epoch = e;
    rows.push_back(r);
  }
  return rows;
}

TrainResult run_training(const TrainOptions& opt, const TrainHooks& hooks) {
  TrainOptions o = opt;
  validate(o);
  const Device dev = parse_device(o.device);
  if (o.threads > 0) set_num_threads(o.threads);
  const std::string state_path = run_file(o.out, "last.state.safetensors");
  if (o.resume && !exists(state_path))
    throw Error("--resume: " + state_path + " not found (no finished epoch to continue from)");
  if (!o.resume && exists(state_path))
    throw Error("--out: " + o.out + " already holds a run; --resume continues it, or choose another folder");
  std::filesystem::create_directories(o.out);
  auto log = [&](const char* f, auto... a) {
    if (!hooks.quiet) std::fprintf(stderr, f, a...);
  };

  DataSource src = resolve_data(o.data, o.size, o.split_seed, o.workers);
  o.size = src.cache->side();
  auto net = nets::make_net(o.net, {o.size, o.seed, o.dropout_on()});
  if (!o.init.empty() && !o.resume) {
    try {
      load_module(o.init, *net);
    } catch (const Error& e) {
      throw Error(std::string("--init: ") + e.what() + " (is it a " + o.net + " checkpoint at size " +
                  std::to_string(o.size) + "?)");
    }
  }
  net->to(dev);
  std::unique_ptr<Optimizer> optim;
  if (o.optimizer == "adam") optim = std::make_unique<Adam>(net->named_parameters(), o.lr, o.weight_decay);
  else optim = std::make_unique<SGD>(net->named_parameters(), o.lr, o.momentum, o.weight_decay);
  ExponentialLR sched(*optim, o.lr_decay);

  auto train_ds = data::CacheDataset::of_split(src.cache, data::Split::train);
  auto val_ds = data::CacheDataset::of_split(src.cache, data::Split::val);
  data::LoaderOptions lo;
  lo.batch_size = o.batch;
  lo.shuffle = true;
  lo.seed = o.seed;
  lo.num_workers = o.workers;
  lo.pin_memory = o.pin_memory;
  lo.device = dev;
  lo.augment.noise_std = o.noise;
  data::DataLoader loader(train_ds, lo);
  const int64_t eval_batch = o.eval_batch > 0 ? o.eval_batch : 2 * o.batch;

  TrainResult res;
  int64_t first_epoch = 0;
  double elapsed = 0;
  if (o.resume) {
    SafetensorsFile st = load_safetensors(state_path);
    try {
      net->load_state_dict(strip_prefix(st.tensors, "model."));
      optim->load_state_dict(strip_prefix(st.tensors, "optim."));
      first_epoch = std::stoll(st.metadata.at("epoch"));
      res.best_epoch = std::stoll(st.metadata.at("best_epoch"));
      res.best_val_auc = std::stod(st.metadata.at("best_val_auc"));
      elapsed = std::stod(st.metadata.at("elapsed_seconds"));
    } catch (const Error& e) {
      throw Error(state_path + ": " + e.what());
    } catch (const std::exception&) {
      throw Error(state_path + ": metadata epoch/best_epoch/best_val_auc/elapsed_seconds missing or malformed");
    }
    for (const auto& r : read_metrics_csv(run_file(o.out, "metrics.csv")))
      if (r.epoch <= first_epoch) res.rows.push_back(r);
    if ((int64_t)res.rows.size() != first_epoch)
      throw Error(run_file(o.out, "metrics.csv") + ": holds " + std::to_string(res.rows.size()) +
                  " rows up to epoch " + std::to_string(first_epoch) + ", the state says " +
                  std::to_string(first_epoch) + " epochs are done");
    log("resuming %s after epoch %lld (best val AUC %.4f at epoch %lld)\n", o.out.c_str(), (long long)first_epoch,
        res.best_val_auc, (long long)res.best_epoch);
  }

  nlohmann::json config = to_json(o);
  config["name"] = std::filesystem::path(o.out).lexically_normal().filename().string();
  if (config["name"] == "") config["name"] = std::filesystem::path(o.out).parent_path().filename().string();
  config["params"] = net->num_parameters();
  config["cache"] = src.cache_path;
  config["split_csv"] = src.split_csv;
  config["split"] = split_lists(*src.cache);
  config["build"] = build_info();
  config["created"] = utc_now();
  write_json_file(run_file(o.out, "config.json"), config);
  log("train: %s (%lld params) on %s, %lld train slices, %lld val slices, batch %lld, %lld epochs\n",
      o.net.c_str(), (long long)net->num_parameters(), device_name(dev), (long long)train_ds->size(),
      (long long)val_ds->size(), (long long)o.batch, (long long)o.epochs);
  log("%s\n", loader.describe().c_str());

  for (int64_t e = first_epoch; e < o.epochs; ++e) {
    const auto t0 = Clock::now();
    const double lr = optim->lr();
    reseed_dropout(*net, data::mix_seed(o.seed, (uint64_t)e, 0xD0));
    net->train();
    loader.start_epoch(e);
    data::Batch b;
    double loss_sum = 0;
    int64_t seen = 0;
    while (loader.next(b)) {
      optim->zero_grad();
      Tensor loss = ops::bce_with_logits((*net)(b.images), b.labels);
      autograd::backward(loss);
      optim->step();
      const double l = loss.item();
      if (!std::isfinite(l))
        throw Error("train: the loss became " + fmt(l) + " in epoch " + std::to_string(e + 1) +
                    " (lower --lr?)");
      loss_sum += l * (double)b.size();
      seen += b.size();
      if (hooks.on_batch) hooks.on_batch(e + 1, b.index + 1, loader.num_batches());
    }
    const double train_s = since(t0);
    const auto scores = score_slices(*net, val_ds, eval_batch, dev, o.workers);
    const auto patients = per_patient(scores);
    EpochRow r;
    r.epoch = e + 1;
    r.train_loss = loss_sum / (double)seen;
    r.val_loss = mean_bce(scores);
    r.val_auc = eval::roc_auc(as_scored(patients));
    r.lr = lr;
    r.images_per_s = (double)seen / train_s;
    r.epoch_seconds = since(t0);
    elapsed += r.epoch_seconds;
    r.elapsed_seconds = elapsed;
    sched.step();

    const bool best = res.best_epoch == 0 || r.val_auc > res.best_val_auc;
    if (best) {
      res.best_epoch = r.epoch;
      res.best_val_auc = r.val_auc;
      save_model(run_file(o.out, "best.safetensors"), *net, {{"net", o.net}, {"epoch", std::to_string(r.epoch)}});
    }
    res.rows.push_back(r);
    write_metrics_csv(run_file(o.out, "metrics.csv"), res.rows);
    write_json_file(run_file(o.out, "summary.json"), {{"best_epoch", res.best_epoch},
                                                      {"best_val_auc", res.best_val_auc},
                                                      {"epochs_done", r.epoch},
                                                      {"epochs", o.epochs},
                                                      {"train_seconds", elapsed}});
    // The commit point of the epoch: everything --resume needs, in one file.
    std::vector<NamedTensor> st;
    add_prefixed(st, "model.", net->state_dict());
    add_prefixed(st, "optim.", optim->state_dict());
    save_safetensors(state_path, st,
                     {{"net", o.net},
                      {"epoch", std::to_string(r.epoch)},
                      {"lr", exact(optim->lr())},
                      {"best_epoch", std::to_string(res.best_epoch)},
                      {"best_val_auc", exact(res.best_val_auc)},
                      {"elapsed_seconds", exact(elapsed)}});
    save_model(run_file(o.out, "last.safetensors"), *net, {{"net", o.net}, {"epoch", std::to_string(r.epoch)}});
    log("epoch %lld/%lld  loss %.4f  val_loss %.4f  val_auc %.4f  lr %.3g  %.1f img/s  %.1f s%s\n",
        (long long)r.epoch, (long long)o.epochs, r.train_loss, r.val_loss, r.val_auc, r.lr, r.images_per_s,
        r.epoch_seconds, best ? "  *best" : "");
    if (hooks.on_epoch) hooks.on_epoch(r);
  }
  res.epochs_done = o.epochs;
  res.train_seconds = elapsed;
  return res;
}

}  // namespace ctg::train
