// orient_axial: present a NIfTI volume as upright axial slices.
//
// The NIfTI-1 header (nifti1.h, "methods 2 and 3") defines its world as
//     +x = Right, +y = Anterior, +z = Superior        ("RAS+")
// i.e. x grows towards the patient's right, y towards the front, z towards
// the head. (DICOM's patient frame is LPS+: its x and y point the other way;
// converters such as dcm2niix negate them when they write the affine.)
//
// The radiological display wanted here looks at the slice from the feet:
//   - image column grows towards the patient's LEFT  → world x decreasing;
//   - image row grows downwards, from anterior to posterior → world y decreasing;
//   - slice index grows from inferior to superior    → world z increasing.
//
// Which voxel axis runs along which world axis comes from the affine that
// nifti_affine() chooses (sform, else qform, else pixdim): each column of its
// 3×3 part is the world step of one voxel axis. Axes are paired greedily by
// the largest remaining |entry| (so an oblique or slightly rotated scan goes
// to its nearest permutation, and two voxel axes never claim one world axis),
// and an axis is reversed when the sign of its entry points the wrong way.
// Only permutations and flips are applied: voxels are copied, never
// interpolated, which is exact for the axis-aligned scans of MosMedData.
#include <cmath>

#include "data/preprocess.h"
#include "engine/tensor.h"

namespace ctg::data {

OrientedVolume orient_axial(const NiftiVolume& v) {
  const Affine a = nifti_affine(v);
  int voxel_for_world[3] = {-1, -1, -1};
  bool vox_used[3] = {false, false, false};
  for (int round = 0; round < 3; ++round) {
    int bw = -1, bv = -1;
    double best = -1;
    for (int w = 0; w < 3; ++w) {
      if (voxel_for_world[w] >= 0) continue;
      for (int ax = 0; ax < 3; ++ax) {
        const double m = std::fabs(a[w][ax]);
        if (!vox_used[ax] && m > best) best = m, bw = w, bv = ax;  // NaN never wins
      }
    }
    if (bw < 0) break;  // only NaN left: pair the rest in order below
    voxel_for_world[bw] = bv, vox_used[bv] = true;
  }
  for (int w = 0; w < 3; ++w)
    for (int ax = 0; voxel_for_world[w] < 0 && ax < 3; ++ax)
      if (!vox_used[ax]) voxel_for_world[w] = ax, vox_used[ax] = true;

  const int64_t dims[3] = {v.nx, v.ny, v.nz}, strides[3] = {1, v.nx, v.nx * v.ny};
  // Output axis w (0 width, 1 height, 2 depth) follows world axis w; it is
  // reversed when the voxel axis's world step has the unwanted sign.
  const bool reverse[3] = {a[0][voxel_for_world[0]] > 0, a[1][voxel_for_world[1]] > 0, a[2][voxel_for_world[2]] < 0};
  int64_t n[3], step[3], base = 0;
  double mm[3];
  for (int w = 0; w < 3; ++w) {
    const int ax = voxel_for_world[w];
    n[w] = dims[ax];
    step[w] = reverse[w] ? -strides[ax] : strides[ax];
    if (reverse[w]) base += (dims[ax] - 1) * strides[ax];
    const double len = std::sqrt(a[0][ax] * a[0][ax] + a[1][ax] * a[1][ax] + a[2][ax] * a[2][ax]);
    mm[w] = std::isfinite(len) && len > 0 ? len : 1;
  }
  if ((int64_t)v.voxels.size() < v.nx * v.ny * v.nz) throw Error(v.path + ": orient_axial: voxels missing");

  OrientedVolume o;
  o.width = n[0], o.height = n[1], o.depth = n[2];
  o.col_mm = mm[0], o.row_mm = mm[1], o.slice_mm = mm[2];
  o.hu.resize((size_t)(n[0] * n[1] * n[2]));
  float* dst = o.hu.data();
  for (int64_t z = 0; z < n[2]; ++z)
    for (int64_t r = 0; r < n[1]; ++r) {
      const float* src = v.voxels.data() + base + z * step[2] + r * step[1];
      for (int64_t c = 0; c < n[0]; ++c) *dst++ = src[c * step[0]];
    }
  return o;
}

}  // namespace ctg::data
