// Data-parallel training (issue 17, train/distributed.h): `mpirun -np 2
// ctgrad train` against one process on the tiny cohort (tests/train_fixture.h).
// The cases that need mpirun say so and pass without checking when the build
// has no MPI or mpirun is missing.
#include <doctest/doctest.h>

#include <sstream>

#include <cmath>
#include <cstdlib>
#include <filesystem>
#include <fstream>

#include "data/loader.h"
#include "engine/safetensors.h"
#include "train/config.h"
#include "train/distributed.h"
#include "train_fixture.h"

using namespace ctg;

namespace {

// "mpirun --oversubscribe --allow-run-as-root -np N" (2 ranks on a 2-core
// machine; CI runs as root), or "" when this build or machine cannot.
std::string mpirun(int n) {
  if (!dist::built_with_mpi() || std::system("command -v mpirun > /dev/null 2>&1") != 0) return "";
  return "timeout 240 mpirun --oversubscribe --allow-run-as-root -np " + std::to_string(n) + " ";
}

// The largest |a − b| over every tensor of two checkpoints with the same keys.
double max_diff(const std::string& a, const std::string& b, double& max_abs) {
  const auto fa = load_safetensors(a), fb = load_safetensors(b);
  REQUIRE(fa.tensors.size() == fb.tensors.size());
  double worst = 0;
  max_abs = 0;
  for (size_t i = 0; i < fa.tensors.size(); ++i) {
    REQUIRE(fa.tensors[i].name == fb.tensors[i].name);
    const auto va = fa.tensors[i].tensor.to_vector(), vb = fb.tensors[i].tensor.to_vector();
    REQUIRE(va.size() == vb.size());
    for (size_t k = 0; k < va.size(); ++k) {
      worst = std::max(worst, std::fabs(va[k] - vb[k]));
      max_abs = std::max(max_abs, std::fabs(va[k]));
    }
  }
  return worst;
}

using test::run_shell;

std::string train_args(const std::string& net, const std::string& out, int batch, int epochs) {
  return "train --net " + net + " --data " + test::tiny_cache() + " --out " + out + " --batch " +
         std::to_string(batch) + " --epochs " + std::to_string(epochs) +
         " --lr 1e-3 --seed 9 --device cpu --workers 1 --threads 1";
}

}  // namespace

TEST_CASE("DataLoader shards: the ranks' parts of each batch join into one process's batch in order") {
  auto ds = data::CacheDataset::of_split(data::Cache::open(test::tiny_cache()), data::Split::train);
  data::LoaderOptions lo;
  lo.batch_size = 7;  // 18 slices: 7, 7, 4; with 3 ranks 3+2+2, 3+2+2, 2+1+1
  lo.shuffle = true;
  lo.seed = 3;
  data::DataLoader one(ds, lo);
  one.start_epoch(2);
  std::vector<std::vector<int64_t>> whole;
  data::Batch b;
  while (one.next(b)) whole.push_back(b.items);
  REQUIRE(whole.size() == 3);
  std::vector<std::vector<int64_t>> joined(whole.size());
  for (int r = 0; r < 3; ++r) {
    lo.shard_rank = r, lo.shard_count = 3;
    data::DataLoader part(ds, lo);
    part.start_epoch(2);
    size_t k = 0;
    while (part.next(b)) {
      CHECK(b.global_size == (int64_t)whole[k].size());
      int64_t a = 0, z = 0;
      dist::shard_range(b.global_size, r, 3, a, z);
      CHECK(b.size() == z - a);
      joined[k].insert(joined[k].end(), b.items.begin(), b.items.end());
      ++k;
    }
    CHECK(k == whole.size());
  }
  CHECK(joined == whole);
  lo.shard_rank = 3;
  CHECK_THROWS_WITH(data::DataLoader(ds, lo), "DataLoader: shard 3 of 3");
}

// Tolerance: the two runs differ only in the order of float sums (each
// rank's batch-mean loss weighted by its share, then the gradients summed by
// MPI, against one sum over 16 slices); after 2 epochs of Adam at lr 1e-3
// that moves no weight by more than 1e-6 (measured: 3e-8; Adam's steps are ~lr each, so a
// real mistake, such as a rank training on the wrong slices, moves many by
// ~1e-3).
// `--batch` is the global batch: 16 on 2 ranks is 8 per rank.
TEST_CASE("mpirun -np 2: Dense(20) at batch 8 per rank ends with the weights of one process at batch 16") {
  const std::string mp = mpirun(2);
  if (mp.empty()) {
    MESSAGE("skipped: no MPI in this build or no mpirun (apt-get install libopenmpi-dev openmpi-bin)");
    return;
  }
  test::TempDir t;
  const auto one = test::run_ctgrad(train_args("dense20", t / "one", 16, 2));
  REQUIRE_MESSAGE(one.rc == 0, one.out);
  const auto two = run_shell(mp + test::ctgrad_binary() + " " + train_args("dense20", t / "two", 16, 2));
  REQUIRE_MESSAGE(two.rc == 0, two.out);
  CHECK(two.out.find("distributed: 2 ranks (mpi)") != std::string::npos);
  double scale = 0;
  const double d = max_diff(t / "one/last.safetensors", t / "two/last.safetensors", scale);
  CAPTURE(d);
  MESSAGE("Dense(20): max |w(2 ranks) - w(1 process)| = " << d << " (largest |w| " << scale << ")");
  CHECK(d <= 1e-6);
  CHECK(scale > 1e-3);  // weights, not zeros
  CHECK(train::read_json_file(t / "two/config.json")["ranks"] == 2);
  // One metrics row per epoch: rank 0 alone wrote the file.
  std::ifstream m(t / "two/metrics.csv");
  int lines = 0;
  for (std::string l; std::getline(m, l);) lines++;
  CHECK(lines == 3);

  // `ctgrad eval` on 2 ranks: each scores half of the slices, rank 0 gathers
  // and writes; the scores are one process's (same weights; float sums of
  // other batch compositions at most: 1e-6).
  const std::string run = t / "two";
  const auto e1 = test::run_ctgrad("eval --run " + run + " --split val --workers 0");
  REQUIRE_MESSAGE(e1.rc == 0, e1.out);
  const std::string one_scores = test::slurp(run + "/scores_val.csv");
  const auto e2 = run_shell(mp + test::ctgrad_binary() + " eval --run " + run + " --split val --workers 0");
  REQUIRE_MESSAGE(e2.rc == 0, e2.out);
  CHECK(e2.out.find("patients:") == e2.out.rfind("patients:"));  // rank 0 alone prints
  const std::string two_scores = test::slurp(run + "/scores_val.csv");
  REQUIRE(!one_scores.empty());
  std::istringstream a(one_scores), b(two_scores);
  int rows = 0;
  auto fields = [](const std::string& line) {  // patient,label,score,slices,slice_scores
    std::vector<std::string> f;
    std::istringstream in(line);
    for (std::string x; std::getline(in, x, ',');) f.push_back(x);
    return f;
  };
  for (std::string la, lb; std::getline(a, la);) {
    REQUIRE(std::getline(b, lb));
    const auto fa = fields(la), fb = fields(lb);
    REQUIRE(fa.size() == fb.size());
    if (rows++ == 0) {
      CHECK(la == lb);  // the header
      continue;
    }
    REQUIRE(fa.size() >= 4);
    CHECK(fa[0] == fb[0]);  // patient
    CHECK(fa[1] == fb[1]);  // label
    CHECK(fa[3] == fb[3]);  // slices
    CHECK(std::fabs(std::stod(fa[2]) - std::stod(fb[2])) <= 1e-6);  // score
  }
  CHECK(rows > 2);
}

// CNN1 has a BatchNorm after each convolution: with --sync-bn the statistics
// are the whole batch's, so 2 ranks × 8 is one process × 16 again (the same
// tolerance, 1e-6; the running statistics are compared too). Without it each rank
// normalises its 8 slices alone, which is measurably another computation.
TEST_CASE("mpirun -np 2 --sync-bn: CNN1 at batch 8 per rank ends with the weights of one process at batch 16") {
  const std::string mp = mpirun(2);
  if (mp.empty()) {
    MESSAGE("skipped: no MPI in this build or no mpirun (apt-get install libopenmpi-dev openmpi-bin)");
    return;
  }
  test::TempDir t;
  const auto one = test::run_ctgrad(train_args("cnn1", t / "one", 16, 2));
  REQUIRE_MESSAGE(one.rc == 0, one.out);
  const auto sync = run_shell(mp + test::ctgrad_binary() + " " + train_args("cnn1", t / "sync", 16, 2) + " --sync-bn");
  REQUIRE_MESSAGE(sync.rc == 0, sync.out);
  const auto own = run_shell(mp + test::ctgrad_binary() + " " + train_args("cnn1", t / "own", 16, 2));
  REQUIRE_MESSAGE(own.rc == 0, own.out);
  double scale = 0;
  const double d_sync = max_diff(t / "one/last.safetensors", t / "sync/last.safetensors", scale);
  const double d_own = max_diff(t / "one/last.safetensors", t / "own/last.safetensors", scale);
  CAPTURE(d_sync);
  CAPTURE(d_own);
  MESSAGE("CNN1: max |w - w(1 process)| = " << d_sync << " with --sync-bn, " << d_own << " per-rank statistics");
  CHECK(d_sync <= 1e-6);
  CHECK(d_own > 1e-4);  // per-rank statistics: not the same arithmetic
  CHECK(train::read_json_file(t / "sync/config.json")["sync_bn"] == true);
}

// Same N, same bits: a 2-rank run stopped (SIGTERM to mpirun at some moment
// of its second or third epoch, or after it) and resumed ends with exactly
// the weights of an uninterrupted 2-rank run.
TEST_CASE("mpirun -np 2: a killed run resumed with --resume ends bit-identical to an uninterrupted one") {
  const std::string mp = mpirun(2);
  if (mp.empty()) {
    MESSAGE("skipped: no MPI in this build or no mpirun (apt-get install libopenmpi-dev openmpi-bin)");
    return;
  }
  test::TempDir t;
  const std::string exe = test::ctgrad_binary() + " ";
  const auto full = run_shell(mp + exe + train_args("cnn1", t / "full", 8, 3));
  REQUIRE_MESSAGE(full.rc == 0, full.out);
  const auto first = run_shell(mp + exe + train_args("cnn1", t / "cut", 8, 1));
  REQUIRE_MESSAGE(first.rc == 0, first.out);
  // Killed part-way (rc 124 from timeout) or finished: either way the resume below completes it.
  run_shell("timeout -s TERM 2 mpirun --oversubscribe --allow-run-as-root -np 2 " + exe + "train --out " +
            (t / "cut") + " --resume --epochs 3 --threads 1");
  const auto rest = run_shell(mp + exe + "train --out " + (t / "cut") + " --resume --epochs 3 --threads 1");
  REQUIRE_MESSAGE(rest.rc == 0, rest.out);
  double scale = 0;
  CHECK(max_diff(t / "full/last.safetensors", t / "cut/last.safetensors", scale) == 0.0);
  CHECK(max_diff(t / "full/last.state.safetensors", t / "cut/last.state.safetensors", scale) == 0.0);
}

// A rank that cannot read its data stops every rank (MPI_Abort) with one
// line naming the rank and the file, in bounded time (no rank left waiting
// in an all-reduce: `timeout` would give 124).
TEST_CASE("mpirun -np 2: a rank hitting a corrupt volume stops the whole job naming the rank and the file") {
  const std::string mp = mpirun(2);
  if (mp.empty()) {
    MESSAGE("skipped: no MPI in this build or no mpirun (apt-get install libopenmpi-dev openmpi-bin)");
    return;
  }
  test::TempDir t;
  test::make_tiny_cohort(t.str());
  for (const auto& e : std::filesystem::recursive_directory_iterator(t / "cohort"))
    if (e.path().string().find(".nii") != std::string::npos) std::filesystem::resize_file(e.path(), 200);
  const auto r = run_shell(mp + test::ctgrad_binary() + " train --net cnn1 --data " + (t / "c.bin") + " --out " +
                           (t / "run") + " --source nifti --batch 4 --epochs 1 --device cpu --threads 1");
  CAPTURE(r.out);
  CHECK(r.rc != 0);
  CHECK(r.rc != 124);  // not a hang ended by timeout
  CHECK(r.out.find("ctgrad: rank ") != std::string::npos);
  CHECK(r.out.find(" of 2: ") != std::string::npos);
  CHECK(r.out.find(t.str() + "/cohort/") != std::string::npos);
  CHECK(!std::filesystem::exists(t / "run/last.safetensors"));
}
