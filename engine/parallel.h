// CPU thread count for both OpenMP (our loops) and OpenBLAS (GEMMs).
#pragma once

namespace ctg {
void set_num_threads(int n);  // n ≤ 0: leave the libraries' defaults
int num_threads();
}  // namespace ctg
