#include "nets/nets.h"

#include "nets/cnn.h"
#include "nets/dense.h"
#include "nets/resnet18.h"

namespace ctg::nets {

const std::vector<std::string>& net_names() {
  static const std::vector<std::string> names = {"dense20", "dense50", "dense100", "dense100x100",
                                                 "cnn1",    "cnn2",    "resnet18"};
  return names;
}

std::shared_ptr<Module> make_net(const std::string& name, const NetOptions& opt) {
  if (opt.size < 1) throw Error("net size must be positive, got " + std::to_string(opt.size));
  Generator gen(opt.seed);
  if (name == "dense20") return std::make_shared<Dense>(opt.size, std::vector<int64_t>{20}, gen);
  if (name == "dense50") return std::make_shared<Dense>(opt.size, std::vector<int64_t>{50}, gen);
  if (name == "dense100") return std::make_shared<Dense>(opt.size, std::vector<int64_t>{100}, gen);
  if (name == "dense100x100") return std::make_shared<Dense>(opt.size, std::vector<int64_t>{100, 100}, gen);
  if (name == "cnn1") return std::make_shared<CNN>(opt.size, std::array<int64_t, 3>{5, 5, 5}, 180, gen);
  if (name == "cnn2") return std::make_shared<CNN>(opt.size, std::array<int64_t, 3>{10, 20, 50}, 500, gen);
  if (name == "resnet18") {
    if (opt.size < 32) throw Error("resnet18: input size " + std::to_string(opt.size) + " is too small (need ≥ 32)");
    return std::make_shared<ResNet18>(gen, opt.dropout);
  }
  std::string known;
  for (auto& n : net_names()) known += (known.empty() ? "" : ", ") + n;
  throw Error("unknown net '" + name + "' (known: " + known + ")");
}

}  // namespace ctg::nets
