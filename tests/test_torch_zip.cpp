// The zip reader and the restricted unpickler: PyTorch's real archives, zips
// written here (deflate, zip64), hand-made torch.save files (big-endian,
// strided views, protocol 4, other dtypes) and what must be refused
// (truncation, bad CRC, forbidden opcodes and globals, short storages).
#include <doctest/doctest.h>

#include <cstring>

#include "interop/torch_zip.h"
#include "interop/unpickle.h"
#include "interop/weights.h"
#include "tests/test_util.h"
#include "tests/torch_file_util.h"

using namespace ctg;
using namespace ctg::interop;
using namespace ctg::test;

namespace {

LoadedWeights load_bytes(const std::string& b) { return load_torch_zip(bytes_of(b), "mem.pt"); }
std::string load_error(const std::string& b) { return error_of([&] { load_bytes(b); }); }
std::string unpickle_error(const std::string& p) {
  return error_of([&] { unpickle((const uint8_t*)p.data(), p.size(), "t.pkl"); });
}

// {'w': float32 tensor of `vals`} as a whole torch.save archive.
std::string one_tensor_zip(const std::vector<float>& vals, const std::vector<int64_t>& size,
                           const std::vector<int64_t>& stride, int64_t offset = 0, int64_t numel = -1) {
  PickleWriter p;
  p.op('}').op('(').str("w").tensor("FloatStorage", "0", numel < 0 ? (int64_t)vals.size() : numel, offset, size, stride);
  p.op('u').op('.');
  return torch_zip(p.b, {{"0", raw_bytes(vals)}});
}

}  // namespace

TEST_CASE("torch_zip: the directory of a PyTorch archive") {
  const ZipReader z = ZipReader::open(weights_fixture("mnist.pt"));
  REQUIRE(z.entries().size() == 24);
  CHECK(z.entries()[0].name == "mnist/data.pkl");
  const ZipEntry* big = z.find("mnist/data/11");
  REQUIRE(big);
  CHECK(big->size == 1486848);
  CHECK(big->method == 0);
  CHECK(big->data_offset % 64 == 0);  // PyTorch's "FB" padding aligns storages
  CHECK(z.read("mnist/byteorder") == bytes_of("little"));
  CHECK(z.read("mnist/data.pkl").size() == 1781);
  for (const ZipEntry& e : z.entries()) CHECK(z.read(e).size() == e.size);  // every CRC checks
  const ZipReader c = ZipReader::open(weights_fixture("checkpoint.pt"));
  CHECK(c.read("checkpoint/.format_version") == bytes_of("1"));
  CHECK(c.find("checkpoint/.storage_alignment"));
  CHECK(error_of([&] { c.read("checkpoint/nope"); }) == weights_fixture("checkpoint.pt") + ": zip: no entry 'checkpoint/nope'");
}

TEST_CASE("torch_zip: deflate and zip64 archives") {
  std::string text(5000, 'a');
  for (size_t i = 0; i < text.size(); i += 7) text[i] = char('a' + i % 23);
  for (bool zip64 : {false, true}) {
    const std::string z = make_zip({{"x/stored", "hello"}, {"x/deflated", text, true}, {"x/empty", "", true}}, zip64);
    const ZipReader r(bytes_of(z), "t.zip");
    REQUIRE(r.entries().size() == 3);
    CHECK(r.find("x/deflated")->method == 8);
    CHECK(r.find("x/deflated")->compressed_size < text.size());
    CHECK(r.read("x/stored") == bytes_of("hello"));
    CHECK(r.read("x/deflated") == bytes_of(text));
    CHECK(r.read("x/empty").empty());
  }
}

TEST_CASE("torch_zip: corrupt archives are refused with the entry named") {
  const std::string good = make_zip({{"a/data.pkl", "0123456789"}, {"a/z", std::string(300, 'z'), true}});
  std::string crc = good;
  crc[30 + 10 + 3] ^= 1;  // a data byte of the first entry
  CHECK(error_of([&] { ZipReader(bytes_of(crc), "t.zip").read("a/data.pkl"); }) ==
        "t.zip: zip: entry 'a/data.pkl': CRC-32 mismatch (corrupt data)");
  CHECK(contains(error_of([&] { ZipReader(bytes_of("PK\3\4 not really"), "t.zip"); }), "too short"));
  CHECK(contains(error_of([&] { ZipReader(bytes_of(std::string(100, 'x')), "t.zip"); }), "no end-of-central-directory"));
  std::string method = good;
  const size_t cd = good.find("PK\1\2");
  method[cd + 10] = 12;  // bzip2
  CHECK(contains(error_of([&] { ZipReader(bytes_of(method), "t.zip"); }), "compression method 12 is not supported"));
  std::string offset = good;
  offset[cd + 42] = 0x7f;  // local header offset into nowhere
  CHECK(contains(error_of([&] { ZipReader(bytes_of(offset), "t.zip"); }), "entry 'a/data.pkl': no local header"));
  std::string inflate = good;
  inflate[good.find("a/z") + 3 + 2] ^= 0x55;  // inside the deflate stream
  CHECK(contains(error_of([&] { ZipReader(bytes_of(inflate), "t.zip").read("a/z"); }), "entry 'a/z': "));
}

TEST_CASE("torch_zip: a truncated archive at any length is a clear error") {
  const std::string f = read_file(weights_fixture("float16.pt"));
  for (size_t n = 0; n < f.size(); ++n) {
    const std::string e = load_error(f.substr(0, n));
    CHECK_MESSAGE(contains(e, "mem.pt: "), "length " << n << ": " << e);
  }
  const std::string m = read_file(weights_fixture("mnist.pt"));
  for (size_t n = 0; n < m.size(); n += 9973) CHECK(contains(load_error(m.substr(0, n)), "mem.pt: zip: "));
}

TEST_CASE("unpickle: opcodes and globals outside the allow-list are refused with their byte offset") {
  CHECK(unpickle_error(std::string("\x80\x02") + "cos\nsystem\n") ==
        "t.pkl: byte 2: GLOBAL (0x63): global 'os.system' is not allowed (only what a state dict holds)");
  CHECK(contains(unpickle_error(std::string("\x80\x02") + "\x8c\x08" "builtins\x8c\x04" "eval\x93"),
                 "byte 18: STACK_GLOBAL (0x93): global 'builtins.eval' is not allowed"));
  CHECK(unpickle_error(std::string("\x80\x02}(X\1\0\0\0ai", 11)) ==
        "t.pkl: byte 10: INST (0x69): is not allowed in a state dict");
  CHECK(contains(unpickle_error(std::string("\x80\x02)\x81.", 5)), "byte 3: NEWOBJ (0x81): is not allowed"));
  CHECK(contains(unpickle_error(std::string("\x80\x02}", 3)), "pickle ends without STOP"));
  CHECK(contains(unpickle_error(std::string("\x80\x02X\xff\0\0\0ab", 9)), "byte 2: BINUNICODE (0x58): truncated"));
  CHECK(contains(unpickle_error(std::string("\x80\x02h\x05.", 5)), "memo key 5 was never stored"));
  CHECK(contains(unpickle_error(std::string("\x80\x02s.", 4)), "byte 2: SETITEM (0x73): stack underflow"));
  CHECK(contains(unpickle_error("\x80\x02" "ccollections\nOrderedDict\n)R" "ctorch\nFloatStorage\n)R."),
                 "global 'torch.FloatStorage' cannot be called"));
  // A mutated opcode inside a real state dict: the first BINPUT becomes PERSID.
  const ZipReader z = ZipReader::open(weights_fixture("checkpoint.pt"));
  std::vector<uint8_t> pkl = z.read("checkpoint/data.pkl");
  REQUIRE(pkl[3] == 'q');
  pkl[3] = 'P';
  CHECK(contains(error_of([&] { unpickle(pkl.data(), pkl.size(), "c.pkl"); }), "c.pkl: byte 3: PERSID (0x50): is not allowed"));
}

TEST_CASE("unpickle: the value tree of a training checkpoint") {
  const ZipReader z = ZipReader::open(weights_fixture("checkpoint.pt"));
  const std::vector<uint8_t> pkl = z.read("checkpoint/data.pkl");
  const Pickle p = unpickle(pkl.data(), pkl.size(), "c.pkl");
  std::vector<PickleLeaf> tensors, others;
  flatten(p, p.root, "", tensors, others, "c.pkl");
  REQUIRE(tensors.size() == 5);
  CHECK(tensors[0].key == "model_state_dict.fc1.weight");
  CHECK(tensors[4].key == "optimizer_state_dict.state.0.momentum_buffer");
  const TensorInfo& t = p[tensors[0].value].tensor;
  CHECK(t.dtype == "float32");
  CHECK(t.size == std::vector<int64_t>{10, 5});
  CHECK(t.stride == std::vector<int64_t>{5, 1});
  CHECK(p[t.storage].storage.key == "0");
  CHECK(p[t.storage].storage.location == "cpu");
  CHECK(p[t.storage].storage.numel == 50);
  REQUIRE(others.size() == 2);
  CHECK(others[0].key == "epoch");
  CHECK(describe(p, others[0].value) == "int 42");
  CHECK(describe(p, others[1].value) == "float 0.123");
}

TEST_CASE("torch files made here: views, shared storages, dtypes, big-endian, protocol 4") {
  // A transposed view [3,2] of [[0,1,2],[3,4,5]] and a slice at offset 2 of the same storage.
  PickleWriter p;
  p.op('}').op('(').str("t").tensor("FloatStorage", "0", 6, 0, {3, 2}, {1, 3});
  p.str("s").tensor("FloatStorage", "0", 6, 2, {3}, {1}, "cuda:1");
  p.str("i").tensor("IntStorage", "1", 2, 0, {2}, {1});
  p.str("b").tensor("BoolStorage", "2", 2, 0, {2}, {1});
  p.str("d").tensor("DoubleStorage", "3", 1, 0, {}, {});
  p.op('u').op('.');
  const std::map<std::string, std::string> st = {{"0", raw_bytes(std::vector<float>{0, 1, 2, 3, 4, 5})},
                                                 {"1", raw_bytes(std::vector<int32_t>{-7, 70000})},
                                                 {"2", std::string("\1\0", 2)},
                                                 {"3", raw_bytes(std::vector<double>{0.1})}};
  const LoadedWeights w = load_bytes(torch_zip(p.b, st));
  REQUIRE(w.tensors.size() == 5);
  CHECK(w.tensors[0].tensor.to_vector() == std::vector<double>{0, 3, 1, 4, 2, 5});
  CHECK(w.tensors[1].tensor.to_vector() == std::vector<double>{2, 3, 4});
  CHECK(w.tensors[2].tensor.dtype() == DType::i64);
  CHECK(w.tensors[2].source_dtype == "I32");
  CHECK(w.tensors[2].tensor.to_vector() == std::vector<double>{-7, 70000});
  CHECK(w.tensors[3].tensor.to_vector() == std::vector<double>{1, 0});
  CHECK(w.tensors[4].tensor.shape().empty());
  CHECK(w.tensors[4].tensor.item() == (double)0.1f);
  // The same bytes byte-swapped, declared big-endian.
  std::map<std::string, std::string> be = st;
  for (auto& [k, v] : be) {
    const size_t n = k == "0" || k == "1" ? 4 : k == "3" ? 8 : 1;
    for (size_t i = 0; i < v.size(); i += n) std::reverse(v.begin() + i, v.begin() + i + n);
  }
  const LoadedWeights wb = load_bytes(torch_zip(p.b, be, "big"));
  for (size_t i = 0; i < 5; ++i) CHECK(wb.tensors[i].tensor.to_vector() == w.tensors[i].tensor.to_vector());
  CHECK(contains(load_error(torch_zip(p.b, st, "middle")), "byteorder is neither"));
  // Protocol 4 as torch.save(..., pickle_protocol=4) writes it: FRAME, SHORT_BINUNICODE, MEMOIZE, STACK_GLOBAL.
  std::string p4 = std::string("\x80\x04\x95", 3);
  put_le(p4, 0, 8);
  const char body[] = "}\x94(\x8c\x01w\x94\x8c\x0ctorch._utils\x94\x8c\x12_rebuild_tensor_v2\x94\x93\x94((\x8c\x07storage\x94"
        "\x8c\x05torch\x94\x8c\x0c" "FloatStorage\x94\x93\x94\x8c\x01" "0\x94\x8c\x03mps\x94K\x02t\x94QK\x00K\x02\x85"
        "\x94K\x01\x85\x94\x89\x8c\x0b" "collections\x94\x8c\x0bOrderedDict\x94\x93\x94)R\x94t\x94R\x94u.";
  p4.append(body, sizeof body - 1);  // it holds NULs
  const LoadedWeights w4 = load_bytes(torch_zip(p4, {{"0", raw_bytes(std::vector<float>{1.5f, -2})}}));
  REQUIRE(w4.tensors.size() == 1);
  CHECK(w4.tensors[0].tensor.to_vector() == std::vector<double>{1.5, -2});
  // Deflated entries in a zip64 archive with another folder name.
  const std::string z = make_zip({{"other/data.pkl", p.b, true},
                                  {"other/data/0", st.at("0"), true}, {"other/data/1", st.at("1")},
                                  {"other/data/2", st.at("2")}, {"other/data/3", st.at("3")}}, true);
  CHECK(load_bytes(z).tensors[1].tensor.to_vector() == std::vector<double>{2, 3, 4});
}

TEST_CASE("torch files made here: storages that do not hold their tensor are refused") {
  CHECK(load_error(one_tensor_zip({1, 2, 3, 4}, {2, 3}, {3, 1})) ==
        "mem.pt: 'w': storage '0' (4 float32 elements) is shorter than the tensor's offset and strides need");
  CHECK(contains(load_error(one_tensor_zip({1, 2, 3, 4}, {2}, {1}, 3)), "is shorter than the tensor"));
  CHECK(contains(load_error(one_tensor_zip({1, 2, 3, 4}, {1000000000, 1000000000, 1000000000}, {1, 1, 1})),
                 "is shorter than the tensor"));
  CHECK(contains(load_error(one_tensor_zip({1, 2}, {8}, {0})), "has 8 elements but its storage only 2"));
  CHECK(contains(load_error(one_tensor_zip({1, 2, 3, 4}, {4}, {1}, 0, 5)), "storage '0' is declared as 5 x 4 bytes but its entry holds 16"));
  CHECK(contains(load_error(one_tensor_zip({1}, {1, 1, 1, 1, 1}, {1, 1, 1, 1, 1})), "'w': has 5 dims"));
  PickleWriter p;
  p.op('}').op('(').str("w").tensor("FloatStorage", "9", 1, 0, {1}, {1}).op('u').op('.');
  CHECK(load_error(torch_zip(p.b, {})) == "mem.pt: storage '9': no entry archive/data/9 in the archive");
  CHECK(contains(load_error(make_zip({{"a/x", "1"}})), "a zip without ARCHIVE/data.pkl is not a torch.save file"));
  CHECK(contains(load_error(make_zip({{"m/data.pkl", p.b}, {"m/constants.pkl", p.b}})), "TorchScript"));
  CHECK(contains(load_error(torch_zip("\x80\x02K\x01.", {})), "data.pkl holds int 1, not a dict of tensors"));
}
