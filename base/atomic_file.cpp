// AtomicFile: a temporary written with pwrite, fsync'ed, renamed over the
// target, then the directory fsync'ed so the rename itself is durable.
#include "base/atomic_file.h"

#include <errno.h>
#include <fcntl.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cstring>
#include <filesystem>

#include "base/error.h"

namespace ctg {

namespace {
std::string errno_text() { return std::strerror(errno); }
}  // namespace

AtomicFile::AtomicFile(const std::string& path) : path_(path) {
  // pid + counter: two writers of the same target (threads or processes)
  // never share a temporary.
  static std::atomic<int> counter{0};
  temp_ = path + ".tmp." + std::to_string(::getpid()) + "." + std::to_string(counter++);
  fd_ = ::open(temp_.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  if (fd_ < 0) throw Error(path + ": cannot create temporary file " + temp_ + ": " + errno_text());
}

AtomicFile::~AtomicFile() {
  if (fd_ >= 0) ::close(fd_);
  if (!committed_) ::unlink(temp_.c_str());
}

void AtomicFile::write_at(const void* data, size_t bytes, uint64_t offset) {
  const char* p = static_cast<const char*>(data);
  while (bytes > 0) {
    const ssize_t n = ::pwrite(fd_, p, bytes, (off_t)offset);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) throw Error(path_ + ": cannot write " + temp_ + ": " + errno_text());
    p += n, bytes -= (size_t)n, offset += (uint64_t)n;
  }
  size_ = std::max(size_, offset);
}

void AtomicFile::write(const void* data, size_t bytes) { write_at(data, bytes, size_); }

void write_file_atomic(const std::string& path, const std::string& text) {
  AtomicFile f(path);
  f.write(text.data(), text.size());
  f.commit();
}

void AtomicFile::commit(Sync sync) {
  if (committed_) return;
  const bool durable = sync == Sync::durable;
  if (durable && ::fsync(fd_) != 0) throw Error(path_ + ": cannot fsync " + temp_ + ": " + errno_text());
  const int closed = ::close(fd_);
  fd_ = -1;
  if (closed != 0) throw Error(path_ + ": cannot close " + temp_ + ": " + errno_text());
  if (::rename(temp_.c_str(), path_.c_str()) != 0)
    throw Error(path_ + ": cannot rename " + temp_ + " over it: " + errno_text());
  committed_ = true;
  if (!durable) return;
  // The rename is durable only once the directory entry is on disk.
  std::string dir = std::filesystem::path(path_).parent_path().string();
  if (dir.empty()) dir = ".";
  const int dfd = ::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (dfd >= 0) {
    ::fsync(dfd);
    ::close(dfd);
  }
}

}  // namespace ctg
