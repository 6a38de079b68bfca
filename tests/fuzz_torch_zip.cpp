// Seeded mutation test of the torch.save loader (zip reader, restricted
// unpickler, tensor materialisation). Seeds are the PyTorch-written fixtures
// plus hand-made archives (views, protocol 4, zip64 + deflate). Each case
// damages one of three layers and loads the result, which must either
// succeed or throw ctg::Error; anything else (another exception, a crash, a
// sanitizer report in an instrumented build) is a bug:
//  - the file bytes (bit flips, byte stores, truncation, insertion, deletion):
//    exercises the zip directory checks (most data damage ends at the CRC);
//  - data.pkl inside the archive, re-zipped with a correct CRC: exercises the
//    unpickler (opcodes swapped for interesting ones, lengths, memo indices)
//    and the tensor checks behind it;
//  - a storage entry, re-zipped shorter or longer.
// ctest runs 4,000 cases (about a second). For a long run, e.g. under
// -fsanitize=address,undefined:
//   CTGRAD_TORCH_FUZZ_ITERS=200000 CTGRAD_TORCH_FUZZ_SEED=5 ./ctgrad_tests -tc='torch zip fuzz*'
// A failing case is saved as torch_fuzz_failure.pt in the temp directory.
#include <doctest/doctest.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <random>

#include "interop/torch_zip.h"
#include "interop/weights.h"
#include "tests/torch_file_util.h"

using namespace ctg;
using namespace ctg::interop;
using namespace ctg::test;

namespace {

struct Seed {
  std::string file;
  std::vector<ZipItem> items;  // its entries, for re-zipping after damage inside
  bool zip64 = false;
};

Seed from_fixture(const std::string& name) {
  Seed s;
  s.file = read_file(weights_fixture(name));
  const ZipReader z(bytes_of(s.file), name);
  for (const ZipEntry& e : z.entries()) {
    const std::vector<uint8_t> b = z.read(e);
    s.items.push_back({e.name, std::string(b.begin(), b.end())});
  }
  return s;
}

Seed made_here() {  // a view at an offset, two dtypes, deflate, zip64
  PickleWriter p;
  p.op('}').op('(').str("a").tensor("FloatStorage", "0", 6, 1, {2, 2}, {1, 2});
  p.str("n").tensor("LongStorage", "1", 1, 0, {}, {}).str("e").integer(7).op('u').op('.');
  Seed s;
  s.items = {{"m/data.pkl", p.b, true},
             {"m/byteorder", "little"},
             {"m/data/0", raw_bytes(std::vector<float>{1, 2, 3, 4, 5, 6}), true},
             {"m/data/1", raw_bytes(std::vector<int64_t>{3})}};
  s.zip64 = true;
  s.file = make_zip(s.items, true);
  return s;
}

// Bytes that mean something to the unpickler: opcodes, lengths, edge values.
const uint8_t kInteresting[] = {'(', ')', '.', '0', '1', 'K', 'M', 'J', 'X', 'q', 'r', 'h', 'j', 'c', 'R', 'b',
                                'Q', 't', 's', 'u', 'a', 'e', '}', ']', 0x80, 0x85, 0x86, 0x87, 0x88, 0x89, 0x8a,
                                0x8c, 0x93, 0x94, 0x95, 0x00, 0x01, 0x7f, 0xff, 0xfe, '\n'};

void mutate(std::string& b, std::mt19937_64& rng) {
  auto pick = [&](size_t n) { return n ? (size_t)(rng() % n) : 0; };
  const int edits = 1 + (int)pick(4);
  for (int k = 0; k < edits; ++k) {
    const size_t at = pick(b.size() + 1);
    switch (pick(7)) {
      case 0: if (at < b.size()) b[at] ^= char(1u << pick(8)); break;
      case 1: if (at < b.size()) b[at] = (char)kInteresting[pick(sizeof kInteresting)]; break;
      case 2: if (at < b.size()) b[at] = (char)rng(); break;
      case 3: b.resize(at); break;
      case 4: b.insert(at, 1 + pick(8), (char)kInteresting[pick(sizeof kInteresting)]); break;
      case 5: if (at < b.size()) b.erase(at, 1 + pick(16)); break;
      default: {  // duplicate a short run elsewhere
        if (b.empty()) break;
        const size_t from = pick(b.size()), n = 1 + pick(std::min<size_t>(32, b.size() - from));
        b.insert(at, b.substr(from, n));
      }
    }
  }
}

}  // namespace

TEST_CASE("torch zip fuzz: mutated archives load or give ctg::Error, never crash") {
  std::vector<Seed> seeds;
  for (const char* f : {"float16.pt", "bfloat16.pt", "checkpoint.pt", "complex_nested.pt"}) seeds.push_back(from_fixture(f));
  seeds.push_back(made_here());
  const char* it_env = std::getenv("CTGRAD_TORCH_FUZZ_ITERS");
  const char* seed_env = std::getenv("CTGRAD_TORCH_FUZZ_SEED");
  const long iters = it_env ? std::atol(it_env) : 4000;
  std::mt19937_64 rng(seed_env ? std::strtoull(seed_env, nullptr, 10) : 1);
  long loaded = 0, refused = 0;
  for (long i = 0; i < iters; ++i) {
    const Seed& s = seeds[rng() % seeds.size()];
    std::string bytes;
    const int layer = (int)(rng() % 3);
    if (layer == 0) {
      bytes = s.file;
      mutate(bytes, rng);
    } else {
      std::vector<ZipItem> items = s.items;
      std::vector<size_t> targets;
      for (size_t k = 0; k < items.size(); ++k) {
        const std::string& n = items[k].name;
        if (layer == 1 ? n.size() >= 8 && n.compare(n.size() - 8, 8, "data.pkl") == 0 : n.find("/data/") != std::string::npos)
          targets.push_back(k);
      }
      if (!targets.empty()) mutate(items[targets[rng() % targets.size()]].data, rng);
      bytes = make_zip(items, s.zip64);
    }
    try {
      const LoadedWeights w = load_torch_zip(bytes_of(bytes), "fuzz.pt");
      for (const NamedTensor& t : w.tensors) REQUIRE(t.tensor.numel() >= 0);
      ++loaded;
    } catch (const Error&) {
      ++refused;
    } catch (const std::exception& e) {
      const std::string path = (std::filesystem::temp_directory_path() / "torch_fuzz_failure.pt").string();
      std::ofstream(path, std::ios::binary) << bytes;
      FAIL("case " << i << " (layer " << layer << "): " << e.what() << "; input saved to " << path);
    }
  }
  MESSAGE("torch zip fuzz: " << loaded << " loaded, " << refused << " refused");
  CHECK(loaded + refused == iters);
  CHECK(refused > 0);
}
