// Small helpers shared by the test files.
#pragma once
#include <sys/wait.h>
#include <unistd.h>

#include <doctest/doctest.h>

#include <cmath>
#include <cstdio>
#include <fstream>
#include <stdexcept>
#include <filesystem>
#include <functional>
#include <random>
#include <iterator>
#include <set>
#include <sstream>
#include <string>
#include <vector>

#include "engine/tensor.h"
#include "kernels/conv2d.h"

namespace ctg::test {

// n values uniform in [−1, 1) (drawn in double, then rounded to T).
template <typename T>
std::vector<T> uniform_vec(size_t n, std::mt19937_64& rng) {
  std::uniform_real_distribution<double> u(-1, 1);
  std::vector<T> v(n);
  for (T& e : v) e = (T)u(rng);
  return v;
}

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

// Whether `part` occurs in `s`.
inline bool contains(const std::string& s, const std::string& part) { return s.find(part) != std::string::npos; }

// |got − want| ≤ atol + rtol·|want| for every element (want is the reference:
// the CPU, the plain loop, the definition). On failure: how many differ, the
// largest difference and the first five mismatches, under the label `what`.
// A NaN on either side is a mismatch.
inline void check_close(const std::vector<double>& got, const std::vector<double>& want, double atol, double rtol,
                        const std::string& what = "") {
  REQUIRE_MESSAGE(got.size() == want.size(), what << ": " << got.size() << " values vs " << want.size());
  double worst = 0;
  size_t worst_i = 0, bad = 0;
  std::ostringstream first;
  for (size_t i = 0; i < got.size(); ++i) {
    double d = std::fabs(got[i] - want[i]);
    if (std::isnan(d)) d = INFINITY;  // a NaN on either side is the worst difference
    if (!(d <= atol + rtol * std::fabs(want[i]))) {
      if (bad < 5) first << "  [" << i << "] got " << got[i] << " want " << want[i] << "\n";
      ++bad;
    }
    if (d > worst) worst = d, worst_i = i;
  }
  INFO(what << ": " << bad << " of " << got.size() << " mismatches (atol " << atol << ", rtol " << rtol
            << "), largest difference " << worst << " at " << worst_i << "\n"
            << first.str());
  CHECK(bad == 0);
}
// The same for two tensors (any dtype or device): both defined, the same shape.
inline void check_close(const Tensor& got, const Tensor& want, double atol, double rtol, const std::string& what) {
  REQUIRE_MESSAGE(got.defined(), what << ": no result");
  REQUIRE_MESSAGE(got.shape() == want.shape(),
                  what << ": shape " << shape_str(got.shape()) << " vs " << shape_str(want.shape()));
  check_close(got.to(Device::cpu).to_vector(), want.to(Device::cpu).to_vector(), atol, rtol,
              what + " " + shape_str(want.shape()));
}

// One convolution as the conv tests list them: x [N,C,H,W], W [O,C,KH,KW],
// stride (SH,SW), padding (PH,PW); dims() adds OH and OW (kernels/conv2d.h).
struct ConvConf {
  int64_t N, C, H, W, O, KH, KW, SH, SW, PH, PW;
  bool bias = false;
  const char* name = "";
  kernels::Conv2dDims dims() const { return kernels::conv2d_dims(N, C, H, W, O, KH, KW, SH, SW, PH, PW); }
};

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

// A shell command (`ctgrad ARGS`, or e.g. `mpirun … ctgrad …`): its exit code
// and stdout+stderr together.
struct Ran {
  int rc = -1;
  std::string out;
};
inline Ran run_shell(const std::string& cmd) {
  Ran r;
  FILE* p = ::popen((cmd + " 2>&1").c_str(), "r");
  if (!p) throw std::runtime_error("popen failed");
  char buf[4096];
  size_t k;
  while ((k = std::fread(buf, 1, sizeof buf, p)) > 0) r.out.append(buf, k);
  const int st = ::pclose(p);
  r.rc = WIFEXITED(st) ? WEXITSTATUS(st) : -1;
  return r;
}
inline Ran run_ctgrad(const std::string& args) { return run_shell(ctgrad_binary() + " " + args); }

}  // namespace ctg::test
