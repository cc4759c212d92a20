// AVX2 + FMA + F16C kernels (GPTNEOX_KERNELS_AVX2). Compiled with those flags by the Makefile and
// reached only through the table dispatch.cpp builds after detect_cpu() confirmed the features.
// Everything here has internal linkage and uses no std:: templates, so no AVX2-encoded copy of an
// inline function shared with other files can end up in the library (ODR / COMDAT hazard).
#include <immintrin.h>

#include "kernels/kernels-impl.h"

namespace gptneox {
namespace {

// f16 scale -> f32 with F16C (exact, like fp16_to_fp32, but inline in the hot loops).
inline float h2f(uint16_t h) { return _cvtsh_ss(h); }

inline float hsum(__m256 v) {
    __m128 s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
    s = _mm_add_ps(s, _mm_movehl_ps(s, s));
    s = _mm_add_ss(s, _mm_movehdup_ps(s));
    return _mm_cvtss_f32(s);
}

inline __m256 load_f16(const uint16_t *p) {
    return _mm256_cvtph_ps(_mm_loadu_si128(reinterpret_cast<const __m128i *>(p)));
}
inline __m256 load_bf16(const uint16_t *p) {
    __m256i w = _mm256_cvtepu16_epi32(_mm_loadu_si128(reinterpret_cast<const __m128i *>(p)));
    return _mm256_castsi256_ps(_mm256_slli_epi32(w, 16));
}

// ---- f32 helpers ----

float dot_f32(int64_t n, const float *a, const float *b) {
    __m256 s0 = _mm256_setzero_ps(), s1 = s0, s2 = s0, s3 = s0;
    int64_t i = 0;
    for (; i + 32 <= n; i += 32) {
        s0 = _mm256_fmadd_ps(_mm256_loadu_ps(a + i), _mm256_loadu_ps(b + i), s0);
        s1 = _mm256_fmadd_ps(_mm256_loadu_ps(a + i + 8), _mm256_loadu_ps(b + i + 8), s1);
        s2 = _mm256_fmadd_ps(_mm256_loadu_ps(a + i + 16), _mm256_loadu_ps(b + i + 16), s2);
        s3 = _mm256_fmadd_ps(_mm256_loadu_ps(a + i + 24), _mm256_loadu_ps(b + i + 24), s3);
    }
    for (; i + 8 <= n; i += 8) s0 = _mm256_fmadd_ps(_mm256_loadu_ps(a + i), _mm256_loadu_ps(b + i), s0);
    float s = hsum(_mm256_add_ps(_mm256_add_ps(s0, s1), _mm256_add_ps(s2, s3)));
    for (; i < n; i++) s += a[i] * b[i];
    return s;
}

float dot_f32_f16(int64_t n, const float *a, const uint16_t *b) {
    __m256 s0 = _mm256_setzero_ps(), s1 = s0, s2 = s0, s3 = s0;
    int64_t i = 0;
    for (; i + 32 <= n; i += 32) {
        s0 = _mm256_fmadd_ps(_mm256_loadu_ps(a + i), load_f16(b + i), s0);
        s1 = _mm256_fmadd_ps(_mm256_loadu_ps(a + i + 8), load_f16(b + i + 8), s1);
        s2 = _mm256_fmadd_ps(_mm256_loadu_ps(a + i + 16), load_f16(b + i + 16), s2);
        s3 = _mm256_fmadd_ps(_mm256_loadu_ps(a + i + 24), load_f16(b + i + 24), s3);
    }
    for (; i + 8 <= n; i += 8) s0 = _mm256_fmadd_ps(_mm256_loadu_ps(a + i), load_f16(b + i), s0);
    float s = hsum(_mm256_add_ps(_mm256_add_ps(s0, s1), _mm256_add_ps(s2, s3)));
    for (; i < n; i++) s += a[i] * fp16_to_fp32(b[i]);
    return s;
}

void axpy_f16(int64_t n, float s, const uint16_t *x, float *y) {
    __m256 vs = _mm256_set1_ps(s);
    int64_t i = 0;
    for (; i + 8 <= n; i += 8) _mm256_storeu_ps(y + i, _mm256_fmadd_ps(vs, load_f16(x + i), _mm256_loadu_ps(y + i)));
    for (; i < n; i++) y[i] += s * h2f(x[i]);
}

void axpy_f32(int64_t n, float s, const float *x, float *y) {
    __m256 vs = _mm256_set1_ps(s);
    int64_t i = 0;
    for (; i + 8 <= n; i += 8)
        _mm256_storeu_ps(y + i, _mm256_fmadd_ps(vs, _mm256_loadu_ps(x + i), _mm256_loadu_ps(y + i)));
    for (; i < n; i++) y[i] += s * x[i];
}

void f32_to_f16_row(const float *x, uint16_t *y, int64_t n) {
    int64_t i = 0;
    for (; i + 8 <= n; i += 8)
        _mm_storeu_si128(reinterpret_cast<__m128i *>(y + i),
                         _mm256_cvtps_ph(_mm256_loadu_ps(x + i), _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC));
    for (; i < n; i++) y[i] = fp32_to_fp16(x[i]);
}

void f16_to_f32_row(const uint16_t *x, float *y, int64_t n) {
    int64_t i = 0;
    for (; i + 8 <= n; i += 8) _mm256_storeu_ps(y + i, load_f16(x + i));
    for (; i < n; i++) y[i] = h2f(x[i]);
}

// ---- F32 / F16 / BF16 weights ----

void f16_to_float(const void *x, float *y, int64_t n) { f16_to_f32_row(static_cast<const uint16_t *>(x), y, n); }
void f16_from_float(const float *x, void *y, int64_t n) { f32_to_f16_row(x, static_cast<uint16_t *>(y), n); }
void bf16_to_float(const void *x, float *y, int64_t n) {
    const uint16_t *h = static_cast<const uint16_t *>(x);
    int64_t i = 0;
    for (; i + 8 <= n; i += 8) _mm256_storeu_ps(y + i, load_bf16(h + i));
    for (; i < n; i++) y[i] = bf16_to_fp32(h[i]);
}

// One f32/f16/bf16 weight row against N f32 activation rows: each weight vector is loaded (converted)
// once and used N times. Load(i) gives 8 weights as f32; Scalar(i) one (the tail). vec_dot (N = 1)
// and vec_dot_x4 (N = 4) are this one code, so a token's result does not depend on how many tokens
// share the call (batch size never changes logits). Two accumulators per row (even / odd vectors).
template <int N, typename Load, typename Scalar>
inline void float_xn(int64_t n, const void *a, size_t a_stride, float *out, Load load, Scalar scalar) {
    const float *y[N];
    #pragma GCC unroll 4 // -O2 keeps a rolled loop's acc[] in memory
    for (int j = 0; j < N; j++) y[j] = reinterpret_cast<const float *>(static_cast<const uint8_t *>(a) + j * a_stride);
    __m256 acc0[N], acc1[N];
    #pragma GCC unroll 4
    for (int j = 0; j < N; j++) acc0[j] = acc1[j] = _mm256_setzero_ps();
    int64_t i = 0;
    for (; i + 16 <= n; i += 16) {
        const __m256 w0 = load(i), w1 = load(i + 8);
        #pragma GCC unroll 4
        for (int j = 0; j < N; j++) {
            acc0[j] = _mm256_fmadd_ps(w0, _mm256_loadu_ps(y[j] + i), acc0[j]);
            acc1[j] = _mm256_fmadd_ps(w1, _mm256_loadu_ps(y[j] + i + 8), acc1[j]);
        }
    }
    if (i + 8 <= n) {
        const __m256 w0 = load(i);
        #pragma GCC unroll 4
        for (int j = 0; j < N; j++) acc0[j] = _mm256_fmadd_ps(w0, _mm256_loadu_ps(y[j] + i), acc0[j]);
        i += 8;
    }
    #pragma GCC unroll 4
    for (int j = 0; j < N; j++) {
        float s = hsum(_mm256_add_ps(acc0[j], acc1[j]));
        for (int64_t r = i; r < n; r++) s += scalar(r) * y[j][r];
        out[j] = s;
    }
}

template <int N> void f32_dot_n(int64_t n, const void *w, const void *a, size_t a_stride, float *out) {
    const float *x = static_cast<const float *>(w);
    float_xn<N>(n, a, a_stride, out, [x](int64_t i) { return _mm256_loadu_ps(x + i); }, [x](int64_t i) { return x[i]; });
}
template <int N> void f16_dot_n(int64_t n, const void *w, const void *a, size_t a_stride, float *out) {
    const uint16_t *x = static_cast<const uint16_t *>(w);
    float_xn<N>(n, a, a_stride, out, [x](int64_t i) { return load_f16(x + i); }, [x](int64_t i) { return h2f(x[i]); });
}
template <int N> void bf16_dot_n(int64_t n, const void *w, const void *a, size_t a_stride, float *out) {
    const uint16_t *x = static_cast<const uint16_t *>(w);
    float_xn<N>(n, a, a_stride, out, [x](int64_t i) { return load_bf16(x + i); },
                [x](int64_t i) { return bf16_to_fp32(x[i]); });
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
inline __m256 round_away(__m256 v) {
    const __m256 sign = _mm256_set1_ps(-0.0f);
    __m256 t = _mm256_round_ps(v, _MM_FROUND_TO_ZERO | _MM_FROUND_NO_EXC);
    __m256 frac = _mm256_andnot_ps(sign, _mm256_sub_ps(v, t));
    __m256 step = _mm256_or_ps(_mm256_and_ps(v, sign), _mm256_set1_ps(1.0f));
    __m256 ge = _mm256_cmp_ps(frac, _mm256_set1_ps(0.5f), _CMP_GE_OQ);
    return _mm256_add_ps(t, _mm256_and_ps(ge, step));
}

// Same results as the reference quantize_row_q8_0 (same float operations, same rounding).
void q8_0_from_float(const float *x, void *y, int64_t n) {
    block_q8_0 *b = static_cast<block_q8_0 *>(y);
    const __m256 sign = _mm256_set1_ps(-0.0f);
    for (int64_t ib = 0; ib < n / QK8_0; ib++) {
        const float *p = x + ib * QK8_0;
        __m256 v0 = _mm256_loadu_ps(p), v1 = _mm256_loadu_ps(p + 8);
        __m256 v2 = _mm256_loadu_ps(p + 16), v3 = _mm256_loadu_ps(p + 24);
        __m256 m = _mm256_max_ps(_mm256_max_ps(_mm256_andnot_ps(sign, v0), _mm256_andnot_ps(sign, v1)),
                                 _mm256_max_ps(_mm256_andnot_ps(sign, v2), _mm256_andnot_ps(sign, v3)));
        __m128 m4 = _mm_max_ps(_mm256_castps256_ps128(m), _mm256_extractf128_ps(m, 1));
        m4 = _mm_max_ps(m4, _mm_movehl_ps(m4, m4));
        m4 = _mm_max_ss(m4, _mm_movehdup_ps(m4));
        float amax = _mm_cvtss_f32(m4);
        float d = amax / 127.0f;
        float id = d != 0.0f ? 1.0f / d : 0.0f;
        b[ib].d = fp32_to_fp16(d);
        __m256 vid = _mm256_set1_ps(id);
        __m256i i0 = _mm256_cvttps_epi32(round_away(_mm256_mul_ps(v0, vid)));
        __m256i i1 = _mm256_cvttps_epi32(round_away(_mm256_mul_ps(v1, vid)));
        __m256i i2 = _mm256_cvttps_epi32(round_away(_mm256_mul_ps(v2, vid)));
        __m256i i3 = _mm256_cvttps_epi32(round_away(_mm256_mul_ps(v3, vid)));
        __m256i s01 = _mm256_packs_epi32(i0, i1), s23 = _mm256_packs_epi32(i2, i3);
        __m256i q = _mm256_packs_epi16(s01, s23); // lanes interleaved by the in-lane packs
        q = _mm256_permutevar8x32_epi32(q, _mm256_setr_epi32(0, 4, 1, 5, 2, 6, 3, 7));
        _mm256_storeu_si256(reinterpret_cast<__m256i *>(b[ib].qs), q);
    }
}

void q8_0_to_float(const void *x, float *y, int64_t n) {
    const block_q8_0 *b = static_cast<const block_q8_0 *>(x);
    for (int64_t ib = 0; ib < n / QK8_0; ib++) {
        __m256 d = _mm256_set1_ps(fp16_to_fp32(b[ib].d));
        for (int j = 0; j < QK8_0; j += 8) {
            __m128i q = _mm_loadl_epi64(reinterpret_cast<const __m128i *>(b[ib].qs + j));
            _mm256_storeu_ps(y + ib * QK8_0 + j, _mm256_mul_ps(_mm256_cvtepi32_ps(_mm256_cvtepi8_epi32(q)), d));
        }
    }
}

// Sum of w[i]*a[i] in 8 int32 lanes (exact: |w| <= 128, |a| <= 127, so the pairwise i16 sums of
// maddubs stay below 32767). Sign trick: |w| as u8 times a carrying w's sign.
inline __m256i dot_i8(__m256i w, __m256i a) {
    __m256i p = _mm256_maddubs_epi16(_mm256_sign_epi8(w, w), _mm256_sign_epi8(a, w));
    return _mm256_madd_epi16(p, _mm256_set1_epi16(1));
}

// 32 signed 4-bit values of a Q4_0 block as int8 in element order (low nibbles first).
inline __m256i unpack_q4(const uint8_t *qs) {
    __m128i b = _mm_loadu_si128(reinterpret_cast<const __m128i *>(qs));
    const __m128i lo4 = _mm_set1_epi8(0x0F);
    __m256i q = _mm256_set_m128i(_mm_and_si128(_mm_srli_epi16(b, 4), lo4), _mm_and_si128(b, lo4));
    return _mm256_sub_epi8(q, _mm256_set1_epi8(8));
}

// One weight row against N activation rows; each weight block is loaded (and for Q4_0 unpacked) once.
// vec_dot (N = 1) and vec_dot_x4 (N = 4) are this one code, so results do not depend on batching.
// Two accumulators per row (even / odd blocks) so one row is not bound by the FMA latency.
template <int N, typename Block, typename Decode>
inline void q_dot_n(int64_t nb, const Block *x, const void *a, size_t a_stride, float *out, Decode decode) {
    const block_q8_0 *y[N];
    #pragma GCC unroll 4 // -O2 keeps a rolled loop's acc[] in memory
    for (int j = 0; j < N; j++) y[j] = reinterpret_cast<const block_q8_0 *>(static_cast<const uint8_t *>(a) + j * a_stride);
    __m256 acc[2][N];
    #pragma GCC unroll 4
    for (int j = 0; j < N; j++) acc[0][j] = acc[1][j] = _mm256_setzero_ps();
    const __m256i ones = _mm256_set1_epi16(1);
    auto block = [&](int64_t ib, __m256 *ac) {
        __m256i wv = decode(x[ib]);
        __m256i aw = _mm256_sign_epi8(wv, wv);
        float dx = h2f(x[ib].d);
        #pragma GCC unroll 4
        for (int j = 0; j < N; j++) {
            __m256i av = _mm256_loadu_si256(reinterpret_cast<const __m256i *>(y[j][ib].qs));
            __m256i p = _mm256_madd_epi16(_mm256_maddubs_epi16(aw, _mm256_sign_epi8(av, wv)), ones);
            ac[j] = _mm256_fmadd_ps(_mm256_cvtepi32_ps(p), _mm256_set1_ps(dx * h2f(y[j][ib].d)), ac[j]);
        }
    };
    int64_t ib = 0;
    for (; ib + 2 <= nb; ib += 2) {
        block(ib, acc[0]);
        block(ib + 1, acc[1]);
    }
    if (ib < nb) block(ib, acc[0]);
    #pragma GCC unroll 4
    for (int j = 0; j < N; j++) out[j] = hsum(_mm256_add_ps(acc[0][j], acc[1][j]));
}

template <int N> void q8_0_dot_n(int64_t n, const void *w, const void *a, size_t a_stride, float *out) {
    q_dot_n<N>(n / QK8_0, static_cast<const block_q8_0 *>(w), a, a_stride, out, [](const block_q8_0 &b) {
        return _mm256_loadu_si256(reinterpret_cast<const __m256i *>(b.qs));
    });
}

template <int N> void q4_0_dot_n(int64_t n, const void *w, const void *a, size_t a_stride, float *out) {
    q_dot_n<N>(n / QK4_0, static_cast<const block_q4_0 *>(w), a, a_stride, out,
               [](const block_q4_0 &b) { return unpack_q4(b.qs); });
}

} // namespace

void fill_kernels_avx2(kernels &k) {
    k.path = GPTNEOX_KERNELS_AVX2;
    k.traits[GPTNEOX_TYPE_F32].vec_dot = one_row<f32_dot_n<1>>;
    k.traits[GPTNEOX_TYPE_F16].to_float = f16_to_float;
    k.traits[GPTNEOX_TYPE_F16].from_float = f16_from_float;
    k.traits[GPTNEOX_TYPE_F16].vec_dot = one_row<f16_dot_n<1>>;
    k.traits[GPTNEOX_TYPE_BF16].to_float = bf16_to_float;
    k.traits[GPTNEOX_TYPE_BF16].vec_dot = one_row<bf16_dot_n<1>>;
    k.traits[GPTNEOX_TYPE_Q8_0].to_float = q8_0_to_float;
    k.traits[GPTNEOX_TYPE_Q8_0].from_float = q8_0_from_float;
    k.traits[GPTNEOX_TYPE_Q8_0].vec_dot = one_row<q8_0_dot_n<1>>;
    k.traits[GPTNEOX_TYPE_Q4_0].vec_dot = one_row<q4_0_dot_n<1>>;
    k.traits[GPTNEOX_TYPE_F32].vec_dot_x4 = f32_dot_n<4>;
    k.traits[GPTNEOX_TYPE_F16].vec_dot_x4 = f16_dot_n<4>;
    k.traits[GPTNEOX_TYPE_BF16].vec_dot_x4 = bf16_dot_n<4>;
    k.traits[GPTNEOX_TYPE_Q8_0].vec_dot_x4 = q8_0_dot_n<4>;
    k.traits[GPTNEOX_TYPE_Q4_0].vec_dot_x4 = q4_0_dot_n<4>;
    k.dot_f32 = dot_f32;
    k.dot_f32_f16 = dot_f32_f16;
    k.axpy_f16 = axpy_f16;
    k.axpy_f32 = axpy_f32;
    k.f32_to_f16 = f32_to_f16_row;
    k.f16_to_f32 = f16_to_f32_row;
}

} // namespace gptneox
