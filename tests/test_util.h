// Small helpers shared by the test files.
#pragma once
#include <sys/wait.h>
#include <unistd.h>

#include <cstdio>
#include <fstream>
#include <stdexcept>
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

// A file's bytes ("" when it cannot be read).
inline std::string slurp(const std::string& path) {
  std::ifstream f(path, std::ios::binary);
  return std::string(std::istreambuf_iterator<char>(f), std::istreambuf_iterator<char>());
}

// The `ctgrad` binary beside the test binary (both are built by `make test`).
inline std::string ctgrad_binary() {
  char buf[4096];
  const ssize_t n = ::readlink("/proc/self/exe", buf, sizeof buf - 1);
  if (n <= 0) throw std::runtime_error("cannot read /proc/self/exe");
  const std::string self(buf, (size_t)n);
  const std::string exe = self.substr(0, self.rfind('/')) + "/ctgrad";
  if (::access(exe.c_str(), X_OK) != 0) throw std::runtime_error(exe + " not found: build the ctgrad target too");
  return exe;
}

// `ctgrad ARGS` through the shell: its exit code and stdout+stderr together.
struct Ran {
  int rc = -1;
  std::string out;
};
inline Ran run_ctgrad(const std::string& args) {
  Ran r;
  FILE* p = ::popen((ctgrad_binary() + " " + args + " 2>&1").c_str(), "r");
  if (!p) throw std::runtime_error("popen failed");
  char buf[4096];
  size_t k;
  while ((k = std::fread(buf, 1, sizeof buf, p)) > 0) r.out.append(buf, k);
  const int st = ::pclose(p);
  r.rc = WIFEXITED(st) ? WEXITSTATUS(st) : -1;
  return r;
}

}  // namespace ctg::test
