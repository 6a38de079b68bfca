#include "nets/summary.h"

#include <cstdio>
#include <sstream>

#include "engine/autograd.h"
#include "engine/ops.h"
#include "nets/nets.h"

namespace ctg::nets {

std::string with_commas(int64_t v) {
  std::string s = std::to_string(v < 0 ? -v : v), out;
  for (size_t i = 0; i < s.size(); ++i) {
    if (i && (s.size() - i) % 3 == 0) out += ',';
    out += s[i];
  }
  return (v < 0 ? "-" : "") + out;
}

Summary summarize(Module& net, int64_t size, bool measure_saved) {
  Summary s;
  s.input_size = size;
  s.model_params = net.num_parameters();
  Generator gen(7);
  net.train();
  {
    Tensor x = Tensor::empty({2, 1, size, size});
    gen.uniform_(x, 0.0, 1.0);
    ModuleCallObserver prev = set_module_call_observer([&](const Module& m, const Tensor& out, int depth) {
      if (depth == 0 || m.is_container()) return;  // torchsummary skips the model and containers
      SummaryRow r;
      r.layer = m.type_name() + "-" + std::to_string(s.rows.size() + 1);
      r.output = out.shape();
      r.output[0] = -1;
      r.params = m.own_weight_bias_numel();
      s.total_params += r.params;
      s.output_elements += out.numel() / out.size(0);
      s.rows.push_back(r);
    });
    autograd::NoGradGuard ng;  // shapes only
    try {
      net(x);
    } catch (...) {
      set_module_call_observer(prev);
      throw;
    }
    set_module_call_observer(prev);
  }
  if (measure_saved) {
    Tensor x = Tensor::empty({1, 1, size, size});
    gen.uniform_(x, 0.0, 1.0);
    Tensor loss = ops::bce_with_logits(net(x), Tensor::full({1, 1}, 1.0));
    s.saved_activation_bytes = autograd::saved_bytes(loss, true);
    s.saved_total_bytes = autograd::saved_bytes(loss, false);
  }
  return s;
}

std::string format_summary(const Summary& s) {
  std::ostringstream os;
  char line[256];
  const char* rule = "----------------------------------------------------------------\n";
  os << rule;
  std::snprintf(line, sizeof line, "%20s  %25s %15s\n", "Layer (type)", "Output Shape", "Param #");
  os << line << "================================================================\n";
  for (auto& r : s.rows) {
    std::snprintf(line, sizeof line, "%20s  %25s %15s\n", r.layer.c_str(), shape_str(r.output).c_str(),
                  with_commas(r.params).c_str());
    os << line;
  }
  os << "================================================================\n";
  os << "Model parameters (all tensors): " << with_commas(s.model_params) << "\n";
  double input_mb = (double)s.input_size * s.input_size * 4.0 / (1024.0 * 1024.0);
  std::snprintf(line, sizeof line, "Input size (MB): %.2f\n", input_mb);
  os << line;
  std::snprintf(line, sizeof line, "Forward/backward pass bytes (torchsummary rule): %.0f\n", s.pass_bytes());
  os << line;
  if (s.saved_total_bytes) {
    std::snprintf(line, sizeof line,
                  "Saved for backward, measured (batch 1, training step): %zu bytes (%.2f MB) of activations; "
                  "%.2f MB with parameters and input\n",
                  s.saved_activation_bytes, s.saved_activation_bytes / 1048576.0, s.saved_total_bytes / 1048576.0);
    os << line;
  }
  os << rule;
  os << "Total params: " << with_commas(s.total_params) << "\n";
  std::snprintf(line, sizeof line, "Params size (MB): %.2f\n", s.params_mb());
  os << line;
  std::snprintf(line, sizeof line, "Forward/backward pass size (MB): %.2f\n", s.pass_mb());
  os << line;
  return os.str();
}

std::vector<Table1Row> table1(int64_t size, bool measure_saved) {
  std::vector<Table1Row> rows;
  for (const auto& name : net_names()) {
    auto net = make_net(name, {size, 0, false});  // one at a time: Dense(100,100) alone holds 100 MB at 512
    rows.push_back({name, summarize(*net, size, measure_saved)});
  }
  return rows;
}

std::string pass_size_text(const Summary& s) {
  char b[64];
  if (s.pass_mb() < 0.01) std::snprintf(b, sizeof b, "%.0f B", s.pass_bytes());
  else std::snprintf(b, sizeof b, "%.2f MB", s.pass_mb());
  return b;
}

std::string format_table1(const std::vector<Table1Row>& rows) {
  std::ostringstream os;
  char line[256];
  std::snprintf(line, sizeof line, "%-14s %14s %17s %26s %24s\n", "net", "params", "params size (MB)",
                "forward/backward pass size", "saved for backward (MB)");
  os << line;
  for (const auto& r : rows) {
    const Summary& s = r.summary;
    char saved[32] = "-";
    if (s.saved_activation_bytes) std::snprintf(saved, sizeof saved, "%.2f", s.saved_activation_bytes / 1048576.0);
    std::snprintf(line, sizeof line, "%-14s %14s %17.2f %26s %24s\n", r.net.c_str(), with_commas(s.total_params).c_str(),
                  s.params_mb(), pass_size_text(s).c_str(), saved);
    os << line;
  }
  if (!rows.empty()) {
    std::snprintf(line, sizeof line,
                  "input %lld x %lld, batch 1. params, params size (params x 4 / 2^20) and pass size (2 x 4 bytes x the "
                  "summed outputs of the listed layers) by torchsummary's rules; saved for backward: the activations "
                  "the engine keeps for one training step, measured.\n",
                  (long long)rows.front().summary.input_size, (long long)rows.front().summary.input_size);
    os << line;
  }
  return os.str();
}

}  // namespace ctg::nets
