// Deferred streams of the CUDA emulation (see streams.h).
#include "kernels/cuda/emu/streams.h"

#include <algorithm>
#include <chrono>
#include <cstdint>
#include <deque>
#include <mutex>
#include <stdexcept>
#include <vector>

namespace ctg::cuda::emu {

namespace {
struct EmuStream {
  std::deque<std::function<void()>> queue;
  uint64_t issued = 0, done = 0;
  bool capturing = false;
  std::vector<std::function<void()>> recording;  // while capturing
};
// "The first `upto` operations of `stream`"; stream == nullptr: complete.
struct EmuEvent {
  EmuStream* stream = nullptr;
  uint64_t upto = 0;
  bool recorded = false;
  std::chrono::steady_clock::time_point when{};  // when it completed (for timing)
};

// Recursive: a queued operation may itself wait on an event or free memory.
// Loader workers wait on events from their own threads, hence the lock.
std::recursive_mutex g_mu;
std::vector<EmuStream*> g_streams;

bool live(EmuStream* s) { return std::find(g_streams.begin(), g_streams.end(), s) != g_streams.end(); }

void run_until(EmuStream* s, uint64_t upto) {
  while (s->done < upto && !s->queue.empty()) {
    std::function<void()> op = std::move(s->queue.front());
    s->queue.pop_front();
    s->done++;
    op();  // an exception (a kernel's error) surfaces at the wait, as CUDA's asynchronous errors do
  }
}
}  // namespace

void* stream_create() {
  std::lock_guard<std::recursive_mutex> lock(g_mu);
  g_streams.push_back(new EmuStream);
  return g_streams.back();
}

void stream_destroy(void* stream) {
  if (!stream) return;
  std::lock_guard<std::recursive_mutex> lock(g_mu);
  auto* s = static_cast<EmuStream*>(stream);
  if (!live(s)) throw std::runtime_error("CUDA emulation: destroy of an unknown stream");
  if (s->capturing) throw std::runtime_error("CUDA emulation: destroy of a stream that is capturing a graph");
  run_until(s, s->issued);
  g_streams.erase(std::remove(g_streams.begin(), g_streams.end(), s), g_streams.end());
  delete s;
}

void stream_enqueue(void* stream, std::function<void()> op) {
  std::lock_guard<std::recursive_mutex> lock(g_mu);
  auto* s = static_cast<EmuStream*>(stream);
  if (!s || !live(s)) throw std::runtime_error("CUDA emulation: work queued on an unknown stream");
  if (s->capturing) {
    s->recording.push_back(std::move(op));
    return;
  }
  s->queue.push_back(std::move(op));
  s->issued++;
}

void stream_begin_capture(void* stream) {
  std::lock_guard<std::recursive_mutex> lock(g_mu);
  auto* s = static_cast<EmuStream*>(stream);
  if (!s || !live(s)) throw std::runtime_error("CUDA emulation: capture on the default stream or an unknown stream");
  if (s->capturing) throw std::runtime_error("CUDA emulation: the stream is already capturing");
  run_until(s, s->issued);  // earlier work is no part of the graph
  s->capturing = true;
  s->recording.clear();
}

std::vector<std::function<void()>> stream_end_capture(void* stream) {
  std::lock_guard<std::recursive_mutex> lock(g_mu);
  auto* s = static_cast<EmuStream*>(stream);
  if (!s || !live(s) || !s->capturing) throw std::runtime_error("CUDA emulation: end of a capture never begun");
  s->capturing = false;
  return std::move(s->recording);
}

bool stream_capturing(void* stream) {
  std::lock_guard<std::recursive_mutex> lock(g_mu);
  auto* s = static_cast<EmuStream*>(stream);
  return s && live(s) && s->capturing;
}

void* event_create() { return new EmuEvent; }
void event_destroy(void* event) { delete static_cast<EmuEvent*>(event); }

void event_record(void* event, void* stream) {
  if (!event) throw std::runtime_error("CUDA emulation: record of a null event");
  std::lock_guard<std::recursive_mutex> lock(g_mu);
  auto* e = static_cast<EmuEvent*>(event);
  if (stream && static_cast<EmuStream*>(stream)->capturing)
    throw std::runtime_error("CUDA emulation: event recorded on a stream that is capturing a graph");
  e->stream = static_cast<EmuStream*>(stream);
  e->upto = e->stream ? e->stream->issued : 0;
  e->recorded = true;
  e->when = std::chrono::steady_clock::now();
}

void event_wait(void* event) {
  if (!event) throw std::runtime_error("CUDA emulation: wait on a null event");
  std::lock_guard<std::recursive_mutex> lock(g_mu);
  auto* e = static_cast<EmuEvent*>(event);
  if (e->stream && live(e->stream) && e->stream->done < e->upto) {
    run_until(e->stream, e->upto);
    e->when = std::chrono::steady_clock::now();
  }
}

float event_elapsed_ms(void* start, void* end) {
  auto* a = static_cast<EmuEvent*>(start);
  auto* b = static_cast<EmuEvent*>(end);
  if (!a || !b || !a->recorded || !b->recorded)
    throw std::runtime_error("CUDA emulation: elapsed time of an event that was never recorded");
  event_wait(start);
  event_wait(end);
  return std::chrono::duration<float, std::milli>(b->when - a->when).count();
}

void run_all_streams() {
  std::lock_guard<std::recursive_mutex> lock(g_mu);
  for (size_t i = 0; i < g_streams.size(); ++i) run_until(g_streams[i], g_streams[i]->issued);
}

}  // namespace ctg::cuda::emu
