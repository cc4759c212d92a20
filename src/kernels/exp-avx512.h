// exp of AVX-512 lanes for the softmax of the attention kernels (attention-avx512.cpp, attention-amx.cpp;
// included only by files compiled with the AVX-512 flags).
#pragma once

#include <immintrin.h>

namespace gptneox {
namespace { // (internal linkage: see packed-layout.h)

// exp(x), x <= 0 (x = s - max); -inf, NaN and x < -104 give 0. Cody-Waite reduction x = n ln2 + r,
// |r| <= ln2/2, Taylor polynomial of degree 7 (truncation < 2^-28 relative), scalef for 2^n (subnormals
// rounded correctly). About 2 ulp.
inline __m512 exp_ps(__m512 x) {
    const __mmask16 live = _mm512_cmp_ps_mask(x, _mm512_set1_ps(-104.0f), _CMP_GE_OQ);
    x = _mm512_max_ps(x, _mm512_set1_ps(-104.0f));
    const __m512 n = _mm512_roundscale_ps(_mm512_mul_ps(x, _mm512_set1_ps(1.44269504088896341f)),
                                          _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
    __m512 r = _mm512_fnmadd_ps(n, _mm512_set1_ps(0.693145751953125f), x); // ln2 high part: n * it is exact
    r = _mm512_fnmadd_ps(n, _mm512_set1_ps(1.42860682030941723e-6f), r);  // ln2 low part
    __m512 p = _mm512_set1_ps(1.0f / 5040.0f);
    p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(1.0f / 720.0f));
    p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(1.0f / 120.0f));
    p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(1.0f / 24.0f));
    p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(1.0f / 6.0f));
    p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(0.5f));
    p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(1.0f));
    p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(1.0f));
    return _mm512_maskz_mov_ps(live, _mm512_scalef_ps(p, n));
}

} // namespace
} // namespace gptneox
