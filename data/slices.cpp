// choose_slices: which slices of a patient the networks see (SEED_NOTES
// section 2; the report says only "at similar anatomical heights").
//
// The lung-bearing range is [first usable, last usable] (usable: a body and
// lung/body area ≥ 0.2). Training takes its central slice: the usable slice
// nearest to the range's midpoint (the lower one on a tie). Validation and
// test take `count` slices evenly spaced over the central part of the range,
// its middle 60 %: away from the apex and the diaphragm, where slices differ
// most between patients, so the ten sit at comparable heights. Each target
// height takes the nearest usable slice not yet taken; when the central part
// holds fewer than `count` usable slices, the whole range is used; when the
// whole volume holds fewer, all of them are returned (the caller reports it).
#include <algorithm>
#include <cmath>

#include "data/preprocess.h"

namespace ctg::data {

namespace {
constexpr double kCentralPart = 0.6;
}

SliceChoice choose_slices(const std::vector<PreprocessedSlice>& slices, int64_t count) {
  SliceChoice out;
  std::vector<int64_t> usable;
  for (size_t z = 0; z < slices.size(); ++z)
    if (slices[z].usable) usable.push_back((int64_t)z);
  if (usable.empty()) return out;
  const double first = (double)usable.front(), last = (double)usable.back(), mid = (first + last) / 2;

  auto nearest = [](const std::vector<int64_t>& from, double target, const std::vector<bool>& taken) {
    int64_t best = -1;
    double best_d = 0;
    for (size_t i = 0; i < from.size(); ++i) {
      if (taken[i]) continue;
      const double d = std::fabs((double)from[i] - target);
      if (best < 0 || d < best_d) best = (int64_t)i, best_d = d;  // strict: the lower wins a tie
    }
    return best;
  };
  out.central = usable[(size_t)nearest(usable, mid, std::vector<bool>(usable.size(), false))];
  if (count <= 0) return out;
  if ((int64_t)usable.size() <= count) {
    out.ten = usable;
    return out;
  }

  const double half = kCentralPart / 2 * (last - first), lo = mid - half, hi = mid + half;
  std::vector<int64_t> pool;
  for (int64_t z : usable)
    if ((double)z >= lo - 1e-9 && (double)z <= hi + 1e-9) pool.push_back(z);
  if ((int64_t)pool.size() < count) pool = usable;

  // Targets at the ends of the part and evenly between; pool has ≥ count
  // slices, so every target finds one not yet taken.
  const double plo = (double)pool.front(), phi = (double)pool.back();
  std::vector<bool> taken(pool.size(), false);
  for (int64_t i = 0; i < count; ++i) {
    const double t = count == 1 ? mid : plo + (phi - plo) * (double)i / (double)(count - 1);
    const int64_t k = nearest(pool, t, taken);
    taken[(size_t)k] = true;
    out.ten.push_back(pool[(size_t)k]);
  }
  std::sort(out.ten.begin(), out.ten.end());
  return out;
}

}  // namespace ctg::data
