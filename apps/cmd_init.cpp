// ctgrad init: write a freshly initialised checkpoint of a net (the same
// initialisation training starts from with this --seed). Used by the PyTorch
// parity check (bench/check_parity.py) and handy for inspecting a state dict.
#include <cstdio>

#include "apps/commands.h"
#include "engine/checkpoint.h"
#include "nets/nets.h"

namespace ctg::apps {

static Registrar reg([](CLI::App& app) {
  auto* cmd = app.add_subcommand("init", "Write a freshly initialised checkpoint (safetensors, PyTorch's state-dict "
                                         "names) of a net");
  auto net = std::make_shared<std::string>();
  auto out = std::make_shared<std::string>();
  auto opt = std::make_shared<nets::NetOptions>();
  cmd->add_option("--net", *net, "dense20|dense50|dense100|dense100x100|cnn1|cnn2|resnet18")->required();
  cmd->add_option("--size", opt->size, "input side in pixels (dense/cnn layer sizes depend on it)")
      ->check(CLI::PositiveNumber)->capture_default_str();
  cmd->add_option("--seed", opt->seed, "initialisation seed")->capture_default_str();
  cmd->add_option("--out", *out, "checkpoint to write (atomically)")->required();
  cmd->callback([=]() {
    auto m = nets::make_net(*net, *opt);
    save_module(*out, *m, {{"net", *net}, {"size", std::to_string(opt->size)}, {"seed", std::to_string(opt->seed)}});
    std::printf("wrote: %s (%s, size %lld, seed %llu, %lld parameters)\n", out->c_str(), net->c_str(),
                (long long)opt->size, (unsigned long long)opt->seed, (long long)m->num_parameters());
  });
});

}  // namespace ctg::apps
