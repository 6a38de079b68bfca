// Writers for a trace::Trace (engine/trace.h): a text table (what `ctgrad
// trace` prints) and Chrome's trace-event JSON (what Perfetto and
// chrome://tracing open).
#include <cstdio>
#include <map>
#include <nlohmann/json.hpp>
#include <sstream>

#include "engine/trace.h"

namespace ctg::trace {

std::string human_flops(double f) {
  char b[64];
  if (f >= 1e9) std::snprintf(b, sizeof b, "%.2f GFLOP", f / 1e9);
  else if (f >= 1e6) std::snprintf(b, sizeof b, "%.2f MFLOP", f / 1e6);
  else if (f >= 1e3) std::snprintf(b, sizeof b, "%.2f kFLOP", f / 1e3);
  else std::snprintf(b, sizeof b, "%.0f", f);
  return b;
}

std::string human_bytes(double v) {
  char b[64];
  if (v >= 1048576.0) std::snprintf(b, sizeof b, "%.2f MiB", v / 1048576.0);
  else if (v >= 1024.0) std::snprintf(b, sizeof b, "%.1f KiB", v / 1024.0);
  else std::snprintf(b, sizeof b, "%.0f B", v);
  return b;
}

namespace {

std::string ms(double us) {
  char b[32];
  std::snprintf(b, sizeof b, "%.3f ms", us / 1000.0);
  return b;
}

std::string shapes(const std::vector<Shape>& v) {
  std::string s;
  for (const Shape& x : v) s += (s.empty() ? "" : " ") + shape_str(x);
  return s.empty() ? "-" : s;
}

std::string dims(const unsigned d[3]) {
  return "(" + std::to_string(d[0]) + "," + std::to_string(d[1]) + "," + std::to_string(d[2]) + ")";
}

std::string launch_str(const Launch& l) {
  return l.kernel + " grid" + dims(l.grid) + " block" + dims(l.block) +
         (l.shared_bytes ? " shmem " + std::to_string(l.shared_bytes) : "");
}

// Kernels grouped by the op that made them (-1: outside any op).
std::map<int, std::vector<const KernelEvent*>> kernels_by_op(const Trace& t) {
  std::map<int, std::vector<const KernelEvent*>> m;
  for (const KernelEvent& k : t.kernels) m[k.parent].push_back(&k);
  return m;
}

struct Totals {
  double us = 0, flops = 0, read = 0, written = 0;
  size_t kernels = 0, launches = 0, saved = 0;
};

std::map<std::string, Totals> totals(const Trace& t) {
  std::map<std::string, Totals> m;
  for (const Phase& p : t.phases) m[p.name].us += p.dur_us;
  for (const OpEvent& e : t.ops) {
    if (e.depth > 0) continue;  // an op inside another op is counted by the outer one
    Totals& x = m[e.phase];
    x.flops += e.flops, x.read += e.bytes_read, x.written += e.bytes_written, x.saved += e.saved_bytes;
  }
  for (const KernelEvent& k : t.kernels) {
    Totals& x = m[k.phase];
    x.kernels++;
    x.launches += k.launches.size();
    if (k.parent < 0) x.read += k.bytes_read, x.written += k.bytes_written;  // the optimiser's updates
  }
  return m;
}

void kernel_lines(std::ostringstream& os, const std::vector<const KernelEvent*>& ks) {
  char line[512];
  for (const KernelEvent* k : ks) {
    std::snprintf(line, sizeof line, "      kernel %-24s %-4s %12s", k->name.c_str(), device_name(k->device),
                  ms(k->dur_us).c_str());
    os << line << "\n";
    for (const Launch& l : k->launches) os << "        launch " << launch_str(l) << "\n";
  }
}

}  // namespace

std::string format_table(const Trace& t) {
  std::ostringstream os;
  char line[1024];
  auto by_op = kernels_by_op(t);
  os << "trace of one training step: " << t.title << "\n";
  os << "times: " << t.timing << "\n";
  os << "FLOPs: 2 per multiply-add (conv2d 2*N*O*OH*OW*C*KH*KW, linear 2*N*in*out, each backward GEMM the "
        "same); elementwise ops 0, counted by bytes (each operand read once, each result written once)\n";
  for (const char* phase : {"forward", "backward"}) {
    const bool fwd = std::string(phase) == "forward";
    os << "\n" << (fwd ? "forward ops" : "backward nodes (the tape, output to input)") << "\n";
    std::snprintf(line, sizeof line, "%4s  %-18s %-16s %-34s %-18s %12s %10s %10s %10s %10s\n", "#", "module",
                  fwd ? "op" : "node", fwd ? "inputs" : "grad_out", fwd ? "output" : "grads", "FLOPs", "read",
                  "written", fwd ? "saved" : "", "time");
    os << line;
    int n = 0;
    for (size_t i = 0; i < t.ops.size(); ++i) {
      const OpEvent& e = t.ops[i];
      if (e.phase != phase) continue;
      const std::string module = std::string((size_t)e.depth * 2, ' ') + (e.module.empty() ? "-" : e.module);
      std::snprintf(line, sizeof line, "%4d  %-18s %-16s %-34s %-18s %12s %10s %10s %10s %10s\n", ++n,
                    module.c_str(), e.op.c_str(), shapes(e.inputs).c_str(),
                    fwd ? shape_str(e.output).c_str() : shapes(e.grads).c_str(), human_flops(e.flops).c_str(),
                    human_bytes(e.bytes_read).c_str(), human_bytes(e.bytes_written).c_str(),
                    fwd ? human_bytes((double)e.saved_bytes).c_str() : "", ms(e.dur_us).c_str());
      os << line;
      auto it = by_op.find((int)i);
      if (it != by_op.end()) kernel_lines(os, it->second);
    }
    std::vector<const KernelEvent*> loose;  // kernels of this phase outside any op
    for (const KernelEvent* k : by_op[-1])
      if (k->phase == phase) loose.push_back(k);
    if (!loose.empty()) {
      os << "  outside any op:\n";
      kernel_lines(os, loose);
    }
  }
  os << "\noptimizer step\n";
  std::snprintf(line, sizeof line, "%4s  %-24s %-26s %-16s %10s %10s %10s\n", "#", "kernel", "parameter", "shape",
                "read", "written", "time");
  os << line;
  int n = 0;
  for (const KernelEvent& k : t.kernels) {
    if (k.phase != "optimizer" || k.parent >= 0) continue;
    std::snprintf(line, sizeof line, "%4d  %-24s %-26s %-16s %10s %10s %10s", ++n, k.name.c_str(),
                  k.param.empty() ? "-" : k.param.c_str(), k.param.empty() ? "-" : shape_str(k.param_shape).c_str(),
                  human_bytes(k.bytes_read).c_str(), human_bytes(k.bytes_written).c_str(), ms(k.dur_us).c_str());
    os << line << "\n";
    for (const Launch& l : k.launches) os << "        launch " << launch_str(l) << "\n";
  }

  auto tot = totals(t);
  os << "\ntotals\n";
  std::snprintf(line, sizeof line, "  %-10s %12s %14s %12s %12s %8s %8s\n", "phase", "time", "FLOPs", "read",
                "written", "kernels", "launches");
  os << line;
  Totals all;
  auto row = [&](const char* name, const Totals& x) {
    std::snprintf(line, sizeof line, "  %-10s %12s %14s %12s %12s %8zu %8zu\n", name, ms(x.us).c_str(),
                  human_flops(x.flops).c_str(), human_bytes(x.read).c_str(), human_bytes(x.written).c_str(),
                  x.kernels, x.launches);
    os << line;
  };
  for (const char* phase : {"forward", "backward", "optimizer"}) {
    const Totals& x = tot[phase];
    all.us += x.us, all.flops += x.flops, all.read += x.read, all.written += x.written;
    all.kernels += x.kernels, all.launches += x.launches;
    row(phase, x);
  }
  row("step", all);
  os << "  (kernels: the glue's kernel calls; launches: the CUDA kernels they started)\n";
  const size_t saved = tot["forward"].saved;
  std::snprintf(line, sizeof line,
                "saved for backward: %zu bytes (%s) of activations, the forward table's saved column summed; "
                "autograd::saved_bytes of this graph: %zu bytes of activations%s, %zu bytes (%s) with parameters "
                "and input (`ctgrad summary` measures the same at batch 1)\n",
                saved, human_bytes((double)saved).c_str(), t.measured_saved_activations,
                t.measured_saved_activations == saved ? " (equal)" : " (DIFFERENT: an op saved outside the tape?)",
                t.measured_saved_total, human_bytes((double)t.measured_saved_total).c_str());
  os << line;
  return os.str();
}

// Chrome's Trace Event Format ("JSON Object Format"): {"traceEvents": [...]}
// with "X" (complete) events {name, cat, ph, ts, dur, pid, tid, args}, ts and
// dur in microseconds, and "M" (metadata) events naming the process and its
// threads; Perfetto's legacy JSON importer reads the same. One thread (track)
// per phase: forward, backward, optimizer. Slices on one track nest by time,
// so a kernel shows under the op that called it.
std::string format_chrome(const Trace& t) {
  using nlohmann::json;
  json events = json::array();
  const std::map<std::string, int> tid{{"forward", 1}, {"backward", 2}, {"optimizer", 3}};
  auto track = [&](const std::string& phase) {
    auto it = tid.find(phase);
    return it == tid.end() ? 4 : it->second;
  };
  events.push_back({{"name", "process_name"}, {"ph", "M"}, {"pid", 1}, {"tid", 0},
                    {"args", {{"name", "ctgrad training step: " + t.title}}}});
  for (const auto& [name, id] : tid) {
    events.push_back({{"name", "thread_name"}, {"ph", "M"}, {"pid", 1}, {"tid", id}, {"args", {{"name", name}}}});
    events.push_back(
        {{"name", "thread_sort_index"}, {"ph", "M"}, {"pid", 1}, {"tid", id}, {"args", {{"sort_index", id}}}});
  }
  auto shape_list = [](const std::vector<Shape>& v) {
    json a = json::array();
    for (const Shape& s : v) a.push_back(shape_str(s));
    return a;
  };
  auto by_op = kernels_by_op(t);
  std::vector<json> op_args(t.ops.size());
  for (size_t i = 0; i < t.ops.size(); ++i) {
    const OpEvent& e = t.ops[i];
    json& a = op_args[i];
    a = {{"module", e.module}, {"op", e.op}, {"flops", e.flops}, {"bytes_read", e.bytes_read},
         {"bytes_written", e.bytes_written}};
    if (e.phase == "forward") {
      a["inputs"] = shape_list(e.inputs);
      a["output"] = shape_str(e.output);
      a["saved_bytes"] = e.saved_bytes;
      a["saved"] = e.saved;
    } else {
      a["grad_out"] = shape_list(e.inputs);
      a["grads"] = shape_list(e.grads);
    }
    json names = json::array();
    for (const KernelEvent* k : by_op[(int)i]) names.push_back(k->name);
    a["kernels"] = names;
    const std::string name = e.module.empty() ? e.op : e.module + " " + e.op;
    events.push_back({{"name", name}, {"cat", e.phase == "forward" ? "forward op" : "backward node"}, {"ph", "X"},
                      {"ts", e.ts_us}, {"dur", e.dur_us}, {"pid", 1}, {"tid", track(e.phase)}, {"args", a}});
  }
  for (const KernelEvent& k : t.kernels) {
    json a = {{"device", device_name(k.device)}};
    if (k.parent >= 0) {  // the op's shapes, FLOPs and bytes: one kernel entry per op and direction
      for (const char* key : {"module", "op", "inputs", "output", "grad_out", "grads", "flops", "bytes_read",
                              "bytes_written"})
        if (op_args[(size_t)k.parent].contains(key)) a[key] = op_args[(size_t)k.parent][key];
    } else {
      a["flops"] = 0;
      a["bytes_read"] = k.bytes_read;
      a["bytes_written"] = k.bytes_written;
      if (!k.param.empty()) a["parameter"] = k.param, a["shape"] = shape_str(k.param_shape);
    }
    json launches = json::array();
    for (const Launch& l : k.launches)
      launches.push_back({{"kernel", l.kernel},
                          {"grid", {l.grid[0], l.grid[1], l.grid[2]}},
                          {"block", {l.block[0], l.block[1], l.block[2]}},
                          {"shared_bytes", l.shared_bytes}});
    if (!launches.empty()) a["launches"] = launches;
    events.push_back({{"name", k.name}, {"cat", "kernel"}, {"ph", "X"}, {"ts", k.ts_us}, {"dur", k.dur_us},
                      {"pid", 1}, {"tid", track(k.phase)}, {"args", a}});
  }
  auto tot = totals(t);
  json summary = {{"timing", t.timing},
                  {"saved_bytes_ops", tot["forward"].saved},
                  {"saved_bytes_measured", t.measured_saved_activations},
                  {"saved_bytes_measured_with_leaves", t.measured_saved_total}};
  for (const char* phase : {"forward", "backward", "optimizer"}) {
    const Totals& x = tot[phase];
    summary[phase] = {{"time_us", x.us},       {"flops", x.flops},     {"bytes_read", x.read},
                      {"bytes_written", x.written}, {"kernels", x.kernels}, {"launches", x.launches}};
  }
  json doc = {{"traceEvents", events}, {"displayTimeUnit", "ms"}, {"otherData", summary}};
  return doc.dump(1) + "\n";
}

}  // namespace ctg::trace
