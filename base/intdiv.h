// Integer division rounding down (for negative a too) and up (a ≥ 0, b > 0):
// the index arithmetic of the kernels (output sizes, the output columns a
// convolution tap reaches, tiles and blocks that cover a range).
#pragma once
#include <cstdint>

namespace ctg {
inline int64_t floor_div(int64_t a, int64_t b) { return a >= 0 ? a / b : -((-a + b - 1) / b); }
inline int64_t ceil_div(int64_t a, int64_t b) { return (a + b - 1) / b; }
}  // namespace ctg
