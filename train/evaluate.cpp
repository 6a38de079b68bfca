#include "train/evaluate.h"

#include <sys/stat.h>

#include "base/atomic_file.h"
#include "data/cache.h"
#include "data/dataset.h"
#include "engine/checkpoint.h"
#include "nets/nets.h"
#include "train/data_source.h"
#include "train/run.h"

namespace ctg::train {

LoadedRun load_run(const std::string& run, Device device, bool with_net) {
  LoadedRun r;
  r.dir = run;
  const std::string cfg = run_file(run, "config.json");
  struct stat st;
  if (::stat(run.c_str(), &st) != 0 || !S_ISDIR(st.st_mode)) throw Error("--run: " + run + ": no such run folder");
  r.config = read_json_file(cfg);
  r.options = options_from_json(r.config, cfg);
  if (!with_net) return r;
  r.net = nets::make_net(r.options.net, {r.options.size, r.options.seed, r.options.dropout_on()});
  const std::string best = run_file(run, "best.safetensors");
  if (::stat(best.c_str(), &st) != 0) throw Error(best + ": not found (has the run finished an epoch?)");
  load_module(best, *r.net);
  r.net->to(device);
  r.net->eval();
  return r;
}

EvalOutcome evaluate_run(const std::string& run, const EvalOptions& opt,
                         const std::function<void(int64_t, int64_t)>& progress) {
  const data::Split split = data::parse_split(opt.split);
  if (split == data::Split::train) throw Error("--split: expected val or test (training patients have one slice)");
  if (opt.batch < 1) throw Error("--batch: must be at least 1, got " + std::to_string(opt.batch));
  if (opt.workers < 0) throw Error("--workers: must be ≥ 0, got " + std::to_string(opt.workers));
  const Device dev = parse_device(opt.device);
  LoadedRun r = load_run(run, dev);
  const std::string cfg = run_file(run, "config.json");
  if (!r.config.contains("cache") || !r.config["cache"].is_string()) throw Error(cfg + ": missing key 'cache'");
  const std::string cache_path = r.config["cache"].get<std::string>();
  auto cache = data::Cache::open(cache_path);
  // The patients the run was trained and validated on must be the ones
  // this cache calls train and val, or test scores would be contaminated.
  if (r.config.value("split", nlohmann::json()) != split_lists(*cache))
    throw Error(cfg + ": the run's patient split differs from the one in " + cache_path + " (was the cache rebuilt?)");
  if (cache->side() != r.options.size)
    throw Error(cache_path + ": holds " + std::to_string(cache->side()) + "² slices, the run's net takes " +
                std::to_string(r.options.size) + "²");
  auto ds = data::CacheDataset::of_split(cache, split, opt.central ? data::CacheView::central : data::CacheView::ten);
  if (ds->size() == 0) throw Error(cache_path + ": no " + opt.split + " slices");
  EvalOutcome out;
  const bool split_ranks = opt.comm && opt.comm->size() > 1;
  out.patients = per_patient(split_ranks ? score_slices_split(*r.net, ds, opt.batch, dev, opt.workers, *opt.comm)
                                         : score_slices(*r.net, ds, opt.batch, dev, opt.workers, progress));
  const std::string tag = opt.split + (opt.central ? "_central" : "");
  out.scores_path = run_file(run, scores_name(opt.split, opt.central));
  const auto scored = as_scored(out.patients);
  out.summary = eval::summarize(scored);
  out.measures_path = run_file(run, "measures_" + tag + ".txt");
  if (split_ranks && !opt.comm->is_root()) return out;  // rank 0 writes the files
  write_scores_csv(out.scores_path, out.patients);
  write_file_atomic(out.measures_path, eval::format_summary(out.summary));
  out.curve_paths = eval::write_curves(scored, run, tag + "_");
  return out;
}

}  // namespace ctg::train
