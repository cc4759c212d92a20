// Exact (erf) GELU and the erf behind it, AVX-512 F/DQ: erf evaluated in double on 8 lanes (erf-coefs.h)
// and rounded to f32, then GELU's f32 formula 0.5 x (1 + erf(x / sqrt 2)) as the scalar reference
// (gelu-scalar.cpp) writes it. Internal linkage only (see kernels-avx2.cpp).
#include <immintrin.h>

#pragma GCC diagnostic ignored "-Wuninitialized"
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"

#include "kernels/erf-coefs.h"
#include "kernels/gelu-coefs.h"
#include "kernels/kernels-impl.h"

namespace gptneox {
namespace {

// erf(z) for z >= 0 (NaN stays NaN).
inline __m512d erf_pd(__m512d z) {
    const __m512d w = _mm512_mul_pd(z, z);
    __m512d t = _mm512_set1_pd(kErfTaylor[8]);
    #pragma GCC unroll 8
    for (int n = 7; n >= 0; n--) t = _mm512_fmadd_pd(t, w, _mm512_set1_pd(kErfTaylor[n]));
    t = _mm512_mul_pd(t, z);
    __m512d kf = _mm512_roundscale_pd(_mm512_add_pd(z, z), _MM_FROUND_TO_NEG_INF | _MM_FROUND_NO_EXC);
    kf = _mm512_min_pd(_mm512_max_pd(kf, _mm512_setzero_pd()), _mm512_set1_pd(7.0)); // NaN -> 0
    const __m512i idx = _mm512_cvttpd_epi64(kf);
    const __m512d centre = _mm512_fmadd_pd(kf, _mm512_set1_pd(2.0), _mm512_set1_pd(1.0)); // 2k + 1
    const __m512d u = _mm512_fmsub_pd(z, _mm512_set1_pd(4.0), centre);
    __m512d p = _mm512_permutexvar_pd(idx, _mm512_load_pd(kErfTab[9]));
    #pragma GCC unroll 9
    for (int c = 8; c >= 0; c--) p = _mm512_fmadd_pd(p, u, _mm512_permutexvar_pd(idx, _mm512_load_pd(kErfTab[c])));
    p = _mm512_mask_mov_pd(p, _mm512_cmp_pd_mask(z, _mm512_set1_pd(0.5), _CMP_LT_OQ), t);
    return _mm512_mask_mov_pd(p, _mm512_cmp_pd_mask(z, _mm512_set1_pd(4.0), _CMP_GE_OQ), _mm512_set1_pd(1.0));
}

// erf of 16 floats, x scaled by `s` first (in double): sign(x) * round_f32(erf(|x| s)).
inline __m512 erf16(__m512 x, double s) {
    const __m512d vs = _mm512_set1_pd(s);
    const __m512d lo = _mm512_cvtps_pd(_mm512_castps512_ps256(x));
    const __m512d hi = _mm512_cvtps_pd(_mm256_castpd_ps(_mm512_extractf64x4_pd(_mm512_castps_pd(x), 1)));
    const __m256 elo = _mm512_cvtpd_ps(erf_pd(_mm512_mul_pd(_mm512_abs_pd(lo), vs)));
    const __m256 ehi = _mm512_cvtpd_ps(erf_pd(_mm512_mul_pd(_mm512_abs_pd(hi), vs)));
    const __m512 e =
        _mm512_castpd_ps(_mm512_insertf64x4(_mm512_castpd256_pd512(_mm256_castps_pd(elo)), _mm256_castps_pd(ehi), 1));
    const __m512i sign = _mm512_and_si512(_mm512_castps_si512(x), _mm512_set1_epi32(INT32_MIN));
    return _mm512_castsi512_ps(_mm512_or_si512(_mm512_castps_si512(e), sign));
}

inline __mmask16 tail_mask(int64_t r) { return static_cast<__mmask16>((1u << r) - 1); }

void erf_f32(const float *x, float *y, int64_t n) {
    int64_t i = 0;
    for (; i + 16 <= n; i += 16) _mm512_storeu_ps(y + i, erf16(_mm512_loadu_ps(x + i), 1.0));
    if (i < n) {
        const __mmask16 m = tail_mask(n - i);
        _mm512_mask_storeu_ps(y + i, m, erf16(_mm512_maskz_loadu_ps(m, x + i), 1.0));
    }
}

// GELU's erf in f32 (gelu-coefs.h: 16 intervals of width 1/4, a degree-6 polynomial each, the value at
// the centre as an f32 pair): GELU uses 1 + erf, so erf needs ~2^-24 absolute, not erf_f32's correct
// rounding; this one is within ~4e-8 of erf(z) for the f32 z = |x| * f32(1/sqrt 2), whose own rounding
// adds up to ~3e-8. 8 permutes and 6 FMAs per 16 floats instead of two 8-lane double evaluations: on
// Zen 4, 0.36 instead of 1.2 ns per float (one thread, 2.9 M floats). Every float in [-9, 9] (beyond,
// erf is +-1 in f32 either way) gives a GELU within gelu_test's bound, checked once exhaustively.
inline __m512 gelu_erf16(__m512 x) {
    const __m512 z = _mm512_mul_ps(_mm512_abs_ps(x), _mm512_set1_ps(0.70710678118654752440f));
    const __m512 z4 = _mm512_mul_ps(z, _mm512_set1_ps(4.0f));
    const __m512 kf = _mm512_min_ps(_mm512_roundscale_ps(z4, _MM_FROUND_TO_NEG_INF | _MM_FROUND_NO_EXC),
                                    _mm512_set1_ps(15.0f)); // NaN -> 15
    const __m512i k = _mm512_cvttps_epi32(kf);
    const __m512 t = _mm512_sub_ps(z4, _mm512_add_ps(kf, _mm512_set1_ps(0.5f)));
    constexpr int kDeg = int(sizeof(kGeluErfQ) / sizeof(kGeluErfQ[0]));
    __m512 p = _mm512_permutexvar_ps(k, _mm512_load_ps(kGeluErfQ[kDeg - 1]));
    #pragma GCC unroll 8
    for (int j = kDeg - 2; j >= 0; j--) p = _mm512_fmadd_ps(p, t, _mm512_permutexvar_ps(k, _mm512_load_ps(kGeluErfQ[j])));
    const __m512 r = _mm512_fmadd_ps(t, p, _mm512_permutexvar_ps(k, _mm512_load_ps(kGeluErfLo)));
    __m512 e = _mm512_add_ps(_mm512_permutexvar_ps(k, _mm512_load_ps(kGeluErfHi)), r);
    e = _mm512_mask_mov_ps(e, _mm512_cmp_ps_mask(z, _mm512_set1_ps(4.0f), _CMP_GE_OQ), _mm512_set1_ps(1.0f));
    const __m512i sign = _mm512_and_si512(_mm512_castps_si512(x), _mm512_set1_epi32(INT32_MIN));
    return _mm512_castsi512_ps(_mm512_or_si512(_mm512_castps_si512(e), sign));
}

inline __m512 gelu16(__m512 x) {
    const __m512 e = gelu_erf16(x);
    return _mm512_mul_ps(_mm512_mul_ps(_mm512_set1_ps(0.5f), x), _mm512_add_ps(_mm512_set1_ps(1.0f), e));
}

void gelu(float *y, int64_t n) {
    int64_t i = 0;
    for (; i + 16 <= n; i += 16) _mm512_storeu_ps(y + i, gelu16(_mm512_loadu_ps(y + i)));
    if (i < n) {
        const __mmask16 m = tail_mask(n - i);
        _mm512_mask_storeu_ps(y + i, m, gelu16(_mm512_maskz_loadu_ps(m, y + i)));
    }
}

} // namespace

void fill_gelu_avx512(kernels &k) {
    k.gelu = gelu;
    k.erf_f32 = erf_f32;
}

} // namespace gptneox
