// Training augmentation, applied by the DataLoader (data/loader.h) per image.
//
// The reference code (howchihlee/COVID19_CT) adds unit Gaussian noise to the
// 0–255 input during training, i.e. noise of std 1/255 on our [0, 1] images.
// Flip and shift are extras, off by default. Every draw comes from a
// splitmix64 state the caller derives from (seed, epoch, item), so the
// result does not depend on which thread augments which image.
#pragma once
#include <cstddef>
#include <cstdint>

namespace ctg::data {

struct Augment {
  double noise_std = 0;   // 1/255 for the reference's training noise
  bool flip = false;      // mirror left–right with probability 1/2
  int64_t max_shift = 0;  // translate by up to ± this many pixels (zero fill)
  bool active() const { return noise_std > 0 || flip || max_shift > 0; }
};
inline Augment reference_train_augment() { return Augment{1.0 / 255.0, false, 0}; }

// Adds std·N(0, 1) to each of x[0..n) (ziggurat sampler over splitmix64).
void add_gaussian_noise(float* x, size_t n, double std, uint64_t& state);

// Shift, then flip, then noise, on one row-major side × side image.
void augment_image(float* img, int64_t side, const Augment& a, uint64_t state);

}  // namespace ctg::data
