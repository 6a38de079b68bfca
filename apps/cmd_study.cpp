// ctgrad study: the study's protocol as one command (train/study.h): every
// (net, learning rate, optimiser) trained into DIR/runs/, scored on
// validation and test, the best run of each family by validation AUC, and
// DIR/report.html (report/study_report.h). One progress view: which run of
// how many, its epoch, and the whole study's ETA.
#include <unistd.h>

#include <cmath>
#include <cstdio>

#include "apps/commands.h"
#include "engine/tensor.h"
#include "report/study_report.h"
#include "train/study.h"

namespace ctg::apps {

namespace {

struct StudyArgs {
  train::StudyOptions opt;
  std::string nets = "dense20,dense50,dense100,dense100x100,cnn1,cnn2,resnet18", lrs = "5e-3,1e-3,1e-4",
              optimizers = "adam,sgd";
  bool no_measure = false;
};

std::string eta_text(double s) {
  if (!std::isfinite(s)) return "ETA after the first epoch";
  char b[64];
  const long long t = std::llround(s);
  if (t < 60) std::snprintf(b, sizeof b, "ETA %llds", t);
  else if (t < 3600) std::snprintf(b, sizeof b, "ETA %lldm%02llds", t / 60, t % 60);
  else std::snprintf(b, sizeof b, "ETA %lldh%02lldm", t / 3600, t % 3600 / 60);
  return b;
}

void show(const train::StudyProgress& p, bool tty) {
  char line[512];
  if (p.stage == "prep") {
    // Every patient on a terminal; every ~10 % in a log.
    if (!tty && p.batch != p.batches && p.batch * 10 / p.batches == (p.batch - 1) * 10 / p.batches) return;
    std::snprintf(line, sizeof line, "study: preprocessing the cohort (once): %lld/%lld patients", (long long)p.batch,
                  (long long)p.batches);
    if (tty) std::fprintf(stderr, "\r\033[K%s%s", line, p.batch == p.batches ? "\n" : "");
    else std::fprintf(stderr, "%s\n", line);
    std::fflush(stderr);
    return;
  }
  if (p.stage == "train" && p.batch > 0) {
    if (!tty) return;  // batch-level detail only on a terminal
    std::snprintf(line, sizeof line, "study: run %lld/%lld %s  epoch %lld/%lld  batch %lld/%lld  %s",
                  (long long)p.run, (long long)p.runs, p.name.c_str(), (long long)p.epoch, (long long)p.epochs,
                  (long long)p.batch, (long long)p.batches, eta_text(p.eta_seconds).c_str());
  } else if (p.stage == "train") {
    char auc[32] = "";
    if (std::isfinite(p.val_auc)) std::snprintf(auc, sizeof auc, "  val AUC %.4f", p.val_auc);
    std::snprintf(line, sizeof line, "study: run %lld/%lld %s  epoch %lld/%lld%s  %s", (long long)p.run,
                  (long long)p.runs, p.name.c_str(), (long long)p.epoch, (long long)p.epochs, auc,
                  eta_text(p.eta_seconds).c_str());
  } else if (p.stage == "score") {
    std::snprintf(line, sizeof line, "study: run %lld/%lld %s  scoring val, test and central slices  %s",
                  (long long)p.run, (long long)p.runs, p.name.c_str(), eta_text(p.eta_seconds).c_str());
  } else {
    return;
  }
  if (tty) std::fprintf(stderr, "\r\033[K%s", line);
  else std::fprintf(stderr, "%s\n", line);
  // On a terminal, a finished epoch keeps its line; batches overwrite theirs.
  if (tty && p.stage == "train" && p.batch == 0 && p.epoch > 0) std::fputc('\n', stderr);
  std::fflush(stderr);
}

void run_study(StudyArgs a, CLI::App* cmd) {
  a.opt.nets = train::parse_net_list(a.nets);
  a.opt.lrs = train::parse_lr_list(a.lrs);
  a.opt.optimizers = train::parse_optimizer_list(a.optimizers);
  for (const char* flag : {"--seed", "--split-seed"})
    if (cmd->count(flag) && cmd->get_option(flag)->as<std::string>().rfind('-', 0) == 0)
      throw Error(std::string(flag) + ": must be ≥ 0");
  const bool tty = ::isatty(2) == 1;
  train::StudyHooks hooks;
  hooks.on_progress = [&](const train::StudyProgress& p) { show(p, tty); };
  const train::StudyOutcome out = train::run_study(a.opt, hooks);
  if (tty) std::fputc('\n', stderr);
  std::fprintf(stderr, "study: writing the report (Table 1 at %lld² included)\n", (long long)a.opt.size);
  const std::string report = report::build_study_report(out, !a.no_measure);
  std::printf("study: %s\nruns: %zu\n", a.opt.out.c_str(), out.runs.size());
  for (const auto& r : out.runs) {
    std::printf("run: %s  family %s  best_epoch %lld  best_val_auc %.6f  train_seconds %.1f%s\n", r.run.dir.c_str(),
                r.run.family.c_str(), (long long)r.best_epoch, r.best_val_auc, r.train_seconds,
                r.trained_now ? "" : "  (already trained; re-scored)");
  }
  for (const auto& [family, i] : out.best)
    std::printf("best %s: %s (val AUC %.6f)\n", family.c_str(), out.runs[i].run.name.c_str(), out.runs[i].best_val_auc);
  std::printf("report: %s\n", report.c_str());
}

}  // namespace

static Registrar reg([](CLI::App& app) {
  auto* cmd = app.add_subcommand(
      "study",
      "The study's protocol: trains every (net, learning rate, optimiser) as a run folder DIR/runs/<net>_<opt>_lr<lr>, "
      "scores each on the validation and test patients, picks the best run of each family (Dense, CNN, ResNet18, "
      "ResNet18* with --init-resnet18) by validation AUC and writes DIR/report.html (Slika 3-5 per family, Table 1, "
      "Figures 6-8 for the best runs). Resumable: run it again after a kill (finished runs are only re-scored, a "
      "killed run resumes), or with more learning rates (only the new runs are trained).");
  auto a = std::make_shared<StudyArgs>();
  auto& o = a->opt;
  cmd->add_option("--data", o.data, "cohort folder (DIR/studies/CT-g/*.nii.gz) or a `ctgrad prep` cache")->required();
  cmd->add_option("--out", o.out, "study folder (runs/, study.json, report.html)")->required();
  cmd->add_option("--nets", a->nets, "comma list of nets")->capture_default_str();
  cmd->add_option("--init-resnet18", o.init_resnet18,
                  "ImageNet weights for ResNet18* (safetensors from `ctgrad import --net resnet18`); adds that family");
  cmd->add_option("--lrs", a->lrs, "comma list of initial learning rates")->capture_default_str();
  cmd->add_option("--optimizers", a->optimizers, "comma list: adam, sgd (momentum 0.9)")->capture_default_str();
  cmd->add_option("--epochs", o.epochs, "epochs per run")->capture_default_str();
  cmd->add_option("--batch", o.batch, "batch size")->capture_default_str();
  cmd->add_option("--size", o.size, "input side")->capture_default_str();
  cmd->add_option("--lr-decay", o.lr_decay, "learning rate factor per epoch")->capture_default_str();
  cmd->add_option("--weight-decay", o.weight_decay, "L2 weight decay")->capture_default_str();
  cmd->add_option("--device", o.device, "auto|cpu|cuda")->capture_default_str();
  cmd->add_option("--workers", o.workers, "loader threads")->capture_default_str();
  cmd->add_option("--threads", o.threads, "CPU threads (0: library default)");
  cmd->add_option("--seed", o.seed, "seed of initialisation, shuffling, noise and dropout")->capture_default_str();
  cmd->add_option("--split-seed", o.split_seed, "seed of the patient split and of --per-class")->capture_default_str();
  cmd->add_option("--negative", o.negative, "grades of the mild class (label 0)")->capture_default_str();
  cmd->add_option("--positive", o.positive, "grades of the severe class (label 1)")->capture_default_str();
  cmd->add_option("--per-class", o.per_class,
                  "N patients of each class, stratified by grade (0: all); 226 gives the report's 272/90/90")
      ->capture_default_str();
  cmd->add_option("--own-scan", o.own_scan,
                  "a chest CT (NIfTI) for the report's own-scan check: each family's best run scores it against its "
                  "validation threshold");
  cmd->add_flag("--no-measure", a->no_measure, "Table 1 without the measured saved-for-backward bytes");
  cmd->callback([a, cmd]() { run_study(*a, cmd); });
});

}  // namespace ctg::apps
