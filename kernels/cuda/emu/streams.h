// Stream order in the CUDA emulation (used by kernels/cuda/runtime_emu.cpp and
// by emulated launches on a created stream).
//
// The compute stream (nullptr, CUDA's legacy default stream) runs everything
// at once, in issue order. A created stream (cudaStreamNonBlocking on a GPU:
// no implicit ordering with the default stream) queues its work, which runs
// only when something waits for it — an event recorded after it is waited on
// by the host or another stream, the device is synchronised, or the stream is
// destroyed. So a missing wait reads stale data (or the NaN poison of fresh
// device memory) in CI, instead of racing unnoticed on a GPU.
#pragma once
#include <functional>
#include <vector>

namespace ctg::cuda::emu {

void* stream_create();
void stream_destroy(void* stream);  // runs what is still queued, as cudaStreamDestroy lets it finish
// Queues `op` on a created stream (not nullptr: the caller runs compute-stream work itself).
void stream_enqueue(void* stream, std::function<void()> op);

// Capture (cudaStreamBeginCapture on a created stream): from begin to end,
// stream_enqueue on `stream` appends to the recording instead of its queue
// (what was queued before runs first), and event_record on it throws.
// stream_end_capture hands the recording over, in issue order; running its
// operations in order is one replay (each may run any number of times: a
// launch holds its arguments by value).
void stream_begin_capture(void* stream);
std::vector<std::function<void()>> stream_end_capture(void* stream);
bool stream_capturing(void* stream);

void* event_create();
void event_destroy(void* event);
// The event marks everything queued on `stream` so far (complete at once on nullptr).
void event_record(void* event, void* stream);
// Runs the work the event marks (host wait, or another stream's wait: running
// earlier-issued work now is an order a GPU may also choose).
void event_wait(void* event);
void run_all_streams();  // cudaDeviceSynchronize
// Milliseconds between two recorded events: when each completed (at record on
// the compute stream, which runs everything at once; when waited for on a
// created stream). Throws when either was never recorded.
float event_elapsed_ms(void* start, void* end);

}  // namespace ctg::cuda::emu
