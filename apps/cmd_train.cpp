// ctgrad train: one network on a cohort (or a prep cache) into a run folder;
// per epoch a line (and a bar on a terminal), RUN/metrics.csv, best/last
// checkpoints; --resume continues a killed run. See train/trainer.h.
#include <unistd.h>

#include <cstdio>

#include "apps/commands.h"
#include "apps/progress.h"
#include "kernels/cpu_impl.h"
#include "train/evaluate.h"
#include "train/run.h"
#include "train/distributed.h"
#include "train/trainer.h"

namespace ctg::apps {

namespace {

// With --resume the run's settings come from its config.json; only what does
// not change the arithmetic may be given again (and --epochs, to extend a run).
train::TrainOptions resume_options(const train::TrainOptions& cli, CLI::App* cmd) {
  train::check_resume_state(cli.out, true);  // before config.json: a missing state is the clearer error
  const std::string cfg = train::run_file(cli.out, "config.json");
  train::TrainOptions o = train::options_from_json(train::read_json_file(cfg), cfg);
  const char* allowed[] = {"--out", "--resume", "--epochs", "--device", "--workers", "--pin-memory", "--threads",
                           "--source", "--distributed", "--cpu-kernels"};
  for (const CLI::Option* opt : cmd->get_options()) {
    if (opt->count() == 0 || opt->get_name() == "--help") continue;
    bool ok = false;
    for (const char* a : allowed) ok = ok || opt->get_name() == a;
    if (!ok)
      throw Error(opt->get_name() + ": a resumed run keeps the settings in " + cfg +
                  " (only --epochs, --device, --workers, --pin-memory, --threads, --source, --distributed and --cpu-kernels may be given)");
  }
  o.out = cli.out;
  o.resume = true;
  if (cmd->count("--epochs")) o.epochs = cli.epochs;
  if (cmd->count("--device")) o.device = cli.device;
  if (cmd->count("--workers")) o.workers = cli.workers;
  if (cmd->count("--pin-memory")) o.pin_memory = cli.pin_memory;
  if (cmd->count("--source")) o.source = cli.source;
  if (cmd->count("--threads")) o.threads = cli.threads;
  o.distributed = cli.distributed;
  return o;
}

void run_train(train::TrainOptions o, CLI::App* cmd, dist::Communicator& comm) {
  if (o.resume) o = resume_options(o, cmd);
  train::TrainHooks hooks;
  std::unique_ptr<Progress> bar;
  if (::isatty(2) == 1 && comm.is_root())  // a bar within each epoch on a terminal; the epoch lines are enough in a log
    hooks.on_batch = [&](int64_t epoch, int64_t done, int64_t total) {
      if (done == 1) bar = std::make_unique<Progress>("epoch " + std::to_string(epoch), "batches");
      (*bar)(done, total);
    };
  const train::TrainResult r = train::run_training(o, hooks, comm.shared_from_this());
  if (comm.is_root())
    std::fprintf(stderr, "scoring the validation patients with the best epoch (%lld)\n", (long long)r.best_epoch);
  train::EvalOptions eo;
  eo.split = "val";
  eo.device = o.device;
  eo.workers = o.workers;
  eo.comm = &comm;  // every rank scores its part of the slices; rank 0 writes and prints
  if (o.eval_batch > 0) eo.batch = o.eval_batch;
  const auto ev = train::evaluate_run(o.out, eo);
  if (!comm.is_root()) {
    comm.barrier();
    return;
  }
  std::printf("run: %s\nnet: %s\nepochs: %lld\nbest_epoch: %lld\nbest_val_auc: %.6f\ntrain_seconds: %.1f\n"
              "threshold_f1_val: %.6f\nbest: %s\nscores_val: %s\n",
              o.out.c_str(), o.net.c_str(), (long long)r.epochs_done, (long long)r.best_epoch, r.best_val_auc,
              r.train_seconds, ev.summary.threshold_f1, train::run_file(o.out, "best.safetensors").c_str(),
              ev.scores_path.c_str());
  comm.barrier();
}

}  // namespace

static Registrar reg([](CLI::App& app) {
  auto* cmd = app.add_subcommand(
      "train",
      "Train one of the study's networks: minibatches of the training patients' central slices (with the reference's "
      "input noise), BCE loss, Adam or SGD with weight decay and per-epoch learning-rate decay; after each epoch the "
      "validation AUC per patient (mean of 10 slice scores) picks the best epoch. Writes RUN/config.json, metrics.csv, "
      "best.safetensors, last.safetensors, last.state.safetensors (for --resume), summary.json, scores_val.csv.");
  auto o = std::make_shared<train::TrainOptions>();
  cmd->add_option("--net", o->net, "dense20|dense50|dense100|dense100x100|cnn1|cnn2|resnet18");
  cmd->add_option("--data", o->data, "cohort folder (DIR/studies/CT-g/*.nii.gz; preprocessed once into "
                                     "DIR/ctgrad_cache_<size>.bin) or a `ctgrad prep` cache");
  cmd->add_option("--out", o->out, "run folder")->required();
  cmd->add_option("--epochs", o->epochs, "epochs")->capture_default_str();
  cmd->add_option("--batch", o->batch, "batch size")->capture_default_str();
  cmd->add_option("--lr", o->lr, "initial learning rate")->capture_default_str();
  cmd->add_option("--lr-decay", o->lr_decay, "learning rate factor per epoch (ExponentialLR)")->capture_default_str();
  cmd->add_option("--weight-decay", o->weight_decay, "L2 weight decay")->capture_default_str();
  cmd->add_option("--optimizer", o->optimizer, "adam|sgd")->capture_default_str();
  cmd->add_option("--momentum", o->momentum, "SGD momentum")->capture_default_str();
  cmd->add_option("--device", o->device, "auto|cpu|cuda")->capture_default_str();
  cmd->add_option("--workers", o->workers, "loader threads (0: load on the training thread)")->capture_default_str();
  cmd->add_flag("--pin-memory", o->pin_memory, "page-locked batch buffers (with --device cuda)");
  cmd->add_option("--source", o->source,
                  "training slices from the prep cache, or from the NIfTI files decoded and preprocessed on "
                  "every load (the study's DataLoader; same weights, slower): cache|nifti")
      ->capture_default_str();
  cmd->add_option("--size", o->size, "input side (default: the cache's side; 512 for a folder)");
  cmd->add_option("--seed", o->seed, "seed of initialisation, shuffling, noise and dropout")->capture_default_str();
  cmd->add_option("--split-seed", o->split_seed, "seed of the patient split when --data is a folder")
      ->capture_default_str();
  cmd->add_option("--dropout", o->dropout, "auto|on|off: Dropout(0.5) before ResNet18's head (auto: on, as the "
                                           "reference code)")->capture_default_str();
  cmd->add_option("--init", o->init, "start from these weights (safetensors; e.g. `ctgrad import` output)");
  cmd->add_flag("--resume", o->resume, "continue the run in --out from its last finished epoch");
  cmd->add_option("--threads", o->threads, "CPU threads (0: library default)");
  cmd->add_option("--noise", o->noise, "std of the training noise on [0,1] inputs (reference: 1/255)")
      ->capture_default_str();
  cmd->add_option("--negative", o->negative, "grades of the mild class (label 0) when --data is a folder")
      ->capture_default_str();
  cmd->add_option("--positive", o->positive, "grades of the severe class (label 1) when --data is a folder")
      ->capture_default_str();
  cmd->add_option("--per-class", o->per_class,
                  "N patients of each class (stratified by grade, seeded by --split-seed; 0: all); 226 gives the "
                  "report's 272/90/90 split")
      ->capture_default_str();
  cmd->add_option("--eval-batch", o->eval_batch, "batch size for validation scoring (0: 2 × --batch)");
  cmd->add_flag("--distributed", o->distributed,
                "run as one rank of an MPI job even with one rank (implied under mpirun/srun with several ranks: "
                "`mpirun -np N ctgrad train ...`; each rank takes its shard of every batch, gradients are summed)");
  cmd->add_flag("--sync-bn", o->sync_bn,
                "in a multi-rank run, BatchNorm statistics of the whole batch across ranks (default: per rank, as DDP)");
  cmd->add_flag("--cuda-graph", o->cuda_graph,
                "--device cuda: capture one whole training step (forward, loss, backward, update) as a CUDA graph on "
                "the second batch and replay it for every full batch after (the last, partial batch of an epoch "
                "runs eagerly); the same weights as without it; not with dropout or --distributed");
  auto cpu_kernels = std::make_shared<std::string>();
  cmd->add_option("--cpu-kernels", *cpu_kernels,
                  "reference|tuned: the CPU kernels' plain reference loops or the tuned ones (kernels/cpu_impl.h; "
                  "default CTGRAD_CPU_KERNELS, else tuned); not recorded in the run");
  cmd->callback([o, cmd, cpu_kernels]() {
    kernels::set_cpu_impl(cpu_kernels->empty() ? kernels::cpu_impl()
                                               : kernels::parse_cpu_impl(*cpu_kernels, "--cpu-kernels"));
    for (const char* flag : {"--seed", "--split-seed"})
      if (cmd->count(flag) && cmd->get_option(flag)->as<std::string>().rfind('-', 0) == 0)
        throw Error(std::string(flag) + ": must be ≥ 0");
    if (!o->resume && o->net.empty()) throw Error("train: --net is required");
    if (!o->resume && o->data.empty()) throw Error("train: --data is required");
    // Every rank of an MPI job runs this; an error on any rank stops all of
    // them (MPI_Abort) with the rank named, instead of leaving them waiting.
    std::shared_ptr<dist::Communicator> comm = dist::init(o->distributed);
    if (comm->size() == 1) return run_train(*o, cmd, *comm);
    try {
      run_train(*o, cmd, *comm);
    } catch (const std::exception& e) {
      comm->abort(e.what());
    }
  });
});

}  // namespace ctg::apps
