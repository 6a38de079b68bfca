// The slice cache: writer/reader round trip (float32 and uint8), atomic
// writing, rejection of damaged files, and `prep` end to end on a small
// synthetic cohort (skips, bad files, the split it writes).
#include <doctest/doctest.h>
#include <unistd.h>

#include <cmath>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <functional>
#include <map>
#include <set>

#include "data/cache.h"
#include "data/prep.h"
#include "data/synth.h"
#include "engine/tensor.h"
#include "tests/test_util.h"

using namespace ctg;
using namespace ctg::data;
namespace fs = std::filesystem;

namespace {

using ctg::test::TempDir;

using ctg::test::error_of;

// Record r's pixels: distinct per record and pixel, in [0, 1].
float pattern(int64_t r, int64_t i) { return (float)((r * 131 + i * 7) % 1000) / 999.0f; }

std::vector<CacheRecord> sample_records() {
  std::vector<CacheRecord> rs;
  rs.push_back({"study_0001", "/d/CT-0/study_0001.nii.gz", Split::train, 0, 0, 17, false, true});
  for (int k = 0; k < 10; ++k) rs.push_back({"study_0002", "/d/CT-3/study_0002.nii.gz", Split::val, 1, 3, 5 + k, true, k == 4});
  for (int k = 0; k < 10; ++k) rs.push_back({"study_0003", "/d/CT-1/study_0003.nii", Split::test, 0, 1, 3 + 2 * k, true, false});
  rs.push_back({"study_0003", "/d/CT-1/study_0003.nii", Split::test, 0, 1, 12, false, true});
  return rs;
}

std::string write_sample(const TempDir& t, SliceDType dt, int64_t side = 16) {
  const std::string path = t / ("c_" + std::string(slice_dtype_name(dt)) + ".cache");
  CacheWriter w(path, side, dt);
  const auto rs = sample_records();
  std::vector<float> px((size_t)(side * side));
  for (size_t r = 0; r < rs.size(); ++r) {
    for (int64_t i = 0; i < side * side; ++i) px[(size_t)i] = pattern((int64_t)r, i);
    w.add(rs[r], px.data());
  }
  w.commit();
  return path;
}

std::vector<uint8_t> slurp(const std::string& p) {
  std::ifstream f(p, std::ios::binary);
  return std::vector<uint8_t>(std::istreambuf_iterator<char>(f), {});
}
void save(const std::string& p, const std::vector<uint8_t>& b) {
  std::ofstream(p, std::ios::binary | std::ios::trunc).write((const char*)b.data(), (std::streamsize)b.size());
}

}  // namespace

TEST_CASE("cache: float32 and uint8 round trips, index fields, views") {
  TempDir t;
  for (SliceDType dt : {SliceDType::f32, SliceDType::u8}) {
    const std::string path = write_sample(t, dt);
    auto c = Cache::open(path);
    const auto rs = sample_records();
    REQUIRE(c->size() == (int64_t)rs.size());
    CHECK(c->side() == 16);
    CHECK(c->dtype() == dt);
    CHECK(c->header().patients == 3);
    CHECK(c->header().split_records[0] == 1);
    CHECK(c->header().split_records[1] == 10);
    CHECK(c->header().split_records[2] == 11);
    CHECK(c->header().file_bytes == fs::file_size(path));
    std::vector<float> px(256);
    for (int64_t r = 0; r < c->size(); ++r) {
      const CacheRecord& a = c->record(r);
      const CacheRecord& b = rs[(size_t)r];
      CHECK(a.patient == b.patient);
      CHECK(a.source == b.source);
      CHECK(a.split == b.split);
      CHECK(a.label == b.label);
      CHECK(a.grade == b.grade);
      CHECK(a.z == b.z);
      CHECK(a.in_ten == b.in_ten);
      CHECK(a.central == b.central);
      c->read_slice(r, px.data());
      double worst = 0;
      for (int64_t i = 0; i < 256; ++i) worst = std::max(worst, (double)std::fabs(px[(size_t)i] - pattern(r, i)));
      CHECK(worst <= (dt == SliceDType::f32 ? 0.0 : 0.5 / 255 + 1e-6));
    }
    // Slices start page-aligned in the file (so in the mapping).
    CHECK((uintptr_t)c->slice_data(0) % 4096 == 0);
    CHECK(select_records(*c, Split::train, CacheView::ten) == std::vector<int64_t>{0});
    CHECK(select_records(*c, Split::val, CacheView::ten).size() == 10);
    CHECK(select_records(*c, Split::val, CacheView::central) == std::vector<int64_t>{5});
    CHECK(select_records(*c, Split::test, CacheView::ten).size() == 10);
    CHECK(select_records(*c, Split::test, CacheView::central) == std::vector<int64_t>{21});
    CHECK(select_records(*c, Split::test, CacheView::all).size() == 11);
  }
  // u8 is a quarter of f32's slice bytes.
  CHECK(fs::file_size(t / "c_u8.cache") < fs::file_size(t / "c_f32.cache"));
}

TEST_CASE("cache: atomic writes leave no temporary - an abandoned writer leaves nothing") {
  TempDir t;
  write_sample(t, SliceDType::f32);
  CHECK(t.entries() == 1);
  {
    CacheWriter w(t / "abandoned.cache", 16);
    std::vector<float> px(256, 0.5f);
    w.add(sample_records()[0], px.data());
    CHECK(t.entries() == 2);  // the temporary, while writing
  }
  CHECK(t.entries() == 1);
  CHECK(!fs::exists(t / "abandoned.cache"));
  CHECK(error_of([&] { CacheWriter(t / "empty.cache", 16).commit(); }).find("no slices to write") != std::string::npos);
  CHECK(t.entries() == 1);
}

TEST_CASE("cache: truncated, corrupt and foreign files are rejected naming the file and field") {
  TempDir t;
  const std::string good = write_sample(t, SliceDType::f32);
  const auto bytes = slurp(good);
  const std::string bad = t / "bad.cache";
  auto expect = [&](std::vector<uint8_t> b, const std::string& want) {
    save(bad, b);
    const std::string e = error_of([&] { Cache::open(bad); });
    CHECK_MESSAGE(e.find(bad + ": " + want) != std::string::npos, e);
  };
  expect(std::vector<uint8_t>(bytes.begin(), bytes.begin() + 100), "header: file is 100 bytes");
  expect(std::vector<uint8_t>(bytes.begin(), bytes.end() - 7), "file_bytes: header says");
  expect(std::vector<uint8_t>(bytes.begin(), bytes.begin() + 5000), "file_bytes");
  auto b = bytes;
  b[0] = 'X';
  expect(b, "magic: not a ctgrad cache");
  b = bytes;
  b[8] = 9;
  expect(b, "version: 9");
  b = bytes;
  b[16] = 17;  // side 17: the slice bytes no longer add up
  expect(b, "data_bytes");
  b = bytes;
  b[20] = 5;
  expect(b, "dtype: unknown code 5");
  b = bytes;
  b[b.size() - 3] ^= 0x40;  // a flipped bit in the index
  expect(b, "index_checksum: mismatch");
  b = bytes;
  b.insert(b.end(), 10, 0);
  expect(b, "file_bytes: header says");
  CHECK(error_of([&] { Cache::open(t / "nope.cache"); }).find("nope.cache: cannot open cache") != std::string::npos);
}

TEST_CASE("prep: a synthetic cohort becomes a cache - skips and bad files are handled") {
  TempDir t;
  SynthOptions so;
  so.patients_per_grade = 2, so.size = 64, so.slices = 24, so.workers = 2;
  synth_cohort(t / "cohort", so);
  // A patient with no body in any slice (all air): skipped, not fatal.
  NiftiWriteSpec spec;
  spec.nx = 64, spec.ny = 64, spec.nz = 24;
  std::vector<int16_t> air((size_t)(64 * 64 * 24), -1024);
  write_nifti(t / "cohort/studies/CT-2/study_0900.nii.gz", spec, air.data());

  PrepOptions opt;
  opt.data_dir = t / "cohort";
  opt.out = t / "slices.cache";
  opt.size = 32, opt.workers = 3, opt.seed = 5;
  int64_t calls = 0, last = 0;
  const PrepReport rep = prep_cache(opt, [&](int64_t d, int64_t n) {
    calls++, last = d;
    CHECK(n == 11);
  });
  CHECK(calls == 11);
  CHECK(last == 11);
  CHECK(rep.patients == 11);
  REQUIRE(rep.skipped.size() == 1);
  CHECK(rep.skipped[0].patient == "study_0900");
  CHECK(rep.written == 10);
  CHECK(rep.split_csv == t / "slices.cache.split.csv");

  auto c = Cache::open(opt.out);
  CHECK(c->side() == 32);
  const auto split = read_split_csv(rep.split_csv);
  CHECK(split.size() == 11);
  std::map<std::string, Patient> by_id;
  for (const auto& p : split) by_id[p.id] = p;
  std::map<std::string, int> ten, central;
  for (const auto& r : c->records()) {
    const Patient& p = by_id.at(r.patient);
    CHECK(r.split == p.split);
    CHECK(r.label == p.label);
    CHECK(r.grade == p.grade);
    CHECK(r.source == p.path);
    ten[r.patient] += r.in_ten;
    central[r.patient] += r.central;
  }
  CHECK(ten.size() == 10);
  for (const auto& [id, n] : central) {
    CHECK(n == 1);
    CHECK(ten[id] == (by_id[id].split == Split::train ? 0 : 10));
  }
  // The cached pixels are the preprocessing's output for that slice.
  PreprocessOptions pre;
  pre.size = 32;
  const Patient& p0 = by_id.at(c->record(c->size() - 1).patient);
  const PatientSlices ps = prepare_patient(p0, pre, 10);
  std::vector<float> px(32 * 32);
  int64_t matched = 0;
  for (int64_t r = 0; r < c->size(); ++r) {
    if (c->record(r).patient != p0.id) continue;
    c->read_slice(r, px.data());
    for (size_t k = 0; k < ps.records.size(); ++k)
      if (ps.records[k].z == c->record(r).z) matched += ps.pixels[k] == px;
  }
  CHECK(matched == (int64_t)ps.records.size());

  // The same split reused from the csv gives the same records.
  PrepOptions again = opt;
  again.out = t / "again.cache";
  again.split_csv = rep.split_csv;
  again.workers = 1;
  prep_cache(again);
  auto c2 = Cache::open(again.out);
  REQUIRE(c2->size() == c->size());
  for (int64_t r = 0; r < c->size(); ++r) CHECK(c2->record(r).z == c->record(r).z);

  // A damaged volume stops the run with an error naming it, and no cache is written.
  const std::string broken = t / "cohort/studies/CT-1/study_0004.nii.gz";
  save(broken, {0x1f, 0x8b, 8, 0, 0, 0});
  PrepOptions fail = opt;
  fail.out = t / "fail.cache";
  const std::string e = error_of([&] { prep_cache(fail); });
  CHECK_MESSAGE(e.find(broken) != std::string::npos, e);
  CHECK(!fs::exists(fail.out));
  for (const auto& f : fs::directory_iterator(t.dir)) CHECK(f.path().string().find(".tmp.") == std::string::npos);
}
