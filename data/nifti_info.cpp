// The statistics and the text of `ctgrad nifti-info`.
#include <algorithm>
#include <cmath>
#include <cstdio>
#include <limits>

#include "data/nifti.h"
#include "engine/tensor.h"

namespace ctg::data {

NiftiStats nifti_stats(const NiftiVolume& v) {
  NiftiStats s;
  s.min = std::numeric_limits<double>::infinity();
  s.max = -s.min;
  for (float x : v.voxels) {
    if (!std::isfinite(x)) {
      ++s.nonfinite;
      continue;
    }
    s.min = std::min(s.min, (double)x);
    s.max = std::max(s.max, (double)x);
    s.sum += x;
    ++s.count;
  }
  if (s.count == 0) s.min = s.max = std::numeric_limits<double>::quiet_NaN();
  s.mean = s.count ? s.sum / (double)s.count : std::numeric_limits<double>::quiet_NaN();
  return s;
}

namespace {
// The shortest decimal that reads back as the same number: float32 header
// fields then print as "2.2" rather than "2.20000005"; whole numbers (sums of
// integer voxels) print in full rather than as 3.4e+08.
std::string shortest(double v, bool as_float) {
  char buf[40];
  if (v == std::floor(v) && std::fabs(v) < 1e15) {  // whole numbers without an exponent
    std::snprintf(buf, sizeof buf, "%.0f", v);
    return buf;
  }
  for (int p = 1; p <= 17; ++p) {
    std::snprintf(buf, sizeof buf, "%.*g", p, v);
    const double back = std::strtod(buf, nullptr);
    if (as_float ? (float)back == (float)v : back == v) break;
  }
  return buf;
}
}  // namespace

std::string format_nifti_info(const NiftiVolume& v) {
  const bool f32 = v.format == 1;  // NIfTI-1 reals are float32
  std::string out;
  auto line = [&](const char* key, const std::string& value) { out += std::string(key) + ": " + value + "\n"; };
  std::string dims, pix;
  for (int i = 1; i <= v.ndim; ++i) {
    dims += (i > 1 ? " " : "") + std::to_string(v.dim[i]);
    pix += (i > 1 ? " " : "") + shortest(v.pixdim[i], f32);
  }
  line("file", v.path);
  line("format", v.format == 1 ? "nifti1" : "nifti2");
  line("byte_order", byte_order_name(v.byte_order));
  line("compression", v.gzipped ? "gzip" : "none");
  line("dim", dims);
  if (v.volumes > 1) line("volumes", std::to_string(v.volumes));  // min..sum are over the first
  line("datatype", v.datatype_name);
  line("bitpix", std::to_string(v.bitpix));
  line("pixdim", pix);
  line("vox_offset", std::to_string(v.vox_offset));
  line("scl_slope", shortest(v.scl_slope, f32));
  line("scl_inter", shortest(v.scl_inter, f32));
  line("qform_code", std::to_string(v.qform_code));
  line("sform_code", std::to_string(v.sform_code));
  const NiftiStats s = nifti_stats(v);
  line("min", shortest(s.min, false));
  line("max", shortest(s.max, false));
  line("mean", shortest(s.mean, false));
  line("sum", shortest(s.sum, false));
  if (s.nonfinite) line("nonfinite", std::to_string(s.nonfinite));
  return out;
}

}  // namespace ctg::data
