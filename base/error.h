// The bottom layer (base/): what every other layer may include, and which
// includes nothing of ctgrad's own. engine/ and kernels/ both use it, so
// kernels/ never needs to include engine/.
#pragma once
#include <stdexcept>

namespace ctg {

// One error type for the whole engine: the message names the op, tensor,
// file or flag at fault; the CLI prints it as one line and exits non-zero.
struct Error : std::runtime_error {
  using std::runtime_error::runtime_error;
};

}  // namespace ctg
