// Scoring: a network over a dataset of slices in eval mode, and the study's
// per-patient score — the mean of the sigmoid outputs of a patient's slices
// (ten for val/test, SEED_NOTES section 2).
#pragma once
#include <cstdint>
#include <string>
#include <vector>

#include "data/dataset.h"
#include "engine/module.h"
#include "metrics/metrics.h"
#include "metrics/patient_score.h"
#include "train/distributed.h"

namespace ctg::train {

struct SliceScore {
  std::string patient;
  int label = 0;
  int64_t z = 0;
  double logit = 0, prob = 0;
};

// Runs `net` (put in eval mode, no graph recorded) over every item of `ds`
// in order, `batch` slices at a time, on `device` with `workers` loader
// threads. `progress(done, total)` is called after each batch.
std::vector<SliceScore> score_slices(Module& net, std::shared_ptr<const data::Dataset> ds, int64_t batch,
                                     Device device, int workers,
                                     const std::function<void(int64_t, int64_t)>& progress = {});

// The same scores in a data-parallel run (train/distributed.h): rank r scores
// the r-th contiguous part of `ds` (dist::shard_range) and the logits are
// gathered, so every rank returns every slice's score, in item order.
std::vector<SliceScore> score_slices_split(Module& net, std::shared_ptr<const data::Dataset> ds, int64_t batch,
                                           Device device, int workers, dist::Communicator& comm);

// Mean BCE-with-logits over the slices (the validation loss).
double mean_bce(const std::vector<SliceScore>& s);

// A patient's score and its slices' (metrics/patient_score.h).
using eval::PatientScore;
// Groups the slices by patient, patients in first-seen order, slices in
// their order; a patient whose slices disagree on the label is an error.
std::vector<PatientScore> per_patient(const std::vector<SliceScore>& s);
std::vector<eval::Scored> as_scored(const std::vector<PatientScore>& p);

// RUN/scores_<split>.csv: patient,label,score,slices,slice_scores (atomic).
void write_scores_csv(const std::string& path, const std::vector<PatientScore>& p);

}  // namespace ctg::train
