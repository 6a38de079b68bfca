// Cache file: the writer (over base/atomic_file.h), memory-mapped validating reader.
#include "data/cache.h"

#include <errno.h>
#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <set>

#include "engine/tensor.h"

namespace ctg::data {

namespace {

std::string errno_text() { return std::strerror(errno); }

// The cache is little-endian on disk; every supported host is too, and the
// header check below refuses to run on one that is not rather than misread.
bool host_is_little_endian() {
  const uint16_t one = 1;
  uint8_t b;
  std::memcpy(&b, &one, 1);
  return b == 1;
}

uint64_t fnv1a64(const uint8_t* p, size_t n) {
  uint64_t h = 0xcbf29ce484222325ull;
  for (size_t i = 0; i < n; ++i) h = (h ^ p[i]) * 0x100000001b3ull;
  return h;
}

template <typename T>
void put(std::vector<uint8_t>& b, T v) {
  const size_t at = b.size();
  b.resize(at + sizeof(T));
  std::memcpy(b.data() + at, &v, sizeof(T));
}

// Header field offsets (see cache.h).
enum : size_t {
  kOffVersion = 8, kOffHeaderBytes = 12, kOffSide = 16, kOffDtype = 20, kOffRecords = 24, kOffPatients = 32,
  kOffSplitRecords = 40, kOffDataOffset = 64, kOffDataBytes = 72, kOffIndexOffset = 80, kOffIndexBytes = 88,
  kOffIndexChecksum = 96, kOffFileBytes = 104,
};

std::vector<uint8_t> encode_header(const CacheHeader& h) {
  std::vector<uint8_t> b(kCacheHeaderBytes, 0);
  auto at = [&](size_t off, const void* v, size_t n) { std::memcpy(b.data() + off, v, n); };
  const uint32_t hb = (uint32_t)kCacheHeaderBytes, dt = (uint32_t)h.dtype;
  at(0, kCacheMagic, 8);
  at(kOffVersion, &h.version, 4), at(kOffHeaderBytes, &hb, 4), at(kOffSide, &h.side, 4), at(kOffDtype, &dt, 4);
  at(kOffRecords, &h.records, 8), at(kOffPatients, &h.patients, 8), at(kOffSplitRecords, h.split_records, 24);
  at(kOffDataOffset, &h.data_offset, 8), at(kOffDataBytes, &h.data_bytes, 8);
  at(kOffIndexOffset, &h.index_offset, 8), at(kOffIndexBytes, &h.index_bytes, 8);
  at(kOffIndexChecksum, &h.index_checksum, 8), at(kOffFileBytes, &h.file_bytes, 8);
  return b;
}

}  // namespace

// ------------------------------------------------------------------- dtypes

const char* slice_dtype_name(SliceDType d) { return d == SliceDType::u8 ? "u8" : "f32"; }
size_t slice_dtype_bytes(SliceDType d) { return d == SliceDType::u8 ? 1 : 4; }
SliceDType parse_slice_dtype(const std::string& s, const std::string& flag) {
  if (s == "f32" || s == "float32") return SliceDType::f32;
  if (s == "u8" || s == "uint8") return SliceDType::u8;
  throw Error(flag + ": expected f32 or u8, got '" + s + "'");
}

CacheView parse_cache_view(const std::string& s, const std::string& flag) {
  if (s == "ten") return CacheView::ten;
  if (s == "central") return CacheView::central;
  if (s == "all") return CacheView::all;
  throw Error(flag + ": expected ten, central or all, got '" + s + "'");
}

// --------------------------------------------------------------- CacheWriter

CacheWriter::CacheWriter(const std::string& path, int64_t side, SliceDType dtype) : path_(path), file_(path) {
  if (side <= 0 || side > 65536) throw Error(path + ": side: " + std::to_string(side) + " is out of range");
  h_.side = (uint32_t)side;
  h_.dtype = dtype;
  // A zero header until commit(): a crash leaves only an unreadable temporary.
  std::vector<uint8_t> zeros(kCacheDataOffset, 0);
  file_.write(zeros.data(), zeros.size());
}

void CacheWriter::add(const CacheRecord& r, const float* pixels) {
  const size_t n = (size_t)h_.side * h_.side;
  if (h_.dtype == SliceDType::f32) {
    file_.write(pixels, n * sizeof(float));
  } else {
    buf_.resize(n);
    for (size_t i = 0; i < n; ++i) {
      const float v = std::isfinite(pixels[i]) ? std::min(1.0f, std::max(0.0f, pixels[i])) : 0.0f;
      buf_[i] = (uint8_t)std::lround(v * 255.0f);
    }
    file_.write(buf_.data(), n);
  }
  records_.push_back(r);
}

void CacheWriter::commit() {
  if (!host_is_little_endian()) throw Error(path_ + ": the cache format is little-endian; this host is not");
  if (records_.empty()) throw Error(path_ + ": no slices to write (every patient was skipped?)");
  h_.records = records_.size();
  h_.data_bytes = (uint64_t)records_.size() * h_.side * h_.side * slice_dtype_bytes(h_.dtype);
  std::set<std::string> patients;
  std::vector<uint8_t> idx;
  for (const auto& r : records_) {
    patients.insert(r.patient);
    h_.split_records[(int)r.split]++;
    put<uint32_t>(idx, (uint32_t)r.patient.size());
    idx.insert(idx.end(), r.patient.begin(), r.patient.end());
    put<uint32_t>(idx, (uint32_t)r.source.size());
    idx.insert(idx.end(), r.source.begin(), r.source.end());
    put<uint8_t>(idx, (uint8_t)r.split), put<uint8_t>(idx, (uint8_t)r.label), put<uint8_t>(idx, (uint8_t)r.grade);
    put<uint8_t>(idx, (uint8_t)((r.in_ten ? 1 : 0) | (r.central ? 2 : 0)));
    put<int64_t>(idx, r.z);
  }
  h_.patients = patients.size();
  h_.index_offset = h_.data_offset + h_.data_bytes;
  h_.index_bytes = idx.size();
  h_.index_checksum = fnv1a64(idx.data(), idx.size());
  h_.file_bytes = h_.index_offset + h_.index_bytes;
  file_.write(idx.data(), idx.size());
  const auto hdr = encode_header(h_);
  file_.write_at(hdr.data(), hdr.size(), 0);
  file_.commit();
}

// --------------------------------------------------------------------- Cache

namespace {

struct IndexReader {
  const uint8_t* p;
  size_t n, at = 0;
  const std::string& where;
  template <typename T>
  T get(const char* field) {
    if (n - at < sizeof(T)) throw Error(where + ": " + field + ": index ends early");
    T v;
    std::memcpy(&v, p + at, sizeof(T));
    at += sizeof(T);
    return v;
  }
  std::string str(const char* field) {
    const uint32_t len = get<uint32_t>(field);
    if (n - at < len) throw Error(where + ": " + field + ": length " + std::to_string(len) + " runs past the index");
    std::string s((const char*)p + at, len);
    at += len;
    return s;
  }
};

}  // namespace

std::shared_ptr<const Cache> Cache::open(const std::string& path) {
  std::shared_ptr<Cache> c(new Cache());
  c->path_ = path;
  const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) throw Error(path + ": cannot open cache: " + errno_text());
  struct stat st {};
  if (::fstat(fd, &st) != 0) {
    ::close(fd);
    throw Error(path + ": cannot stat cache: " + errno_text());
  }
  const uint64_t len = (uint64_t)st.st_size;
  if (len < kCacheHeaderBytes) {
    ::close(fd);
    throw Error(path + ": header: file is " + std::to_string(len) + " bytes, shorter than the " +
                std::to_string(kCacheHeaderBytes) + "-byte header");
  }
  void* m = ::mmap(nullptr, (size_t)len, PROT_READ, MAP_SHARED, fd, 0);
  ::close(fd);  // the mapping keeps the file open
  if (m == MAP_FAILED) throw Error(path + ": mmap failed: " + errno_text());
  c->map_ = static_cast<const uint8_t*>(m);
  c->map_bytes_ = (size_t)len;

  const uint8_t* b = c->map_;
  auto fail = [&](const char* field, const std::string& what) { throw Error(path + ": " + field + ": " + what); };
  auto u32 = [&](size_t off) { uint32_t v; std::memcpy(&v, b + off, 4); return v; };
  auto u64 = [&](size_t off) { uint64_t v; std::memcpy(&v, b + off, 8); return v; };
  if (std::memcmp(b, kCacheMagic, 8) != 0) fail("magic", "not a ctgrad cache (expected CTGCACHE)");
  CacheHeader& h = c->h_;
  h.version = u32(kOffVersion);
  if (h.version != kCacheVersion)
    fail("version", std::to_string(h.version) + ", this build reads version " + std::to_string(kCacheVersion) + " (rerun ctgrad prep)");
  if (u32(kOffHeaderBytes) != kCacheHeaderBytes) fail("header_bytes", std::to_string(u32(kOffHeaderBytes)) + ", expected 128");
  h.side = u32(kOffSide);
  if (h.side == 0 || h.side > 65536) fail("side", std::to_string(h.side) + " is out of range");
  const uint32_t dt = u32(kOffDtype);
  if (dt > 1) fail("dtype", "unknown code " + std::to_string(dt));
  h.dtype = (SliceDType)dt;
  h.records = u64(kOffRecords), h.patients = u64(kOffPatients);
  std::memcpy(h.split_records, b + kOffSplitRecords, 24);
  h.data_offset = u64(kOffDataOffset), h.data_bytes = u64(kOffDataBytes);
  h.index_offset = u64(kOffIndexOffset), h.index_bytes = u64(kOffIndexBytes);
  h.index_checksum = u64(kOffIndexChecksum), h.file_bytes = u64(kOffFileBytes);
  if (h.file_bytes != len)
    fail("file_bytes", "header says " + std::to_string(h.file_bytes) + " bytes, the file has " + std::to_string(len) +
                           (len < h.file_bytes ? " (truncated)" : " (trailing bytes)"));
  if (h.records == 0 || h.records > len) fail("records", std::to_string(h.records) + " is out of range");
  const uint64_t slice = (uint64_t)h.side * h.side * slice_dtype_bytes(h.dtype);
  if (h.data_offset < kCacheHeaderBytes || h.data_offset > len) fail("data_offset", std::to_string(h.data_offset) + " is outside the file");
  if (h.data_bytes / slice != h.records || h.data_bytes % slice != 0)
    fail("data_bytes", std::to_string(h.data_bytes) + " is not records × side² × " + std::to_string(slice_dtype_bytes(h.dtype)));
  if (h.data_bytes > len - h.data_offset) fail("data_bytes", "slices run past the end of the file");
  if (h.index_offset != h.data_offset + h.data_bytes) fail("index_offset", std::to_string(h.index_offset) + " does not follow the slices");
  if (h.index_bytes != len - h.index_offset) fail("index_bytes", std::to_string(h.index_bytes) + " does not reach the end of the file");
  if (fnv1a64(b + h.index_offset, (size_t)h.index_bytes) != h.index_checksum) fail("index_checksum", "mismatch (corrupt index)");

  const std::string where = path + ": index";
  IndexReader in{b + h.index_offset, (size_t)h.index_bytes, 0, where};
  uint64_t per_split[kNumSplits] = {};
  std::set<std::string> patients;
  c->records_.reserve((size_t)h.records);
  for (uint64_t i = 0; i < h.records; ++i) {
    CacheRecord r;
    r.patient = in.str("patient");
    r.source = in.str("source");
    const uint8_t split = in.get<uint8_t>("split"), label = in.get<uint8_t>("label");
    const uint8_t grade = in.get<uint8_t>("grade"), flags = in.get<uint8_t>("flags");
    r.z = in.get<int64_t>("z");
    const std::string rec = "record " + std::to_string(i) + ": ";
    if (split >= kNumSplits) fail("index", rec + "split " + std::to_string(split) + " is not 0..2");
    if (label > 1) fail("index", rec + "label " + std::to_string(label) + " is not 0/1");
    if (grade >= kNumGrades) fail("index", rec + "grade " + std::to_string(grade) + " is not 0..4");
    if (flags > 3) fail("index", rec + "flags " + std::to_string(flags) + " has unknown bits");
    if (r.z < 0) fail("index", rec + "z " + std::to_string(r.z) + " is negative");
    r.split = (Split)split, r.label = label, r.grade = grade;
    r.in_ten = flags & 1, r.central = flags & 2;
    per_split[split]++;
    patients.insert(r.patient);
    c->records_.push_back(std::move(r));
  }
  if (in.at != in.n) fail("index", std::to_string(in.n - in.at) + " bytes left after the last record");
  for (int s = 0; s < kNumSplits; ++s)
    if (per_split[s] != h.split_records[s])
      fail("split_records", std::string(split_name((Split)s)) + ": header says " + std::to_string(h.split_records[s]) +
                                ", the index has " + std::to_string(per_split[s]));
  if (patients.size() != h.patients)
    fail("patients", "header says " + std::to_string(h.patients) + ", the index has " + std::to_string(patients.size()));
  return c;
}

Cache::~Cache() {
  if (map_) ::munmap(const_cast<uint8_t*>(map_), map_bytes_);
}

const uint8_t* Cache::slice_data(int64_t i) const {
  if (i < 0 || i >= size()) throw Error(path_ + ": record " + std::to_string(i) + " out of range");
  return map_ + h_.data_offset + (uint64_t)i * slice_bytes();
}

void Cache::read_slice(int64_t i, float* out) const {
  const uint8_t* src = slice_data(i);
  const size_t n = (size_t)h_.side * h_.side;
  if (h_.dtype == SliceDType::f32) {
    std::memcpy(out, src, n * sizeof(float));
  } else {
    constexpr float k = 1.0f / 255.0f;
    for (size_t j = 0; j < n; ++j) out[j] = (float)src[j] * k;
  }
}

std::vector<int64_t> select_records(const Cache& c, Split split, CacheView view) {
  std::vector<int64_t> out;
  for (int64_t i = 0; i < c.size(); ++i) {
    const CacheRecord& r = c.records()[(size_t)i];
    if (r.split != split) continue;
    const bool take = view == CacheView::all ? true
                      : view == CacheView::central || split == Split::train ? r.central
                                                                           : r.in_ten;
    if (take) out.push_back(i);
  }
  return out;
}

}  // namespace ctg::data
