// Exact (erf) GELU and the erf behind it, AVX2 + FMA: the algorithm of gelu-avx512.cpp (erf-coefs.h, in
// double, rounded to f32) on 4 lanes; the interval's coefficients are picked with two dword permutes
// and a blend. Internal linkage only (see kernels-avx2.cpp).
#include <immintrin.h>

#include "kernels/erf-coefs.h"
#include "kernels/gelu-coefs.h"
#include "kernels/kernels-impl.h"

namespace gptneox {
namespace {

// erf(z) for z >= 0 (NaN stays NaN).
inline __m256d erf_pd(__m256d z) {
    const __m256d w = _mm256_mul_pd(z, z);
    __m256d t = _mm256_set1_pd(kErfTaylor[8]);
    #pragma GCC unroll 8
    for (int n = 7; n >= 0; n--) t = _mm256_fmadd_pd(t, w, _mm256_set1_pd(kErfTaylor[n]));
    t = _mm256_mul_pd(t, z);
    __m256d kf = _mm256_round_pd(_mm256_add_pd(z, z), _MM_FROUND_TO_NEG_INF | _MM_FROUND_NO_EXC);
    kf = _mm256_min_pd(_mm256_max_pd(kf, _mm256_setzero_pd()), _mm256_set1_pd(7.0)); // NaN -> 0
    const __m256i k64 = _mm256_cvtepu32_epi64(_mm256_cvttpd_epi32(kf));
    const __m256i k2 = _mm256_slli_epi64(_mm256_and_si256(k64, _mm256_set1_epi64x(3)), 1);
    const __m256i idx = _mm256_or_si256(k2, _mm256_slli_epi64(_mm256_add_epi64(k2, _mm256_set1_epi64x(1)), 32));
    const __m256d upper = _mm256_castsi256_pd(_mm256_cmpgt_epi64(k64, _mm256_set1_epi64x(3)));
    auto coef = [&](int c) {
        const __m256 lo = _mm256_permutevar8x32_ps(_mm256_castpd_ps(_mm256_load_pd(kErfTab[c])), idx);
        const __m256 hi = _mm256_permutevar8x32_ps(_mm256_castpd_ps(_mm256_load_pd(kErfTab[c] + 4)), idx);
        return _mm256_blendv_pd(_mm256_castps_pd(lo), _mm256_castps_pd(hi), upper);
    };
    const __m256d centre = _mm256_fmadd_pd(kf, _mm256_set1_pd(2.0), _mm256_set1_pd(1.0)); // 2k + 1
    const __m256d u = _mm256_fmsub_pd(z, _mm256_set1_pd(4.0), centre);
    __m256d p = coef(9);
    #pragma GCC unroll 9
    for (int c = 8; c >= 0; c--) p = _mm256_fmadd_pd(p, u, coef(c));
    p = _mm256_blendv_pd(p, t, _mm256_cmp_pd(z, _mm256_set1_pd(0.5), _CMP_LT_OQ));
    return _mm256_blendv_pd(p, _mm256_set1_pd(1.0), _mm256_cmp_pd(z, _mm256_set1_pd(4.0), _CMP_GE_OQ));
}

// erf of 8 floats, x scaled by `s` first (in double): sign(x) * round_f32(erf(|x| s)).
inline __m256 erf8(__m256 x, double s) {
    const __m256d vs = _mm256_set1_pd(s);
    const __m256d absmask = _mm256_castsi256_pd(_mm256_set1_epi64x(0x7FFFFFFFFFFFFFFFLL));
    const __m256d lo = _mm256_and_pd(_mm256_cvtps_pd(_mm256_castps256_ps128(x)), absmask);
    const __m256d hi = _mm256_and_pd(_mm256_cvtps_pd(_mm256_extractf128_ps(x, 1)), absmask);
    const __m128 elo = _mm256_cvtpd_ps(erf_pd(_mm256_mul_pd(lo, vs)));
    const __m128 ehi = _mm256_cvtpd_ps(erf_pd(_mm256_mul_pd(hi, vs)));
    const __m256 e = _mm256_insertf128_ps(_mm256_castps128_ps256(elo), ehi, 1);
    return _mm256_or_ps(e, _mm256_and_ps(x, _mm256_castsi256_ps(_mm256_set1_epi32(INT32_MIN))));
}

// Lanes [0, r) of an int mask (r <= 8).
inline __m256i lane_mask(int64_t r) {
    return _mm256_cmpgt_epi32(_mm256_set1_epi32(int(r)), _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7));
}

void erf_f32(const float *x, float *y, int64_t n) {
    int64_t i = 0;
    for (; i + 8 <= n; i += 8) _mm256_storeu_ps(y + i, erf8(_mm256_loadu_ps(x + i), 1.0));
    if (i < n) {
        const __m256i m = lane_mask(n - i);
        _mm256_maskstore_ps(y + i, m, erf8(_mm256_maskload_ps(x + i, m), 1.0));
    }
}

// Entry k (0..15) of a 16-float table, per lane: two 8-entry permutes and a blend.
inline __m256 lookup16(const float *tab, __m256i k, __m256 upper) {
    const __m256 a = _mm256_permutevar8x32_ps(_mm256_load_ps(tab), k);
    const __m256 b = _mm256_permutevar8x32_ps(_mm256_load_ps(tab + 8), k);
    return _mm256_blendv_ps(a, b, upper);
}

// GELU's erf in f32: gelu-avx512.cpp's gelu_erf16 (gelu-coefs.h) with 8 lanes. 0.76 instead of 2.8 ns
// per float on Zen 4 (one thread, 2.9 M floats).
inline __m256 gelu_erf8(__m256 x) {
    const __m256 sign = _mm256_set1_ps(-0.0f);
    const __m256 z = _mm256_mul_ps(_mm256_andnot_ps(sign, x), _mm256_set1_ps(0.70710678118654752440f));
    const __m256 z4 = _mm256_mul_ps(z, _mm256_set1_ps(4.0f));
    const __m256 kf = _mm256_min_ps(_mm256_round_ps(z4, _MM_FROUND_TO_NEG_INF | _MM_FROUND_NO_EXC),
                                    _mm256_set1_ps(15.0f)); // NaN -> 15
    const __m256i k = _mm256_cvttps_epi32(kf);
    const __m256 upper = _mm256_castsi256_ps(_mm256_cmpgt_epi32(k, _mm256_set1_epi32(7)));
    const __m256 t = _mm256_sub_ps(z4, _mm256_add_ps(kf, _mm256_set1_ps(0.5f)));
    constexpr int kDeg = int(sizeof(kGeluErfQ) / sizeof(kGeluErfQ[0]));
    __m256 p = lookup16(kGeluErfQ[kDeg - 1], k, upper);
    #pragma GCC unroll 8
    for (int j = kDeg - 2; j >= 0; j--) p = _mm256_fmadd_ps(p, t, lookup16(kGeluErfQ[j], k, upper));
    const __m256 r = _mm256_fmadd_ps(t, p, lookup16(kGeluErfLo, k, upper));
    __m256 e = _mm256_add_ps(lookup16(kGeluErfHi, k, upper), r);
    e = _mm256_blendv_ps(e, _mm256_set1_ps(1.0f), _mm256_cmp_ps(z, _mm256_set1_ps(4.0f), _CMP_GE_OQ));
    return _mm256_or_ps(e, _mm256_and_ps(x, sign));
}

inline __m256 gelu8(__m256 x) {
    const __m256 e = gelu_erf8(x);
    return _mm256_mul_ps(_mm256_mul_ps(_mm256_set1_ps(0.5f), x), _mm256_add_ps(_mm256_set1_ps(1.0f), e));
}

void gelu(float *y, int64_t n) {
    int64_t i = 0;
    for (; i + 8 <= n; i += 8) _mm256_storeu_ps(y + i, gelu8(_mm256_loadu_ps(y + i)));
    if (i < n) {
        const __m256i m = lane_mask(n - i);
        _mm256_maskstore_ps(y + i, m, gelu8(_mm256_maskload_ps(y + i, m)));
    }
}

} // namespace

void fill_gelu_avx2(kernels &k) {
    k.gelu = gelu;
    k.erf_f32 = erf_f32;
}

} // namespace gptneox
