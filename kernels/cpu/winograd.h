// The transforms of Winograd's minimal filtering F(m×m, 3×3) (Lavin & Gray,
// "Fast Algorithms for Convolutional Neural Networks", 2016), for the tuned
// CPU convolution (kernels/cpu/conv2d_winograd.cpp). One m×m tile of a 3×3
// correlation, from an α×α input tile d (α = m + 2) and the 3×3 filter g:
//
//   Y = Aᵀ [ (G g Gᵀ) ⊙ (Bᵀ d B) ] A
//
// ⊙ elementwise: α² products instead of 9m² (F(2×2): 16 against 36, 2.25×
// fewer; F(4×4): 36 against 144, 4×). Summed over input channels the ⊙
// becomes α² independent GEMMs (one per position ξ of the α×α tile):
//   M_ξ[o, tile] = Σ_c U_ξ[o, c] · V_ξ[c, tile],   U = G g Gᵀ,  V = Bᵀ d B.
//
// Each transform below applies its matrix to a column of α (or 3) values
// (the 2-D transforms apply it along one axis, then the other). Templated on
// the value type: a float, or a GCC vector of floats (one tile per lane).
// Written out term by term: a product with a zero coefficient is not free in
// IEEE arithmetic (0·inf is NaN), so the compiler would keep it in a matrix loop.
//
// F(2×2, 3×3), interpolation points 0, ±1, ∞ (every coefficient 0, ±1 or ±½:
// exact in float):
//   Bᵀ = [1 0 −1 0; 0 1 1 0; 0 −1 1 0; 0 1 0 −1]
//   G  = [1 0 0; ½ ½ ½; ½ −½ ½; 0 0 1]
//   Aᵀ = [1 1 1 0; 0 1 −1 −1]
// F(4×4, 3×3), points 0, ±1, ±2, ∞ (Lavin & Gray's matrices):
//   Bᵀ = [4 0 −5 0 1 0; 0 −4 −4 1 1 0; 0 4 −4 −1 1 0; 0 −2 −1 2 1 0; 0 2 −1 −2 1 0; 0 4 0 −5 0 1]
//   G  = [¼ 0 0; −⅙ −⅙ −⅙; −⅙ ⅙ −⅙; 1⁄24 1⁄12 ⅙; 1⁄24 −1⁄12 ⅙; 0 0 1]
//   Aᵀ = [1 1 1 1 1 0; 0 1 −1 2 −2 0; 0 1 1 4 4 0; 0 1 −1 8 −8 1]
// F(4×4)'s larger coefficients cost accuracy: its results differ from the
// direct sums by ~10× more than F(2×2)'s (tests/test_conv2d_winograd.cpp).
#pragma once

namespace ctg::kernels::winograd {

template <int M>
struct F;

template <>
struct F<2> {
  static constexpr int m = 2, alpha = 4;
  // o = Bᵀ d
  template <typename V>
  static inline void bt(const V* d, V* o) {
    o[0] = d[0] - d[2];
    o[1] = d[1] + d[2];
    o[2] = d[2] - d[1];
    o[3] = d[1] - d[3];
  }
  // o = G g (g: 3 values)
  template <typename V>
  static inline void g(const V* g, V* o) {
    o[0] = g[0];
    o[1] = (g[0] + g[1] + g[2]) * 0.5f;
    o[2] = (g[0] - g[1] + g[2]) * 0.5f;
    o[3] = g[2];
  }
  // o = Aᵀ s (s: α values, o: m values)
  template <typename V>
  static inline void at(const V* s, V* o) {
    o[0] = s[0] + s[1] + s[2];
    o[1] = s[1] - s[2] - s[3];
  }
};

template <>
struct F<4> {
  static constexpr int m = 4, alpha = 6;
  template <typename V>
  static inline void bt(const V* d, V* o) {
    o[0] = 4.f * d[0] - 5.f * d[2] + d[4];
    o[1] = d[3] + d[4] - 4.f * (d[1] + d[2]);
    o[2] = d[4] - d[3] + 4.f * (d[1] - d[2]);
    o[3] = d[4] - d[2] + 2.f * (d[3] - d[1]);
    o[4] = d[4] - d[2] + 2.f * (d[1] - d[3]);
    o[5] = 4.f * d[1] - 5.f * d[3] + d[5];
  }
  template <typename V>
  static inline void g(const V* g, V* o) {
    o[0] = g[0] * 0.25f;
    o[1] = (g[0] + g[1] + g[2]) * (-1.f / 6.f);
    o[2] = (g[0] - g[1] + g[2]) * (-1.f / 6.f);
    o[3] = g[0] * (1.f / 24.f) + g[1] * (1.f / 12.f) + g[2] * (1.f / 6.f);
    o[4] = g[0] * (1.f / 24.f) - g[1] * (1.f / 12.f) + g[2] * (1.f / 6.f);
    o[5] = g[2];
  }
  template <typename V>
  static inline void at(const V* s, V* o) {
    const V p1 = s[1] + s[2], m1 = s[1] - s[2], p2 = s[3] + s[4], m2 = s[3] - s[4];
    o[0] = s[0] + p1 + p2;
    o[1] = m1 + 2.f * m2;
    o[2] = p1 + 4.f * p2;
    o[3] = m1 + 8.f * m2 + s[5];
  }
};

}  // namespace ctg::kernels::winograd
