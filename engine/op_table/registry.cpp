// The table's registry, its input makers and the bench's device buffers.
#include <algorithm>

#include "engine/op_table.h"
#include "engine/op_table/families.h"
#include "kernels/cuda/runtime.h"

namespace ctg::op_table {

const std::vector<OpEntry>& entries() {
  static const std::vector<OpEntry> all = [] {
    std::vector<OpEntry> v;
    for (auto family : {gemm_entries, norm_pool_entries, elementwise_entries})
      for (OpEntry& e : family()) v.push_back(std::move(e));
    return v;
  }();
  return all;
}

const OpEntry& entry(const std::string& op) {
  std::string known;
  for (const OpEntry& e : entries()) {
    if (e.op == op) return e;
    known += (known.empty() ? "" : ", ") + e.op;
  }
  throw Error("op table: no entry '" + op + "' (known: " + known + ")");
}

std::string dims_str(const Shape& s) {
  std::string r;
  for (size_t i = 0; i < s.size(); ++i) r += (i ? "x" : "") + std::to_string(s[i]);
  return r;
}

Tensor uniform(const Shape& s, std::mt19937_64& rng, double lo, double hi, DType dt) {
  std::uniform_real_distribution<double> u(lo, hi);
  std::vector<double> v((size_t)shape_numel(s));
  for (double& x : v) x = u(rng);
  return Tensor::from_vector(v, s, dt);
}

Tensor signed_away_from_zero(const Shape& s, std::mt19937_64& rng, double lo, double hi, DType dt) {
  std::uniform_real_distribution<double> u(lo, hi);
  std::vector<double> v((size_t)shape_numel(s));
  for (double& x : v) x = u(rng);
  for (double& x : v)
    if (rng() & 1) x = -x;
  return Tensor::from_vector(v, s, dt);
}

Tensor distinct(const Shape& s, std::mt19937_64& rng, double gap, DType dt) {
  // A ramp 0, 2·gap, 4·gap, … shuffled, centred on 0, each value moved by at
  // most gap/2: any two values stay more than gap apart.
  std::vector<double> v((size_t)shape_numel(s));
  for (size_t i = 0; i < v.size(); ++i) v[i] = (double)i * gap * 2.0;
  std::shuffle(v.begin(), v.end(), rng);
  std::uniform_real_distribution<double> jitter(0, gap * 0.5);
  const double mid = (double)v.size() * gap;
  for (double& x : v) x = x - mid + jitter(rng);
  return Tensor::from_vector(v, s, dt);
}

Tensor bernoulli(const Shape& s, std::mt19937_64& rng, DType dt) {
  std::vector<double> v((size_t)shape_numel(s));
  for (double& x : v) x = (double)(rng() & 1);
  return Tensor::from_vector(v, s, dt);
}

DeviceBuf::DeviceBuf(int64_t count, uint32_t seed, bool fill) : n(count) {
  static_assert(sizeof(float) == sizeof(int32_t), "DeviceBuf holds float or int32");
  p = cuda::device_alloc((size_t)count * sizeof(float));
  if (!fill) return;
  // A linear congruential sequence mapped to [-1, 1): cheap, fixed, no zeros pattern.
  std::vector<float> h((size_t)count);
  uint32_t st = seed * 747796405u + 1u;
  for (float& x : h) st = st * 1664525u + 1013904223u, x = (float)(st >> 8) / 8388608.f - 1.f;
  cuda::copy_h2d(p, h.data(), h.size() * sizeof(float));
}
DeviceBuf::~DeviceBuf() { cuda::device_free(p); }

DeviceBuf* BenchSetup::buf(int64_t count, uint32_t seed, bool fill) {
  bufs.push_back(std::make_unique<DeviceBuf>(count, seed, fill));
  return bufs.back().get();
}

}  // namespace ctg::op_table
