// ctgrad summary --net NAME [--size 512]: torchsummary's table for one net;
// ctgrad summary --all: the study's Table 1, one row per net.
#include <cstdio>

#include "apps/commands.h"
#include "engine/tensor.h"
#include "nets/nets.h"
#include "nets/summary.h"

namespace ctg::apps {

static Registrar reg([](CLI::App& app) {
  auto* cmd = app.add_subcommand("summary", "Print a torchsummary-style table of a net (layers, output shapes, "
                                            "parameters, pass size) and the memory it saves for backward");
  auto net = std::make_shared<std::string>();
  auto size = std::make_shared<int64_t>(512);
  auto no_measure = std::make_shared<bool>(false);
  auto all = std::make_shared<bool>(false);
  cmd->add_option("--net", *net, "dense20|dense50|dense100|dense100x100|cnn1|cnn2|resnet18");
  cmd->add_flag("--all", *all, "Table 1: one row per net (params, params size, forward/backward pass size, measured "
                                "saved-for-backward bytes)");
  cmd->add_option("--size", *size, "input side in pixels (the study: 512)")->check(CLI::PositiveNumber);
  cmd->add_flag("--no-measure", *no_measure, "skip the measured batch-1 training-step memory");
  cmd->callback([=]() {
    if (*all && !net->empty()) throw Error("summary: --all and --net exclude each other");
    if (*all) {
      std::fputs(nets::format_table1(nets::table1(*size, !*no_measure)).c_str(), stdout);
      return;
    }
    if (net->empty()) throw Error("summary: --net NAME or --all is required");
    auto model = nets::make_net(*net, {*size, 0, false});
    nets::Summary s = nets::summarize(*model, *size, !*no_measure);
    std::fputs(nets::format_summary(s).c_str(), stdout);
  });
});

}  // namespace ctg::apps
