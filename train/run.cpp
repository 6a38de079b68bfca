#include "train/run.h"

#include <cstdio>
#include <fstream>
#include <sstream>

#include "base/atomic_file.h"
#include "engine/tensor.h"

namespace ctg::train {

std::string fmt9(double v) {
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
    os << r.epoch << ',' << fmt9(r.train_loss) << ',' << fmt9(r.val_loss) << ',' << fmt9(r.val_auc) << ','
       << fmt9(r.lr) << ',' << fmt9(r.images_per_s) << ',' << fmt9(r.epoch_seconds) << ',' << fmt9(r.elapsed_seconds)
       << '\n';
  const std::string s = os.str();
  write_file_atomic(path, s);
}

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

}  // namespace ctg::train
