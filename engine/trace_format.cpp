// Writers for a trace::Trace (engine/trace.h): a text table and Chrome's trace-event JSON.
#include <cstdio>

#include "engine/trace.h"

namespace ctg::trace {

std::string human_flops(double f) {
  char b[64];
  if (f >= 1e9) std::snprintf(b, sizeof b, "%.2f GFLOP", f / 1e9);
  else if (f >= 1e6) std::snprintf(b, sizeof b, "%.2f MFLOP", f / 1e6);
  else if (f >= 1e3) std::snprintf(b, sizeof b, "%.2f kFLOP", f / 1e3);
  else std::snprintf(b, sizeof b, "%.0f FLOP", f);
  return b;
}

std::string human_bytes(double v) {
  char b[64];
  if (v >= 1048576.0) std::snprintf(b, sizeof b, "%.2f MiB", v / 1048576.0);
  else if (v >= 1024.0) std::snprintf(b, sizeof b, "%.1f KiB", v / 1024.0);
  else std::snprintf(b, sizeof b, "%.0f B", v);
  return b;
}

std::string format_table(const Trace& t) { return t.title + "\n"; }
std::string format_chrome(const Trace&) { return "{\"traceEvents\":[]}\n"; }

}  // namespace ctg::trace
