// run_training, phase by phase. Training (below) holds one run's state; its
// methods are the phases in the order run() calls them:
//   check_resume_state   the run folder against --resume (also used by `ctgrad train`)
//   build_model          net, --sync-bn, --init, device, optimiser
//   read_resume_position resume: the committed state, config.json, metrics.csv
//   write_config         RUN/config.json
//   make_loaders         the training loader and the validation slices
//   restore_after_commit resume: the files a kill may have left stale
//   train_epoch          one pass over the training batches (the optimiser steps)
//   reduce_epoch         data-parallel: the ranks' sums, BatchNorm buffers, a weight check
//   validate_epoch       validation AUC and the metrics.csv row
//   commit_epoch         the epoch's files, in the order that makes a kill safe
#include "train/trainer.h"

#include <sys/stat.h>

#include <chrono>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <map>

#include "data/cohort.h"
#include "engine/autograd.h"
#include "engine/checkpoint.h"
#include "engine/layers.h"
#include "engine/ops.h"
#include "engine/optim.h"
#include "engine/parallel.h"
#include "nets/nets.h"
#include "train/data_source.h"
#include "train/graph_step.h"
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
// Dropout layer k of the net draws from mix_seed(seed, k): the masks of an
// epoch depend on (seed, epoch, rank) only, so a resumed run redraws them.
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

// What one epoch's training pass adds up (over every rank once reduced).
struct EpochSums {
  double loss_sum = 0;  // Σ per-image loss
  int64_t seen = 0;     // images
};

class Training {
 public:
  Training(const TrainOptions& opt, const TrainHooks& hooks, std::shared_ptr<dist::Communicator> comm)
      : o_(opt), hooks_(hooks), comm_(comm ? std::move(comm) : dist::single()) {
    validate(o_);
    root_ = comm_->is_root(), many_ = comm_->size() > 1;
    dev_ = parse_device(o_.device);
    state_path_ = run_file(o_.out, "last.state.safetensors");
    config_path_ = run_file(o_.out, "config.json");
  }

  TrainResult run() {
    check_resume_state(o_.out, o_.resume);
    // Every check before any work: the data (a scan, or the cache's index),
    // then the net and the --init weights at the size the data gives.
    const DataPlan plan = plan_data(o_.data, o_.size, o_.split_seed, o_.mapping(), o_.per_class);
    o_.size = plan.size;
    build_model();
    if (o_.resume) read_resume_position();
    if (o_.threads > 0) set_num_threads(o_.threads);

    const DataSource src = prepare_data(plan, o_.workers);
    if (o_.resume) check_split(config_.value("split", nlohmann::json()), *src.cache, config_path_);
    write_config(src);
    make_loaders(src);
    res_.best_epoch = pos_.best_epoch;
    res_.best_val_auc = pos_.best_val_auc;
    elapsed_ = pos_.elapsed;
    if (o_.resume) restore_after_commit();
    log_start();

    for (int64_t e = pos_.epoch; e < o_.epochs; ++e) {
      const auto t0 = Clock::now();
      const double lr = optim_->lr();
      EpochSums sums = train_epoch(e);
      if (many_) reduce_epoch(e, sums);
      const double train_s = since(t0);
      EpochRow r = validate_epoch(e, sums, lr, train_s);
      r.epoch_seconds = since(t0);
      elapsed_ += r.epoch_seconds;
      r.elapsed_seconds = elapsed_;
      sched_->step();
      const bool best = res_.best_epoch == 0 || r.val_auc > res_.best_val_auc;
      if (best) res_.best_epoch = r.epoch, res_.best_val_auc = r.val_auc;
      res_.rows.push_back(r);
      commit_epoch(r, best);
      log("epoch %lld/%lld  loss %.4f  val_loss %.4f  val_auc %.4f  lr %.3g  %.1f img/s  %.1f s%s\n",
          (long long)r.epoch, (long long)o_.epochs, r.train_loss, r.val_loss, r.val_auc, r.lr, r.images_per_s,
          r.epoch_seconds, best ? "  *best" : "");
      if (many_) comm_->barrier();  // the epoch's files are written before any rank goes on (or is killed)
      if (hooks_.on_epoch) hooks_.on_epoch(r);
    }
    if (pos_.epoch == o_.epochs) write_summary(o_.epochs);  // a finished run resumed: nothing to train
    res_.epochs_done = o_.epochs;
    res_.train_seconds = elapsed_;
    return res_;
  }

 private:
  template <typename... A>
  void log(const char* f, A... a) const {
    if (!hooks_.quiet && root_) std::fprintf(stderr, f, a...);
  }
  std::map<std::string, std::string> meta_at(int64_t epoch) const {
    return {{"net", o_.net}, {"epoch", std::to_string(epoch)}};
  }

  void build_model() {
    net_ = nets::make_net(o_.net, {o_.size, o_.seed, o_.dropout_on()});
    // A rank whose shard of a batch is empty runs one dummy image with loss
    // weight 0, so that it joins every collective (the sync-bn statistics, the
    // gradient sum) and adds nothing.
    if (o_.sync_bn && many_) dist::enable_sync_batchnorm(*net_, comm_, &phantom_);
    if (!o_.init.empty() && !o_.resume) {
      try {
        load_module(o_.init, *net_);
      } catch (const Error& e) {
        throw Error(std::string("--init: ") + e.what() + " (is it a " + o_.net + " checkpoint at size " +
                    std::to_string(o_.size) + "?)");
      }
    }
    comm_->use_device(dev_);  // NCCL: this rank's GPU before anything goes to a device
    net_->to(dev_);
    if (o_.optimizer == "adam") optim_ = std::make_unique<Adam>(net_->named_parameters(), o_.lr, o_.weight_decay);
    else optim_ = std::make_unique<SGD>(net_->named_parameters(), o_.lr, o_.momentum, o_.weight_decay);
    sched_ = std::make_unique<ExponentialLR>(*optim_, o_.lr_decay);
    if (many_) reducer_ = std::make_unique<dist::GradientReducer>(*comm_, net_->named_parameters());
    if (o_.cuda_graph) {
      if (many_) throw Error("--cuda-graph: not in a multi-rank run (the gradient all-reduce is outside any graph)");
      graph_ = std::make_unique<GraphStep>(*net_, *optim_);
    }
  }

  void read_resume_position() {
    pos_ = read_state(state_path_, *net_, *optim_);
    if (o_.epochs < pos_.epoch)
      throw Error("--epochs: " + std::to_string(o_.epochs) + " but the run has already finished " +
                  std::to_string(pos_.epoch) + " epochs");
    config_ = read_json_file(config_path_);
    for (const auto& r : read_metrics_csv(run_file(o_.out, "metrics.csv")))
      if (r.epoch <= pos_.epoch) res_.rows.push_back(r);
    if ((int64_t)res_.rows.size() != pos_.epoch)
      throw Error(run_file(o_.out, "metrics.csv") + ": holds " + std::to_string(res_.rows.size()) +
                  " rows up to epoch " + std::to_string(pos_.epoch) + ", the state says " +
                  std::to_string(pos_.epoch) + " epochs are done");
  }

  void write_config(const DataSource& src) {
    if (root_) std::filesystem::create_directories(o_.out);
    nlohmann::json c = to_json(o_);
    for (const char* k : {"data", "init"})
      if (!c[k].get<std::string>().empty()) c[k] = std::filesystem::absolute(c[k].get<std::string>()).lexically_normal().string();
    c["name"] = std::filesystem::path(o_.out).lexically_normal().filename().string();
    if (c["name"] == "") c["name"] = std::filesystem::path(o_.out).lexically_normal().parent_path().filename().string();
    c["device_used"] = device_name(dev_);
    c["params"] = net_->num_parameters();
    c["cache"] = src.cache_path;
    c["split_csv"] = src.split_csv;
    c["split"] = split_lists(*src.cache);
    c["build"] = build_info();
    c["created"] = o_.resume && config_.contains("created") ? config_["created"] : nlohmann::json(utc_now());
    if (o_.resume) c["resumed"] = utc_now();
    c["ranks"] = comm_->size();
    c["communicator"] = comm_->backend();
    config_ = c;
    if (root_) write_json_file(config_path_, config_);
  }

  void make_loaders(const DataSource& src) {
    train_ds_ = training_dataset(src.cache, o_.source);
    val_ds_ = data::CacheDataset::of_split(src.cache, data::Split::val);
    data::LoaderOptions lo = training_loader_options(o_.batch, o_.seed, o_.workers, o_.pin_memory, dev_, o_.noise);
    lo.shard_rank = comm_->rank();
    lo.shard_count = comm_->size();
    loader_ = std::make_unique<data::DataLoader>(train_ds_, lo);
    eval_batch_ = o_.eval_batch > 0 ? o_.eval_batch : 2 * o_.batch;
  }

  // The files written after the last commit may be missing or stale (a kill
  // between two writes): rewrite them from the committed state.
  void restore_after_commit() {
    if (root_) save_model(run_file(o_.out, "last.safetensors"), *net_, meta_at(pos_.epoch));
    if (root_ && pos_.best_epoch == pos_.epoch) save_model(run_file(o_.out, "best.safetensors"), *net_, meta_at(pos_.epoch));
    log("resuming %s after epoch %lld of %lld (best val AUC %.4f at epoch %lld)\n", o_.out.c_str(),
        (long long)pos_.epoch, (long long)o_.epochs, res_.best_val_auc, (long long)res_.best_epoch);
  }

  void log_start() const {
    log("train: %s (%lld params) on %s, %lld train slices, %lld val slices, batch %lld, %lld epochs\n",
        o_.net.c_str(), (long long)net_->num_parameters(), device_name(dev_), (long long)train_ds_->size(),
        (long long)val_ds_->size(), (long long)o_.batch, (long long)o_.epochs);
    log("%s\n", loader_->describe().c_str());
    if (graph_)
      log("cuda graph: each full batch's step replayed from one graph (captured on the second batch; partial "
          "batches eager)\n");
    if (many_)
      log("distributed: %d ranks (%s), each on its shard of every batch of %lld; BatchNorm statistics %s\n",
          comm_->size(), comm_->backend().c_str(), (long long)o_.batch,
          o_.sync_bn ? "synchronised (--sync-bn)" : "per rank");
  }

  EpochSums train_epoch(int64_t e) {
    // Rank r ≠ 0 draws its own dropout masks (rank 0's are one process's).
    const uint64_t dseed = data::mix_seed(o_.seed, (uint64_t)e, 0xD0);
    reseed_dropout(*net_, comm_->rank() == 0 ? dseed : data::mix_seed(dseed, (uint64_t)comm_->rank(), 0xD1));
    net_->train();
    loader_->start_epoch(e);
    data::Batch b;
    EpochSums s;
    // The batch losses stay on the device and are read every kFlush batches
    // (and at the end), in batch order: reading one back is a host
    // synchronisation, which would stall the GPU's queue after every step.
    constexpr size_t kFlush = 32;
    std::vector<std::pair<Tensor, int64_t>> losses;  // (loss, batch size); phantom batches add nothing
    auto flush = [&] {
      for (const auto& [loss, n] : losses) {
        const double l = loss.item();
        if (!std::isfinite(l))
          throw Error("train: the loss became " + fmt9(l) + " in epoch " + std::to_string(e + 1) + " (lower --lr?)");
        s.loss_sum += l * (double)n;
      }
      losses.clear();
    };
    while (loader_->next(b)) {
      optim_->zero_grad();
      phantom_ = b.size() == 0;
      const Tensor images = phantom_ ? Tensor::zeros({1, 1, o_.size, o_.size}, DType::f32, dev_) : b.images;
      const Tensor labels = phantom_ ? Tensor::zeros({1, 1}, DType::f32, dev_) : b.labels;
      Tensor loss;
      if (graph_) {
        loss = graph_->step(images, labels);  // forward, backward and the update (graph_step.h)
      } else {
        loss = ops::bce_with_logits((*net_)(images), labels);
        backward_and_step(loss, b);
      }
      if (!phantom_) losses.emplace_back(loss.detach(), b.size());
      if (losses.size() >= kFlush) flush();
      s.seen += b.size();
      if (hooks_.on_batch && root_) hooks_.on_batch(e + 1, b.index + 1, loader_->num_batches());
    }
    flush();
    return s;
  }

  // The eager step after the forward (without --cuda-graph).
  void backward_and_step(const Tensor& loss, const data::Batch& b) {
    if (many_) {
      // d(n_r/n · mean_r loss)/dθ summed over r = d(mean loss over the batch)/dθ.
      const double w = phantom_ ? 0.0 : (double)b.size() / (double)b.global_size;
      // The gradients' sum over the ranks runs bucket by bucket during backward.
      Tensor seed = Tensor::empty(loss.shape(), DType::f32, dev_);
      seed.fill_(w);  // on the device: no host copy inside the step
      reducer_->backward(loss, seed);
    } else {
      autograd::backward(loss);
    }
    optim_->step();
  }

  void reduce_epoch(int64_t e, EpochSums& s) {
    double sums[2] = {s.loss_sum, (double)s.seen};
    comm_->allreduce_sum(sums, 2);
    s.loss_sum = sums[0], s.seen = (int64_t)sums[1];
    // Per-rank BatchNorm statistics: rank 0's everywhere (DDP's
    // broadcast_buffers), so validation and the checkpoint agree.
    dist::broadcast_buffers(*comm_, net_->named_buffers());
    double lo_fp = 0, hi_fp = 0;
    comm_->min_max(dist::weights_fingerprint(net_->named_parameters()), lo_fp, hi_fp);
    if (lo_fp != hi_fp)
      throw Error("distributed: the ranks' weights differ after epoch " + std::to_string(e + 1) +
                  " (a non-deterministic all-reduce?)");
  }

  // Validation AUC per patient: the mean of each patient's ten slice scores.
  EpochRow validate_epoch(int64_t e, const EpochSums& s, double lr, double train_s) {
    const auto scores = score_slices_split(*net_, val_ds_, eval_batch_, dev_, o_.workers, *comm_);
    EpochRow r;
    r.epoch = e + 1;
    r.train_loss = s.loss_sum / (double)s.seen;
    r.val_loss = mean_bce(scores);
    r.val_auc = eval::roc_auc(as_scored(per_patient(scores)));
    r.lr = lr;
    r.images_per_s = (double)s.seen / train_s;
    return r;
  }

  // Order matters for a kill at any point: everything before the state is
  // redone by a resume from the previous epoch, everything after it is
  // rewritten from the state by the resume (restore_after_commit).
  void commit_epoch(const EpochRow& r, bool best) {
    if (root_) save_model(run_file(o_.out, "last.safetensors"), *net_, meta_at(r.epoch));
    if (root_) write_metrics_csv(run_file(o_.out, "metrics.csv"), res_.rows);
    std::vector<NamedTensor> st;
    add_prefixed(st, "model.", net_->state_dict());
    add_prefixed(st, "optim.", optim_->state_dict());
    if (root_) save_safetensors(state_path_, st,
                                {{"net", o_.net},
                                 {"epoch", std::to_string(r.epoch)},
                                 {"lr", exact(optim_->lr())},
                                 {"best_epoch", std::to_string(res_.best_epoch)},
                                 {"best_val_auc", exact(res_.best_val_auc)},
                                 {"elapsed_seconds", exact(elapsed_)}});  // the commit point of the epoch
    if (best && root_) save_model(run_file(o_.out, "best.safetensors"), *net_, meta_at(r.epoch));
    write_summary(r.epoch);
  }

  void write_summary(int64_t done) const {
    if (root_) write_json_file(run_file(o_.out, "summary.json"), {{"best_epoch", res_.best_epoch},
                                                                   {"best_val_auc", res_.best_val_auc},
                                                                   {"epochs_done", done},
                                                                   {"epochs", o_.epochs},
                                                                   {"train_seconds", elapsed_}});
  }

  TrainOptions o_;
  const TrainHooks& hooks_;
  std::shared_ptr<dist::Communicator> comm_;
  bool root_ = true, many_ = false;
  Device dev_ = Device::cpu;
  std::string state_path_, config_path_;
  std::shared_ptr<Module> net_;
  bool phantom_ = false;  // this rank's shard of the current batch is empty (read by sync-bn)
  std::unique_ptr<Optimizer> optim_;
  std::unique_ptr<ExponentialLR> sched_;
  std::unique_ptr<dist::GradientReducer> reducer_;  // many_ only
  std::unique_ptr<GraphStep> graph_;                // --cuda-graph only
  Position pos_;
  nlohmann::json config_;
  std::shared_ptr<const data::Dataset> train_ds_, val_ds_;
  std::unique_ptr<data::DataLoader> loader_;
  int64_t eval_batch_ = 0;
  TrainResult res_;
  double elapsed_ = 0;
};

}  // namespace

void check_resume_state(const std::string& out, bool resume) {
  const std::string state_path = run_file(out, "last.state.safetensors");
  if (resume && !exists(state_path))
    throw Error("--resume: " + state_path + " not found (no finished epoch to continue from)");
  if (!resume && exists(state_path))
    throw Error("--out: " + out + " already holds a run; --resume continues it, or choose another folder");
}

std::shared_ptr<const data::Dataset> training_dataset(const std::shared_ptr<const data::Cache>& cache,
                                                      const std::string& source) {
  auto cached = data::CacheDataset::of_split(cache, data::Split::train);
  if (source != "nifti") return cached;
  data::PreprocessOptions pre;
  pre.size = cache->side();
  return std::make_shared<data::NiftiDataset>(cached->items(), pre);
}

data::LoaderOptions training_loader_options(int64_t batch, uint64_t seed, int workers, bool pin_memory,
                                            Device device, double noise_std) {
  data::LoaderOptions lo;
  lo.batch_size = batch;
  lo.shuffle = true;
  lo.seed = seed;
  lo.num_workers = workers;
  lo.pin_memory = pin_memory;
  lo.device = device;
  lo.augment.noise_std = noise_std;
  return lo;
}

TrainResult run_training(const TrainOptions& o, const TrainHooks& hooks, std::shared_ptr<dist::Communicator> comm) {
  return Training(o, hooks, std::move(comm)).run();
}

}  // namespace ctg::train
