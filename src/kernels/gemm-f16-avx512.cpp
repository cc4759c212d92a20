// Blocked F16 / BF16-weight products with f32 activations for AVX-512 (the `gemm` entries of
// kernels.h for GPTNEOX_TYPE_F16 / _BF16), compiled with the AVX-512 flags and reached only through
// dispatch.cpp. Internal linkage only (see kernels-avx2.cpp for why).
//
// Arithmetic, the same for every output whatever the tile it is computed in (so a token's result
// never depends on how many tokens were multiplied together, decode or prompt):
//   acc[l] = fma(w[16j + l], a[16j + l], acc[l]) for j = 0, 1, ... in order (lane l < 16; the last,
//   partial vector zero-filled), then the 16 lanes are summed by one fixed tree:
//   s8[i] = acc[i] + acc[i+8], s4[i] = s8[i] + s8[i+4], s2[i] = s4[i] + s4[i+2], sum = s2[0] + s2[1].
// Weights are converted to f32 as they are loaded (vcvtph2ps; bf16: zero-extend + shift), so the
// products are exact f32 products of the stored values and the sums are f32 FMA chains, no rounding of
// the activations.
//
// The register tile and its blocking: gemm-f16-tile.h.
// Tried and dropped: converting a row quad to an f32 buffer once per token block (the brief's first
// idea) was ~15% slower on Zen 4: the f32 quad doubles the tile's L1 footprint, and vcvtph2ps from
// memory costs less than the extra L1/L2 traffic.
#include <immintrin.h>

#pragma GCC diagnostic ignored "-Wuninitialized" // GCC 12 AVX-512 headers, see kernels-avx512.cpp
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
// -O2 does not unroll loops, and a rolled loop over a register tile keeps the tile in memory: the
// small fixed loops below carry unroll pragmas.

#include "kernels/gemm-f16-tile.h"
#include "kernels/kernels-impl.h"

namespace gptneox {
namespace {

// f32 FMA steps of 16 elements; weights converted to f32 as they are loaded.
template <bool BF> struct f32_steps {
    static constexpr int kStep = 16;
    using act = float;
    using wvec = __m512;
    using avec = __m512;
    static __m512 cvt(__m256i h) {
        if constexpr (BF) return _mm512_castsi512_ps(_mm512_slli_epi32(_mm512_cvtepu16_epi32(h), 16));
        else return _mm512_cvtph_ps(h);
    }
    static __mmask16 mask(int64_t left) { return static_cast<__mmask16>((1u << left) - 1); }
    static __m512 wload(const uint16_t *p) { return cvt(_mm256_loadu_si256(reinterpret_cast<const __m256i *>(p))); }
    static __m512 wload_tail(const uint16_t *p, int64_t left) { return cvt(_mm256_maskz_loadu_epi16(mask(left), p)); }
    static __m512 aload(const float *p) { return _mm512_loadu_ps(p); }
    static __m512 aload_tail(const float *p, int64_t left) { return _mm512_maskz_loadu_ps(mask(left), p); }
    static __m512 madd(__m512 w, __m512 a, __m512 acc) { return _mm512_fmadd_ps(w, a, acc); }
};

} // namespace

void fill_gemm_f16_avx512(kernels &k) {
    k.traits[GPTNEOX_TYPE_F16].gemm = f16tile::gemm<f32_steps<false>>;
    k.traits[GPTNEOX_TYPE_BF16].gemm = f16tile::gemm<f32_steps<true>>;
}

} // namespace gptneox
