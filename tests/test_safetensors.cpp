// safetensors reader/writer: round trips, the Python writer's exact layout,
// the third-party fixtures in shared/, F16/BF16 widening, malformed files and
// the atomic save.
#include <doctest/doctest.h>
#include <unistd.h>

#include <cmath>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <limits>
#include <set>

#include "engine/safetensors.h"
#include "tests/test_util.h"

using namespace ctg;
namespace fs = std::filesystem;

namespace {

// A fresh directory per test case, removed at the end.
using ctg::test::TempDir;

std::string read_bytes(const std::string& path) {
  std::ifstream f(path, std::ios::binary);
  return std::string(std::istreambuf_iterator<char>(f), {});
}

void write_bytes(const std::string& path, const std::string& bytes) {
  std::ofstream(path, std::ios::binary) << bytes;
}

std::string u64_le(uint64_t v) {
  std::string s(8, '\0');
  for (int i = 0; i < 8; ++i) s[i] = char((v >> (8 * i)) & 0xff);
  return s;
}

// A file with the given header text and `data_bytes` bytes of buffer (0x5a).
std::string craft(const std::string& header, size_t data_bytes) {
  return u64_le(header.size()) + header + std::string(data_bytes, '\x5a');
}

uint32_t bits(float f) {
  uint32_t b;
  std::memcpy(&b, &f, 4);
  return b;
}

const NamedTensor& find(const SafetensorsFile& f, const std::string& name) {
  for (const NamedTensor& nt : f.tensors)
    if (nt.name == name) return nt;
  throw Error("test: no tensor named " + name);
}

std::vector<std::string> names_of(const SafetensorsFile& f) {
  std::vector<std::string> v;
  for (const NamedTensor& nt : f.tensors) v.push_back(nt.name);
  return v;
}

bool same_bytes(const Tensor& a, const Tensor& b) {
  return a.dtype() == b.dtype() && a.shape() == b.shape() &&
         std::memcmp(a.raw_data(), b.raw_data(), a.nbytes()) == 0;
}

std::string fixture(const std::string& name) {
  return std::string(CTGRAD_SOURCE_DIR) + "/../shared/fixtures/weights/" + name;
}

}  // namespace

TEST_CASE("safetensors: round trip f32/f64/i64 bit for bit, metadata kept") {
  TempDir tmp;
  Tensor w = Tensor::from_vector({1.5, -0.0, 1e-40, 3.25e38, -7, 0.1}, {2, 3}, DType::f32);
  w.data<float>()[5] = std::numeric_limits<float>::quiet_NaN();
  Tensor scalar = Tensor::from_vector({-2.718281828459045}, {}, DType::f64);
  Tensor steps = Tensor::from_vector({7504}, {}, DType::i64);
  Tensor idx = Tensor::empty({3}, DType::i64);
  idx.data<int64_t>()[0] = std::numeric_limits<int64_t>::min();
  idx.data<int64_t>()[1] = (int64_t(1) << 53) + 1;  // not representable as a double
  idx.data<int64_t>()[2] = -1;
  Tensor x4 = Tensor::from_vector({1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12}, {2, 1, 3, 2}, DType::f64);
  Tensor b = Tensor::from_vector({0.5, -0.25, 1e-3, 4, 5}, {5}, DType::f32);
  Tensor none = Tensor::empty({0, 3}, DType::f32);
  const std::vector<NamedTensor> given = {{"w", w},         {"scalar", scalar}, {"steps", steps},
                                          {"idx", idx},     {"x4", x4},         {"b", b},
                                          {"empty", none}};
  const std::map<std::string, std::string> meta = {{"format", "pt"}, {"epoch", "12"}, {"note", "ünï"}};
  const std::string p = tmp / "model.safetensors";
  save_safetensors(p, given, meta);
  SafetensorsFile f = load_safetensors(p);

  // The Python writer's order: I64 then F64 then F32, by name within each.
  CHECK(names_of(f) == std::vector<std::string>{"idx", "steps", "scalar", "x4", "b", "empty", "w"});
  for (const NamedTensor& g : given) {
    CAPTURE(g.name);
    const NamedTensor& got = find(f, g.name);
    CHECK(same_bytes(got.tensor, g.tensor));
    CHECK(got.source_dtype == (g.tensor.dtype() == DType::f32   ? "F32"
                               : g.tensor.dtype() == DType::f64 ? "F64"
                                                                : "I64"));
  }
  CHECK(find(f, "scalar").tensor.dim() == 0);
  CHECK(std::isnan(find(f, "w").tensor.data<float>()[5]));
  CHECK(find(f, "idx").tensor.data<int64_t>()[1] == (int64_t(1) << 53) + 1);
  CHECK(f.metadata == meta);

  // The input order does not matter, and saving what was loaded reproduces
  // the file byte for byte.
  std::vector<NamedTensor> reversed(given.rbegin(), given.rend());
  save_safetensors(tmp / "reversed.safetensors", reversed, meta);
  CHECK(read_bytes(tmp / "reversed.safetensors") == read_bytes(p));
  save_safetensors(tmp / "again.safetensors", f.tensors, f.metadata);
  CHECK(read_bytes(tmp / "again.safetensors") == read_bytes(p));
}

TEST_CASE("safetensors: bytes follow the Python writer's layout") {
  TempDir tmp;
  // Derived by hand from the format's rules: "__metadata__" first, then the
  // tensors by descending dtype (I64 before F32) and name, compact JSON, each
  // entry's fields in the order dtype, shape, data_offsets, and spaces up to a
  // multiple of 8 bytes (138 -> 144).
  const std::string header =
      R"({"__metadata__":{"format":"pt"},"b":{"dtype":"I64","shape":[],"data_offsets":[0,8]},)"
      R"("a":{"dtype":"F32","shape":[2],"data_offsets":[8,16]}})"
      "      ";
  REQUIRE(header.size() == 144);
  save_safetensors(tmp / "t.safetensors",
                   {{"a", Tensor::from_vector({1, 2}, {2})},
                    {"b", Tensor::from_vector({7}, {}, DType::i64)}},
                   {{"format", "pt"}});
  const std::string data = std::string("\x07\0\0\0\0\0\0\0", 8) +  // int64 7
                           std::string("\0\0\x80\x3f\0\0\0\x40", 8);  // float 1, 2
  CHECK(read_bytes(tmp / "t.safetensors") == u64_le(144) + header + data);

  // No tensors, no metadata: "{}" and six spaces.
  save_safetensors(tmp / "empty.safetensors", {});
  CHECK(read_bytes(tmp / "empty.safetensors") == u64_le(8) + "{}      ");
  CHECK(load_safetensors(tmp / "empty.safetensors").tensors.empty());
}

TEST_CASE("safetensors: reads the mnist fixture written by Python, re-saves it byte for byte") {
  const std::string p = fixture("mnist.safetensors");
  SafetensorsFile f = load_safetensors(p);
  REQUIRE(f.tensors.size() == 20);
  CHECK(f.metadata.empty());
  const std::vector<std::string> first = {"norm1.num_batches_tracked", "norm2.num_batches_tracked",
                                          "conv1.bias", "conv1.weight", "conv2.bias"};
  const std::vector<std::string> names = names_of(f);
  CHECK(std::vector<std::string>(names.begin(), names.begin() + 5) == first);
  CHECK(f.tensors.back().name == "norm2.weight");

  // Values read independently with Python's struct module from the raw file.
  const Tensor& nbt = find(f, "norm1.num_batches_tracked").tensor;
  CHECK(nbt.dtype() == DType::i64);
  CHECK(nbt.dim() == 0);
  CHECK(nbt.data<int64_t>()[0] == 7504);
  CHECK(find(f, "norm2.num_batches_tracked").tensor.data<int64_t>()[0] == 7504);
  const NamedTensor& c1b = find(f, "conv1.bias");
  CHECK(c1b.source_dtype == "F32");
  CHECK(c1b.tensor.shape() == Shape{8});
  CHECK(bits(c1b.tensor.data<float>()[0]) == 0x3dde4c89u);
  CHECK(c1b.tensor.data<float>()[7] == (float)0.08375561237335205);
  const Tensor& c1w = find(f, "conv1.weight").tensor;
  CHECK(c1w.shape() == Shape{8, 1, 3, 3});
  CHECK(bits(c1w.data<float>()[0]) == 0x3e29cc00u);
  CHECK(c1w.data<float>()[1] == (float)-0.2239944338798523);
  CHECK(find(f, "conv2.weight").tensor.shape() == Shape{16, 8, 3, 3});
  CHECK(find(f, "conv3.weight").tensor.shape() == Shape{24, 16, 3, 3});
  const Tensor& fc1 = find(f, "fc1.weight").tensor;
  CHECK(fc1.shape() == Shape{32, 11616});
  CHECK(bits(fc1.data<float>()[0]) == 0xb9704e3eu);
  CHECK(fc1.data<float>()[fc1.numel() - 1] == (float)-0.0007706402102485299);
  CHECK(find(f, "fc2.weight").tensor.shape() == Shape{10, 32});
  const Tensor& rv = find(f, "norm2.running_var").tensor;
  CHECK(rv.shape() == Shape{10});
  CHECK(rv.data<float>()[0] == (float)54.63916778564453);
  CHECK(rv.data<float>()[9] == (float)57.317588806152344);

  // The fixture came from the Python writer; ours must produce the same bytes.
  TempDir tmp;
  save_safetensors(tmp / "mnist.safetensors", f.tensors, f.metadata);
  CHECK(read_bytes(tmp / "mnist.safetensors") == read_bytes(p));
}

TEST_CASE("safetensors: reads the multi_layer fixture written by Python, re-saves it byte for byte") {
  const std::string p = fixture("multi_layer.safetensors");
  SafetensorsFile f = load_safetensors(p);
  CHECK(names_of(f) == std::vector<std::string>{"norm1.num_batches_tracked", "conv1.bias",
                                                "conv1.weight", "fc1.bias", "fc1.weight",
                                                "norm1.bias", "norm1.running_mean",
                                                "norm1.running_var", "norm1.weight"});
  CHECK(find(f, "norm1.num_batches_tracked").tensor.data<int64_t>()[0] == 1);
  const Tensor& cw = find(f, "conv1.weight").tensor;
  CHECK(cw.shape() == Shape{4, 3, 3, 3});
  CHECK(cw.data<float>()[0] == (float)0.09916245192289352);
  CHECK(cw.data<float>()[26 + 27 * 3] == (float)0.010049121454358101);
  CHECK(find(f, "fc1.weight").tensor.shape() == Shape{16, 256});
  CHECK(find(f, "norm1.weight").tensor.to_vector() == std::vector<double>{1, 1, 1, 1});
  CHECK(find(f, "norm1.bias").tensor.to_vector() == std::vector<double>{0, 0, 0, 0});
  CHECK(find(f, "norm1.running_var").tensor.data<float>()[3] == (float)0.9031827449798584);

  TempDir tmp;
  save_safetensors(tmp / "m.safetensors", f.tensors);
  CHECK(read_bytes(tmp / "m.safetensors") == read_bytes(p));
}

TEST_CASE("safetensors: F16 and BF16 widen to float32") {
  TempDir tmp;
  // Bit patterns and their values from the IEEE 754 binary16 and bfloat16 definitions.
  const uint16_t h[7] = {0x3c00, 0xc000, 0x7bff, 0x0001, 0x7c00, 0x8000, 0x7e00};
  const uint16_t bf[3] = {0x3f80, 0xc0a0, 0x4049};
  const std::string header =
      R"({"h":{"dtype":"F16","shape":[7],"data_offsets":[0,14]},)"
      R"("bf":{"dtype":"BF16","shape":[3],"data_offsets":[14,20]}})";
  const std::string p = tmp / "half.safetensors";
  write_bytes(p, u64_le(header.size()) + header + std::string((const char*)h, 14) +
                     std::string((const char*)bf, 6));
  SafetensorsFile f = load_safetensors(p);
  const NamedTensor& th = find(f, "h");
  CHECK(th.source_dtype == "F16");
  REQUIRE(th.tensor.dtype() == DType::f32);
  const float* v = th.tensor.data<float>();
  CHECK(v[0] == 1.0f);
  CHECK(v[1] == -2.0f);
  CHECK(v[2] == 65504.0f);
  CHECK(v[3] == std::ldexp(1.0f, -24));  // smallest subnormal
  CHECK(v[4] == std::numeric_limits<float>::infinity());
  CHECK(bits(v[5]) == 0x80000000u);  // -0
  CHECK(std::isnan(v[6]));
  const NamedTensor& tb = find(f, "bf");
  CHECK(tb.source_dtype == "BF16");
  CHECK(tb.tensor.to_vector() == std::vector<double>{1.0, -5.0, 3.140625});
}

namespace {
// Load `p`, expect a ctg::Error whose message starts with the path and
// contains every word in `words`.
void check_rejected(const std::string& p, const std::vector<std::string>& words) {
  std::string msg;
  CHECK_THROWS_AS(
      {
        try {
          load_safetensors(p);
        } catch (const Error& e) {
          msg = e.what();
          throw;
        }
      },
      Error);
  CAPTURE(msg);
  CHECK(msg.rfind(p + ": ", 0) == 0);
  for (const std::string& w : words) CHECK(msg.find(w) != std::string::npos);
}
}  // namespace

TEST_CASE("safetensors: malformed files are rejected with a clear message") {
  TempDir tmp;
  const std::string good = R"({"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]}})";
  int n = 0;
  auto file = [&](const std::string& bytes) {
    const std::string p = tmp / ("bad" + std::to_string(n++) + ".safetensors");
    write_bytes(p, bytes);
    return p;
  };
  auto entry = [](const std::string& name, const std::string& body) {
    return "\"" + name + "\":{" + body + "}";
  };

  SUBCASE("truncated to 4 bytes") { check_rejected(file(craft(good, 8).substr(0, 4)), {"4 bytes", "shorter"}); }
  SUBCASE("header length beyond the file") {
    check_rejected(file(u64_le(1000) + good + std::string(8, '\0')), {"header length 1000", "exceeds"});
  }
  SUBCASE("absurd header length") {
    check_rejected(file(u64_le(uint64_t(1) << 40) + good), {"100 MB"});
  }
  SUBCASE("invalid JSON") { check_rejected(file(craft(R"({"a":{"dtype":)", 8)), {"not valid JSON"}); }
  SUBCASE("header not an object") { check_rejected(file(craft("[1,2]", 0)), {"not a JSON object"}); }
  SUBCASE("missing data_offsets") {
    check_rejected(file(craft(R"({"a":{"dtype":"F32","shape":[2]}})", 8)),
                   {"tensor 'a'", "missing field 'data_offsets'"});
  }
  SUBCASE("shape of the wrong JSON type") {
    check_rejected(file(craft(R"({"a":{"dtype":"F32","shape":"2","data_offsets":[0,8]}})", 8)),
                   {"tensor 'a'", "'shape' is not an array"});
  }
  SUBCASE("negative shape") {
    check_rejected(file(craft(R"({"a":{"dtype":"F32","shape":[-2],"data_offsets":[0,8]}})", 8)),
                   {"tensor 'a'", "shape dim 0 is -2", "non-negative"});
  }
  SUBCASE("non-integer shape") {
    check_rejected(file(craft(R"({"a":{"dtype":"F32","shape":[2.5],"data_offsets":[0,8]}})", 8)),
                   {"tensor 'a'", "shape dim 0", "integers"});
  }
  SUBCASE("offsets end beyond the buffer") {
    check_rejected(file(craft(R"({"a":{"dtype":"F32","shape":[100],"data_offsets":[0,400]}})", 8)),
                   {"tensor 'a'", "[0, 400]", "beyond the 8-byte data buffer"});
  }
  SUBCASE("offsets that disagree with the shape") {
    check_rejected(file(craft(R"({"a":{"dtype":"F32","shape":[3],"data_offsets":[0,8]}})", 8)),
                   {"tensor 'a'", "hold 8 bytes", "[3] of F32 needs 12"});
  }
  SUBCASE("offsets with begin > end") {
    check_rejected(file(craft(R"({"a":{"dtype":"F32","shape":[2],"data_offsets":[8,0]}})", 8)),
                   {"tensor 'a'", "begin > end"});
  }
  SUBCASE("unknown dtype") {
    check_rejected(file(craft(R"({"a":{"dtype":"F33","shape":[2],"data_offsets":[0,8]}})", 8)),
                   {"tensor 'a'", "unknown dtype 'F33'"});
  }
  SUBCASE("known but unsupported dtype") {
    check_rejected(file(craft(R"({"q":{"dtype":"I8","shape":[8],"data_offsets":[0,8]}})", 8)),
                   {"tensor 'q'", "I8", "not supported"});
  }
  SUBCASE("more than 4 dims") {
    check_rejected(file(craft(R"({"a":{"dtype":"F32","shape":[1,1,1,1,2],"data_offsets":[0,8]}})", 8)),
                   {"tensor 'a'", "5 dims", "at most 4"});
  }
  SUBCASE("overlapping tensors") {
    const std::string h = "{" + entry("a", R"("dtype":"F32","shape":[2],"data_offsets":[0,8])") + "," +
                          entry("b", R"("dtype":"F32","shape":[2],"data_offsets":[4,12])") + "}";
    check_rejected(file(craft(h, 12)), {"tensor 'b' overlaps tensor 'a'"});
  }
  SUBCASE("hole in the buffer") {
    const std::string h = "{" + entry("a", R"("dtype":"F32","shape":[1],"data_offsets":[0,4])") + "," +
                          entry("b", R"("dtype":"F32","shape":[1],"data_offsets":[8,12])") + "}";
    check_rejected(file(craft(h, 12)), {"tensor 'b'", "hole of 4 bytes"});
  }
  SUBCASE("trailing bytes no tensor covers") {
    check_rejected(file(craft(good, 12)), {"4 trailing bytes"});
  }
  SUBCASE("duplicate tensor name") {
    const std::string body = R"("dtype":"F32","shape":[1],"data_offsets":[0,4])";
    check_rejected(file(craft("{" + entry("a", body) + "," + entry("a", body) + "}", 4)),
                   {"duplicate tensor name 'a'"});
  }
  SUBCASE("duplicate field in an entry") {
    check_rejected(file(craft(R"({"a":{"dtype":"F32","dtype":"F64","shape":[1],"data_offsets":[0,4]}})", 4)),
                   {"duplicate key 'dtype' in 'a'"});
  }
  SUBCASE("metadata value that is not a string") {
    check_rejected(file(craft(R"({"__metadata__":{"epoch":3}})", 0)), {"__metadata__", "'epoch'", "not a string"});
  }
  SUBCASE("missing file") { check_rejected(tmp / "nope.safetensors", {"cannot open"}); }
}

TEST_CASE("safetensors: save is atomic and fails cleanly") {
  TempDir tmp;
  const std::string p = tmp / "ckpt.safetensors";
  save_safetensors(p, {{"a", Tensor::from_vector({1, 2, 3}, {3})}});
  CHECK(tmp.listing() == std::set<std::string>{"ckpt.safetensors"});

  // Saving over an existing file replaces it.
  save_safetensors(p, {{"b", Tensor::from_vector({4, 5}, {2}, DType::f64)}}, {{"k", "v"}});
  CHECK(tmp.listing() == std::set<std::string>{"ckpt.safetensors"});
  SafetensorsFile f = load_safetensors(p);
  REQUIRE(names_of(f) == std::vector<std::string>{"b"});
  CHECK(f.tensors[0].tensor.to_vector() == std::vector<double>{4, 5});
  CHECK(f.metadata.at("k") == "v");

  // Into a directory that does not exist: a clear error, nothing created.
  const std::string missing = tmp / "no_such_dir/x.safetensors";
  const std::string expected = missing + ": cannot create temporary file";
  CHECK_THROWS_WITH_AS(save_safetensors(missing, {{"a", Tensor::from_vector({1}, {1})}}),
                       doctest::Contains(expected.c_str()), Error);
  CHECK(tmp.listing() == std::set<std::string>{"ckpt.safetensors"});

  // The target is a directory: the rename fails after the temporary was
  // written, and the temporary must be cleaned up.
  fs::create_directory(tmp / "adir");
  CHECK_THROWS_WITH_AS(save_safetensors(tmp / "adir", {{"a", Tensor::from_vector({1}, {1})}}),
                       doctest::Contains("cannot rename"), Error);
  CHECK(tmp.listing() == std::set<std::string>{"adir", "ckpt.safetensors"});

  // Rejected input leaves the existing checkpoint untouched.
  const std::string before = read_bytes(p);
  CHECK_THROWS_WITH_AS(save_safetensors(p, {{"a", Tensor()}}), doctest::Contains("undefined tensor"), Error);
  CHECK_THROWS_WITH_AS(save_safetensors(p, {{"a", Tensor::zeros({1})}, {"a", Tensor::zeros({2})}}),
                       doctest::Contains("duplicate tensor name 'a'"), Error);
  CHECK_THROWS_WITH_AS(save_safetensors(p, {{"__metadata__", Tensor::zeros({1})}}),
                       doctest::Contains("reserved"), Error);
  CHECK(read_bytes(p) == before);
  CHECK(tmp.listing() == std::set<std::string>{"adir", "ckpt.safetensors"});
}
