// The native backend of kernels/cuda/impl.h (compiled by nvcc only): the
// selection, and cuBLAS behind gemm_cuda; cuDNN is in kernels/cuda/cudnn_native.cu.
// Every cuBLAS/cuDNN status is checked and a failure names the call and shape.
//
// Handle: one, created on first use (after the device is known to exist), bound
// to the compute stream before every call, and never destroyed (a static
// destroyed after the CUDA context at exit would fail). A mutex serialises its
// use; the engine launches from one thread.
//
// cuBLAS: row-major C = op(A)·op(B) is column-major Cᵀ = op(B)ᵀ·op(A)ᵀ, and a
// row-major X with row stride ld is the column-major Xᵀ with the same ld; so
// each call passes (B, A), (N, M) with the transposes unchanged. The sum mode
// (one C += over the batch) is a loop of Sgemm calls, the first with the
// caller's beta and the rest with beta = 1: stream-ordered, deterministic.
//
// Precision: see impl.h. Without TF32, cuBLAS runs CUBLAS_DEFAULT_MATH (full
// FP32 for Sgemm; CUBLAS_TF32_TENSOR_OP_MATH with TF32 allowed).
#include <cublas_v2.h>
#include <cuda_runtime.h>

#include <algorithm>
#include <atomic>
#include <cstdlib>
#include <cstring>
#include <mutex>
#include <string>

#include "kernels/cuda/impl.h"
#include "kernels/cuda/runtime.h"

namespace ctg::kernels {

namespace {
std::atomic<GemmImpl> g_gemm{GemmImpl::native};
std::atomic<ConvImpl> g_conv{ConvImpl::native};
std::atomic<bool>& tf32_flag() {
  static std::atomic<bool> on{[] {
    const char* v = std::getenv("CTGRAD_ALLOW_TF32");
    return v && *v && std::strcmp(v, "0") != 0;
  }()};
  return on;
}
cudaStream_t stream() { return static_cast<cudaStream_t>(cuda::compute_stream()); }

// ---- cuBLAS ------------------------------------------------------------------
void check_cublas(cublasStatus_t st, const char* call, const std::string& where) {
  if (st != CUBLAS_STATUS_SUCCESS)
    throw Error(std::string("cuBLAS: ") + call + " failed: " + cublasGetStatusString(st) + where);
}

struct Cublas {
  cublasHandle_t h = nullptr;
  std::string status;
  std::mutex mu;
  Cublas() {
    if (!cuda::available()) {
      status = "cuBLAS unavailable: " + cuda::device_description();
      return;
    }
    const cublasStatus_t st = cublasCreate(&h);
    if (st != CUBLAS_STATUS_SUCCESS) {
      h = nullptr;
      status = std::string("cuBLAS unavailable: cublasCreate failed: ") + cublasGetStatusString(st);
      return;
    }
    int v = 0;
    check_cublas(cublasGetVersion(h, &v), "cublasGetVersion", "");
    check_cublas(cublasSetPointerMode(h, CUBLAS_POINTER_MODE_HOST), "cublasSetPointerMode", "");
    status = "cuBLAS " + std::to_string(v / 10000) + "." + std::to_string(v / 100 % 100) + "." +
             std::to_string(v % 100);
  }
};
Cublas& cublas() {
  static Cublas* c = new Cublas;  // never destroyed (see the top)
  return *c;
}
}  // namespace

void set_gemm_impl(GemmImpl impl) {
  if (impl == GemmImpl::cublas && !cublas_available()) throw Error("--gemm-impl cublas: " + cublas_status());
  g_gemm = impl;
}
GemmImpl gemm_impl() { return g_gemm; }
bool cublas_available() { return cublas().h != nullptr; }
std::string cublas_status() { return cublas().status; }
void set_allow_tf32(bool on) { tf32_flag() = on; }
bool allow_tf32() { return tf32_flag(); }

void gemm_cublas(bool ta, bool tb, int64_t M, int64_t N, int64_t K, float alpha, const float* A, int64_t lda,
                 const float* B, int64_t ldb, float beta, float* C, int64_t ldc, const GemmBatch& batch) {
  if (M <= 0 || N <= 0 || batch.count <= 0) return;
  Cublas& c = cublas();
  if (!c.h) throw Error("gemm_cublas: " + c.status);
  const auto where = [&] {
    return " (M=" + std::to_string(M) + " N=" + std::to_string(N) + " K=" + std::to_string(K) +
           " ta=" + std::to_string(ta) + " tb=" + std::to_string(tb) + " lda=" + std::to_string(lda) +
           " ldb=" + std::to_string(ldb) + " ldc=" + std::to_string(ldc) + " batch " + std::to_string(batch.count) +
           (batch.sum ? " summed)" : ")");
  };
  const int64_t k = std::max<int64_t>(K, 0);
  if (k == 0) lda = ldb = std::max({lda, ldb, M, N, int64_t(1)});  // nothing is read; keep cuBLAS's checks happy
  const cublasOperation_t op_a = ta ? CUBLAS_OP_T : CUBLAS_OP_N, op_b = tb ? CUBLAS_OP_T : CUBLAS_OP_N;
  std::lock_guard<std::mutex> lock(c.mu);
  check_cublas(cublasSetStream(c.h, stream()), "cublasSetStream", where());
  check_cublas(cublasSetMathMode(c.h, allow_tf32() ? CUBLAS_TF32_TENSOR_OP_MATH : CUBLAS_DEFAULT_MATH),
               "cublasSetMathMode", where());
  if (batch.sum || batch.count == 1) {
    for (int64_t z = 0; z < batch.count; ++z) {
      const float b = z == 0 ? beta : 1.f;
      float* Cz = C + (batch.sum ? 0 : z * batch.stride_c);
      check_cublas(cublasSgemm_64(c.h, op_b, op_a, N, M, k, &alpha, B + z * batch.stride_b, ldb,
                                  A + z * batch.stride_a, lda, &b, Cz, ldc),
                   "cublasSgemm_64", where());
    }
    return;
  }
  check_cublas(cublasSgemmStridedBatched_64(c.h, op_b, op_a, N, M, k, &alpha, B, ldb, batch.stride_b, A, lda,
                                            batch.stride_a, &beta, C, ldc, batch.stride_c, batch.count),
               "cublasSgemmStridedBatched_64", where());
}

void set_conv_impl(ConvImpl impl) {
  if (impl == ConvImpl::cudnn && !cudnn_available()) throw Error("--conv-impl cudnn: " + cudnn_status());
  g_conv = impl;
}
ConvImpl conv_impl() { return g_conv; }

}  // namespace ctg::kernels
