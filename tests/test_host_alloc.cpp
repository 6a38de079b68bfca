// base/host_alloc.h: alignment, the cache colouring of large blocks, and
// host_free handing back what host_alloc took (ASan/valgrind would see a
// wrong base pointer; here a freed-and-reallocated block must be usable).
#include <doctest/doctest.h>

#include <cstdint>
#include <cstring>
#include <set>
#include <vector>

#include "base/host_alloc.h"

using namespace ctg;

TEST_CASE("host_alloc: 64-byte aligned, writable to the last byte, freed by host_free") {
  for (size_t n : {size_t(1), size_t(63), size_t(4097), (size_t(2) << 20) - 1, size_t(2) << 20,
                   (size_t(5) << 20) + 12345}) {
    auto* p = static_cast<unsigned char*>(host_alloc(n));
    REQUIRE(p != nullptr);
    CHECK(reinterpret_cast<uintptr_t>(p) % 64 == 0);
    std::memset(p, 0xA5, n);
    CHECK(p[n - 1] == 0xA5);
    host_free(p);
  }
  host_free(nullptr);  // a no-op, as std::free
}

TEST_CASE("host_alloc: consecutive large blocks start at different offsets within their 2 MiB pages") {
  // Equal offsets would put element i of every array in the same L1/L2 set
  // (the slowdown base/host_alloc.h measured): 32 blocks in a row get 32
  // different colours, each a whole number of cache lines, none at offset 0
  // (the base pointer lives in the line before).
  constexpr size_t huge = size_t(2) << 20;
  std::vector<void*> blocks;
  std::set<uintptr_t> offsets;
  for (int i = 0; i < 32; ++i) {
    void* p = host_alloc(3 * huge);
    REQUIRE(p != nullptr);
    blocks.push_back(p);
    uintptr_t off = reinterpret_cast<uintptr_t>(p) % huge;
    CHECK(off % 64 == 0);
    CHECK(off != 0);
    CHECK(off < 160 * 1024);
    offsets.insert(off % 4096 + 4096 * ((off / 4096) % 32));  // the L2 set bits of the start
  }
  CHECK(offsets.size() == 32);
  for (void* p : blocks) host_free(p);
}
