// libFuzzer entry point for the NIfTI reader (not part of the CMake build:
// CMake globs tests/*.cpp only). From the repository root, with Debian's
// clang (packages clang, libclang-rt-14-dev):
//
//   clang++ -std=c++17 -g -O1 -fsanitize=fuzzer,address,undefined -fno-sanitize-recover=all -I. \
//     data/nifti.cpp data/nifti_read.cpp data/nifti_write.cpp tests/fuzz/nifti_libfuzzer.cpp -lz \
//     -o /tmp/nifti_fuzzer
//   mkdir -p /tmp/nifti_corpus
//   CTGRAD_NIFTI_SEED_DIR=/tmp/nifti_corpus /tmp/nifti_fuzzer -max_len=4096 -max_total_time=120 /tmp/nifti_corpus
//
// With CTGRAD_NIFTI_SEED_DIR set, startup writes a few tiny valid files
// there (both byte orders and formats, gzip, 4-D, scaled uint8) so the
// fuzzer begins past the magic numbers. An input passes if the reader
// returns a consistent volume or throws ctg::Error; any other exception
// aborts, and libFuzzer saves the input as crash-<sha1>.
#include <cstdint>
#include <cstdlib>
#include <fstream>
#include <string>
#include <vector>

#include "data/nifti.h"
#include "engine/tensor.h"

using namespace ctg::data;

namespace {
void write_seed(const std::string& dir, const std::string& name, const std::vector<uint8_t>& b) {
  std::ofstream(dir + "/" + name, std::ios::binary).write((const char*)b.data(), (std::streamsize)b.size());
}
}  // namespace

extern "C" int LLVMFuzzerInitialize(int*, char***) {
  const char* dir = std::getenv("CTGRAD_NIFTI_SEED_DIR");
  if (!dir || !*dir) return 0;
  std::vector<int16_t> i16(24);
  for (int i = 0; i < 24; ++i) i16[i] = (int16_t)(i * 1111 - 9000);
  NiftiWriteSpec s;
  s.nx = 4, s.ny = 3, s.nz = 2;
  s.affine[0][0] = -0.7, s.affine[2][3] = 5;
  write_seed(dir, "n1_le.nii", encode_nifti(s, kNiftiInt16, i16.data()));
  write_seed(dir, "n1_le.nii.gz", encode_nifti(s, kNiftiInt16, i16.data(), true));
  s.byte_order = ByteOrder::big;
  write_seed(dir, "n1_be.nii", encode_nifti(s, kNiftiInt16, i16.data()));
  s.format = 2;
  write_seed(dir, "n2_be.nii", encode_nifti(s, kNiftiInt16, i16.data()));
  s.byte_order = ByteOrder::little;
  write_seed(dir, "n2_le.nii.gz", encode_nifti(s, kNiftiInt16, i16.data(), true));
  std::vector<uint8_t> u8(2 * 2 * 2 * 3);
  for (size_t i = 0; i < u8.size(); ++i) u8[i] = (uint8_t)(i * 10);
  NiftiWriteSpec t;
  t.nx = t.ny = t.nz = 2, t.volumes = 3, t.scl_slope = 0.5, t.scl_inter = -1;
  write_seed(dir, "n1_4d_u8.nii", encode_nifti(t, kNiftiUint8, u8.data()));
  return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  try {
    const NiftiVolume v = read_nifti_buffer(data, size, "fuzz");
    if (v.nx < 1 || v.ny < 1 || v.nz < 1 || v.volumes < 1 || v.voxels.size() != (size_t)v.voxel_count()) std::abort();
    if (format_nifti_info(v).empty()) std::abort();
  } catch (const ctg::Error&) {
    // A clean rejection is the expected outcome for most inputs.
  }
  return 0;
}
