// The `ctgrad` command: one subcommand per file in apps/.
#include <CLI/CLI.hpp>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>

#include "apps/commands.h"
#include "engine/tensor.h"

namespace {
// OpenMP threads that wait at a barrier spin by default (libgomp's
// OMP_WAIT_POLICY=active for a while, then sleep). On a machine another
// process shares, a spinning thread holds the core the late one needs:
// CNN1's step went from 39 ms to 118 ms (383 against 107 ms at load 12) on
// the 2-core dev VM, while idle the two policies measured within noise
// (bench/RESULTS.md, issue 16). libgomp reads the variable once, when it is
// loaded, before main; so without a policy of the user's, ctgrad sets
// passive and runs itself again, once. OMP_WAIT_POLICY=active keeps spinning.
void prefer_passive_openmp_waits(char** argv) {
  if (std::getenv("OMP_WAIT_POLICY")) return;
  ::setenv("OMP_WAIT_POLICY", "passive", 1);
  ::execv("/proc/self/exe", argv);  // returns only on failure: go on with the default
}
}  // namespace

int main(int argc, char** argv) {
  prefer_passive_openmp_waits(argv);
  CLI::App app{"ctgrad — a from-scratch deep learning engine for the CT-severity study"};
  app.require_subcommand(1);
  app.set_help_all_flag("--help-all", "Show help for every subcommand");
  for (auto& reg : ctg::apps::registry()) reg(app);
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    return app.exit(e);
  } catch (const std::exception& e) {
    std::fprintf(stderr, "ctgrad: error: %s\n", e.what());
    return 1;
  }
  return 0;
}
