// Implicit-GEMM convolutions on the tensor-core core (kernels/cuda/gemm_tc.h):
// conv2d under --precision tf32. The im2col matrix is never written: the
// operand Sources below compute, for each element a tile asks for, the address
// in x, gy or W it stands for, or nullptr where the convolution reads padding
// (staged as zero by cp.async's src-size 0). Math as kernels/conv2d.h, with
// K = C·KH·KW, P = OH·OW, k = (c,p,q), pix = (i,j):
//   forward      y_n[O,P]    (+)= W[O,K] · cols_n[K,P]
//                cols_n[(c,p,q),(i,j)] = x[n,c, i·SH+p−PH, j·SW+q−PW]
//   grad-input   gx_n[C,H·W] (+)= Wᵀ'[C, O·KH·KW] · G_n[O·KH·KW, H·W]   (= : a first write, beta 0)
//                Wᵀ'[c,(o,p,q)] = W[o,c,p,q]
//                G_n[(o,p,q),(h,w)] = gy[n,o,i,j] where h = i·SH+p−PH and
//                w = j·SW+q−PW for integer i in [0,OH), j in [0,OW); else 0
//                (the transposed convolution as a gather: each gx element is
//                written once, no col2im scratch, no atomics)
//   grad-weight  gW[O,K]     += Σ_n gy_n[O,P] · cols_nᵀ[P,K]   (sum mode over n)
// The bias parts are the FP32 kernels of conv2d.cu (they are not products).
#include "kernels/conv2d.h"
#include "kernels/cuda/gemm_tc.h"

namespace ctg::kernels {

namespace {

// x[n, c, i·SH+p−PH, j·SW+q−PW] for k = (c,p,q), pix = (i,j); nullptr in the padding.
CTG_DEVICE const float* unfolded(const float* x, const Conv2dDims& d, int64_t n, int64_t k, int64_t pix) {
  const int64_t c = k / (d.KH * d.KW), pq = k % (d.KH * d.KW), p = pq / d.KW, q = pq % d.KW;
  const int64_t i = pix / d.OW, j = pix % d.OW;
  const int64_t h = i * d.SH + p - d.PH, w = j * d.SW + q - d.PW;
  if (h < 0 || h >= d.H || w < 0 || w >= d.W) return nullptr;
  return x + ((n * d.C + c) * d.H + h) * d.W + w;
}

struct ForwardSource {
  const float* x;
  const float* w;
  Conv2dDims d;
  static constexpr bool a_k_contiguous = true;   // W[o, k]
  static constexpr bool b_k_contiguous = false;  // x along pixels
  CTG_DEVICE const float* a(int64_t, int64_t o, int64_t k) const { return w + o * (d.C * d.KH * d.KW) + k; }
  CTG_DEVICE const float* b(int64_t n, int64_t k, int64_t pix) const { return unfolded(x, d, n, k, pix); }
};

struct GradInputSource {
  const float* gy;
  const float* w;
  Conv2dDims d;
  static constexpr bool a_k_contiguous = true;   // W[o,c,p,q] along (p,q)
  static constexpr bool b_k_contiguous = false;  // gy along output pixels
  CTG_DEVICE const float* a(int64_t, int64_t c, int64_t k) const {
    const int64_t o = k / (d.KH * d.KW), pq = k % (d.KH * d.KW);
    return w + (o * d.C + c) * d.KH * d.KW + pq;
  }
  CTG_DEVICE const float* b(int64_t n, int64_t k, int64_t hw) const {
    const int64_t o = k / (d.KH * d.KW), pq = k % (d.KH * d.KW), p = pq / d.KW, q = pq % d.KW;
    const int64_t th = hw / d.W + d.PH - p, tw = hw % d.W + d.PW - q;  // = i·SH, j·SW
    if (th < 0 || tw < 0 || th % d.SH || tw % d.SW) return nullptr;
    const int64_t i = th / d.SH, j = tw / d.SW;
    if (i >= d.OH || j >= d.OW) return nullptr;
    return gy + ((n * d.O + o) * d.OH + i) * d.OW + j;
  }
};

struct GradWeightSource {
  const float* x;
  const float* gy;
  Conv2dDims d;
  static constexpr bool a_k_contiguous = true;  // gy[n, o, pix]
  static constexpr bool b_k_contiguous = true;  // x along pixels (k here)
  CTG_DEVICE const float* a(int64_t n, int64_t o, int64_t pix) const {
    return gy + (n * d.O + o) * (d.OH * d.OW) + pix;
  }
  CTG_DEVICE const float* b(int64_t n, int64_t pix, int64_t k) const { return unfolded(x, d, n, k, pix); }
};

}  // namespace

void conv2d_forward_tf32_cuda(const float* x, const float* w, float* y, const Conv2dDims& d, bool accumulate) {
  const int64_t K = d.C * d.KH * d.KW, P = d.OH * d.OW;
  tc_detail::run_gemm_tc(ForwardSource{x, w, d},
                         tc_detail::TcShape{d.O, P, K, d.N, false, tc_detail::aligned4(w, K, 0), false},
                         tc_detail::TcOut{y, P, d.O * P, 1.f, accumulate ? 1.f : 0.f});
}

void conv2d_backward_tf32_cuda(const float* x, const float* w, const float* gy, float* gx, float* gw,
                               const Conv2dDims& d, bool gx_accumulate) {
  const int64_t K = d.C * d.KH * d.KW, P = d.OH * d.OW;
  if (gw)
    tc_detail::run_gemm_tc(GradWeightSource{x, gy, d},
                           tc_detail::TcShape{d.O, K, P, d.N, true, tc_detail::aligned4(gy, P, d.O * P), false},
                           tc_detail::TcOut{gw, K, 0, 1.f, 1.f});
  if (gx)
    tc_detail::run_gemm_tc(GradInputSource{gy, w, d}, tc_detail::TcShape{d.C, d.H * d.W, d.O * d.KH * d.KW, d.N, false},
                           tc_detail::TcOut{gx, d.H * d.W, d.C * d.H * d.W, 1.f, gx_accumulate ? 1.f : 0.f});
}

}  // namespace ctg::kernels
