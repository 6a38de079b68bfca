// Small helpers shared by the test files.
#pragma once
#include <unistd.h>

#include <filesystem>
#include <functional>
#include <iterator>
#include <set>
#include <string>

#include "engine/tensor.h"

namespace ctg::test {

// A fresh, empty directory under the system temp dir, removed on scope exit.
struct TempDir {
  std::filesystem::path dir;
  TempDir() {
    static int counter = 0;
    dir = std::filesystem::temp_directory_path() /
          ("ctgrad_test_" + std::to_string(::getpid()) + "_" + std::to_string(counter++));
    std::filesystem::remove_all(dir);
    std::filesystem::create_directories(dir);
  }
  ~TempDir() { std::filesystem::remove_all(dir); }
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;
  std::string str() const { return dir.string(); }
  std::string operator/(const std::string& name) const { return (dir / name).string(); }
  size_t entries() const {
    return (size_t)std::distance(std::filesystem::directory_iterator(dir), std::filesystem::directory_iterator());
  }
  std::set<std::string> listing() const {
    std::set<std::string> names;
    for (const auto& e : std::filesystem::directory_iterator(dir)) names.insert(e.path().filename().string());
    return names;
  }
};

// The message of the ctg::Error that f throws; "(no error)" when it throws none.
inline std::string error_of(const std::function<void()>& f) {
  try {
    f();
  } catch (const Error& e) {
    return e.what();
  }
  return "(no error)";
}

}  // namespace ctg::test
