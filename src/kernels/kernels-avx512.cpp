// AVX-512 F/BW/VL/DQ kernels (GPTNEOX_KERNELS_AVX512), with VPDPBUSD int8 dots where the CPU has
// AVX512-VNNI (chosen when the table is built; the VNNI instances are never called otherwise).
// Compiled with those flags by the Makefile and reached only through dispatch.cpp's table. Internal
// linkage only, no std:: templates (see kernels-avx2.cpp for why). Tails use masked loads, so there
// is no second scalar copy of any kernel here.
#include <immintrin.h>

// GCC 12's AVX-512 intrinsics initialise their "undefined" operands as `__m512 __Y = __Y;`, which
// -Wall reports at every inlining site (a false positive in the system header).
#pragma GCC diagnostic ignored "-Wuninitialized"
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"

#include "kernels/kernels-impl.h"

namespace gptneox {
namespace {

// f16 scale -> f32 with F16C (exact, like fp16_to_fp32, but inline in the hot loops).
inline float h2f(uint16_t h) { return _cvtsh_ss(h); }

inline __mmask16 tail_mask(int64_t r) { return static_cast<__mmask16>((1u << r) - 1); }

inline __m512 load_f16(const uint16_t *p) {
    return _mm512_cvtph_ps(_mm256_loadu_si256(reinterpret_cast<const __m256i *>(p)));
}
inline __m512 load_f16_tail(const uint16_t *p, __mmask16 m) { return _mm512_cvtph_ps(_mm256_maskz_loadu_epi16(m, p)); }
inline __m512 load_bf16(const uint16_t *p) {
    __m512i w = _mm512_cvtepu16_epi32(_mm256_loadu_si256(reinterpret_cast<const __m256i *>(p)));
    return _mm512_castsi512_ps(_mm512_slli_epi32(w, 16));
}
inline __m512 load_bf16_tail(const uint16_t *p, __mmask16 m) {
    return _mm512_castsi512_ps(_mm512_slli_epi32(_mm512_cvtepu16_epi32(_mm256_maskz_loadu_epi16(m, p)), 16));
}

// ---- f32 helpers ----

float dot_f32(int64_t n, const float *a, const float *b) {
    __m512 s0 = _mm512_setzero_ps(), s1 = s0, s2 = s0, s3 = s0;
    int64_t i = 0;
    for (; i + 64 <= n; i += 64) {
        s0 = _mm512_fmadd_ps(_mm512_loadu_ps(a + i), _mm512_loadu_ps(b + i), s0);
        s1 = _mm512_fmadd_ps(_mm512_loadu_ps(a + i + 16), _mm512_loadu_ps(b + i + 16), s1);
        s2 = _mm512_fmadd_ps(_mm512_loadu_ps(a + i + 32), _mm512_loadu_ps(b + i + 32), s2);
        s3 = _mm512_fmadd_ps(_mm512_loadu_ps(a + i + 48), _mm512_loadu_ps(b + i + 48), s3);
    }
    for (; i + 16 <= n; i += 16) s0 = _mm512_fmadd_ps(_mm512_loadu_ps(a + i), _mm512_loadu_ps(b + i), s0);
    if (i < n) {
        __mmask16 m = tail_mask(n - i);
        s1 = _mm512_fmadd_ps(_mm512_maskz_loadu_ps(m, a + i), _mm512_maskz_loadu_ps(m, b + i), s1);
    }
    return _mm512_reduce_add_ps(_mm512_add_ps(_mm512_add_ps(s0, s1), _mm512_add_ps(s2, s3)));
}

float dot_f32_f16(int64_t n, const float *a, const uint16_t *b) {
    __m512 s0 = _mm512_setzero_ps(), s1 = s0, s2 = s0, s3 = s0;
    int64_t i = 0;
    for (; i + 64 <= n; i += 64) {
        s0 = _mm512_fmadd_ps(_mm512_loadu_ps(a + i), load_f16(b + i), s0);
        s1 = _mm512_fmadd_ps(_mm512_loadu_ps(a + i + 16), load_f16(b + i + 16), s1);
        s2 = _mm512_fmadd_ps(_mm512_loadu_ps(a + i + 32), load_f16(b + i + 32), s2);
        s3 = _mm512_fmadd_ps(_mm512_loadu_ps(a + i + 48), load_f16(b + i + 48), s3);
    }
    for (; i + 16 <= n; i += 16) s0 = _mm512_fmadd_ps(_mm512_loadu_ps(a + i), load_f16(b + i), s0);
    if (i < n) {
        __mmask16 m = tail_mask(n - i);
        s1 = _mm512_fmadd_ps(_mm512_maskz_loadu_ps(m, a + i), load_f16_tail(b + i, m), s1);
    }
    return _mm512_reduce_add_ps(_mm512_add_ps(_mm512_add_ps(s0, s1), _mm512_add_ps(s2, s3)));
}

float dot_f32_bf16(int64_t n, const float *a, const uint16_t *b) {
    __m512 s0 = _mm512_setzero_ps(), s1 = s0, s2 = s0, s3 = s0;
    int64_t i = 0;
    for (; i + 64 <= n; i += 64) {
        s0 = _mm512_fmadd_ps(_mm512_loadu_ps(a + i), load_bf16(b + i), s0);
        s1 = _mm512_fmadd_ps(_mm512_loadu_ps(a + i + 16), load_bf16(b + i + 16), s1);
        s2 = _mm512_fmadd_ps(_mm512_loadu_ps(a + i + 32), load_bf16(b + i + 32), s2);
        s3 = _mm512_fmadd_ps(_mm512_loadu_ps(a + i + 48), load_bf16(b + i + 48), s3);
    }
    for (; i + 16 <= n; i += 16) s0 = _mm512_fmadd_ps(_mm512_loadu_ps(a + i), load_bf16(b + i), s0);
    if (i < n) {
        __mmask16 m = tail_mask(n - i);
        s1 = _mm512_fmadd_ps(_mm512_maskz_loadu_ps(m, a + i), load_bf16_tail(b + i, m), s1);
    }
    return _mm512_reduce_add_ps(_mm512_add_ps(_mm512_add_ps(s0, s1), _mm512_add_ps(s2, s3)));
}

void axpy_f16(int64_t n, float s, const uint16_t *x, float *y) {
    __m512 vs = _mm512_set1_ps(s);
    int64_t i = 0;
    for (; i + 16 <= n; i += 16) _mm512_storeu_ps(y + i, _mm512_fmadd_ps(vs, load_f16(x + i), _mm512_loadu_ps(y + i)));
    if (i < n) {
        __mmask16 m = tail_mask(n - i);
        _mm512_mask_storeu_ps(y + i, m, _mm512_fmadd_ps(vs, load_f16_tail(x + i, m), _mm512_maskz_loadu_ps(m, y + i)));
    }
}

void axpy_f32(int64_t n, float s, const float *x, float *y) {
    __m512 vs = _mm512_set1_ps(s);
    int64_t i = 0;
    for (; i + 16 <= n; i += 16)
        _mm512_storeu_ps(y + i, _mm512_fmadd_ps(vs, _mm512_loadu_ps(x + i), _mm512_loadu_ps(y + i)));
    if (i < n) {
        __mmask16 m = tail_mask(n - i);
        _mm512_mask_storeu_ps(y + i, m,
                              _mm512_fmadd_ps(vs, _mm512_maskz_loadu_ps(m, x + i), _mm512_maskz_loadu_ps(m, y + i)));
    }
}

void f32_to_f16_row(const float *x, uint16_t *y, int64_t n) {
    const int rc = _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC;
    int64_t i = 0;
    for (; i + 16 <= n; i += 16)
        _mm256_storeu_si256(reinterpret_cast<__m256i *>(y + i), _mm512_cvtps_ph(_mm512_loadu_ps(x + i), rc));
    if (i < n) {
        __mmask16 m = tail_mask(n - i);
        _mm256_mask_storeu_epi16(y + i, m, _mm512_cvtps_ph(_mm512_maskz_loadu_ps(m, x + i), rc));
    }
}

void f16_to_f32_row(const uint16_t *x, float *y, int64_t n) {
    int64_t i = 0;
    for (; i + 16 <= n; i += 16) _mm512_storeu_ps(y + i, load_f16(x + i));
    if (i < n) {
        __mmask16 m = tail_mask(n - i);
        _mm512_mask_storeu_ps(y + i, m, load_f16_tail(x + i, m));
    }
}

// ---- F32 / F16 / BF16 weights ----

float f32_vec_dot(int64_t n, const void *w, const void *a) {
    return dot_f32(n, static_cast<const float *>(a), static_cast<const float *>(w));
}
void f16_to_float(const void *x, float *y, int64_t n) { f16_to_f32_row(static_cast<const uint16_t *>(x), y, n); }
void f16_from_float(const float *x, void *y, int64_t n) { f32_to_f16_row(x, static_cast<uint16_t *>(y), n); }
float f16_vec_dot(int64_t n, const void *w, const void *a) {
    return dot_f32_f16(n, static_cast<const float *>(a), static_cast<const uint16_t *>(w));
}
void bf16_to_float(const void *x, float *y, int64_t n) {
    const uint16_t *h = static_cast<const uint16_t *>(x);
    int64_t i = 0;
    for (; i + 16 <= n; i += 16) _mm512_storeu_ps(y + i, load_bf16(h + i));
    if (i < n) {
        __mmask16 m = tail_mask(n - i);
        _mm512_mask_storeu_ps(y + i, m, load_bf16_tail(h + i, m));
    }
}
float bf16_vec_dot(int64_t n, const void *w, const void *a) {
    return dot_f32_bf16(n, static_cast<const float *>(a), static_cast<const uint16_t *>(w));
}

// One f32/f16/bf16 weight row against 4 f32 activation rows: each weight vector is loaded (converted)
// once and used 4 times. Load(i) / LoadTail(i, mask) give 16 weights as f32.
template <typename Load, typename LoadTail>
inline void float_x4(int64_t n, const void *a, size_t a_stride, float *out, Load load, LoadTail load_tail) {
    const float *y[4];
    #pragma GCC unroll 4 // -O2 keeps a rolled loop's acc[] in memory
    for (int j = 0; j < 4; j++) y[j] = reinterpret_cast<const float *>(static_cast<const uint8_t *>(a) + j * a_stride);
    __m512 acc[4] = {_mm512_setzero_ps(), _mm512_setzero_ps(), _mm512_setzero_ps(), _mm512_setzero_ps()};
    int64_t i = 0;
    for (; i + 16 <= n; i += 16) {
        __m512 wv = load(i);
        #pragma GCC unroll 4 // -O2 keeps a rolled loop's acc[] in memory
        for (int j = 0; j < 4; j++) acc[j] = _mm512_fmadd_ps(wv, _mm512_loadu_ps(y[j] + i), acc[j]);
    }
    if (i < n) {
        __mmask16 m = tail_mask(n - i);
        __m512 wv = load_tail(i, m);
        #pragma GCC unroll 4 // -O2 keeps a rolled loop's acc[] in memory
        for (int j = 0; j < 4; j++) acc[j] = _mm512_fmadd_ps(wv, _mm512_maskz_loadu_ps(m, y[j] + i), acc[j]);
    }
    #pragma GCC unroll 4 // -O2 keeps a rolled loop's acc[] in memory
    for (int j = 0; j < 4; j++) out[j] = _mm512_reduce_add_ps(acc[j]);
}

void f32_vec_dot_x4(int64_t n, const void *w, const void *a, size_t a_stride, float *out) {
    const float *x = static_cast<const float *>(w);
    float_x4(n, a, a_stride, out, [x](int64_t i) { return _mm512_loadu_ps(x + i); },
             [x](int64_t i, __mmask16 m) { return _mm512_maskz_loadu_ps(m, x + i); });
}
void f16_vec_dot_x4(int64_t n, const void *w, const void *a, size_t a_stride, float *out) {
    const uint16_t *x = static_cast<const uint16_t *>(w);
    float_x4(n, a, a_stride, out, [x](int64_t i) { return load_f16(x + i); },
             [x](int64_t i, __mmask16 m) { return load_f16_tail(x + i, m); });
}
void bf16_vec_dot_x4(int64_t n, const void *w, const void *a, size_t a_stride, float *out) {
    const uint16_t *x = static_cast<const uint16_t *>(w);
    float_x4(n, a, a_stride, out, [x](int64_t i) { return load_bf16(x + i); },
             [x](int64_t i, __mmask16 m) { return load_bf16_tail(x + i, m); });
}

// ---- Q8_0 / Q4_0 ----

// roundf (half away from zero), exactly: t = trunc(v); v - t is exact; step away when |v - t| >= 0.5.
inline __m512 round_away(__m512 v) {
    __m512 t = _mm512_roundscale_ps(v, _MM_FROUND_TO_ZERO | _MM_FROUND_NO_EXC);
    __mmask16 ge = _mm512_cmp_ps_mask(_mm512_abs_ps(_mm512_sub_ps(v, t)), _mm512_set1_ps(0.5f), _CMP_GE_OQ);
    __m512 step = _mm512_castsi512_ps(_mm512_or_si512(_mm512_and_si512(_mm512_castps_si512(v), _mm512_set1_epi32(INT32_MIN)),
                                                      _mm512_castps_si512(_mm512_set1_ps(1.0f))));
    return _mm512_mask_add_ps(t, ge, t, step);
}

// Same results as the reference quantize_row_q8_0 (same float operations, same rounding).
void q8_0_from_float(const float *x, void *y, int64_t n) {
    block_q8_0 *b = static_cast<block_q8_0 *>(y);
    for (int64_t ib = 0; ib < n / QK8_0; ib++) {
        __m512 v0 = _mm512_loadu_ps(x + ib * QK8_0), v1 = _mm512_loadu_ps(x + ib * QK8_0 + 16);
        float amax = _mm512_reduce_max_ps(_mm512_max_ps(_mm512_abs_ps(v0), _mm512_abs_ps(v1)));
        float d = amax / 127.0f;
        float id = d != 0.0f ? 1.0f / d : 0.0f;
        b[ib].d = fp32_to_fp16(d);
        __m512 vid = _mm512_set1_ps(id);
        __m128i q0 = _mm512_cvtepi32_epi8(_mm512_cvttps_epi32(round_away(_mm512_mul_ps(v0, vid))));
        __m128i q1 = _mm512_cvtepi32_epi8(_mm512_cvttps_epi32(round_away(_mm512_mul_ps(v1, vid))));
        _mm_storeu_si128(reinterpret_cast<__m128i *>(b[ib].qs), q0);
        _mm_storeu_si128(reinterpret_cast<__m128i *>(b[ib].qs + 16), q1);
    }
}

void q8_0_to_float(const void *x, float *y, int64_t n) {
    const block_q8_0 *b = static_cast<const block_q8_0 *>(x);
    for (int64_t ib = 0; ib < n / QK8_0; ib++) {
        __m512 d = _mm512_set1_ps(fp16_to_fp32(b[ib].d));
        for (int j = 0; j < QK8_0; j += 16) {
            __m128i q = _mm_loadu_si128(reinterpret_cast<const __m128i *>(b[ib].qs + j));
            _mm512_storeu_ps(y + ib * QK8_0 + j, _mm512_mul_ps(_mm512_cvtepi32_ps(_mm512_cvtepi8_epi32(q)), d));
        }
    }
}

inline __m512i load2(const int8_t *p0, const int8_t *p1) {
    return _mm512_inserti64x4(_mm512_castsi256_si512(_mm256_loadu_si256(reinterpret_cast<const __m256i *>(p0))),
                              _mm256_loadu_si256(reinterpret_cast<const __m256i *>(p1)), 1);
}

// Sums of u[i]*s[i] (u unsigned, s signed bytes) in 16 int32 lanes, four products per lane. Exact for
// u <= 128, |s| <= 127 (without VNNI the pairwise i16 sums stay below 32767).
template <bool VNNI> inline __m512i dot_u8s8(__m512i u, __m512i s) {
    if constexpr (VNNI) {
        return _mm512_dpbusd_epi32(_mm512_setzero_si512(), u, s);
    } else {
        return _mm512_madd_epi16(_mm512_maddubs_epi16(u, s), _mm512_set1_epi16(1));
    }
}
// Signed x signed via the sign trick: |w| times a carrying w's sign (BW has no vpsignb on zmm).
template <bool VNNI> inline __m512i dot_s8s8(__m512i w, __m512i a) {
    __m512i sa = _mm512_mask_sub_epi8(a, _mm512_movepi8_mask(w), _mm512_setzero_si512(), a);
    return dot_u8s8<VNNI>(_mm512_abs_epi8(w), sa);
}

// 256-bit version for a lone last block.
inline __m256i dot_s8s8_256(__m256i w, __m256i a) {
    __m256i p = _mm256_maddubs_epi16(_mm256_sign_epi8(w, w), _mm256_sign_epi8(a, w));
    return _mm256_madd_epi16(p, _mm256_set1_epi16(1));
}

// Lanes 0-7 scaled by d0 (block ib), lanes 8-15 by d1 (block ib+1).
inline __m512 scales2(float d0, float d1) { return _mm512_mask_blend_ps(0xFF00, _mm512_set1_ps(d0), _mm512_set1_ps(d1)); }

// Scales of blocks ib..ib+3 (x, y point at block ib), all 8 f16 converted by one vcvtph2ps: *s01 has
// dx*dy of block 0 in lanes 0-7 and of block 1 in lanes 8-15, *s23 the same for blocks 2 and 3.
template <typename Block> inline void scales4(const Block *x, const block_q8_0 *y, __m512 *s01, __m512 *s23) {
    __m128i h = _mm_setr_epi16(static_cast<short>(x[0].d), static_cast<short>(x[1].d), static_cast<short>(x[2].d),
                               static_cast<short>(x[3].d), static_cast<short>(y[0].d), static_cast<short>(y[1].d),
                               static_cast<short>(y[2].d), static_cast<short>(y[3].d));
    __m256 f = _mm256_cvtph_ps(h);
    __m512 d = _mm512_zextps128_ps512(_mm_mul_ps(_mm256_castps256_ps128(f), _mm256_extractf128_ps(f, 1)));
    *s01 = _mm512_permutexvar_ps(_mm512_mask_blend_epi32(0xFF00, _mm512_set1_epi32(0), _mm512_set1_epi32(1)), d);
    *s23 = _mm512_permutexvar_ps(_mm512_mask_blend_epi32(0xFF00, _mm512_set1_epi32(2), _mm512_set1_epi32(3)), d);
}

template <bool VNNI> float q8_0_vec_dot(int64_t n, const void *w, const void *a) {
    const block_q8_0 *x = static_cast<const block_q8_0 *>(w);
    const block_q8_0 *y = static_cast<const block_q8_0 *>(a);
    int64_t nb = n / QK8_0, ib = 0;
    __m512 acc0 = _mm512_setzero_ps(), acc1 = _mm512_setzero_ps();
    for (; ib + 4 <= nb; ib += 4) {
        __m512i p0 = dot_s8s8<VNNI>(load2(x[ib].qs, x[ib + 1].qs), load2(y[ib].qs, y[ib + 1].qs));
        __m512i p1 = dot_s8s8<VNNI>(load2(x[ib + 2].qs, x[ib + 3].qs), load2(y[ib + 2].qs, y[ib + 3].qs));
        __m512 d0, d1;
        scales4(x + ib, y + ib, &d0, &d1);
        acc0 = _mm512_fmadd_ps(_mm512_cvtepi32_ps(p0), d0, acc0);
        acc1 = _mm512_fmadd_ps(_mm512_cvtepi32_ps(p1), d1, acc1);
    }
    for (; ib + 2 <= nb; ib += 2) {
        __m512i p0 = dot_s8s8<VNNI>(load2(x[ib].qs, x[ib + 1].qs), load2(y[ib].qs, y[ib + 1].qs));
        __m512 d0 = scales2(h2f(x[ib].d) * h2f(y[ib].d), h2f(x[ib + 1].d) * h2f(y[ib + 1].d));
        acc0 = _mm512_fmadd_ps(_mm512_cvtepi32_ps(p0), d0, acc0);
    }
    float s = _mm512_reduce_add_ps(_mm512_add_ps(acc0, acc1));
    if (ib < nb) {
        __m256i p = dot_s8s8_256(_mm256_loadu_si256(reinterpret_cast<const __m256i *>(x[ib].qs)),
                                 _mm256_loadu_si256(reinterpret_cast<const __m256i *>(y[ib].qs)));
        __m256 t = _mm256_mul_ps(_mm256_cvtepi32_ps(p), _mm256_set1_ps(h2f(x[ib].d) * h2f(y[ib].d)));
        s += _mm512_reduce_add_ps(_mm512_zextps256_ps512(t));
    }
    return s;
}

// Two Q4_0 blocks as unsigned nibbles 0..15 in element order: [lo0 hi0 | lo1 hi1] per 128-bit lane.
inline __m512i unpack2_q4(const uint8_t *q0, const uint8_t *q1) {
    __m256i b = _mm256_inserti128_si256(_mm256_castsi128_si256(_mm_loadu_si128(reinterpret_cast<const __m128i *>(q0))),
                                        _mm_loadu_si128(reinterpret_cast<const __m128i *>(q1)), 1);
    const __m256i lo4 = _mm256_set1_epi8(0x0F);
    __m256i lo = _mm256_and_si256(b, lo4), hi = _mm256_and_si256(_mm256_srli_epi16(b, 4), lo4);
    __m512i z = _mm512_inserti64x4(_mm512_castsi256_si512(lo), hi, 1); // lo0 lo1 hi0 hi1
    return _mm512_shuffle_i64x2(z, z, _MM_SHUFFLE(3, 1, 2, 0));      // lo0 hi0 lo1 hi1
}

// sum (q - 8) * a = sum q*a - 8 * sum a; q is unsigned, so no sign trick is needed.
template <bool VNNI> inline __m512i dot_q4(__m512i q, __m512i a) {
    return _mm512_sub_epi32(dot_u8s8<VNNI>(q, a), dot_u8s8<VNNI>(_mm512_set1_epi8(8), a));
}

template <bool VNNI> float q4_0_vec_dot(int64_t n, const void *w, const void *a) {
    const block_q4_0 *x = static_cast<const block_q4_0 *>(w);
    const block_q8_0 *y = static_cast<const block_q8_0 *>(a);
    int64_t nb = n / QK4_0, ib = 0;
    __m512 acc0 = _mm512_setzero_ps(), acc1 = _mm512_setzero_ps();
    for (; ib + 4 <= nb; ib += 4) {
        __m512i p0 = dot_q4<VNNI>(unpack2_q4(x[ib].qs, x[ib + 1].qs), load2(y[ib].qs, y[ib + 1].qs));
        __m512i p1 = dot_q4<VNNI>(unpack2_q4(x[ib + 2].qs, x[ib + 3].qs), load2(y[ib + 2].qs, y[ib + 3].qs));
        __m512 d0, d1;
        scales4(x + ib, y + ib, &d0, &d1);
        acc0 = _mm512_fmadd_ps(_mm512_cvtepi32_ps(p0), d0, acc0);
        acc1 = _mm512_fmadd_ps(_mm512_cvtepi32_ps(p1), d1, acc1);
    }
    for (; ib + 2 <= nb; ib += 2) {
        __m512i p0 = dot_q4<VNNI>(unpack2_q4(x[ib].qs, x[ib + 1].qs), load2(y[ib].qs, y[ib + 1].qs));
        __m512 d0 = scales2(h2f(x[ib].d) * h2f(y[ib].d), h2f(x[ib + 1].d) * h2f(y[ib + 1].d));
        acc0 = _mm512_fmadd_ps(_mm512_cvtepi32_ps(p0), d0, acc0);
    }
    float s = _mm512_reduce_add_ps(_mm512_add_ps(acc0, acc1));
    if (ib < nb) {
        // the lone last block: both halves of the pair from the same block, keep the first half
        __m512i p = dot_q4<VNNI>(unpack2_q4(x[ib].qs, x[ib].qs), load2(y[ib].qs, y[ib].qs));
        __m512 t = _mm512_maskz_mul_ps(0x00FF, _mm512_cvtepi32_ps(p),
                                       _mm512_set1_ps(h2f(x[ib].d) * h2f(y[ib].d)));
        s += _mm512_reduce_add_ps(t);
    }
    return s;
}

// Scales of the block pair (ib, ib+1) for 4 tokens, converted together: s[j] has dx0 * dy[j][ib] in
// lanes 0-7 and dx1 * dy[j][ib+1] in lanes 8-15 (one vcvtph2ps instead of eight scalar conversions).
struct pair_scales {
    __m512i idx[4];
    pair_scales() {
        #pragma GCC unroll 4 // -O2 keeps a rolled loop's acc[] in memory
        for (int j = 0; j < 4; j++) idx[j] = _mm512_mask_blend_epi32(0xFF00, _mm512_set1_epi32(2 * j), _mm512_set1_epi32(2 * j + 1));
    }
    void get(const block_q8_0 *const y[4], int64_t ib, uint16_t hx0, uint16_t hx1, __m512 s[4]) const {
        __m128i h = _mm_setr_epi16(static_cast<short>(y[0][ib].d), static_cast<short>(y[0][ib + 1].d),
                                   static_cast<short>(y[1][ib].d), static_cast<short>(y[1][ib + 1].d),
                                   static_cast<short>(y[2][ib].d), static_cast<short>(y[2][ib + 1].d),
                                   static_cast<short>(y[3][ib].d), static_cast<short>(y[3][ib + 1].d));
        __m128i hx = _mm_set1_epi32(static_cast<int>(hx0 | (static_cast<uint32_t>(hx1) << 16)));
        __m512 f = _mm512_zextps256_ps512(_mm256_mul_ps(_mm256_cvtph_ps(h), _mm256_cvtph_ps(hx)));
        #pragma GCC unroll 4 // -O2 keeps a rolled loop's acc[] in memory
        for (int j = 0; j < 4; j++) s[j] = _mm512_permutexvar_ps(idx[j], f);
    }
};

// One weight row against 4 activation rows: each weight pair is loaded and decoded once, then met with
// each token's pair. decode(ib) returns the decoded pair (ib, ib+1); dot(wdec, a) the int32 sums.
template <typename Block, typename Decode, typename Dot>
inline void x4_pairs(int64_t nb, const Block *x, const block_q8_0 *const y[4], float *out, Decode decode, Dot dot) {
    const pair_scales ps;
    __m512 acc[4] = {_mm512_setzero_ps(), _mm512_setzero_ps(), _mm512_setzero_ps(), _mm512_setzero_ps()};
    for (int64_t ib = 0; ib + 2 <= nb; ib += 2) {
        auto wd = decode(ib);
        __m512 sc[4];
        ps.get(y, ib, x[ib].d, x[ib + 1].d, sc);
        #pragma GCC unroll 4 // -O2 keeps a rolled loop's acc[] in memory
        for (int j = 0; j < 4; j++) {
            __m512i p = dot(wd, load2(y[j][ib].qs, y[j][ib + 1].qs));
            acc[j] = _mm512_fmadd_ps(_mm512_cvtepi32_ps(p), sc[j], acc[j]);
        }
    }
    #pragma GCC unroll 4 // -O2 keeps a rolled loop's acc[] in memory
    for (int j = 0; j < 4; j++) out[j] = _mm512_reduce_add_ps(acc[j]);
}

struct signed_pair {
    __m512i abs;   // |w| as unsigned bytes
    __mmask64 neg; // w < 0
};

template <bool VNNI> void q8_0_vec_dot_x4(int64_t n, const void *w, const void *a, size_t a_stride, float *out) {
    const block_q8_0 *x = static_cast<const block_q8_0 *>(w);
    const block_q8_0 *y[4];
    #pragma GCC unroll 4 // -O2 keeps a rolled loop's acc[] in memory
    for (int j = 0; j < 4; j++) y[j] = reinterpret_cast<const block_q8_0 *>(static_cast<const uint8_t *>(a) + j * a_stride);
    int64_t nb = n / QK8_0;
    x4_pairs(
        nb, x, y, out,
        [x](int64_t ib) {
            __m512i wv = load2(x[ib].qs, x[ib + 1].qs);
            return signed_pair{_mm512_abs_epi8(wv), _mm512_movepi8_mask(wv)};
        },
        [](const signed_pair &d, __m512i av) {
            return dot_u8s8<VNNI>(d.abs, _mm512_mask_sub_epi8(av, d.neg, _mm512_setzero_si512(), av));
        });
    if (nb % 2)
        #pragma GCC unroll 4 // -O2 keeps a rolled loop's acc[] in memory
        for (int j = 0; j < 4; j++) out[j] += q8_0_vec_dot<VNNI>(QK8_0, x + nb - 1, y[j] + nb - 1);
}

template <bool VNNI> void q4_0_vec_dot_x4(int64_t n, const void *w, const void *a, size_t a_stride, float *out) {
    const block_q4_0 *x = static_cast<const block_q4_0 *>(w);
    const block_q8_0 *y[4];
    #pragma GCC unroll 4 // -O2 keeps a rolled loop's acc[] in memory
    for (int j = 0; j < 4; j++) y[j] = reinterpret_cast<const block_q8_0 *>(static_cast<const uint8_t *>(a) + j * a_stride);
    int64_t nb = n / QK4_0;
    x4_pairs(nb, x, y, out, [x](int64_t ib) { return unpack2_q4(x[ib].qs, x[ib + 1].qs); },
             [](__m512i q, __m512i av) { return dot_q4<VNNI>(q, av); });
    if (nb % 2)
        #pragma GCC unroll 4 // -O2 keeps a rolled loop's acc[] in memory
        for (int j = 0; j < 4; j++) out[j] += q4_0_vec_dot<VNNI>(QK4_0, x + nb - 1, y[j] + nb - 1);
}

} // namespace

void fill_kernels_avx512(kernels &k, bool vnni) {
    k.path = GPTNEOX_KERNELS_AVX512;
    k.traits[GPTNEOX_TYPE_F32].vec_dot = f32_vec_dot;
    k.traits[GPTNEOX_TYPE_F16].to_float = f16_to_float;
    k.traits[GPTNEOX_TYPE_F16].from_float = f16_from_float;
    k.traits[GPTNEOX_TYPE_F16].vec_dot = f16_vec_dot;
    k.traits[GPTNEOX_TYPE_BF16].to_float = bf16_to_float;
    k.traits[GPTNEOX_TYPE_BF16].vec_dot = bf16_vec_dot;
    k.traits[GPTNEOX_TYPE_Q8_0].to_float = q8_0_to_float;
    k.traits[GPTNEOX_TYPE_Q8_0].from_float = q8_0_from_float;
    k.traits[GPTNEOX_TYPE_Q8_0].vec_dot = vnni ? q8_0_vec_dot<true> : q8_0_vec_dot<false>;
    k.traits[GPTNEOX_TYPE_Q4_0].vec_dot = vnni ? q4_0_vec_dot<true> : q4_0_vec_dot<false>;
    k.traits[GPTNEOX_TYPE_F32].vec_dot_x4 = f32_vec_dot_x4;
    k.traits[GPTNEOX_TYPE_F16].vec_dot_x4 = f16_vec_dot_x4;
    k.traits[GPTNEOX_TYPE_BF16].vec_dot_x4 = bf16_vec_dot_x4;
    k.traits[GPTNEOX_TYPE_Q8_0].vec_dot_x4 = vnni ? q8_0_vec_dot_x4<true> : q8_0_vec_dot_x4<false>;
    k.traits[GPTNEOX_TYPE_Q4_0].vec_dot_x4 = vnni ? q4_0_vec_dot_x4<true> : q4_0_vec_dot_x4<false>;
    k.dot_f32 = dot_f32;
    k.dot_f32_f16 = dot_f32_f16;
    k.axpy_f16 = axpy_f16;
    k.axpy_f32 = axpy_f32;
    k.f32_to_f16 = f32_to_f16_row;
    k.f16_to_f32 = f16_to_f32_row;
}

} // namespace gptneox
