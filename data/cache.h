// The preprocessed-slice cache that `ctgrad prep` writes and the loader reads.
//
// One file, little-endian:
//   [0, 128)            header (CacheHeader below; unused bytes zero)
//   [4096, …)           slices, one after another in index order, each
//                       side·side values (float32, or uint8 = round(v·255));
//                       starting at a page boundary so every slice of a
//                       power-of-two side is page-aligned in the mapping
//   [index_offset, …)   the index: per record
//                         u32 len, patient id bytes; u32 len, source path bytes;
//                         u8 split (0 train, 1 val, 2 test); u8 label (0/1);
//                         u8 grade (0..4); u8 flags (1: one of the ten, 2: central);
//                         i64 z (slice index in the oriented volume)
// The index comes last so slices can be streamed to disk as patients finish;
// the header, written last, points at it. Validation on open checks magic,
// version, every size and offset against the file's length, the index's
// checksum (FNV-1a 64) and each record's fields; errors read
// "<file>: <field>: <what is wrong>".
//
// Records, per patient: train → one record (central). val/test → the ten
// chosen slices (flag 1), and the central slice flagged 2 — on one of the ten
// when it is among them, else as an 11th record — so "central slice only"
// evaluation needs no second cache.
//
// float32 vs uint8: float32 keeps the preprocessing output exactly and the
// loader's copy is a memcpy (1 MiB per 512² slice: ~2 GiB for the report's
// 272 + 180·10(+central) slices). uint8 is 4× smaller and is what the
// reference fed its nets (PNG slices divided by 255); its rounding error
// (≤ 0.5/255) is half the std of the training noise (1/255). Reading a
// quarter of the bytes more than pays for the conversion (measured: ~8,000
// vs ~3,000–4,500 slices/s at 512² on the 2-core dev VM). Default float32
// (exact); `prep --dtype u8` when disk, page cache or speed matter more.
#pragma once
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "base/atomic_file.h"  // AtomicFile, the cache writer's file
#include "data/cohort.h"

namespace ctg::data {

enum class SliceDType : uint32_t { f32 = 0, u8 = 1 };
const char* slice_dtype_name(SliceDType d);
SliceDType parse_slice_dtype(const std::string& s, const std::string& flag = "--dtype");
size_t slice_dtype_bytes(SliceDType d);

constexpr char kCacheMagic[8] = {'C', 'T', 'G', 'C', 'A', 'C', 'H', 'E'};
constexpr uint32_t kCacheVersion = 1;
constexpr uint64_t kCacheHeaderBytes = 128;
constexpr uint64_t kCacheDataOffset = 4096;

struct CacheRecord {
  std::string patient;
  std::string source;  // the NIfTI file the slice came from
  Split split = Split::train;
  int label = 0, grade = 0;
  int64_t z = 0;
  bool in_ten = false;   // one of the ten val/test slices
  bool central = false;  // the patient's central slice
};

struct CacheHeader {
  uint32_t version = kCacheVersion;
  uint32_t side = 0;
  SliceDType dtype = SliceDType::f32;
  uint64_t records = 0, patients = 0;
  uint64_t split_records[kNumSplits] = {};
  uint64_t data_offset = kCacheDataOffset, data_bytes = 0;
  uint64_t index_offset = 0, index_bytes = 0, index_checksum = 0;
  uint64_t file_bytes = 0;
};

// Streams records to a temporary file; commit() makes it the cache.
class CacheWriter {
 public:
  CacheWriter(const std::string& path, int64_t side, SliceDType dtype = SliceDType::f32);
  // `pixels`: side·side values in [0, 1] (uint8 clamps and rounds).
  void add(const CacheRecord& r, const float* pixels);
  int64_t records() const { return (int64_t)records_.size(); }
  void commit();  // throws when no record was added

 private:
  std::string path_;
  AtomicFile file_;
  CacheHeader h_;
  std::vector<CacheRecord> records_;
  std::vector<uint8_t> buf_;
};

// A read-only, memory-mapped cache. Thread-safe: readers only.
class Cache {
 public:
  static std::shared_ptr<const Cache> open(const std::string& path);
  ~Cache();
  Cache(const Cache&) = delete;
  Cache& operator=(const Cache&) = delete;

  const std::string& path() const { return path_; }
  const CacheHeader& header() const { return h_; }
  int64_t side() const { return h_.side; }
  SliceDType dtype() const { return h_.dtype; }
  int64_t size() const { return (int64_t)records_.size(); }
  const std::vector<CacheRecord>& records() const { return records_; }
  const CacheRecord& record(int64_t i) const { return records_.at((size_t)i); }
  size_t slice_bytes() const { return (size_t)h_.side * h_.side * slice_dtype_bytes(h_.dtype); }
  // The stored bytes of record i, inside the mapping.
  const uint8_t* slice_data(int64_t i) const;
  // Record i as side·side floats in [0, 1].
  void read_slice(int64_t i, float* out) const;

 private:
  Cache() = default;
  std::string path_;
  CacheHeader h_;
  std::vector<CacheRecord> records_;
  const uint8_t* map_ = nullptr;
  size_t map_bytes_ = 0;
};

// Which records a split's dataset uses: train has only central slices; for
// val/test `ten` is the study's 10-slice evaluation, `central` the
// central-only variant; `all` takes every record of the split.
enum class CacheView { ten, central, all };
CacheView parse_cache_view(const std::string& s, const std::string& flag = "--view");
// Record indices of `split` under `view` (train under `ten` gives its central slices).
std::vector<int64_t> select_records(const Cache& c, Split split, CacheView view);

}  // namespace ctg::data
