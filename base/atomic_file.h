// Atomic file writes: write-to-temp-then-rename, so that readers see the old
// file or the complete new one, never a torn one. Every file that matters
// (run folders, checkpoints' side files, caches, reports, curves, pictures)
// is written through here.
#pragma once
#include <cstddef>
#include <cstdint>
#include <string>

namespace ctg {

// The temporary sits beside the target (rename is atomic only within a
// filesystem) and is removed unless commit() ran. Every error is a ctg::Error
// "PATH: cannot create temporary file|write|fsync|close|rename TEMP ...: why",
// PATH being the target.
class AtomicFile {
 public:
  explicit AtomicFile(const std::string& path);
  ~AtomicFile();
  AtomicFile(const AtomicFile&) = delete;
  AtomicFile& operator=(const AtomicFile&) = delete;
  void write(const void* data, size_t bytes);                      // append
  void write_at(const void* data, size_t bytes, uint64_t offset);  // patch (a header)
  uint64_t size() const { return size_; }
  // durable: fsync the data, rename over the target, fsync the directory.
  // rename_only: the rename without the fsyncs, still atomic for readers, but
  // a crash may lose the file; for data that is cheap to regenerate (the
  // synthetic cohort's volumes, where syncing file by file costs more than
  // making them).
  enum class Sync { durable, rename_only };
  void commit(Sync sync = Sync::durable);

 private:
  std::string path_, temp_;
  int fd_ = -1;
  uint64_t size_ = 0;
  bool committed_ = false;
};

// The whole of `text` as the file at `path`, atomically (an AtomicFile).
void write_file_atomic(const std::string& path, const std::string& text);

}  // namespace ctg
