// A torchsummary-style summary of a net, plus the engine's own measure of
// the memory a training step keeps for backward.
//
// torchsummary's rules, reproduced: a forward hook on every module except
// containers (Sequential) and the model itself, run on a batch of 2 and
// shown as [-1, ...]; a module called twice (ResNet's block-level ReLU) is
// listed twice; "Param #" counts only the module's own `weight` and `bias`
// (so BatchNorm's running statistics are not counted); the pass size is
// 2 (forward + backward) × 4 bytes × the sum of the listed outputs of one
// sample. Which layers are listed therefore decides that figure: in the
// study's models ReLU and pooling are functional in Dense/CNN (only Linear,
// Conv2d and BatchNorm2d count), while ResNet18 lists its ReLU, MaxPool2d
// and BasicBlock modules as torchvision defines them, plus the 1×1 head and
// the global max pool. That is what gives Table 1's 168 B ... 328.00 MB.
#pragma once
#include <string>
#include <vector>

#include "engine/module.h"

namespace ctg::nets {

struct SummaryRow {
  std::string layer;  // "Conv2d-1"
  Shape output;       // per sample (batch dim shown as -1)
  int64_t params;
};

struct Summary {
  std::vector<SummaryRow> rows;
  int64_t total_params = 0;      // Σ rows' params (torchsummary's total)
  int64_t model_params = 0;      // every parameter of the model
  int64_t output_elements = 0;   // Σ per-sample outputs of the rows
  int64_t input_size = 0;        // S
  double params_mb() const { return (double)total_params * 4.0 / (1024.0 * 1024.0); }
  double pass_bytes() const { return 2.0 * 4.0 * (double)output_elements; }
  double pass_mb() const { return pass_bytes() / (1024.0 * 1024.0); }
  // Measured by the engine at batch 1 in training mode (0 when not measured).
  size_t saved_activation_bytes = 0;
  size_t saved_total_bytes = 0;
};

// Runs the net (train mode) on a random batch of 2 to list the layers and,
// when measure_saved, one batch-1 forward + loss to measure saved bytes.
Summary summarize(Module& net, int64_t size, bool measure_saved);
std::string format_summary(const Summary& s);

// The study's Table 1: one row per net of net_names() (the seven nets; ResNet18*
// has ResNet18's row), from summarize() at input side `size`: torchsummary's
// total params, params size (MB) and forward/backward pass size, and the
// engine's measured saved-for-backward bytes (activations, batch 1; 0 when
// not measured).
struct Table1Row {
  std::string net;
  Summary summary;
};
std::vector<Table1Row> table1(int64_t size, bool measure_saved);
// As one fixed-width text table (`ctgrad summary --all`).
std::string format_table1(const std::vector<Table1Row>& rows);
// The pass size as torchsummary's MB with 2 decimals, and in bytes below 0.01 MB
// ("168 B"), as SEED_NOTES quotes it.
std::string pass_size_text(const Summary& s);
std::string with_commas(int64_t v);

}  // namespace ctg::nets
