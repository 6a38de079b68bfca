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

}  // namespace ctg::apps
