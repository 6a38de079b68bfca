// Subcommand registry: each apps/cmd_*.cpp adds its subcommand with a static
// Registrar, so main.cpp never lists them. A subcommand's callback throws
// ctg::Error for bad input; main prints it as one line and exits 1.
#pragma once
#include <CLI/CLI.hpp>
#include <functional>
#include <vector>

namespace ctg::apps {

using Register = std::function<void(CLI::App&)>;
inline std::vector<Register>& registry() {
  static std::vector<Register> r;
  return r;
}
struct Registrar {
  explicit Registrar(Register f) { registry().push_back(std::move(f)); }
};

// A subcommand group (e.g. `bench`) that several files add to: created by
// whichever registrar runs first (static initialisation order across files
// is unspecified), found by the others.
inline CLI::App* subcommand_group(CLI::App& app, const std::string& name, const std::string& description) {
  for (CLI::App* s : app.get_subcommands({}))
    if (s->get_name() == name) return s;
  CLI::App* g = app.add_subcommand(name, description);
  g->require_subcommand(1);
  return g;
}

}  // namespace ctg::apps
