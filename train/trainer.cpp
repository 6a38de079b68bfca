#include "train/trainer.h"

#include <sys/stat.h>

#include <chrono>
#include <cmath>
#include <cstdio>
#include <filesystem>

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
#include <map>
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





}  // namespace


namespace {

// The resume position stored in last.state.safetensors' metadata.
struct Position {
  int64_t epoch = 0, best_epoch = 0;
  double best_val_auc = 0, elapsed = 0;
};

Position read_state(const std::string& path, Module& net, Optimizer& optim) {
  SafetensorsFile st = load_safetensors(path);
  Position p;
  try {
    net.load_state_dict(strip_prefix(st.tensors, "model."));
    optim.load_state_dict(strip_prefix(st.tensors, "optim."));
    p.epoch = std::stoll(st.metadata.at("epoch"));
    p.best_epoch = std::stoll(st.metadata.at("best_epoch"));
    p.best_val_auc = std::stod(st.metadata.at("best_val_auc"));
    p.elapsed = std::stod(st.metadata.at("elapsed_seconds"));
  } catch (const Error& e) {
    throw Error(path + ": " + e.what());
  } catch (const std::exception&) {
    throw Error(path + ": metadata epoch/best_epoch/best_val_auc/elapsed_seconds missing or malformed");
  }
  return p;
}

void check_split(const nlohmann::json& recorded, const data::Cache& cache, const std::string& config_path) {
  if (recorded != split_lists(cache))
    throw Error(config_path + ": the run's patient split differs from the one in " + cache.path() +
                " (was the cache rebuilt?); refusing to mix training and test patients");
}

}  // namespace

TrainResult run_training(const TrainOptions& opt, const TrainHooks& hooks, std::shared_ptr<dist::Communicator> comm) {
  TrainOptions o = opt;
  validate(o);
  if (!comm) comm = dist::single();
  const bool root = comm->is_root(), many = comm->size() > 1;
  const Device dev = parse_device(o.device);
  const std::string state_path = run_file(o.out, "last.state.safetensors");
  const std::string config_path = run_file(o.out, "config.json");
  if (o.resume && !exists(state_path))
    throw Error("--resume: " + state_path + " not found (no finished epoch to continue from)");
  if (!o.resume && exists(state_path))
    throw Error("--out: " + o.out + " already holds a run; --resume continues it, or choose another folder");
  auto log = [&](const char* f, auto... a) {
    if (!hooks.quiet && root) std::fprintf(stderr, f, a...);
  };

  // Every check before any work: the data (a scan, or the cache's index),
  // then the net and the --init weights at the size the data gives.
  const DataPlan plan = plan_data(o.data, o.size, o.split_seed, o.mapping(), o.per_class);
  o.size = plan.size;
  auto net = nets::make_net(o.net, {o.size, o.seed, o.dropout_on()});
  // A rank whose shard of a batch is empty runs one dummy image with loss
  // weight 0, so that it joins every collective (the sync-bn statistics, the
  // gradient sum) and adds nothing.
  bool phantom = false;
  if (o.sync_bn && many) dist::enable_sync_batchnorm(*net, comm, &phantom);
  if (!o.init.empty() && !o.resume) {
    try {
      load_module(o.init, *net);
    } catch (const Error& e) {
      throw Error(std::string("--init: ") + e.what() + " (is it a " + o.net + " checkpoint at size " +
                  std::to_string(o.size) + "?)");
    }
  }
  comm->use_device(dev);  // NCCL: this rank's GPU before anything goes to a device
  net->to(dev);
  std::unique_ptr<Optimizer> optim;
  if (o.optimizer == "adam") optim = std::make_unique<Adam>(net->named_parameters(), o.lr, o.weight_decay);
  else optim = std::make_unique<SGD>(net->named_parameters(), o.lr, o.momentum, o.weight_decay);
  ExponentialLR sched(*optim, o.lr_decay);
  TrainResult res;
  Position pos;
  nlohmann::json config;
  if (o.resume) {
    pos = read_state(state_path, *net, *optim);
    if (o.epochs < pos.epoch)
      throw Error("--epochs: " + std::to_string(o.epochs) + " but the run has already finished " +
                  std::to_string(pos.epoch) + " epochs");
    config = read_json_file(config_path);
    for (const auto& r : read_metrics_csv(run_file(o.out, "metrics.csv")))
      if (r.epoch <= pos.epoch) res.rows.push_back(r);
    if ((int64_t)res.rows.size() != pos.epoch)
      throw Error(run_file(o.out, "metrics.csv") + ": holds " + std::to_string(res.rows.size()) +
                  " rows up to epoch " + std::to_string(pos.epoch) + ", the state says " +
                  std::to_string(pos.epoch) + " epochs are done");
  }
  if (o.threads > 0) set_num_threads(o.threads);

  const DataSource src = prepare_data(plan, o.workers);
  if (o.resume) check_split(config.value("split", nlohmann::json()), *src.cache, config_path);
  if (root) std::filesystem::create_directories(o.out);
  {
    nlohmann::json c = to_json(o);
    for (const char* k : {"data", "init"})
      if (!c[k].get<std::string>().empty()) c[k] = std::filesystem::absolute(c[k].get<std::string>()).lexically_normal().string();
    c["name"] = std::filesystem::path(o.out).lexically_normal().filename().string();
    if (c["name"] == "") c["name"] = std::filesystem::path(o.out).lexically_normal().parent_path().filename().string();
    c["device_used"] = device_name(dev);
    c["params"] = net->num_parameters();
    c["cache"] = src.cache_path;
    c["split_csv"] = src.split_csv;
    c["split"] = split_lists(*src.cache);
    c["build"] = build_info();
    c["created"] = o.resume && config.contains("created") ? config["created"] : nlohmann::json(utc_now());
    if (o.resume) c["resumed"] = utc_now();
    c["ranks"] = comm->size();
    c["communicator"] = comm->backend();
    config = c;
  }
  if (root) write_json_file(config_path, config);

  std::shared_ptr<const data::Dataset> train_ds = data::CacheDataset::of_split(src.cache, data::Split::train);
  if (o.source == "nifti") {  // the same slices, decoded from their volumes on every load
    data::PreprocessOptions pre;
    pre.size = src.cache->side();
    train_ds = std::make_shared<data::NiftiDataset>(train_ds->items(), pre);
  }
  auto val_ds = data::CacheDataset::of_split(src.cache, data::Split::val);
  data::LoaderOptions lo;
  lo.batch_size = o.batch;
  lo.shuffle = true;
  lo.seed = o.seed;
  lo.num_workers = o.workers;
  lo.pin_memory = o.pin_memory;
  lo.device = dev;
  lo.augment.noise_std = o.noise;
  lo.shard_rank = comm->rank();
  lo.shard_count = comm->size();
  data::DataLoader loader(train_ds, lo);
  const int64_t eval_batch = o.eval_batch > 0 ? o.eval_batch : 2 * o.batch;
  const std::map<std::string, std::string> meta = {{"net", o.net}};
  auto with_epoch = [&](int64_t e) {
    auto m = meta;
    m["epoch"] = std::to_string(e);
    return m;
  };

  res.best_epoch = pos.best_epoch;
  res.best_val_auc = pos.best_val_auc;
  double elapsed = pos.elapsed;
  if (o.resume) {
    // The files written after the last commit may be missing or stale (a kill
    // between two writes): rewrite them from the committed state.
    if (root) save_model(run_file(o.out, "last.safetensors"), *net, with_epoch(pos.epoch));
    if (root && pos.best_epoch == pos.epoch) save_model(run_file(o.out, "best.safetensors"), *net, with_epoch(pos.epoch));
    log("resuming %s after epoch %lld of %lld (best val AUC %.4f at epoch %lld)\n", o.out.c_str(),
        (long long)pos.epoch, (long long)o.epochs, res.best_val_auc, (long long)res.best_epoch);
  }
  auto write_summary = [&](int64_t done) {
    if (root) write_json_file(run_file(o.out, "summary.json"), {{"best_epoch", res.best_epoch},
                                                      {"best_val_auc", res.best_val_auc},
                                                      {"epochs_done", done},
                                                      {"epochs", o.epochs},
                                                      {"train_seconds", elapsed}});
  };
  log("train: %s (%lld params) on %s, %lld train slices, %lld val slices, batch %lld, %lld epochs\n",
      o.net.c_str(), (long long)net->num_parameters(), device_name(dev), (long long)train_ds->size(),
      (long long)val_ds->size(), (long long)o.batch, (long long)o.epochs);
  log("%s\n", loader.describe().c_str());
  if (many)
    log("distributed: %d ranks (%s), each on its shard of every batch of %lld; BatchNorm statistics %s\n",
        comm->size(), comm->backend().c_str(), (long long)o.batch, o.sync_bn ? "synchronised (--sync-bn)" : "per rank");

  for (int64_t e = pos.epoch; e < o.epochs; ++e) {
    const auto t0 = Clock::now();
    const double lr = optim->lr();
    // Rank r ≠ 0 draws its own dropout masks (rank 0's are one process's).
    const uint64_t dseed = data::mix_seed(o.seed, (uint64_t)e, 0xD0);
    reseed_dropout(*net, comm->rank() == 0 ? dseed : data::mix_seed(dseed, (uint64_t)comm->rank(), 0xD1));
    net->train();
    loader.start_epoch(e);
    data::Batch b;
    double loss_sum = 0;
    int64_t seen = 0;
    while (loader.next(b)) {
      optim->zero_grad();
      phantom = b.size() == 0;
      const Tensor images = phantom ? Tensor::zeros({1, 1, o.size, o.size}, DType::f32, dev) : b.images;
      const Tensor labels = phantom ? Tensor::zeros({1, 1}, DType::f32, dev) : b.labels;
      Tensor loss = ops::bce_with_logits((*net)(images), labels);
      if (many) {
        // d(n_r/n · mean_r loss)/dθ summed over r = d(mean loss over the batch)/dθ.
        const double w = phantom ? 0.0 : (double)b.size() / (double)b.global_size;
        autograd::backward(loss, Tensor::full(loss.shape(), w).to(dev));
        dist::allreduce_gradients(*comm, net->named_parameters());
      } else {
        autograd::backward(loss);
      }
      optim->step();
      const double l = phantom ? 0.0 : loss.item();
      if (!std::isfinite(l))
        throw Error("train: the loss became " + fmt9(l) + " in epoch " + std::to_string(e + 1) + " (lower --lr?)");
      loss_sum += l * (double)b.size();
      seen += b.size();
      if (hooks.on_batch && root) hooks.on_batch(e + 1, b.index + 1, loader.num_batches());
    }
    if (many) {
      double sums[2] = {loss_sum, (double)seen};
      comm->allreduce_sum(sums, 2);
      loss_sum = sums[0], seen = (int64_t)sums[1];
      // Per-rank BatchNorm statistics: rank 0's everywhere (DDP's
      // broadcast_buffers), so validation and the checkpoint agree.
      dist::broadcast_buffers(*comm, net->named_buffers());
      double lo_fp = 0, hi_fp = 0;
      comm->min_max(dist::weights_fingerprint(net->named_parameters()), lo_fp, hi_fp);
      if (lo_fp != hi_fp)
        throw Error("distributed: the ranks' weights differ after epoch " + std::to_string(e + 1) +
                    " (a non-deterministic all-reduce?)");
    }
    const double train_s = since(t0);
    const auto scores = score_slices_split(*net, val_ds, eval_batch, dev, o.workers, *comm);
    EpochRow r;
    r.epoch = e + 1;
    r.train_loss = loss_sum / (double)seen;
    r.val_loss = mean_bce(scores);
    r.val_auc = eval::roc_auc(as_scored(per_patient(scores)));
    r.lr = lr;
    r.images_per_s = (double)seen / train_s;
    r.epoch_seconds = since(t0);
    elapsed += r.epoch_seconds;
    r.elapsed_seconds = elapsed;
    sched.step();
    const bool best = res.best_epoch == 0 || r.val_auc > res.best_val_auc;
    if (best) res.best_epoch = r.epoch, res.best_val_auc = r.val_auc;
    res.rows.push_back(r);

    // Order matters for a kill at any point: everything before the state is
    // redone by a resume from the previous epoch, everything after it is
    // rewritten from the state by the resume.
    if (root) save_model(run_file(o.out, "last.safetensors"), *net, with_epoch(r.epoch));
    if (root) write_metrics_csv(run_file(o.out, "metrics.csv"), res.rows);
    std::vector<NamedTensor> st;
    add_prefixed(st, "model.", net->state_dict());
    add_prefixed(st, "optim.", optim->state_dict());
    if (root) save_safetensors(state_path, st,
                     {{"net", o.net},
                      {"epoch", std::to_string(r.epoch)},
                      {"lr", exact(optim->lr())},
                      {"best_epoch", std::to_string(res.best_epoch)},
                      {"best_val_auc", exact(res.best_val_auc)},
                      {"elapsed_seconds", exact(elapsed)}});  // the commit point of the epoch
    if (best && root) save_model(run_file(o.out, "best.safetensors"), *net, with_epoch(r.epoch));
    write_summary(r.epoch);
    log("epoch %lld/%lld  loss %.4f  val_loss %.4f  val_auc %.4f  lr %.3g  %.1f img/s  %.1f s%s\n",
        (long long)r.epoch, (long long)o.epochs, r.train_loss, r.val_loss, r.val_auc, r.lr, r.images_per_s,
        r.epoch_seconds, best ? "  *best" : "");
    if (many) comm->barrier();  // the epoch's files are written before any rank goes on (or is killed)
    if (hooks.on_epoch) hooks.on_epoch(r);
  }
  if (pos.epoch == o.epochs) write_summary(o.epochs);  // a finished run resumed: nothing to train
  res.epochs_done = o.epochs;
  res.train_seconds = elapsed;
  return res;
}

}  // namespace ctg::train
