// ctgrad import: weights from PyTorch (a torch.save zip, .pt/.pth) or a
// safetensors file into a ctgrad checkpoint for one of our nets.
//  - resnet18: torchvision's resnet18 (e.g. the ImageNet weights) mapped by
//    interop/import_resnet18.h: conv1 summed over RGB (or kept fresh), the
//    1000-class head dropped and ours initialised from --seed.
//  - the other nets: the file must hold exactly our state dict (same names and
//    shapes, as bench/pytorch_nets.py defines them): a strict load.
// Prints which keys were used, skipped and initialised; writes OUT atomically
// with metadata recording the source, the net and the conv1 mode.
#include <cstdio>

#include "apps/commands.h"
#include "engine/checkpoint.h"
#include "interop/import_resnet18.h"
#include "interop/weights.h"
#include "nets/nets.h"

namespace ctg::apps {
namespace {

struct ImportArgs {
  std::string from, net = "resnet18", out, conv1 = "sum";
  uint64_t seed = 0;
  int64_t size = 512;
};

std::string basename_of(const std::string& p) {
  const size_t slash = p.find_last_of('/');
  return slash == std::string::npos ? p : p.substr(slash + 1);
}

void print_list(const char* title, const std::vector<std::string>& names) {
  std::printf("%s: %zu\n", title, names.size());
  for (const std::string& n : names) std::printf("  %s\n", n.c_str());
}

void run_import(const ImportArgs& a) {
  const interop::Conv1Mode mode = interop::parse_conv1_mode(a.conv1);
  interop::LoadedWeights w = interop::load_weights(a.from);
  std::printf("source: %s (%s, %zu tensors%s)\n", a.from.c_str(), w.format.c_str(), w.tensors.size(),
              w.state_dict_key.empty() ? "" : (", state dict '" + w.state_dict_key + "'").c_str());
  std::fflush(stdout);  // before any error on stderr
  nets::NetOptions opt;
  opt.size = a.size, opt.seed = a.seed;
  auto net = nets::make_net(a.net, opt);

  std::vector<std::string> used, initialised;
  std::vector<interop::SkippedEntry> skipped = w.skipped;  // what the file held besides tensors
  std::map<std::string, std::string> meta = {{"source", basename_of(a.from)}, {"net", a.net}, {"imported_by", "ctgrad import"}};
  if (a.net == "resnet18") {
    interop::ImportReport r = interop::import_resnet18(w.tensors, *net, mode, a.from);
    used = r.used, initialised = r.initialised;
    skipped.insert(skipped.end(), r.skipped.begin(), r.skipped.end());
    std::printf("conv1: %s\n", r.conv1.c_str());
    meta["conv1"] = interop::conv1_mode_name(mode);
    meta["seed"] = std::to_string(a.seed);
  } else {
    try {
      net->load_state_dict(from_named(w.tensors), true);
    } catch (const Error& e) {
      throw Error(a.from + ": " + e.what() + " (only resnet18 is mapped from torchvision; the other nets need our own names)");
    }
    for (auto& [n, t] : net->state_dict()) used.push_back(n);
    meta["size"] = std::to_string(a.size);
  }
  print_list("used", used);
  std::printf("skipped: %zu\n", skipped.size());
  for (const auto& s : skipped) std::printf("  %s (%s)\n", s.key.c_str(), s.what.c_str());
  print_list("initialised", initialised);
  save_module(a.out, *net, meta);
  std::printf("wrote: %s\n", a.out.c_str());
}

}  // namespace

static Registrar reg([](CLI::App& app) {
  auto* cmd = app.add_subcommand(
      "import",
      "Import weights from PyTorch (.pt/.pth written by torch.save, PyTorch >= 1.6) or safetensors into a ctgrad "
      "checkpoint. --net resnet18 maps torchvision's resnet18 (e.g. ImageNet weights): conv1's RGB filters summed "
      "(--conv1 sum) or freshly initialised (fresh), the 1000-class head replaced by ours. Other nets need a state "
      "dict with our names (bench/pytorch_nets.py).");
  auto a = std::make_shared<ImportArgs>();
  cmd->add_option("--from", a->from, "FILE.pth|FILE.pt|FILE.safetensors to read")->required();
  cmd->add_option("--net", a->net, "dense20|dense50|dense100|dense100x100|cnn1|cnn2|resnet18")->capture_default_str();
  cmd->add_option("--out", a->out, "ctgrad checkpoint (safetensors) to write, atomically")->required();
  cmd->add_option("--conv1", a->conv1, "resnet18: sum (RGB filters summed: the grey slice as 3 equal channels) or "
                                       "fresh (our initialisation)")->capture_default_str();
  cmd->add_option("--seed", a->seed, "seed of the initialisation of what the file does not provide (the head)")
      ->capture_default_str();
  cmd->add_option("--size", a->size, "input side the net is built for (dense/cnn layer sizes depend on it)")
      ->check(CLI::PositiveNumber)->capture_default_str();
  cmd->callback([a]() { run_import(*a); });
});

}  // namespace ctg::apps
