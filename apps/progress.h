// Progress for long commands (synth, prep, and later train): a bar with rate
// and ETA when stderr is a terminal, otherwise a plain line every ~10 %, so
// logs and CI output stay short and readable.
#pragma once
#include <unistd.h>

#include <chrono>
#include <cstdint>
#include <cstdio>
#include <string>

namespace ctg::apps {

class Progress {
 public:
  // `what` prefixes the plain lines ("prep"); `unit` names the items ("patients").
  Progress(std::string what, std::string unit)
      : what_(std::move(what)), unit_(std::move(unit)), tty_(::isatty(2) == 1), t0_(std::chrono::steady_clock::now()) {}
  void operator()(int64_t done, int64_t total) {
    if (total <= 0) return;
    const double s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0_).count();
    const double rate = s > 0 ? (double)done / s : 0;
    const double eta = rate > 0 ? (double)(total - done) / rate : 0;
    if (tty_) {
      const int width = 30, fill = (int)(width * done / total);
      std::fprintf(stderr, "\r  [%s%s] %lld/%lld %s  %.1f/s  ETA %.0fs ", std::string((size_t)fill, '#').c_str(),
                   std::string((size_t)(width - fill), '.').c_str(), (long long)done, (long long)total, unit_.c_str(),
                   rate, eta);
      if (done == total) std::fputc('\n', stderr);
    } else if (done == total || done * 10 / total != (done - 1) * 10 / total) {
      std::fprintf(stderr, "  %s: %lld/%lld %s (%.1f/s)\n", what_.c_str(), (long long)done, (long long)total,
                   unit_.c_str(), rate);
    }
    std::fflush(stderr);
  }

 private:
  std::string what_, unit_;
  bool tty_;
  std::chrono::steady_clock::time_point t0_;
};

}  // namespace ctg::apps
