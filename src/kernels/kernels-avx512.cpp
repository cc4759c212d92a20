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

inline float dot_f32_f16_inl(int64_t n, const float *a, const uint16_t *b) {
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

float dot_f32_f16(int64_t n, const float *a, const uint16_t *b) { return dot_f32_f16_inl(n, a, b); }

void attn_scores_f16(int64_t n, const float *q, const uint16_t *k, size_t stride, int64_t n_rows, float scale,
                     float *out) {
    for (int64_t j = 0; j < n_rows; j++) {
        if (j + 2 < n_rows) _mm_prefetch(reinterpret_cast<const char *>(k + (j + 2) * stride), _MM_HINT_T0);
        if (out[j] != -__builtin_inff()) out[j] = scale * dot_f32_f16_inl(n, q, k + j * stride);
    }
}

// out = sum_j w[j] * v_j with out in registers (the same per-element FMA sequence as repeated axpy_f16
// from zero); head sizes up to 256 in multiples of 16, else the axpy loop.
template <int NV> inline void attn_values_regs(const float *w, const uint16_t *v, size_t stride, int64_t n_rows, float *out) {
    __m512 acc[NV];
    #pragma GCC unroll 16
    for (int i = 0; i < NV; i++) acc[i] = _mm512_setzero_ps();
    for (int64_t j = 0; j < n_rows; j++) {
        if (w[j] == 0.0f) continue;
        const __m512 s = _mm512_set1_ps(w[j]);
        const uint16_t *x = v + j * stride;
        #pragma GCC unroll 16
        for (int i = 0; i < NV; i++) acc[i] = _mm512_fmadd_ps(s, load_f16(x + 16 * i), acc[i]);
    }
    #pragma GCC unroll 16
    for (int i = 0; i < NV; i++) _mm512_storeu_ps(out + 16 * i, acc[i]);
}

void axpy_f16(int64_t n, float s, const uint16_t *x, float *y);

void attn_values_f16(int64_t n, const float *w, const uint16_t *v, size_t stride, int64_t n_rows, float *out) {
    switch (n) {
    case 64: return attn_values_regs<4>(w, v, stride, n_rows, out);
    case 80: return attn_values_regs<5>(w, v, stride, n_rows, out);
    case 96: return attn_values_regs<6>(w, v, stride, n_rows, out);
    case 128: return attn_values_regs<8>(w, v, stride, n_rows, out);
    case 256: return attn_values_regs<16>(w, v, stride, n_rows, out);
    default:
        for (int64_t i = 0; i < n; i++) out[i] = 0.0f;
        for (int64_t j = 0; j < n_rows; j++)
            if (w[j] != 0.0f) axpy_f16(n, w[j], v + j * stride, out);
    }
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

void f16_to_float(const void *x, float *y, int64_t n) { f16_to_f32_row(static_cast<const uint16_t *>(x), y, n); }
void f16_from_float(const float *x, void *y, int64_t n) { f32_to_f16_row(x, static_cast<uint16_t *>(y), n); }
void bf16_to_float(const void *x, float *y, int64_t n) {
    const uint16_t *h = static_cast<const uint16_t *>(x);
    int64_t i = 0;
    for (; i + 16 <= n; i += 16) _mm512_storeu_ps(y + i, load_bf16(h + i));
    if (i < n) {
        __mmask16 m = tail_mask(n - i);
        _mm512_mask_storeu_ps(y + i, m, load_bf16_tail(h + i, m));
    }
}

// One f32/f16/bf16 weight row against N f32 activation rows: each weight vector is loaded (converted)
// once and used N times. Load(i) / LoadTail(i, mask) give 16 weights as f32. vec_dot (N = 1) and
// vec_dot_x4 (N = 4) are this one code, so a token's result does not depend on how many tokens share
// the call. Two accumulators per row (even / odd vectors).
template <int N, typename Load, typename LoadTail>
inline void float_xn(int64_t n, const void *a, size_t a_stride, float *out, Load load, LoadTail load_tail) {
    const float *y[N];
    #pragma GCC unroll 4 // -O2 keeps a rolled loop's acc[] in memory
    for (int j = 0; j < N; j++) y[j] = reinterpret_cast<const float *>(static_cast<const uint8_t *>(a) + j * a_stride);
    __m512 acc0[N], acc1[N];
    #pragma GCC unroll 4
    for (int j = 0; j < N; j++) acc0[j] = acc1[j] = _mm512_setzero_ps();
    int64_t i = 0;
    for (; i + 32 <= n; i += 32) {
        const __m512 w0 = load(i), w1 = load(i + 16);
        #pragma GCC unroll 4
        for (int j = 0; j < N; j++) {
            acc0[j] = _mm512_fmadd_ps(w0, _mm512_loadu_ps(y[j] + i), acc0[j]);
            acc1[j] = _mm512_fmadd_ps(w1, _mm512_loadu_ps(y[j] + i + 16), acc1[j]);
        }
    }
    if (i + 16 <= n) {
        const __m512 w0 = load(i);
        #pragma GCC unroll 4
        for (int j = 0; j < N; j++) acc0[j] = _mm512_fmadd_ps(w0, _mm512_loadu_ps(y[j] + i), acc0[j]);
        i += 16;
    }
    if (i < n) {
        const __mmask16 m = tail_mask(n - i);
        const __m512 w1 = load_tail(i, m);
        #pragma GCC unroll 4
        for (int j = 0; j < N; j++) acc1[j] = _mm512_fmadd_ps(w1, _mm512_maskz_loadu_ps(m, y[j] + i), acc1[j]);
    }
    #pragma GCC unroll 4
    for (int j = 0; j < N; j++) out[j] = _mm512_reduce_add_ps(_mm512_add_ps(acc0[j], acc1[j]));
}

template <int N> void f32_dot_n(int64_t n, const void *w, const void *a, size_t a_stride, float *out) {
    const float *x = static_cast<const float *>(w);
    float_xn<N>(n, a, a_stride, out, [x](int64_t i) { return _mm512_loadu_ps(x + i); },
                [x](int64_t i, __mmask16 m) { return _mm512_maskz_loadu_ps(m, x + i); });
}
template <int N> void f16_dot_n(int64_t n, const void *w, const void *a, size_t a_stride, float *out) {
    const uint16_t *x = static_cast<const uint16_t *>(w);
    float_xn<N>(n, a, a_stride, out, [x](int64_t i) { return load_f16(x + i); },
                [x](int64_t i, __mmask16 m) { return load_f16_tail(x + i, m); });
}
template <int N> void bf16_dot_n(int64_t n, const void *w, const void *a, size_t a_stride, float *out) {
    const uint16_t *x = static_cast<const uint16_t *>(w);
    float_xn<N>(n, a, a_stride, out, [x](int64_t i) { return load_bf16(x + i); },
                [x](int64_t i, __mmask16 m) { return load_bf16_tail(x + i, m); });
}

// vec_dot as the one-row case of an N-row kernel.
template <void (*F)(int64_t, const void *, const void *, size_t, float *)>
float one_row(int64_t n, const void *w, const void *a) {
    float v;
    F(n, w, a, 0, &v);
    return v;
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
// Sixteen blocks at a time: their maxima first, then one vector division for the scales (the scalar
// reference's d = amax / 127 and id = 1 / d, lane by lane) and one F16C conversion for the stored f16 (the
// same round-to-nearest-even as fp32_to_fp16), so no block waits on a scalar division and conversion.
void q8_0_from_float(const float *x, void *y, int64_t n) {
    block_q8_0 *b = static_cast<block_q8_0 *>(y);
    const int64_t nb = n / QK8_0;
    for (int64_t i0 = 0; i0 < nb; i0 += 16) {
        const int nn = nb - i0 < 16 ? static_cast<int>(nb - i0) : 16;
        alignas(64) float amax[16] = {}, idv[16];
        alignas(32) uint16_t dh[16];
        for (int j = 0; j < nn; j++) {
            const float *p = x + (i0 + j) * QK8_0;
            const __m512 a0 = _mm512_abs_ps(_mm512_loadu_ps(p)), a1 = _mm512_abs_ps(_mm512_loadu_ps(p + 16));
            amax[j] = _mm512_reduce_max_ps(_mm512_max_ps(a0, a1));
        }
        const __m512 d = _mm512_div_ps(_mm512_load_ps(amax), _mm512_set1_ps(127.0f));
        const __mmask16 nz = _mm512_cmp_ps_mask(d, _mm512_setzero_ps(), _CMP_NEQ_UQ);
        _mm512_store_ps(idv, _mm512_maskz_div_ps(nz, _mm512_set1_ps(1.0f), d));
        const __m256i dq = _mm512_cvtps_ph(d, _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
        _mm256_store_si256(reinterpret_cast<__m256i *>(dh), dq);
        for (int j = 0; j < nn; j++) {
            const float *p = x + (i0 + j) * QK8_0;
            block_q8_0 &o = b[i0 + j];
            o.d = dh[j];
            const __m512 vid = _mm512_set1_ps(idv[j]);
            const __m512 v0 = _mm512_mul_ps(_mm512_loadu_ps(p), vid), v1 = _mm512_mul_ps(_mm512_loadu_ps(p + 16), vid);
            const __m128i q0 = _mm512_cvtepi32_epi8(_mm512_cvttps_epi32(round_away(v0)));
            const __m128i q1 = _mm512_cvtepi32_epi8(_mm512_cvttps_epi32(round_away(v1)));
            _mm_storeu_si128(reinterpret_cast<__m128i *>(o.qs), q0);
            _mm_storeu_si128(reinterpret_cast<__m128i *>(o.qs + 16), q1);
        }
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

// Scales of the block pair (ib, ib+1) for N tokens: s[j] has dx0 * dy[j][ib] in lanes 0-7 and
// dx1 * dy[j][ib+1] in lanes 8-15. For 4 tokens all 8 activation scales are converted by one vcvtph2ps;
// the products are the same f32 products either way.
template <int N> struct pair_scales {
    __m512i idx[N];
    pair_scales() {
        #pragma GCC unroll 4
        for (int j = 0; j < N; j++) idx[j] = _mm512_mask_blend_epi32(0xFF00, _mm512_set1_epi32(2 * j), _mm512_set1_epi32(2 * j + 1));
    }
    void get(const block_q8_0 *const *y, int64_t ib, uint16_t hx0, uint16_t hx1, __m512 *s) const {
        if constexpr (N == 4) {
            __m128i h = _mm_setr_epi16(static_cast<short>(y[0][ib].d), static_cast<short>(y[0][ib + 1].d),
                                       static_cast<short>(y[1][ib].d), static_cast<short>(y[1][ib + 1].d),
                                       static_cast<short>(y[2][ib].d), static_cast<short>(y[2][ib + 1].d),
                                       static_cast<short>(y[3][ib].d), static_cast<short>(y[3][ib + 1].d));
            __m128i hx = _mm_set1_epi32(static_cast<int>(hx0 | (static_cast<uint32_t>(hx1) << 16)));
            __m512 f = _mm512_zextps256_ps512(_mm256_mul_ps(_mm256_cvtph_ps(h), _mm256_cvtph_ps(hx)));
            #pragma GCC unroll 4
            for (int j = 0; j < 4; j++) s[j] = _mm512_permutexvar_ps(idx[j], f);
        } else {
            const float dx0 = h2f(hx0), dx1 = h2f(hx1);
            #pragma GCC unroll 4
            for (int j = 0; j < N; j++)
                s[j] = _mm512_mask_blend_ps(0xFF00, _mm512_set1_ps(h2f(y[j][ib].d) * dx0),
                                            _mm512_set1_ps(h2f(y[j][ib + 1].d) * dx1));
        }
    }
};

// One weight row against N activation rows: each weight pair is loaded and decoded once, then met with
// each token's pair. decode(ib) returns the decoded pair (ib, ib+1); dot(wdec, a) the int32 sums;
// lone(j) the value of the odd last block for token j. vec_dot (N = 1) and vec_dot_x4 (N = 4) are this
// one code, so results do not depend on batching. Two accumulators per row (even / odd pairs).
template <int N, typename Block, typename Decode, typename Dot, typename Lone>
inline void q_pairs(int64_t nb, const Block *x, const block_q8_0 *const *y, float *out, Decode decode, Dot dot,
                    Lone lone) {
    const pair_scales<N> ps;
    __m512 acc[2][N];
    #pragma GCC unroll 4
    for (int j = 0; j < N; j++) acc[0][j] = acc[1][j] = _mm512_setzero_ps();
    auto pair = [&](int64_t ib, __m512 *ac) {
        auto wd = decode(ib);
        __m512 sc[N];
        ps.get(y, ib, x[ib].d, x[ib + 1].d, sc);
        #pragma GCC unroll 4
        for (int j = 0; j < N; j++) {
            __m512i p = dot(wd, load2(y[j][ib].qs, y[j][ib + 1].qs));
            ac[j] = _mm512_fmadd_ps(_mm512_cvtepi32_ps(p), sc[j], ac[j]);
        }
    };
    int64_t ib = 0;
    if constexpr (N == 1) {
        // one row: the scales of 8 blocks of both sides converted by two vcvtph2ps (the same f32
        // products as pair_scales gives, so the result is still that of the 4-row kernel)
        const __m512i lo_hi = _mm512_mask_blend_epi32(0xFF00, _mm512_setzero_si512(), _mm512_set1_epi32(1));
        for (; ib + 8 <= nb; ib += 8) {
            const block_q8_0 *yb = y[0] + ib;
            const Block *xb = x + ib;
            __m128i hx = _mm_setr_epi16(static_cast<short>(xb[0].d), static_cast<short>(xb[1].d),
                                        static_cast<short>(xb[2].d), static_cast<short>(xb[3].d),
                                        static_cast<short>(xb[4].d), static_cast<short>(xb[5].d),
                                        static_cast<short>(xb[6].d), static_cast<short>(xb[7].d));
            __m128i hy = _mm_setr_epi16(static_cast<short>(yb[0].d), static_cast<short>(yb[1].d),
                                        static_cast<short>(yb[2].d), static_cast<short>(yb[3].d),
                                        static_cast<short>(yb[4].d), static_cast<short>(yb[5].d),
                                        static_cast<short>(yb[6].d), static_cast<short>(yb[7].d));
            const __m512 d8 = _mm512_zextps256_ps512(_mm256_mul_ps(_mm256_cvtph_ps(hy), _mm256_cvtph_ps(hx)));
            #pragma GCC unroll 4
            for (int q = 0; q < 4; q++) {
                const int64_t b = ib + 2 * q;
                const __m512 sc = _mm512_permutexvar_ps(_mm512_add_epi32(lo_hi, _mm512_set1_epi32(2 * q)), d8);
                __m512i p = dot(decode(b), load2(y[0][b].qs, y[0][b + 1].qs));
                acc[q & 1][0] = _mm512_fmadd_ps(_mm512_cvtepi32_ps(p), sc, acc[q & 1][0]);
            }
        }
    }
    for (; ib + 4 <= nb; ib += 4) {
        pair(ib, acc[0]);
        pair(ib + 2, acc[1]);
    }
    if (ib + 2 <= nb) {
        pair(ib, acc[0]);
        ib += 2;
    }
    #pragma GCC unroll 4
    for (int j = 0; j < N; j++) {
        float s = _mm512_reduce_add_ps(_mm512_add_ps(acc[0][j], acc[1][j]));
        if (ib < nb) s += lone(j, ib);
        out[j] = s;
    }
}

struct signed_pair {
    __m512i abs;   // |w| as unsigned bytes
    __mmask64 neg; // w < 0
};

template <int N> inline void rows_of(const void *a, size_t a_stride, const block_q8_0 **y) {
    #pragma GCC unroll 4
    for (int j = 0; j < N; j++) y[j] = reinterpret_cast<const block_q8_0 *>(static_cast<const uint8_t *>(a) + j * a_stride);
}

template <bool VNNI, int N> void q8_0_dot_n(int64_t n, const void *w, const void *a, size_t a_stride, float *out) {
    const block_q8_0 *x = static_cast<const block_q8_0 *>(w);
    const block_q8_0 *y[N];
    rows_of<N>(a, a_stride, y);
    q_pairs<N>(
        n / QK8_0, x, y, out,
        [x](int64_t ib) {
            __m512i wv = load2(x[ib].qs, x[ib + 1].qs);
            return signed_pair{_mm512_abs_epi8(wv), _mm512_movepi8_mask(wv)};
        },
        [](const signed_pair &d, __m512i av) {
            return dot_u8s8<VNNI>(d.abs, _mm512_mask_sub_epi8(av, d.neg, _mm512_setzero_si512(), av));
        },
        [x, &y](int j, int64_t ib) {
            __m256i p = dot_s8s8_256(_mm256_loadu_si256(reinterpret_cast<const __m256i *>(x[ib].qs)),
                                     _mm256_loadu_si256(reinterpret_cast<const __m256i *>(y[j][ib].qs)));
            __m256 t = _mm256_mul_ps(_mm256_cvtepi32_ps(p), _mm256_set1_ps(h2f(x[ib].d) * h2f(y[j][ib].d)));
            return _mm512_reduce_add_ps(_mm512_zextps256_ps512(t));
        });
}

template <bool VNNI, int N> void q4_0_dot_n(int64_t n, const void *w, const void *a, size_t a_stride, float *out) {
    const block_q4_0 *x = static_cast<const block_q4_0 *>(w);
    const block_q8_0 *y[N];
    rows_of<N>(a, a_stride, y);
    q_pairs<N>(
        n / QK4_0, x, y, out, [x](int64_t ib) { return unpack2_q4(x[ib].qs, x[ib + 1].qs); },
        [](__m512i q, __m512i av) { return dot_q4<VNNI>(q, av); },
        [x, &y](int j, int64_t ib) {
            // both halves of the pair from the same block, keep the first half
            __m512i p = dot_q4<VNNI>(unpack2_q4(x[ib].qs, x[ib].qs), load2(y[j][ib].qs, y[j][ib].qs));
            __m512 t = _mm512_maskz_mul_ps(0x00FF, _mm512_cvtepi32_ps(p), _mm512_set1_ps(h2f(x[ib].d) * h2f(y[j][ib].d)));
            return _mm512_reduce_add_ps(t);
        });
}

} // namespace

void fill_kernels_avx512(kernels &k, bool vnni) {
    k.path = GPTNEOX_KERNELS_AVX512;
    k.traits[GPTNEOX_TYPE_F32].vec_dot = one_row<f32_dot_n<1>>;
    k.traits[GPTNEOX_TYPE_F16].to_float = f16_to_float;
    k.traits[GPTNEOX_TYPE_F16].from_float = f16_from_float;
    k.traits[GPTNEOX_TYPE_F16].vec_dot = one_row<f16_dot_n<1>>;
    k.traits[GPTNEOX_TYPE_BF16].to_float = bf16_to_float;
    k.traits[GPTNEOX_TYPE_BF16].vec_dot = one_row<bf16_dot_n<1>>;
    k.traits[GPTNEOX_TYPE_Q8_0].to_float = q8_0_to_float;
    k.traits[GPTNEOX_TYPE_Q8_0].from_float = q8_0_from_float;
    k.traits[GPTNEOX_TYPE_Q8_0].vec_dot = vnni ? one_row<q8_0_dot_n<true, 1>> : one_row<q8_0_dot_n<false, 1>>;
    k.traits[GPTNEOX_TYPE_Q4_0].vec_dot = vnni ? one_row<q4_0_dot_n<true, 1>> : one_row<q4_0_dot_n<false, 1>>;
    k.traits[GPTNEOX_TYPE_F32].vec_dot_x4 = f32_dot_n<4>;
    k.traits[GPTNEOX_TYPE_F16].vec_dot_x4 = f16_dot_n<4>;
    k.traits[GPTNEOX_TYPE_BF16].vec_dot_x4 = bf16_dot_n<4>;
    k.traits[GPTNEOX_TYPE_Q8_0].vec_dot_x4 = vnni ? q8_0_dot_n<true, 4> : q8_0_dot_n<false, 4>;
    k.traits[GPTNEOX_TYPE_Q4_0].vec_dot_x4 = vnni ? q4_0_dot_n<true, 4> : q4_0_dot_n<false, 4>;
    // the AVX2 table's gemm entries (a different arithmetic from these vec_dots) are not used here;
    // with VNNI, gemm-avx512.cpp sets its own
    k.traits[GPTNEOX_TYPE_Q8_0].gemm = nullptr;
    k.traits[GPTNEOX_TYPE_Q4_0].gemm = nullptr;
    k.dot_f32 = dot_f32;
    k.dot_f32_f16 = dot_f32_f16;
    k.axpy_f16 = axpy_f16;
    k.attn_scores_f16 = attn_scores_f16;
    k.attn_values_f16 = attn_values_f16;
    k.axpy_f32 = axpy_f32;
    k.f32_to_f16 = f32_to_f16_row;
    k.f16_to_f32 = f16_to_f32_row;
}

} // namespace gptneox
