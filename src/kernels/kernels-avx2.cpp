// AVX2 + FMA + F16C kernels (GPTNEOX_KERNELS_AVX2). Compiled with those flags by the Makefile and
// reached only through the table dispatch.cpp builds after detect_cpu() confirmed the features.
// Everything here has internal linkage and uses no std:: templates, so no AVX2-encoded copy of an
// inline function shared with other files can end up in the library (ODR / COMDAT hazard).
#include <immintrin.h>

#include <cmath>

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
// Eight blocks at a time: their maxima first, then one vector division for the scales (the scalar
// reference's d = amax / 127 and id = 1 / d, lane by lane) and one F16C conversion for the stored f16 (the
// same round-to-nearest-even as fp32_to_fp16), so no block waits on a scalar division and conversion.
void q8_0_from_float(const float *x, void *y, int64_t n) {
    block_q8_0 *b = static_cast<block_q8_0 *>(y);
    const __m256 sign = _mm256_set1_ps(-0.0f);
    const int64_t nb = n / QK8_0;
    for (int64_t i0 = 0; i0 < nb; i0 += 8) {
        const int nn = nb - i0 < 8 ? static_cast<int>(nb - i0) : 8;
        alignas(32) float amax[8] = {}, idv[8];
        alignas(16) uint16_t dh[8];
        for (int j = 0; j < nn; j++) {
            const float *p = x + (i0 + j) * QK8_0;
            const __m256 a0 = _mm256_andnot_ps(sign, _mm256_loadu_ps(p)), a1 = _mm256_andnot_ps(sign, _mm256_loadu_ps(p + 8));
            const __m256 a2 = _mm256_andnot_ps(sign, _mm256_loadu_ps(p + 16)), a3 = _mm256_andnot_ps(sign, _mm256_loadu_ps(p + 24));
            const __m256 m = _mm256_max_ps(_mm256_max_ps(a0, a1), _mm256_max_ps(a2, a3));
            __m128 m4 = _mm_max_ps(_mm256_castps256_ps128(m), _mm256_extractf128_ps(m, 1));
            m4 = _mm_max_ps(m4, _mm_movehl_ps(m4, m4));
            amax[j] = _mm_cvtss_f32(_mm_max_ss(m4, _mm_movehdup_ps(m4)));
        }
        const __m256 d = _mm256_div_ps(_mm256_load_ps(amax), _mm256_set1_ps(127.0f));
        const __m256 nz = _mm256_cmp_ps(d, _mm256_setzero_ps(), _CMP_NEQ_UQ);
        _mm256_store_ps(idv, _mm256_and_ps(nz, _mm256_div_ps(_mm256_set1_ps(1.0f), d)));
        const __m128i dq = _mm256_cvtps_ph(d, _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
        _mm_store_si128(reinterpret_cast<__m128i *>(dh), dq);
        for (int j = 0; j < nn; j++) {
            const float *p = x + (i0 + j) * QK8_0;
            b[i0 + j].d = dh[j];
            const __m256 vid = _mm256_set1_ps(idv[j]);
            __m256i i0v = _mm256_cvttps_epi32(round_away(_mm256_mul_ps(_mm256_loadu_ps(p), vid)));
            __m256i i1v = _mm256_cvttps_epi32(round_away(_mm256_mul_ps(_mm256_loadu_ps(p + 8), vid)));
            __m256i i2v = _mm256_cvttps_epi32(round_away(_mm256_mul_ps(_mm256_loadu_ps(p + 16), vid)));
            __m256i i3v = _mm256_cvttps_epi32(round_away(_mm256_mul_ps(_mm256_loadu_ps(p + 24), vid)));
            __m256i s01 = _mm256_packs_epi32(i0v, i1v), s23 = _mm256_packs_epi32(i2v, i3v);
            __m256i q = _mm256_packs_epi16(s01, s23); // lanes interleaved by the in-lane packs
            q = _mm256_permutevar8x32_epi32(q, _mm256_setr_epi32(0, 4, 1, 5, 2, 6, 3, 7));
            _mm256_storeu_si256(reinterpret_cast<__m256i *>(b[i0 + j].qs), q);
        }
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

// One blocked kernel for every Q8_0 / Q4_0 product: R weight rows x T activation rows (Q8_0), one
// 8-lane f32 accumulator per (row, token):
//   for each block b in order:  acc = fma(float(p_b), dx_b * dy_b, acc);  result = hsum(acc)
// where lane l of p_b is the exact int32 dot of elements 4l..4l+3 of block b. vec_dot (1 x 1),
// vec_dot_x4 (1 x 4) and the gemm entry (decode: 4 rows x 1 token; prompt: 2 rows x 4 tokens) all run
// this code, so a token's result never depends on how many tokens or rows share the call.
// Q8_0 weights: |w| times a carrying w's sign (maddubs; |w| <= 128, |a| <= 127 keep the i16 pair sums
// exact). Q4_0: the nibbles q as unsigned bytes (one broadcast load, one shift, one AND for 32 values),
// (q - 8) . a = q . a - 8 . a in i16 pairs (exact), the 8 . a part once per token and block.
struct q8_dec {
    __m256i abs, sgn;
};
inline q8_dec decode_w(const block_q8_0 &b) {
    const __m256i w = _mm256_loadu_si256(reinterpret_cast<const __m256i *>(b.qs));
    return q8_dec{_mm256_sign_epi8(w, w), w};
}
// low nibbles (elements 0-15) in the lower 128 bits, high nibbles (16-31) in the upper
inline __m256i decode_w(const block_q4_0 &b) {
    const __m256i x = _mm256_broadcastsi128_si256(_mm_loadu_si128(reinterpret_cast<const __m128i *>(b.qs)));
    return _mm256_and_si256(_mm256_srlv_epi32(x, _mm256_setr_epi32(0, 0, 0, 0, 4, 4, 4, 4)), _mm256_set1_epi8(0x0F));
}
// what a token's block contributes to every row: the activations, and for Q4_0 8 . a in i16 pairs
struct act_blk {
    __m256i a, c;
};
inline act_blk act_for(const block_q8_0 *, const int8_t *qs) {
    const __m256i a = _mm256_loadu_si256(reinterpret_cast<const __m256i *>(qs));
    return act_blk{a, a};
}
inline act_blk act_for(const block_q4_0 *, const int8_t *qs) {
    const __m256i a = _mm256_loadu_si256(reinterpret_cast<const __m256i *>(qs));
    return act_blk{a, _mm256_maddubs_epi16(_mm256_set1_epi8(8), a)};
}
inline __m256i dot16(const q8_dec &w, const act_blk &a) {
    return _mm256_maddubs_epi16(w.abs, _mm256_sign_epi8(a.a, w.sgn));
}
inline __m256i dot16(__m256i q, const act_blk &a) { return _mm256_sub_epi16(_mm256_maddubs_epi16(q, a.a), a.c); }

// y[t * y_stride + r] = dot(row r at w + r * row_bytes, token t at a + t * a_stride), r < R, t < T.
template <int R, int T, typename Block>
inline void q_tile(int64_t nb, const uint8_t *w, size_t row_bytes, const uint8_t *a, size_t a_stride, float *y,
                   size_t y_stride, const uint8_t *next = nullptr, size_t next_bytes = 0) {
    size_t pf = 0;
    const Block *x[R];
    const block_q8_0 *ya[T];
    #pragma GCC unroll 4 // -O2 keeps a rolled loop's acc[] in memory
    for (int r = 0; r < R; r++) x[r] = reinterpret_cast<const Block *>(w + r * row_bytes);
    #pragma GCC unroll 4
    for (int t = 0; t < T; t++) ya[t] = reinterpret_cast<const block_q8_0 *>(a + t * a_stride);
    __m256 acc[R][T];
    #pragma GCC unroll 4
    for (int r = 0; r < R; r++)
        #pragma GCC unroll 4
        for (int t = 0; t < T; t++) acc[r][t] = _mm256_setzero_ps();
    const __m256i ones = _mm256_set1_epi16(1);
    for (int64_t ib = 0; ib < nb; ib++) {
        // R rows side by side are more streams than the hardware prefetchers follow well: the next rows
        // (next_bytes at next) are fetched front to back at the pace these are consumed
        for (const size_t e = size_t(ib + 1) * R * sizeof(Block); pf < e && pf < next_bytes; pf += 64)
            _mm_prefetch(reinterpret_cast<const char *>(next + pf), _MM_HINT_T0);
        decltype(decode_w(x[0][0])) wd[R];
        __m256 dx[R];
        #pragma GCC unroll 4
        for (int r = 0; r < R; r++) {
            wd[r] = decode_w(x[r][ib]);
            dx[r] = _mm256_set1_ps(h2f(x[r][ib].d));
        }
        #pragma GCC unroll 4
        for (int t = 0; t < T; t++) {
            const act_blk ab = act_for(x[0], ya[t][ib].qs);
            const __m256 dy = _mm256_set1_ps(h2f(ya[t][ib].d));
            #pragma GCC unroll 4
            for (int r = 0; r < R; r++) {
                const __m256i p = _mm256_madd_epi16(dot16(wd[r], ab), ones);
                acc[r][t] = _mm256_fmadd_ps(_mm256_cvtepi32_ps(p), _mm256_mul_ps(dx[r], dy), acc[r][t]);
            }
        }
    }
    #pragma GCC unroll 4
    for (int r = 0; r < R; r++)
        #pragma GCC unroll 4
        for (int t = 0; t < T; t++) y[t * y_stride + r] = hsum(acc[r][t]);
}

template <typename Block> float q_dot(int64_t n, const void *w, const void *a) {
    float v;
    q_tile<1, 1, Block>(n / 32, static_cast<const uint8_t *>(w), 0, static_cast<const uint8_t *>(a), 0, &v, 0);
    return v;
}
template <typename Block> void q_dot_x4(int64_t n, const void *w, const void *a, size_t a_stride, float *out) {
    q_tile<1, 4, Block>(n / 32, static_cast<const uint8_t *>(w), 0, static_cast<const uint8_t *>(a), a_stride, out, 1);
}

} // namespace

namespace {

// A value the compiler must materialise as it is: between a multiply and an add it stops the two from
// being fused into an FMA (this file is built with -mfma; the scalar reference rounds both).
template <typename V> inline V unfused(V v) {
    __asm__("" : "+x"(v));
    return v;
}

// layer_norm (kernels.h) with the reference's four double partial sums as the four lanes of one vector:
// the same sums in the same order, the same f32 affine step, so bit-identical to it.
void layer_norm_avx2(float *out, const float *x, const float *w, const float *b, int64_t n, float eps) {
    __m256d s = _mm256_setzero_pd();
    int64_t i = 0;
    for (; i + 4 <= n; i += 4) s = _mm256_add_pd(s, _mm256_cvtps_pd(_mm_loadu_ps(x + i)));
    alignas(32) double m4[4];
    _mm256_store_pd(m4, s);
    for (; i < n; i++) m4[0] += x[i];
    const double mean = ((m4[0] + m4[1]) + (m4[2] + m4[3])) / double(n);
    const __m256d vmean = _mm256_set1_pd(mean);
    __m256d v = _mm256_setzero_pd();
    for (i = 0; i + 4 <= n; i += 4) {
        const __m256d d = _mm256_sub_pd(_mm256_cvtps_pd(_mm_loadu_ps(x + i)), vmean);
        v = _mm256_add_pd(v, unfused(_mm256_mul_pd(d, d)));
    }
    alignas(32) double v4[4];
    _mm256_store_pd(v4, v);
    for (; i < n; i++) v4[0] += unfused((x[i] - mean) * (x[i] - mean));
    const double var = ((v4[0] + v4[1]) + (v4[2] + v4[3])) / double(n);
    const float rstd = float(1.0 / std::sqrt(var + double(eps)));
    const float fmean = float(mean);
    const __m256 vfmean = _mm256_set1_ps(fmean), vrstd = _mm256_set1_ps(rstd);
    const __m256 one = _mm256_set1_ps(1.0f), zero = _mm256_setzero_ps();
    for (i = 0; i + 8 <= n; i += 8) {
        const __m256 t = _mm256_mul_ps(_mm256_sub_ps(_mm256_loadu_ps(x + i), vfmean), vrstd);
        const __m256 tw = unfused(_mm256_mul_ps(t, w ? _mm256_loadu_ps(w + i) : one));
        _mm256_storeu_ps(out + i, _mm256_add_ps(tw, b ? _mm256_loadu_ps(b + i) : zero));
    }
    for (; i < n; i++) out[i] = unfused(((x[i] - fmean) * rstd) * (w ? w[i] : 1.0f)) + (b ? b[i] : 0.0f);
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
    k.traits[GPTNEOX_TYPE_Q8_0].vec_dot = q_dot<block_q8_0>;
    k.traits[GPTNEOX_TYPE_Q4_0].vec_dot = q_dot<block_q4_0>;
    k.traits[GPTNEOX_TYPE_F32].vec_dot_x4 = f32_dot_n<4>;
    k.traits[GPTNEOX_TYPE_F16].vec_dot_x4 = f16_dot_n<4>;
    k.traits[GPTNEOX_TYPE_BF16].vec_dot_x4 = bf16_dot_n<4>;
    k.traits[GPTNEOX_TYPE_Q8_0].vec_dot_x4 = q_dot_x4<block_q8_0>;
    k.traits[GPTNEOX_TYPE_Q4_0].vec_dot_x4 = q_dot_x4<block_q4_0>;
    // the gemm entries (Q8_0 / Q4_0) are set by fill_gemm_avx2 (gemm-avx2.cpp), see dispatch.cpp
    k.dot_f32 = dot_f32;
    k.dot_f32_f16 = dot_f32_f16;
    k.axpy_f16 = axpy_f16;
    k.axpy_f32 = axpy_f32;
    k.f32_to_f16 = f32_to_f16_row;
    k.f16_to_f32 = f16_to_f32_row;
    k.layer_norm = layer_norm_avx2;
}

} // namespace gptneox
