// CUDA global_maxpool (kernels/cuda/global_maxpool.cu) vs the CPU reference,
// float32: the argmax, which the op keeps to itself (through the entry points),
// and the tie and NaN rules; the op's y and accumulated gx are the op table's
// cases (engine/op_table/norm_pool.cpp). Tolerance: none. The block reduction picks the same (value, index)
// pair as the CPU's scan (a max under a total order), and the backward adds
// one gy into one gx value per plane, so y, argmax and gx are bit-identical.
// Planes of 143 and 153 values leave threads of the 256-thread block idle;
// 37×29 = 1073 values make each thread's block-stride loop run 4–5 times.
#include <cstring>

#include "kernels/global_maxpool.h"
#include "tests/cuda_check.h"

using namespace ctg;

namespace {

// The entry points' y and int32 argmax on one device (the op keeps argmax).
struct Forward {
  std::vector<float> y;
  std::vector<int32_t> argmax;
};
Forward forward_entry_point(const Tensor& x_cpu, Device dev) {
  const int64_t planes = x_cpu.size(0) * x_cpu.size(1), HW = x_cpu.size(2) * x_cpu.size(3);
  Tensor x = test::fresh_on(x_cpu, dev);
  Tensor y = Tensor::empty({planes}, DType::f32, dev);
  Tensor am = Tensor::empty({(planes + 1) / 2}, DType::i64, dev);  // int32 packed two per i64, as in the op
  int32_t* am32 = static_cast<int32_t*>(dev == Device::cuda ? am.device_raw_data() : am.raw_data());
  if (dev == Device::cuda)
    kernels::global_maxpool_forward_cuda(x.device_data<float>(), y.device_data<float>(), am32, planes, HW);
  else
    kernels::global_maxpool_forward_cpu(x.data<float>(), y.data<float>(), am32, planes, HW);
  Tensor yh = y.to(Device::cpu), amh = am.to(Device::cpu);
  const int32_t* a = static_cast<const int32_t*>(amh.raw_data());
  return {std::vector<float>(yh.data<float>(), yh.data<float>() + planes), std::vector<int32_t>(a, a + planes)};
}

void check_same_forward(const Forward& got, const Forward& want) {
  REQUIRE(got.argmax.size() == want.argmax.size());
  for (size_t i = 0; i < want.argmax.size(); ++i) {
    CAPTURE(i);
    CHECK(got.argmax[i] == want.argmax[i]);
    CHECK(std::memcmp(&got.y[i], &want.y[i], sizeof(float)) == 0);  // bitwise, so NaN == NaN
  }
}

}  // namespace

TEST_CASE("cuda vs cpu: global_maxpool argmax on continuous values") {
  std::mt19937_64 rng(21);
  for (const Shape& s : {Shape{2, 3, 13, 11}, Shape{3, 5, 17, 9}, Shape{2, 3, 37, 29}}) {
    CAPTURE(shape_str(s));
    // Continuous random values: a tie inside a plane has probability ~0.
    const Tensor x = test::rand_f32(s, rng);
    const Forward want = forward_entry_point(x, Device::cpu);
    test::for_each_schedule([&] { check_same_forward(forward_entry_point(x, Device::cuda), want); });
  }
}

TEST_CASE("cuda vs cpu: global_maxpool ties go to the first maximum, NaN to the last NaN") {
  // Planes of 37×29 values drawn from {0, ..., 4} (plane 5: the maximum occurs
  // many times, in the slices of many threads), and planes built to test the rule.
  std::mt19937_64 rng(22);
  const Shape s{2, 3, 37, 29};
  const int64_t HW = 37 * 29;
  std::vector<double> v((size_t)shape_numel(s));
  for (double& e : v) e = (double)(rng() % 5);
  auto at = [&](int64_t plane, int64_t i) -> double& { return v[(size_t)(plane * HW + i)]; };
  for (int64_t i = 0; i < HW; ++i) at(0, i) = 3.0, at(1, i) = -INFINITY, at(2, i) = -INFINITY;
  at(2, HW - 1) = 7.0, at(2, 300) = 7.0;  // two maxima in different threads' slices: 300
  at(3, 5) = NAN, at(3, 700) = NAN;       // the last NaN: 700
  at(4, 256) = 9.0, at(4, 512) = 9.0;     // two maxima in one thread's slice: 256
  Tensor x = Tensor::from_vector(v, s, DType::f32);
  const Forward want = forward_entry_point(x, Device::cpu);
  CHECK(want.argmax[0] == 0);  // all equal
  CHECK(want.argmax[1] == 0);  // all −∞
  CHECK(want.argmax[2] == 300);
  CHECK(want.argmax[3] == 700);
  CHECK(want.argmax[4] == 256);
  test::for_each_schedule([&] { check_same_forward(forward_entry_point(x, Device::cuda), want); });
}
