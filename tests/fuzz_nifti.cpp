// Seeded mutation test of the NIfTI reader: small valid files (both byte
// orders, both formats, gzip, 4-D with scaling) are damaged at random — bit
// flips, byte stores, header fields set to edge values, truncations,
// insertions, deletions — and the reader must either succeed with a
// consistent volume or throw ctg::Error. Anything else (another exception,
// a crash, a sanitizer report in an instrumented build) is a bug.
//
// ctest runs 20,000 cases (about 0.3 s in a Release build). For a
// long run, e.g. under -fsanitize=address,undefined:
//   CTGRAD_NIFTI_FUZZ_ITERS=200000 CTGRAD_NIFTI_FUZZ_SEED=5 ./ctgrad_tests -tc='nifti fuzz*'
// A failing case is saved as nifti_fuzz_failure.bin in the temp directory
// for replay (`ctgrad nifti-info FILE`).
#include <doctest/doctest.h>

#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <random>
#include <string>
#include <vector>

#include "data/nifti.h"
#include "engine/tensor.h"

using namespace ctg;
using namespace ctg::data;

namespace {

struct Seed {
  std::vector<uint8_t> raw;  // the uncompressed file
  bool gzip;                 // stored compressed: mutate the stream or the content beneath it
  int format;
};

std::vector<Seed> make_seeds() {
  std::vector<Seed> seeds;
  std::vector<int16_t> i16(24);
  for (int i = 0; i < 24; ++i) i16[i] = (int16_t)(i * 1111 - 9000);
  NiftiWriteSpec s;
  s.nx = 4, s.ny = 3, s.nz = 2;
  s.affine[0][0] = -0.7, s.affine[1][2] = 1.5, s.affine[2][1] = 2, s.affine[2][2] = 0, s.affine[0][3] = 9;
  for (ByteOrder o : {ByteOrder::little, ByteOrder::big}) {
    s.byte_order = o;
    seeds.push_back({encode_nifti(s, kNiftiInt16, i16.data()), false, 1});
  }
  s.byte_order = ByteOrder::little;
  s.format = 2;
  seeds.push_back({encode_nifti(s, kNiftiInt16, i16.data()), false, 2});
  s.format = 1;
  seeds.push_back({encode_nifti(s, kNiftiInt16, i16.data()), true, 1});
  // 4-D uint8 with scaling; NIfTI-2 big-endian float64.
  std::vector<uint8_t> u8(2 * 2 * 2 * 3);
  for (size_t i = 0; i < u8.size(); ++i) u8[i] = (uint8_t)(i * 10);
  NiftiWriteSpec t;
  t.nx = t.ny = t.nz = 2, t.volumes = 3, t.scl_slope = 0.5, t.scl_inter = -1;
  seeds.push_back({encode_nifti(t, kNiftiUint8, u8.data()), false, 1});
  std::vector<double> f64(8, -1e300);
  f64[3] = 2.5;
  t.volumes = 1, t.format = 2, t.byte_order = ByteOrder::big, t.qform_code = 0;
  seeds.push_back({encode_nifti(t, kNiftiFloat64, f64.data()), true, 2});
  return seeds;
}

// Header fields worth aiming at, as (offset, width) in each format.
const std::vector<std::pair<int, int>>& fields(int format) {
  static const std::vector<std::pair<int, int>> n1 = {
      {0, 4},   {40, 2},  {42, 2},  {44, 2},  {46, 2},  {48, 2},  {50, 2},  {54, 2}, {70, 2},
      {72, 2},  {76, 4},  {80, 4},  {108, 4}, {112, 4}, {116, 4}, {252, 2}, {254, 2}, {256, 4},
      {260, 4}, {264, 4}, {280, 4}, {344, 4}};
  static const std::vector<std::pair<int, int>> n2 = {
      {0, 4},   {4, 8},   {12, 2},  {14, 2},  {16, 8},  {24, 8},  {32, 8},  {40, 8},  {48, 8},
      {72, 8},  {104, 8}, {168, 8}, {176, 8}, {184, 8}, {344, 4}, {348, 4}, {352, 8}, {400, 8}};
  return format == 2 ? n2 : n1;
}

const uint64_t kEdgeValues[] = {0,          1,          2,          3,          4,          7,
                                8,          16,         255,        256,        347,        348,
                                352,        540,        544,        32767,      32768,      65535,
                                0x7fffffff, 0x80000000, 0xffffffff, ~0ull,      1ull << 62, 0x7ff8000000000000ull,
                                0x7f800000, 0x3f800000};

void mutate(std::vector<uint8_t>& b, int format, std::mt19937_64& rng) {
  const int edits = 1 + (int)(rng() % 4);
  for (int e = 0; e < edits; ++e) {
    const size_t n = b.size();
    const size_t pos = n ? rng() % n : 0;
    switch (rng() % 7) {
      case 0: if (n) b[pos] ^= (uint8_t)(1u << (rng() % 8)); break;
      case 1: if (n) b[pos] = (uint8_t)rng(); break;
      case 2: {  // a header field set to an edge value, in either byte order
        const auto& f = fields(format)[rng() % fields(format).size()];
        const uint64_t v = kEdgeValues[rng() % (sizeof kEdgeValues / sizeof kEdgeValues[0])];
        const bool big = rng() & 1;
        for (int i = 0; i < f.second && (size_t)(f.first + i) < n; ++i)
          b[(size_t)f.first + (size_t)(big ? f.second - 1 - i : i)] = (uint8_t)(v >> (8 * i));
        break;
      }
      case 3: b.resize(pos); break;  // truncate
      case 4: {                      // insert a few random bytes
        std::vector<uint8_t> ins(1 + rng() % 16);
        for (auto& x : ins) x = (uint8_t)rng();
        b.insert(b.begin() + (long)pos, ins.begin(), ins.end());
        break;
      }
      case 5: b.erase(b.begin() + (long)pos, b.begin() + (long)std::min(n, pos + 1 + rng() % 32)); break;
      case 6: if (n) std::memset(&b[pos], rng() & 1 ? 0xff : 0, std::min<size_t>(n - pos, 1 + rng() % 8)); break;
    }
  }
}

uint64_t env_or(const char* name, uint64_t fallback) {
  const char* v = std::getenv(name);
  return v && *v ? std::strtoull(v, nullptr, 10) : fallback;
}

}  // namespace

TEST_CASE("nifti fuzz: mutated files either read cleanly or throw ctg::Error") {
  const std::vector<Seed> seeds = make_seeds();
  // The seeds themselves must be valid, or the mutations test nothing.
  for (const Seed& s : seeds) {
    const std::vector<uint8_t> f = s.gzip ? detail::gzip_compress(s.raw.data(), s.raw.size(), 6) : s.raw;
    CHECK_NOTHROW(read_nifti_buffer(f.data(), f.size(), "seed"));
  }
  const uint64_t iters = env_or("CTGRAD_NIFTI_FUZZ_ITERS", 20000);
  std::mt19937_64 rng(env_or("CTGRAD_NIFTI_FUZZ_SEED", 20200301));
  int64_t ok = 0, rejected = 0;
  for (uint64_t it = 0; it < iters; ++it) {
    const Seed& seed = seeds[rng() % seeds.size()];
    std::vector<uint8_t> bytes = seed.raw;
    if (!seed.gzip) {
      mutate(bytes, seed.format, rng);
    } else if (rng() & 1) {  // damage the content, then compress: tests the parser behind zlib
      mutate(bytes, seed.format, rng);
      bytes = detail::gzip_compress(bytes.data(), bytes.size(), 1);
    } else {  // damage the compressed stream itself: tests the gzip error paths
      bytes = detail::gzip_compress(bytes.data(), bytes.size(), 1);
      mutate(bytes, seed.format, rng);
    }
    try {
      const NiftiVolume v = read_nifti_buffer(bytes.data(), bytes.size(), "fuzz");
      // A success must be self-consistent.
      REQUIRE(v.nx >= 1);
      REQUIRE(v.ny >= 1);
      REQUIRE(v.nz >= 1);
      REQUIRE(v.volumes >= 1);
      REQUIRE(v.voxels.size() == (size_t)v.voxel_count());
      REQUIRE(!format_nifti_info(v).empty());
      ++ok;
    } catch (const ctg::Error& e) {
      REQUIRE(std::string(e.what()).rfind("fuzz: ", 0) == 0);  // names the file first
      ++rejected;
    } catch (const std::exception& e) {
      const std::string keep = (std::filesystem::temp_directory_path() / "nifti_fuzz_failure.bin").string();
      std::ofstream(keep, std::ios::binary).write((const char*)bytes.data(), (long)bytes.size());
      FAIL("iteration " << it << ": non-ctg exception " << e.what() << " (input saved as " << keep << ")");
    }
  }
  MESSAGE("nifti fuzz: " << iters << " cases, " << ok << " read, " << rejected << " rejected");
  // Both outcomes must be common, or the mutations are too mild or too wild.
  CHECK(ok > (int64_t)iters / 50);
  CHECK(rejected > (int64_t)iters / 5);
}
