// CUDA graph capture and replay (kernels/cuda/runtime.h): on the emulation in
// CI, natively where a GPU is lent. The kernels used are the library's own
// (the SGD update, its scalar write), so the same tests run on both.
//   - a recorded operation does not run until a replay; each replay runs it again;
//   - a host read, a synchronisation or an event on the capture stream during
//     the capture is one clear error, and the capture can be abandoned;
//   - the graph's private pool keeps its blocks from everyone else until the
//     graph is destroyed, and reuses freed ones within the capture only.
#include <doctest/doctest.h>

#include <cmath>
#include <cstring>

#include "engine/tensor.h"
#include "kernels/cuda/runtime.h"
#include "kernels/optim.h"
#include "tests/test_util.h"

using namespace ctg;
using ctg::test::error_of;

namespace {
Tensor on_device(const std::vector<double>& v) {
  return Tensor::from_vector(v, {(int64_t)v.size()}).to(Device::cuda);
}
// p ← p − lr·g with lr read from `scalars` (the SGD kernel without momentum or decay).
void sgd(Tensor& p, const Tensor& g, const Tensor& scalars) {
  kernels::sgd_update_cuda(p.device_data<float>(), g.device_data<float>(), nullptr, p.numel(),
                           scalars.device_data<float>(), 0.0, 0.0, false);
}
}  // namespace

TEST_CASE("cuda graph: a recorded launch runs only when replayed and once per replay") {
  cuda::set_emulation(true);
  Tensor p = on_device({10, 20, 30}), g = on_device({1, 2, 3});
  Tensor scalars = Tensor::empty({4}, DType::f32, Device::cuda);
  kernels::optim_scalars_cuda(scalars.device_data<float>(), kernels::sgd_scalars(1.0));
  cuda::begin_capture();
  CHECK(cuda::capturing());
  CHECK(cuda::compute_stream() != nullptr);  // never the legacy stream
  sgd(p, g, scalars);
  cuda::Graph graph = cuda::end_capture();
  CHECK_FALSE(cuda::capturing());
  CHECK(cuda::compute_stream() == nullptr);
  CHECK(p.to_vector() == std::vector<double>{10, 20, 30});  // recorded, not run
  cuda::launch_graph(graph);
  CHECK(p.to_vector() == std::vector<double>{9, 18, 27});
  cuda::launch_graph(graph);
  CHECK(p.to_vector() == std::vector<double>{8, 16, 24});
  // The kernel reads its scalar from device memory at each replay: a new lr
  // written outside the graph is seen by the next replay.
  kernels::optim_scalars_cuda(scalars.device_data<float>(), kernels::sgd_scalars(2.0));
  cuda::launch_graph(graph);
  CHECK(p.to_vector() == std::vector<double>{6, 12, 18});
  cuda::destroy_graph(graph);
}

TEST_CASE("cuda graph: memsets and device copies are recorded too, in issue order") {
  cuda::set_emulation(true);
  Tensor a = on_device({1, 2, 3, 4}), b = on_device({0, 0, 0, 0});
  cuda::begin_capture();
  cuda::copy_d2d(b.device_data<float>(), a.device_data<float>(), 4 * sizeof(float));
  cuda::memset_zero(a.device_data<float>(), 2 * sizeof(float));
  cuda::Graph graph = cuda::end_capture();
  CHECK(b.to_vector() == std::vector<double>{0, 0, 0, 0});
  CHECK(a.to_vector() == std::vector<double>{1, 2, 3, 4});
  cuda::launch_graph(graph);
  CHECK(b.to_vector() == std::vector<double>{1, 2, 3, 4});  // copied before the memset
  CHECK(a.to_vector() == std::vector<double>{0, 0, 3, 4});
  a.copy_(Tensor::from_vector({5, 6, 7, 8}, {4}));  // new input in the static buffer, then a replay
  cuda::launch_graph(graph);
  CHECK(b.to_vector() == std::vector<double>{5, 6, 7, 8});
  cuda::destroy_graph(graph);
}

TEST_CASE("cuda graph: a host read or a wait inside the capture is one clear error") {
  cuda::set_emulation(true);
  Tensor t = on_device({1});
  const std::string kMsg = "not allowed while a CUDA graph is being captured";
  cuda::begin_capture();
  const std::string read = error_of([&] { (void)t.item(); });
  CHECK(read.find("copy_d2h") != std::string::npos);
  CHECK(read.find(kMsg) != std::string::npos);
  CHECK(error_of([&] { cuda::synchronize(); }).find("synchronize (cudaDeviceSynchronize): " + kMsg) !=
        std::string::npos);
  CHECK(error_of([&] { (void)Tensor::from_vector({1, 2}, {2}).to(Device::cuda); }).find("copy_h2d") !=
        std::string::npos);
  CHECK(error_of([&] { cuda::begin_capture(); }).find("already capturing") != std::string::npos);
  CHECK(error_of([&] { cuda::empty_cache(); }).find("empty_cache") != std::string::npos);
  cuda::abort_capture();
  CHECK_FALSE(cuda::capturing());
  CHECK(t.item() == 1.0);  // fine again
  CHECK(error_of([&] { (void)cuda::end_capture(); }).find("no CUDA graph is being captured") != std::string::npos);
}

TEST_CASE("cuda graph: the private pool keeps the capture's blocks until the graph is destroyed") {
  cuda::set_emulation(true);
  const int64_t n = 1000;  // 4000 bytes: a 4096-byte bucket
  cuda::begin_capture();
  void* freed = nullptr;
  {
    Tensor a = Tensor::empty({n}, DType::f32, Device::cuda);
    freed = a.device_data<float>();
  }
  // Freed inside the capture: handed out again inside it (replays repeat the order).
  Tensor b = Tensor::empty({n}, DType::f32, Device::cuda);
  CHECK(b.device_data<float>() == freed);
  Tensor c = Tensor::empty({n}, DType::f32, Device::cuda);
  void* kept = c.device_data<float>();
  cuda::Graph graph = cuda::end_capture();
  b = Tensor();
  c = Tensor();  // freed after the capture: still the graph's
  std::vector<Tensor> others;
  for (int i = 0; i < 4; ++i) {
    others.push_back(Tensor::empty({n}, DType::f32, Device::cuda));
    void* q = others.back().device_data<float>();
    CHECK(q != freed);
    CHECK(q != kept);
  }
  others.clear();
  cuda::destroy_graph(graph);
  // Back in the cache: the next allocations of the bucket find them.
  bool found_freed = false, found_kept = false;
  for (int i = 0; i < 8; ++i) {
    others.push_back(Tensor::empty({n}, DType::f32, Device::cuda));
    void* q = others.back().device_data<float>();
    found_freed |= q == freed;
    found_kept |= q == kept;
  }
  CHECK(found_freed);
  CHECK(found_kept);
}

TEST_CASE("cuda graph: a block still held when its graph is destroyed goes back to the cache when freed") {
  cuda::set_emulation(true);
  cuda::begin_capture();
  Tensor held = Tensor::empty({300}, DType::f32, Device::cuda);
  cuda::Graph graph = cuda::end_capture();
  void* p = held.device_data<float>();
  cuda::destroy_graph(graph);
  const auto before = cuda::allocator_stats();
  held = Tensor();  // an ordinary free now (no "not owned" error, no double free)
  const auto after = cuda::allocator_stats();
  CHECK(after.bytes_in_use < before.bytes_in_use);
  Tensor again = Tensor::empty({300}, DType::f32, Device::cuda);
  CHECK(again.device_data<float>() == p);
}

TEST_CASE("cuda graph: memory the capture hands out is poisoned at every replay (emulation)") {
  cuda::set_emulation(true);
  if (!cuda::is_emulated()) return;  // the poison is the emulation's (CTGRAD_CUDA_POISON on a GPU)
  Tensor src = on_device({7, 7});
  cuda::begin_capture();
  Tensor t = Tensor::empty({2}, DType::f32, Device::cuda);
  cuda::copy_d2d(t.device_data<float>(), src.device_data<float>(), sizeof(float));  // writes t[0] only
  cuda::Graph graph = cuda::end_capture();
  cuda::launch_graph(graph);
  std::vector<double> v = t.to_vector();
  CHECK(v[0] == 7.0);
  CHECK(std::isnan(v[1]));
  cuda::memset_zero(t.device_data<float>(), 2 * sizeof(float));
  cuda::launch_graph(graph);  // poisoned again: t[1] is never written by the graph
  CHECK(std::isnan(t.to_vector()[1]));
  cuda::destroy_graph(graph);
}
