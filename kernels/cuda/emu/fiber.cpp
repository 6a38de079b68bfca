// Fiber stacks for the CUDA emulation (see runner.h).
//
// _FORTIFY_SOURCE turns longjmp into __longjmp_chk, which aborts when the jump
// target lies on another stack — exactly what switching fibers does.
#undef _FORTIFY_SOURCE
#include <sys/mman.h>
#include <unistd.h>

#include "kernels/cuda/emu/runner.h"

namespace ctg::cuda::emu::detail {
namespace {

// 128 KiB: kernel frames are small, but unoptimised (-O0) builds and std::apply's
// frames add up; the pages are only committed when touched.
constexpr std::size_t kStackBytes = 128 * 1024;

// Stack colouring. Equal-sized mappings put every fiber's hot top-of-stack
// lines at the same address modulo the mapping size, so they all compete for
// the same few L1/L2 cache sets; with 256 fibers that doubled the cost of a
// switch (measured: 28 → 15 ns, and 65 → 16 ns with 1024 fibers). Each fiber's
// stack therefore starts a different number of cache lines (17·i mod 1024,
// i.e. every line of a 64 KiB window) below the top of its mapping.
constexpr std::size_t kColourSpan = 64 * 1024;
std::size_t colour_offset(int index) { return (std::size_t)index * 17 * 64 % kColourSpan; }

std::size_t page_size() {
  static const std::size_t page = (std::size_t)sysconf(_SC_PAGESIZE);
  return page;
}

// makecontext's entry takes no pointer argument portably; the runner that is
// entering the fiber left itself in tl_runner and the fiber in `booting`.
void fiber_entry() {
  BlockRunner* runner = tl_runner;
  runner->fiber_main(runner->booting);
}

}  // namespace

std::unique_ptr<Fiber> Fiber::create(int index) {
  const std::size_t guard = page_size();
  const std::size_t bytes = guard + kStackBytes + kColourSpan;
  void* m = mmap(nullptr, bytes, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE | MAP_STACK,
                 -1, 0);
  if (m == MAP_FAILED) return nullptr;
  // Stacks grow down: the lowest page traps an overflow instead of letting it
  // silently overwrite the neighbouring fiber's stack.
  if (mprotect(m, guard, PROT_NONE) != 0) {
    munmap(m, bytes);
    return nullptr;
  }
  std::unique_ptr<Fiber> f(new Fiber);
  f->mapping = static_cast<unsigned char*>(m);
  f->mapping_bytes = bytes;
  f->stack_bytes = bytes - guard - colour_offset(index);
  f->reset();
  return f;
}

void Fiber::reset() {
  getcontext(&boot);
  boot.uc_stack.ss_sp = mapping + page_size();
  boot.uc_stack.ss_size = stack_bytes;
  boot.uc_link = nullptr;  // fiber_main never returns
  makecontext(&boot, &fiber_entry, 0);
  started = false;
}

Fiber::~Fiber() {
  if (mapping) munmap(mapping, mapping_bytes);
}

}  // namespace ctg::cuda::emu::detail
