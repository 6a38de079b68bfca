// The study's preprocessing (SEED_NOTES section 2, after howchihlee/COVID19_CT):
// lung window, body mask, lung mask, crop and resize; slice orientation and
// slice choice. Implemented in data/preprocess.cpp (+ data/orient.cpp,
// data/slices.cpp); used by `ctgrad prep`, the loader's on-the-fly source
// and `ctgrad predict`.
#pragma once
#include <cstdint>
#include <vector>

#include "data/nifti.h"

namespace ctg::data {

struct PreprocessOptions {
  int64_t size = 512;          // output side (network input)
  double hu_lo = -1350, hu_hi = 150;  // lung window, mapped to [0, 1]
  double body_threshold = 0.69;       // on the windowed image (≈ −315 HU)
  int64_t margin = 20;         // pixels added around the body's bounding box
  double min_lung_fraction = 0.2;     // lung area / body area below this: slice unusable
  // Added with the implementation (data/preprocess.cpp):
  // Side of the square closing element at 512 pixels across (the reference
  // code's 10×10), scaled with the slice's larger side (at least 1 = none).
  int64_t closing = 10;
  // Components smaller than this fraction of the slice are dropped from the
  // lung mask (the reference's remove_small_objects: 64 px at 512²).
  double min_object_fraction = 64.0 / (512.0 * 512.0);
  // A largest component smaller than this fraction of the slice is no body.
  double min_body_fraction = 0.01;
};

// A volume as upright axial slices: slice z is a row-major [height][width]
// image with anterior up and the patient's right on the image's left (radiological
// convention), decided from the header's affine. Values are Hounsfield units.
struct OrientedVolume {
  int64_t width = 0, height = 0, depth = 0;
  double col_mm = 1, row_mm = 1, slice_mm = 1;  // voxel spacing along width, height, depth (added)
  std::vector<float> hu;  // depth · height · width
  const float* slice(int64_t z) const { return hu.data() + z * height * width; }
};
OrientedVolume orient_axial(const NiftiVolume& v);

struct PreprocessedSlice {
  std::vector<float> pixels;  // size · size, in [0, 1], masked and cropped to the body
  double lung_fraction = 0;   // lung area / body area
  bool usable = false;        // a body was found and lung_fraction ≥ min_lung_fraction
  // Added: the crop in input pixels, half-open [x0, x1) × [y0, y1) (the
  // body's bounding box plus the margin, clamped); all 0 when no body.
  int64_t crop_x0 = 0, crop_y0 = 0, crop_x1 = 0, crop_y1 = 0;
};
// One axial slice (row-major height × width, HU) through the whole pipeline.
PreprocessedSlice preprocess_slice(const float* hu, int64_t width, int64_t height, const PreprocessOptions& opt);

// Slice choice over the usable slices' z range (the lung-bearing range):
// training uses its central slice; validation/test 10 slices evenly spaced
// over its central part. Returns z indices into the oriented volume.
struct SliceChoice {
  int64_t central = -1;
  std::vector<int64_t> ten;
};
SliceChoice choose_slices(const std::vector<PreprocessedSlice>& slices, int64_t count = 10);

// ---- Added: the pipeline's steps, public for tests and visualisation ----

// HU → [0, 1] through the lung window (clipped).
float lung_window(float hu, const PreprocessOptions& opt = {});

// Binary masks of one windowed slice (row-major width × height, 1 = in).
struct BodyMasks {
  int64_t width = 0, height = 0;
  bool found = false;            // a body: largest component ≥ min_body_fraction of the slice
  std::vector<uint8_t> tissue;   // the largest 8-connected component above the threshold
  std::vector<uint8_t> body;     // tissue with what it encloses, closed and hole-filled
  std::vector<uint8_t> lung;     // low-density regions enclosed by the tissue, cleaned
  int64_t body_area = 0, lung_area = 0;
  int64_t x0 = 0, y0 = 0, x1 = 0, y1 = 0;  // body's bounding box, half-open
};
BodyMasks body_masks(const float* windowed, int64_t width, int64_t height, const PreprocessOptions& opt);

// Resamples a row-major image to out_w × out_h, each axis on its own:
// bilinear (half-pixel centres) where it grows or keeps its size,
// area-averaging where it shrinks. A non-square input is stretched.
std::vector<float> resize_image(const float* src, int64_t width, int64_t height, int64_t out_w, int64_t out_h);

}  // namespace ctg::data
