// The cohort: which CT studies exist, which class each belongs to, and the
// patient-level train/validation/test split.
//
// Layout (the public MosMedData release): DIR/studies/CT-0 … CT-4/*.nii[.gz],
// one file per patient; the grade is the folder. Which grades are "mild"
// (label 0) and which "severe" (label 1) is not stated by the report, so it
// is a parameter (default CT-0,CT-1 vs CT-2,CT-3,CT-4); grades in neither
// class are left out.
//
// The split is by patient (never by slice: slices of one patient are nearly
// identical and would leak between splits), 60/20/20, stratified by label,
// from a seed. It is written to a split.csv so a run can be repeated exactly
// and other tools (evaluation, plots) see the same assignment.
#pragma once
#include <cstdint>
#include <string>
#include <vector>

namespace ctg::data {

enum class Split : uint8_t { train = 0, val = 1, test = 2 };
constexpr int kNumSplits = 3;
const char* split_name(Split s);  // "train", "val", "test"
// Accepts train, val (or validation), test; `flag` names the option in errors.
Split parse_split(const std::string& s, const std::string& flag = "--split");

constexpr int kNumGrades = 5;  // CT-0 … CT-4

struct ClassMapping {
  std::vector<int> negative{0, 1};
  std::vector<int> positive{2, 3, 4};
  // 0 or 1 for a mapped grade, −1 for a grade in neither class.
  int label_of(int grade) const;
  bool operator==(const ClassMapping& o) const { return negative == o.negative && positive == o.positive; }
  bool operator!=(const ClassMapping& o) const { return !(*this == o); }
};
// From the flag values, e.g. "CT-0,CT-1" and "CT-2,CT-3,CT-4" ("2" and "ct-2"
// are accepted too). A grade in both lists, an unknown grade, an empty list
// or a repeated grade throws ctg::Error naming the flag.
ClassMapping parse_class_mapping(const std::string& negative, const std::string& positive);
std::string grade_list(const std::vector<int>& grades);  // "CT-0,CT-1"

struct Patient {
  std::string id;    // the file name without .nii/.nii.gz (MosMed: study_NNNN)
  int grade = -1;    // 0..4
  int label = -1;    // 0 mild, 1 severe
  Split split = Split::train;
  std::string path;  // the volume
};

// Every volume under DIR/studies/CT-g for the mapped grades, sorted by id
// (so the result does not depend on directory order), labelled, all in the
// train split until assign_splits runs. Throws naming DIR when the folder is
// missing or holds no volumes, and naming --negative/--positive when a class
// gets no patients; duplicate ids (the same study in two grades) are refused.
std::vector<Patient> scan_cohort(const std::string& dir, const ClassMapping& mapping);

// `--per-class N`: keeps N patients of each class, stratified by grade: a
// class whose grades hold c_g of its C patients keeps N·c_g/C of grade g
// (rounded down, the remaining places going to the largest remainders, the
// lower grade on ties), chosen within the grade (in id order) by a portable
// shuffle seeded with `seed`. So `--per-class 226` on MosMedData keeps the
// report's 226 + 226 patients, and assign_splits then gives 272 / 90 / 90.
// N = 0 keeps everyone. A class with fewer than N patients throws ctg::Error
// naming --per-class, the class, its grades and their counts. Returns the
// kept patients in id order.
std::vector<Patient> select_per_class(const std::vector<Patient>& patients, int64_t n, uint64_t seed,
                                      const ClassMapping& mapping);

// A short tag for file names: "" for the default mapping without
// --per-class, else e.g. "_neg0-1_pos2-3-4_n226" (caches of different
// selections never share a file).
std::string selection_tag(const ClassMapping& mapping, int64_t per_class);

struct SplitFractions {
  double train = 0.6, val = 0.2, test = 0.2;
};
// Stratified by label: within each label the patients (in id order) are
// shuffled by a portable generator seeded with `seed`, then the first
// round(train·n) go to train, the next round(val·n) to val, the rest to test.
// 226 + 226 patients give 272 / 90 / 90, the report's counts.
void assign_splits(std::vector<Patient>& patients, uint64_t seed, const SplitFractions& f = {});

// Columns patient,grade,label,split,path (grade as a number 0..4). Fields
// holding a comma or quote are quoted CSV-style. Written atomically.
void write_split_csv(const std::string& path, const std::vector<Patient>& patients);
// A CSV field: as it is, or quoted (inner quotes doubled) when it holds a
// comma, quote or line break.
std::string csv_field(const std::string& s);
// Validates the header, every field and that no patient appears twice;
// errors name the file and line.
std::vector<Patient> read_split_csv(const std::string& path);

// Per split and label: counts[split][label].
struct SplitCounts {
  int64_t n[kNumSplits][2] = {};
  int64_t total(Split s) const { return n[(int)s][0] + n[(int)s][1]; }
};
SplitCounts count_splits(const std::vector<Patient>& patients);

// splitmix64: the one generator behind every seeded choice in data/ (splits,
// shuffles, augmentation), so results are the same on every platform and
// standard library (std::shuffle and std::normal_distribution are not).
inline uint64_t splitmix64(uint64_t& state) {
  uint64_t z = (state += 0x9E3779B97F4A7C15ull);
  z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
  z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
  return z ^ (z >> 31);
}
// A seed derived from several values (seed, epoch, index, ...).
inline uint64_t mix_seed(uint64_t a, uint64_t b, uint64_t c = 0) {
  uint64_t s = a;
  uint64_t h = splitmix64(s);
  s = h ^ b;
  h = splitmix64(s);
  s = h ^ c;
  return splitmix64(s);
}
// Uniform in [0, n) without modulo bias.
uint64_t uniform_below(uint64_t& state, uint64_t n);
// Fisher–Yates over v with splitmix64 from `state`.
void shuffle_indices(std::vector<int64_t>& v, uint64_t& state);

}  // namespace ctg::data
