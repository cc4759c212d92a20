// BF16 weights x BF16 activations on VDPBF16PS (AVX512_BF16: Zen 4, Cooper Lake, Sapphire Rapids and
// later), the BF16 entries of the AVX-512 table when the CPU has it (dispatch.cpp). Reference:
// gemm-bf16dp-scalar.cpp, bit for bit (gemm_bf16dp_test.cpp).
//
// Why: with f32 activations a BF16 weight costs one f32 FMA per element (16 per instruction); VDPBF16PS
// does 32 per instruction, twice the multiply-add peak (bench/peak.c: 234 vs 117 GMAC/s on 2 Zen 4
// cores). The price is the activations' rounding to bf16, which is what llama.cpp (vec_dot_type BF16)
// and torch's bf16 models do as well.
//
// Arithmetic of one output (the same whatever the tile, decode or prompt, so batching never changes a
// token's logits): activations are rounded to bf16 once per token (bf16dp_from_float: VCVTNEPS2BF16,
// nearest-even, denormals to zero); then for each step j of 32 elements (the last one zero-filled), lane
// l < 16 does what VDPBF16PS specifies,
//   acc[l] = fma(w[32j+2l+1], a[32j+2l+1], acc[l]);  acc[l] = fma(w[32j+2l], a[32j+2l], acc[l])
// (inputs denormal -> 0, results denormal -> 0, nearest-even), and the lanes are summed by the fixed tree
// of gemm-f16-tile.h.
#pragma GCC target("avx512bf16")
#include <immintrin.h>

#pragma GCC diagnostic ignored "-Wuninitialized" // GCC 12 AVX-512 headers, see kernels-avx512.cpp
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"

#include "kernels/gemm-f16-tile.h"
#include "kernels/kernels-impl.h"

namespace gptneox {
namespace {

struct dp_steps {
    static constexpr int kStep = 32;
    using act = uint16_t;
    using wvec = __m512i;
    using avec = __m512i;
    static __mmask32 mask(int64_t left) { return static_cast<__mmask32>((uint64_t(1) << left) - 1); }
    static __m512i wload(const uint16_t *p) { return _mm512_loadu_si512(p); }
    static __m512i wload_tail(const uint16_t *p, int64_t left) { return _mm512_maskz_loadu_epi16(mask(left), p); }
    static __m512i aload(const uint16_t *p) { return _mm512_loadu_si512(p); }
    static __m512i aload_tail(const uint16_t *p, int64_t left) { return _mm512_maskz_loadu_epi16(mask(left), p); }
    static __m512 madd(__m512i w, __m512i a, __m512 acc) {
        return _mm512_dpbf16_ps(acc, reinterpret_cast<__m512bh &>(w), reinterpret_cast<__m512bh &>(a));
    }
};

// f32 -> bf16 as VCVTNEPS2BF16 (what bf16dp_from_float_ref states).
void from_float(const float *x, void *yv, int64_t n) {
    uint16_t *y = static_cast<uint16_t *>(yv);
    int64_t i = 0;
    for (; i + 16 <= n; i += 16) {
        const __m256bh h = _mm512_cvtneps_pbh(_mm512_loadu_ps(x + i));
        _mm256_storeu_si256(reinterpret_cast<__m256i *>(y + i), reinterpret_cast<const __m256i &>(h));
    }
    if (i < n) {
        const __mmask16 m = static_cast<__mmask16>((1u << (n - i)) - 1);
        const __m256bh h = _mm512_cvtneps_pbh(_mm512_maskz_loadu_ps(m, x + i));
        _mm256_mask_storeu_epi16(y + i, m, reinterpret_cast<const __m256i &>(h));
    }
}

float vec_dot(int64_t n, const void *w, const void *a) {
    float y = 0.0f;
    f16tile::gemm<dp_steps>(n, w, 0, 1, a, 0, nullptr, 0, 1, &y, 0, nullptr);
    return y;
}

} // namespace

void fill_gemm_bf16dp_avx512(kernels &k) {
    type_traits &t = k.traits[GPTNEOX_TYPE_BF16];
    t.vec_dot_type = GPTNEOX_TYPE_BF16; // activations: bf16 rows, made by from_float below
    t.from_float = from_float;
    t.vec_dot = vec_dot;
    t.vec_dot_x4 = nullptr;
    t.gemm = f16tile::gemm<dp_steps>;
    t.bf16_prompt = true;
}

} // namespace gptneox
