#include "train/scoring.h"

#include <cmath>
#include <cstdio>
#include <sstream>
#include <unordered_map>

#include "base/atomic_file.h"
#include "data/cohort.h"
#include "data/loader.h"
#include "engine/autograd.h"

namespace ctg::train {

std::vector<SliceScore> score_slices(Module& net, std::shared_ptr<const data::Dataset> ds, int64_t batch,
                                     Device device, int workers,
                                     const std::function<void(int64_t, int64_t)>& progress) {
  data::LoaderOptions lo;
  lo.batch_size = batch;
  lo.num_workers = workers;
  lo.device = device;
  lo.pin_memory = device == Device::cuda;
  data::DataLoader loader(ds, lo);
  net.eval();
  autograd::NoGradGuard no_grad;
  std::vector<SliceScore> out;
  out.reserve((size_t)ds->size());
  loader.start_epoch(0);
  data::Batch b;
  while (loader.next(b)) {
    const std::vector<double> logits = net(b.images).to_vector();  // copies back from a device
    if ((int64_t)logits.size() != b.size()) throw Error("score: the net returned a wrong number of logits");
    for (int64_t i = 0; i < b.size(); ++i) {
      const auto& item = ds->item(b.items[(size_t)i]);
      const double x = logits[(size_t)i];
      out.push_back({item.patient, item.label, item.z, x, 1.0 / (1.0 + std::exp(-x))});
    }
    if (progress) progress((int64_t)out.size(), ds->size());
  }
  return out;
}

namespace {
// Items [lo, hi) of another dataset, loaded by it.
class RangeDataset : public data::Dataset {
 public:
  RangeDataset(std::shared_ptr<const data::Dataset> base, int64_t lo, int64_t hi) : base_(std::move(base)), lo_(lo) {
    items_.assign(base_->items().begin() + lo, base_->items().begin() + hi);
    side_ = base_->side();
  }
  void load(int64_t i, float* out) const override { base_->load(lo_ + i, out); }
  std::string describe() const override { return base_->describe() + " (a rank's part)"; }

 private:
  std::shared_ptr<const data::Dataset> base_;
  int64_t lo_;
};
}  // namespace

std::vector<SliceScore> score_slices_split(Module& net, std::shared_ptr<const data::Dataset> ds, int64_t batch,
                                           Device device, int workers, dist::Communicator& comm) {
  if (comm.size() == 1) return score_slices(net, ds, batch, device, workers);
  int64_t lo = 0, hi = 0;
  dist::shard_range(ds->size(), comm.rank(), comm.size(), lo, hi);
  std::vector<double> logits((size_t)ds->size(), 0.0);  // zeros elsewhere: the sum gathers exactly
  if (hi > lo)
    for (const auto& s : score_slices(net, std::make_shared<RangeDataset>(ds, lo, hi), batch, device, workers))
      logits[(size_t)lo++] = s.logit;
  comm.allreduce_sum(logits.data(), (int64_t)logits.size());
  std::vector<SliceScore> out;
  out.reserve(logits.size());
  for (int64_t i = 0; i < ds->size(); ++i) {
    const auto& item = ds->item(i);
    const double x = logits[(size_t)i];
    out.push_back({item.patient, item.label, item.z, x, 1.0 / (1.0 + std::exp(-x))});
  }
  return out;
}

double mean_bce(const std::vector<SliceScore>& s) {
  if (s.empty()) return 0;
  double sum = 0;
  for (const auto& x : s)  // max(x,0) − x·y + log(1 + e^−|x|): no overflow for any logit
    sum += std::max(x.logit, 0.0) - x.logit * x.label + std::log1p(std::exp(-std::fabs(x.logit)));
  return sum / (double)s.size();
}

std::vector<PatientScore> per_patient(const std::vector<SliceScore>& s) {
  std::vector<PatientScore> out;
  std::unordered_map<std::string, size_t> at;
  for (const auto& x : s) {
    auto [it, fresh] = at.emplace(x.patient, out.size());
    if (fresh) out.push_back({x.patient, x.label, 0, {}, {}});
    PatientScore& p = out[it->second];
    if (p.label != x.label)
      throw Error("score: patient " + x.patient + " has slices with labels " + std::to_string(p.label) + " and " +
                  std::to_string(x.label));
    p.slices.push_back(x.z);
    p.slice_scores.push_back(x.prob);
  }
  for (auto& p : out) {
    double sum = 0;
    for (double v : p.slice_scores) sum += v;
    p.score = sum / (double)p.slice_scores.size();
  }
  return out;
}

std::vector<eval::Scored> as_scored(const std::vector<PatientScore>& p) {
  std::vector<eval::Scored> out;
  out.reserve(p.size());
  for (const auto& x : p) out.push_back({x.score, x.label});
  return out;
}

void write_scores_csv(const std::string& path, const std::vector<PatientScore>& p) {
  std::ostringstream os;
  os << "patient,label,score,slices,slice_scores\n";
  char buf[64];
  for (const auto& x : p) {
    std::snprintf(buf, sizeof buf, "%.9g", x.score);
    os << data::csv_field(x.patient) << ',' << x.label << ',' << buf << ',';
    for (size_t i = 0; i < x.slices.size(); ++i) os << (i ? " " : "") << x.slices[i];
    os << ',';
    for (size_t i = 0; i < x.slice_scores.size(); ++i) {
      std::snprintf(buf, sizeof buf, "%.6g", x.slice_scores[i]);
      os << (i ? " " : "") << buf;
    }
    os << '\n';
  }
  const std::string text = os.str();
  write_file_atomic(path, text);
}

}  // namespace ctg::train
