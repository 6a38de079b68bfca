// Cohort scan, class mapping, stratified patient split and split.csv.
#include <doctest/doctest.h>
#include <unistd.h>

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <functional>
#include <map>
#include <set>

#include "data/cohort.h"
#include "engine/tensor.h"
#include "tests/test_util.h"

using namespace ctg;
using namespace ctg::data;
namespace fs = std::filesystem;

namespace {

using ctg::test::TempDir;

// scan_cohort looks at names only, so empty files stand in for volumes.
// Study ids run on across grades, as in MosMedData.
void make_layout(const TempDir& t, const std::vector<int>& per_grade) {
  int id = 1;
  for (size_t g = 0; g < per_grade.size(); ++g) {
    const fs::path sub = t.dir / "studies" / ("CT-" + std::to_string(g));
    fs::create_directories(sub);
    for (int i = 0; i < per_grade[g]; ++i) {
      char name[32];
      std::snprintf(name, sizeof name, "study_%04d.nii%s", id++, i % 3 == 0 ? "" : ".gz");
      std::ofstream(sub / name).put('x');
    }
  }
}

using ctg::test::error_of;

}  // namespace

TEST_CASE("cohort: the report's 226 + 226 patients split 272 / 90 / 90, stratified and disjoint") {
  TempDir t;
  make_layout(t, {100, 126, 100, 80, 46});  // CT-0,1 → 226 mild; CT-2,3,4 → 226 severe
  std::ofstream(t.dir / "studies" / "CT-2" / "notes.txt").put('x');  // not a volume: ignored
  auto patients = scan_cohort(t.str(), ClassMapping{});
  REQUIRE(patients.size() == 452);
  for (size_t i = 1; i < patients.size(); ++i) CHECK(patients[i - 1].id < patients[i].id);
  assign_splits(patients, 7);
  const SplitCounts c = count_splits(patients);
  CHECK(c.total(Split::train) == 272);
  CHECK(c.total(Split::val) == 90);
  CHECK(c.total(Split::test) == 90);
  for (int label : {0, 1}) {
    CHECK(c.n[(int)Split::train][label] == 136);
    CHECK(c.n[(int)Split::val][label] == 45);
    CHECK(c.n[(int)Split::test][label] == 45);
  }
  // Disjoint: each patient id lands in exactly one split.
  std::map<std::string, std::set<Split>> where;
  for (const auto& p : patients) where[p.id].insert(p.split);
  CHECK(where.size() == 452);
  for (const auto& [id, splits] : where) CHECK(splits.size() == 1);

  // Seeded: the same seed gives the same split whatever the input order; another seed another one.
  auto again = scan_cohort(t.str(), ClassMapping{});
  std::reverse(again.begin(), again.end());
  assign_splits(again, 7);
  std::map<std::string, Split> first;
  for (const auto& p : patients) first[p.id] = p.split;
  for (const auto& p : again) CHECK(first[p.id] == p.split);
  auto other = scan_cohort(t.str(), ClassMapping{});
  assign_splits(other, 8);
  int moved = 0;
  for (const auto& p : other) moved += first[p.id] != p.split;
  CHECK(moved > 50);
}

TEST_CASE("cohort: class mapping selects grades and labels") {
  TempDir t;
  make_layout(t, {4, 4, 4, 4, 4});
  const auto m = parse_class_mapping("CT-0", "ct-3,4");
  auto patients = scan_cohort(t.str(), m);
  REQUIRE(patients.size() == 12);  // CT-1 and CT-2 are in neither class
  for (const auto& p : patients) {
    CHECK((p.grade == 0 || p.grade == 3 || p.grade == 4));
    CHECK(p.label == (p.grade == 0 ? 0 : 1));
  }
  CHECK(grade_list(m.positive) == "CT-3,CT-4");
}

TEST_CASE("cohort: mapping and layout errors name the flag or the folder") {
  CHECK(error_of([] { parse_class_mapping("CT-0,CT-1,CT-2", "CT-2,CT-3"); }).find("--negative/--positive: grade CT-2 is in both") !=
        std::string::npos);
  CHECK(error_of([] { parse_class_mapping("CT-0,CT-7", "CT-2"); }).find("--negative: unknown grade 'CT-7'") != std::string::npos);
  CHECK(error_of([] { parse_class_mapping("CT-0", "severe"); }).find("--positive: unknown grade 'severe'") != std::string::npos);
  CHECK(error_of([] { parse_class_mapping("CT-0", ""); }).find("--positive: no grades") != std::string::npos);
  CHECK(error_of([] { parse_class_mapping("CT-1,CT-1", "CT-2"); }).find("--negative: grade CT-1 listed twice") != std::string::npos);

  TempDir t;
  CHECK(error_of([&] { scan_cohort(t.str(), ClassMapping{}); }).find("--data " + t.str() + ": no studies/") != std::string::npos);
  fs::create_directories(t.dir / "studies" / "CT-0");
  CHECK(error_of([&] { scan_cohort(t.str(), ClassMapping{}); }).find("no .nii/.nii.gz volumes") != std::string::npos);
  make_layout(t, {3, 3, 0, 0, 0});
  const std::string e = error_of([&] { scan_cohort(t.str(), ClassMapping{}); });
  CHECK(e.find("--positive CT-2,CT-3,CT-4: no patients") != std::string::npos);
  // The same study filed under two grades.
  fs::create_directories(t.dir / "studies" / "CT-3");
  fs::copy_file(t.dir / "studies" / "CT-0" / "study_0002.nii.gz", t.dir / "studies" / "CT-3" / "study_0002.nii.gz");
  CHECK(error_of([&] { scan_cohort(t.str(), ClassMapping{}); }).find("'study_0002' appears twice") != std::string::npos);
}

TEST_CASE("cohort: split.csv round trip, quoting, and rejected files") {
  TempDir t;
  std::vector<Patient> ps = {{"study_0001", 0, 0, Split::train, "/data/a,b/study_0001.nii.gz"},
                             {"study_0002", 3, 1, Split::val, "/data/say \"hi\"/study_0002.nii"},
                             {"study_0003", 4, 1, Split::test, "rel/study_0003.nii.gz"}};
  const std::string path = (t.dir / "split.csv").string();
  write_split_csv(path, ps);
  for (const auto& e : fs::directory_iterator(t.dir)) CHECK(e.path().filename() == "split.csv");  // no temporary left
  const auto back = read_split_csv(path);
  REQUIRE(back.size() == ps.size());
  for (size_t i = 0; i < ps.size(); ++i) {
    CHECK(back[i].id == ps[i].id);
    CHECK(back[i].grade == ps[i].grade);
    CHECK(back[i].label == ps[i].label);
    CHECK(back[i].split == ps[i].split);
    CHECK(back[i].path == ps[i].path);
  }
  auto write = [&](const std::string& text) { std::ofstream(path) << text; };
  write("id,grade\n");
  CHECK(error_of([&] { read_split_csv(path); }).find(path + ": line 1: header") != std::string::npos);
  write("patient,grade,label,split,path\na,1,0,train,x\na,2,1,val,y\n");
  CHECK(error_of([&] { read_split_csv(path); }).find(path + ": line 3: patient 'a' appears twice") != std::string::npos);
  write("patient,grade,label,split,path\na,1,2,train,x\n");
  CHECK(error_of([&] { read_split_csv(path); }).find("line 2: label: expected 0..1, got '2'") != std::string::npos);
  write("patient,grade,label,split,path\na,1,0,holdout,x\n");
  CHECK(error_of([&] { read_split_csv(path); }).find("line 2: split: expected train, val or test") != std::string::npos);
  write("patient,grade,label,split,path\na,1,0,train\n");
  CHECK(error_of([&] { read_split_csv(path); }).find("line 2: expected 5 fields, got 4") != std::string::npos);
  CHECK(error_of([&] { read_split_csv((t.dir / "missing.csv").string()); }).find("cannot open") != std::string::npos);
}

TEST_CASE("cohort: the shuffle is a permutation and uniform_below stays in range") {
  uint64_t s = 42;
  std::vector<int64_t> v(1000);
  for (int i = 0; i < 1000; ++i) v[i] = i;
  shuffle_indices(v, s);
  std::vector<int64_t> sorted = v;
  std::sort(sorted.begin(), sorted.end());
  for (int i = 0; i < 1000; ++i) CHECK(sorted[i] == i);
  int fixed = 0;
  for (int i = 0; i < 1000; ++i) fixed += v[i] == i;
  CHECK(fixed < 10);
  int counts[3] = {};
  for (int i = 0; i < 3000; ++i) counts[uniform_below(s, 3)]++;
  for (int c : counts) CHECK((c > 850 && c < 1150));
}
