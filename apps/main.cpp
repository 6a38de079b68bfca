// The `ctgrad` command: one subcommand per file in apps/.
#include <CLI/CLI.hpp>
#include <cstdio>

#include "apps/commands.h"
#include "engine/tensor.h"

int main(int argc, char** argv) {
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
