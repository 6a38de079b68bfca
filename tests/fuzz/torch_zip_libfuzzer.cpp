// libFuzzer entry point for the torch.save loader (zip reader, restricted
// unpickler, tensor checks); not part of the CMake build. The interop sources
// are instrumented; the engine comes from a normal build's static libraries.
// From the repository root, with Debian's clang (clang, libclang-rt-14-dev)
// and a configured build in BUILD (ctgrad_core and ctgrad_cuda_emu built):
//
//   clang++ -std=c++17 -g -O1 -fsanitize=fuzzer,address,undefined -fno-sanitize-recover=all -I. \
//     -DCTGRAD_SOURCE_DIR='"'$PWD'"' interop/*.cpp tests/fuzz/torch_zip_libfuzzer.cpp \
//     $BUILD/libctgrad_core.a $BUILD/libctgrad_cuda_emu.a $BUILD/libctgrad_emu_runtime.a \
//     /usr/lib/x86_64-linux-gnu/openblas-openmp/libopenblas.so.0 -fopenmp -lz -lpthread -o /tmp/torch_fuzzer
//   mkdir -p /tmp/torch_corpus && cp ../shared/fixtures/weights/{float16,bfloat16,checkpoint,complex_nested}.pt /tmp/torch_corpus
//   /tmp/torch_fuzzer -max_len=20000 -max_total_time=300 /tmp/torch_corpus
//
// The fuzzer mostly damages the zip layer (a changed data.pkl byte breaks its
// CRC); the inputs whose first byte is '!' skip the zip and go straight to the
// unpickler and the flattening behind it, so both layers get coverage. An
// input passes if it loads or throws ctg::Error; any other exception aborts.
#include <cstdint>
#include <cstdlib>
#include <string>
#include <vector>

#include "engine/tensor.h"
#include "interop/unpickle.h"
#include "interop/weights.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  try {
    if (size > 0 && data[0] == '!') {
      const ctg::interop::Pickle p = ctg::interop::unpickle(data + 1, size - 1, "fuzz.pkl");
      std::vector<ctg::interop::PickleLeaf> tensors, others;
      ctg::interop::flatten(p, p.root, "", tensors, others, "fuzz.pkl");
      for (const auto& o : others) (void)ctg::interop::describe(p, o.value);
    } else {
      (void)ctg::interop::load_torch_zip(std::vector<uint8_t>(data, data + size), "fuzz.pt");
    }
  } catch (const ctg::Error&) {
  } catch (const std::exception& e) {
    std::fprintf(stderr, "non-ctg::Error exception: %s\n", e.what());
    std::abort();
  }
  return 0;
}
