// Cohort selection as the study made it: --negative/--positive (the class
// mapping) and --per-class N (seeded, stratified by grade), recorded in a
// run's config.json and checked against a cache.
#include <doctest/doctest.h>

#include <filesystem>
#include <fstream>
#include <map>

#include "data/cohort.h"
#include "tests/test_util.h"
#include "tests/train_fixture.h"
#include "train/config.h"
#include "train/data_source.h"

using namespace ctg;
using namespace ctg::data;
namespace fs = std::filesystem;
using ctg::test::error_of;
using ctg::test::TempDir;

namespace {

// scan_cohort looks at names only, so empty files stand in for volumes.
void make_layout(const TempDir& t, const std::vector<int>& per_grade) {
  int id = 1;
  for (size_t g = 0; g < per_grade.size(); ++g) {
    const fs::path sub = t.dir / "studies" / ("CT-" + std::to_string(g));
    fs::create_directories(sub);
    for (int i = 0; i < per_grade[g]; ++i) {
      char name[32];
      std::snprintf(name, sizeof name, "study_%04d.nii.gz", id++);
      std::ofstream(sub / name).put('x');
    }
  }
}

std::map<int, int> per_grade(const std::vector<Patient>& v) {
  std::map<int, int> m;
  for (const auto& p : v) m[p.grade]++;
  return m;
}

}  // namespace

TEST_CASE("--per-class 226 on a 500-patient cohort gives 226 + 226 patients and 272 / 90 / 90") {
  TempDir t;
  // 250 mild (CT-0 120, CT-1 130) and 250 severe (CT-2 110, CT-3 90, CT-4 50).
  make_layout(t, {120, 130, 110, 90, 50});
  const ClassMapping m;
  const auto all = scan_cohort(t.str(), m);
  REQUIRE(all.size() == 500);
  auto kept = select_per_class(all, 226, 7, m);
  REQUIRE(kept.size() == 452);
  // Stratified by grade, largest remainders: mild 226·120/250 = 108.48 → 108,
  // 226·130/250 = 117.52 → 117 + 1 (the larger remainder) = 118; severe
  // 99.44 → 99, 81.36 → 81, 45.2 → 45, 225 so far, the one left to CT-2 (.44).
  CHECK(per_grade(kept) == std::map<int, int>{{0, 108}, {1, 118}, {2, 100}, {3, 81}, {4, 45}});
  assign_splits(kept, 7);
  const SplitCounts c = count_splits(kept);
  CHECK(c.total(Split::train) == 272);
  CHECK(c.total(Split::val) == 90);
  CHECK(c.total(Split::test) == 90);
  for (int l : {0, 1}) {
    CHECK(c.n[(int)Split::train][l] == 136);
    CHECK(c.n[(int)Split::val][l] == 45);
    CHECK(c.n[(int)Split::test][l] == 45);
  }
  // Seeded: the same seed gives the same patients, another seed others.
  const auto again = select_per_class(all, 226, 7, m);
  const auto other = select_per_class(all, 226, 8, m);
  std::vector<std::string> a, b, o;
  for (const auto& p : select_per_class(all, 226, 7, m)) a.push_back(p.id);
  for (const auto& p : again) b.push_back(p.id);
  for (const auto& p : other) o.push_back(p.id);
  CHECK(a == b);
  CHECK(a != o);
  CHECK(per_grade(other) == per_grade(kept));  // the quotas do not depend on the seed
  // 0 keeps everyone.
  CHECK(select_per_class(all, 0, 7, m).size() == 500);
}

TEST_CASE("--per-class: too few patients in a class names the class, its grades and counts") {
  TempDir t;
  make_layout(t, {120, 130, 110, 90, 50});
  const ClassMapping m;
  const auto all = scan_cohort(t.str(), m);
  CHECK(error_of([&] { select_per_class(all, 251, 0, m); }) ==
        "--per-class 251: the mild class (--negative CT-0,CT-1) has only 250 patients (CT-0: 120, CT-1: 130)");
  const ClassMapping narrow = parse_class_mapping("CT-0", "CT-3,CT-4");
  const auto some = scan_cohort(t.str(), narrow);
  CHECK(error_of([&] { select_per_class(some, 130, 0, narrow); }) ==
        "--per-class 130: the mild class (--negative CT-0) has only 120 patients (CT-0: 120)");
  CHECK(error_of([&] { select_per_class(all, -1, 0, m); }).find("--per-class: must be ≥ 0") == 0);
  // The same check comes before any work in train's data plan, for a folder.
  CHECK(error_of([&] { train::plan_data(t.str(), 32, 0, m, 300); }).find("--per-class 300: the mild class") == 0);
}

TEST_CASE("the class mapping: one grade in both classes is refused, and the order does not matter") {
  CHECK(error_of([] { parse_class_mapping("CT-0,CT-2", "CT-2,CT-3"); }) ==
        "--negative/--positive: grade CT-2 is in both classes");
  CHECK(parse_class_mapping("CT-1,CT-0", "4,3,ct-2") == ClassMapping{});
  CHECK(selection_tag(ClassMapping{}, 0) == "");
  CHECK(selection_tag(parse_class_mapping("CT-0", "CT-3,CT-4"), 226) == "_neg0_pos3-4_n226");
  // Each selection has its own cache beside a folder.
  CHECK(train::folder_cache_path("/c", 64, 0, parse_class_mapping("CT-0", "CT-3,CT-4"), 10) ==
        "/c/ctgrad_cache_64_neg0_pos3-4_n10.bin");
  CHECK(train::folder_cache_path("/c", 64) == "/c/ctgrad_cache_64.bin");
}

TEST_CASE("config.json records the mapping and --per-class, and older configs read as the default") {
  train::TrainOptions o;
  o.net = "cnn1", o.data = "x", o.out = "y";
  o.negative = "CT-1,CT-0", o.positive = "CT-3,CT-4", o.per_class = 12;
  const auto j = train::to_json(o);
  CHECK(j["negative"] == nlohmann::json({"CT-0", "CT-1"}));
  CHECK(j["positive"] == nlohmann::json({"CT-3", "CT-4"}));
  CHECK(j["per_class"] == 12);
  const auto back = train::options_from_json(j, "config.json");
  CHECK(back.mapping() == parse_class_mapping("CT-0,CT-1", "CT-3,CT-4"));
  CHECK(back.per_class == 12);
  auto old = j;
  old.erase("negative"), old.erase("positive"), old.erase("per_class");
  const auto legacy = train::options_from_json(old, "config.json");
  CHECK(legacy.mapping() == ClassMapping{});
  CHECK(legacy.per_class == 0);
  o.positive = "CT-1,CT-2";
  CHECK(error_of([&] { train::validate(o); }) == "--negative/--positive: grade CT-1 is in both classes");
}

TEST_CASE("a cache prepared with another mapping is refused naming the grade") {
  const std::string cache = test::tiny_cache();  // the default mapping: CT-1 is mild (0)
  CHECK_NOTHROW(train::plan_data(cache, 0, 0, ClassMapping{}, 0));
  const std::string e = error_of([&] { train::plan_data(cache, 0, 0, parse_class_mapping("CT-0", "CT-1,CT-2,CT-3,CT-4"), 0); });
  INFO(e);
  CHECK(e.find("--negative/--positive CT-0 / CT-1,CT-2,CT-3,CT-4: the cache ") == 0);
  CHECK(e.find("labels its CT-1 patients 0") != std::string::npos);
  // 12 mild and 18 severe patients: more than --per-class 10 allows.
  CHECK(error_of([&] { train::plan_data(cache, 0, 0, ClassMapping{}, 10); }).find("--per-class 10: the cache ") == 0);
}
