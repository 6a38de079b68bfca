// NumPy's .npy format, version 1.0, for the insight maps (saliency, IG,
// occlusion, feature maps, filters): little-endian float32 ('<f4'), C order,
// so that `numpy.load("saliency.npy")` gives the array back. The format, as
// numpy/lib/format.py defines it:
//   "\x93NUMPY" 0x01 0x00  <uint16 LE header length>  <header>  <data>
// where the header is the ASCII repr of a dict, e.g.
//   {'descr': '<f4', 'fortran_order': False, 'shape': (64, 64), }
// padded with spaces and ended by '\n' so that the data starts at a multiple
// of 64 bytes (NumPy pads to 64 since 1.x; a multiple of 16 is the minimum).
#pragma once
#include <cstdint>
#include <string>
#include <vector>

namespace ctg::insight {

// Atomic write (temp file + rename); throws ctg::Error naming the path on failure.
void write_npy(const std::string& path, const float* data, const std::vector<int64_t>& shape);

struct NpyArray {
  std::vector<int64_t> shape;
  std::vector<float> data;
};
// '<f4' only (C order, version 1.0 or 2.0 headers); ctg::Error naming the path otherwise.
NpyArray read_npy(const std::string& path);

// The header bytes write_npy puts before the data (magic through '\n'), for tests.
std::string npy_header(const std::vector<int64_t>& shape);

}  // namespace ctg::insight
