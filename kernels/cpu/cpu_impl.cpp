// The process-wide CPU implementation setting of kernels/cpu_impl.h.
#include "kernels/cpu_impl.h"

#include <atomic>
#include <cstdlib>

namespace ctg::kernels {

namespace {
const char* const kEnv = "CTGRAD_CPU_KERNELS";

// Starts from the environment on first use. A bad value throws out of the
// initialiser, which leaves the static uninitialised, so every later use
// reports the same error instead of silently running one variant.
std::atomic<int>& impl_flag() {
  static std::atomic<int> v{(int)cpu_impl_from_env()};
  return v;
}
}  // namespace

CpuImpl parse_cpu_impl(const std::string& value, const std::string& flag) {
  if (value == "reference") return CpuImpl::reference;
  if (value == "tuned") return CpuImpl::tuned;
  throw Error(flag + ": expected reference or tuned, got '" + value + "'");
}

const char* cpu_impl_name(CpuImpl impl) { return impl == CpuImpl::reference ? "reference" : "tuned"; }

CpuImpl cpu_impl_from_env() {
  const char* v = std::getenv(kEnv);
  return v && *v ? parse_cpu_impl(v, kEnv) : CpuImpl::tuned;
}

CpuImpl cpu_impl() { return (CpuImpl)impl_flag().load(std::memory_order_relaxed); }
void set_cpu_impl(CpuImpl impl) { impl_flag().store((int)impl, std::memory_order_relaxed); }

}  // namespace ctg::kernels
