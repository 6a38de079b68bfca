// Thread-order control of the CUDA emulation, usable from plain C++ (tests,
// tools) without pulling in the kernel dialect's macros (threadIdx, ...).
#pragma once
#include <cstdint>
#include <string>
#include <vector>

namespace ctg::cuda::emu {

// Order in which a block's threads run between two synchronisation points.
struct Schedule {
  enum Order { in_order, reversed, shuffled };
  Order order = in_order;
  std::uint64_t seed = 0;  // only used by `shuffled`
  Schedule(Order o = in_order, std::uint64_t s = 0) : order(o), seed(s) {}
  // "inorder", "reverse" or "random:<seed>" — the CTGRAD_EMU_SCHEDULE spelling.
  std::string name() const;
};
inline bool operator==(const Schedule& a, const Schedule& b) {
  return a.order == b.order && (a.order != Schedule::shuffled || a.seed == b.seed);
}
inline bool operator!=(const Schedule& a, const Schedule& b) { return !(a == b); }

// Parses "inorder" | "reverse" | "random:<seed>"; throws std::invalid_argument.
Schedule parse_schedule(const std::string& text);
// The schedule launches use. Until set_schedule is called it comes from the
// environment variable CTGRAD_EMU_SCHEDULE (read once), else in order.
Schedule current_schedule();
void set_schedule(Schedule s);
// The orders a kernel test should run under and agree across.
std::vector<Schedule> test_schedules(std::uint64_t seed = 1);

// Sets a schedule for one scope and restores the previous one.
class ScopedSchedule {
 public:
  explicit ScopedSchedule(Schedule s) : saved_(current_schedule()) { set_schedule(s); }
  ~ScopedSchedule() { set_schedule(saved_); }
  ScopedSchedule(const ScopedSchedule&) = delete;
  ScopedSchedule& operator=(const ScopedSchedule&) = delete;

 private:
  Schedule saved_;
};

}  // namespace ctg::cuda::emu
