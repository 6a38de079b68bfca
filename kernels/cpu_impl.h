// Which CPU implementation the kernels' entry points run (issue 14).
//
// Every op has a plain *reference* loop in kernels/cpu/<op>.cpp — the math of
// its header written out, the oracle every other implementation is tested
// against. Some ops also have a *tuned* variant beside it
// (kernels/cpu/<op>_tuned.cpp: im2col + OpenBLAS, fast paths for common pool
// shapes, ...). The names the engine calls, <op>_forward_cpu / <op>_backward_cpu,
// pick one of the two at run time from this process-wide setting:
//   default tuned; CTGRAD_CPU_KERNELS=reference|tuned sets the starting value
//   (read once, on first use; anything else is a ctg::Error naming the variable);
//   `ctgrad train|bench step --cpu-kernels reference|tuned` and tests set it.
// Ops with no tuned variant run their reference under both settings.
#pragma once
#include <string>

#include "base/error.h"

namespace ctg::kernels {

enum class CpuImpl { reference, tuned };

// The current setting (an atomic read: safe from any thread).
CpuImpl cpu_impl();
void set_cpu_impl(CpuImpl impl);

// "reference" or "tuned"; anything else is a ctg::Error naming `flag`.
CpuImpl parse_cpu_impl(const std::string& value, const std::string& flag);
const char* cpu_impl_name(CpuImpl impl);

// What CTGRAD_CPU_KERNELS asks for right now (tuned when unset or empty); the
// starting value of cpu_impl(). Throws ctg::Error naming the variable.
CpuImpl cpu_impl_from_env();

// Selects an implementation for a scope and restores the previous one on exit.
struct ScopedCpuImpl {
  explicit ScopedCpuImpl(CpuImpl impl) : prev_(cpu_impl()) { set_cpu_impl(impl); }
  ~ScopedCpuImpl() { set_cpu_impl(prev_); }
  ScopedCpuImpl(const ScopedCpuImpl&) = delete;
  ScopedCpuImpl& operator=(const ScopedCpuImpl&) = delete;

 private:
  CpuImpl prev_;
};

}  // namespace ctg::kernels
