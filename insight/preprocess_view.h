// The study's Slika 9: one axial slice through every step of the
// preprocessing (data/preprocess.h), each step a titled panel of one grid
// picture and a .npy array:
//   1 raw HU               the oriented slice (anterior up, patient's right on the left)
//   2 lung window          clip((HU − lo) / (hi − lo), 0, 1), lo/hi = −1350/150 HU
//   3 threshold            windowed > 0.69 (≈ −315 HU)
//   4 largest region       the largest 8-connected component of 3 (the tissue)
//   5 body mask            4 with what it encloses, closed and hole-filled
//   6 mask applied         windowed · body mask
//   7 cropped, rescaled    6 cropped to the body's box ± margin, resized to size²: the net's input
// Every array is computed by the functions data/preprocess.cpp runs, so step 7
// is exactly preprocess_slice's output (tests/test_insight_report.cpp checks).
#pragma once
#include <cstdint>
#include <string>
#include <vector>

#include "data/preprocess.h"

namespace ctg::insight {

struct PreprocessStep {
  std::string name;    // file stem: raw_hu, lung_window, threshold, largest_region, body_mask, masked, cropped
  std::string title;   // the panel's title
  int64_t height = 0, width = 0;
  std::vector<float> values;  // row-major height × width
};
// The seven steps of one slice (row-major width × height, HU).
std::vector<PreprocessStep> preprocess_steps(const float* hu, int64_t width, int64_t height,
                                             const data::PreprocessOptions& opt);

struct FigureFile {
  std::string file, caption;  // file relative to the output folder
};
struct PreprocessFigure {
  int64_t z = 0, depth = 0;             // the slice shown, of the oriented volume's depth
  std::vector<FigureFile> pictures;     // preprocess.png
  std::vector<FigureFile> arrays;       // preprocess_<step>.npy, caption = the array's shape "[H, W]"
};
// Reads the NIfTI volume, orients it axially, takes slice z (z < 0: the
// central lung-bearing slice, as training uses) and writes
// OUT_DIR/preprocess.png and OUT_DIR/preprocess_<step>.npy (creating
// OUT_DIR). `size` is the network input side (the run's size). Errors
// (ctg::Error): unreadable file, z out of range (naming --slice), size < 1.
PreprocessFigure write_preprocess_figure(const std::string& nifti, int64_t z, int64_t size, const std::string& out_dir);

}  // namespace ctg::insight
