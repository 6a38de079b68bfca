// Grow-only scratch buffers of floats, one set of Slots per thread and per
// Owner type (so that two users never share a buffer), kept across calls: no
// allocation and no page faults in steady state; host_alloc'd (2 MiB pages
// where large); freed when the thread ends. nullptr when out of memory.
// Users: the SGEMM's packing buffers (kernels/cpu/sgemm.cpp), the Winograd
// convolution's transforms (kernels/cpu/conv2d_winograd.h).
#pragma once
#include <cstddef>
#include <cstdlib>

#include "base/host_alloc.h"

namespace ctg {

template <class Owner, int Slots>
float* thread_scratch(int which, size_t n) {
  struct Set {
    float* p[Slots] = {};
    size_t cap[Slots] = {};
    ~Set() {
      for (float* q : p) host_free(q);
    }
  };
  thread_local Set s;
  if (s.cap[which] < n) {
    host_free(s.p[which]);  // the old one first: keeps peak memory low
    s.p[which] = static_cast<float*>(host_alloc(n * sizeof(float)));
    s.cap[which] = s.p[which] ? n : 0;
  }
  return s.p[which];
}

}  // namespace ctg
