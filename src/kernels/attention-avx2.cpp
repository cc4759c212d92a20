// Blocked attention, AVX2 + FMA + F16C (kernels.attn_block on GPTNEOX_KERNELS_AVX2) over F16 or Q8_0
// cache rows: the scheme of attention-avx512.cpp with 8 lanes (converted K rows kept row by row here). A
// block of up to 32 queries of one head walks the keys in groups of 8 whose K (then V) rows are converted
// to f32 once for the whole block; a block of one query (a decode step) takes attn_one, the same
// operations reading rows in place.
//
// Batch invariance, as in the AVX-512 file: score(i, j) = one 8-lane FMA accumulator over the head's
// 8-element chunks in order, then reduce8's fixed tree, times scale; softmax per lane over chunks of 8
// keys aligned to key 0 (keys outside the block's range are -inf and add exactly 0); out(i, d) =
// fma(p_ij, v_jd, acc) over the keys i sees in ascending j, from 0. Q8_0 rows as in the AVX-512 file
// with blocks of four 8-element chunks: score t = q_c0 * k_c0, then fma over c1..c3, acc = fma(t, d_b, acc);
// out: acc = fma(p_ij * d_jb, v_jd, acc).
// Internal linkage only, no std:: templates (see kernels-avx2.cpp).
#include <immintrin.h>

#include <cstring>

#include "kernels/attention-groups.h"
#include "kernels/kernels-impl.h"

namespace gptneox {
namespace {

constexpr int kG = 8; // keys per group = f32 lanes

// Lanes [0, r) of an int mask (r <= 8).
inline __m256i lane_mask(int64_t r) {
    return _mm256_cmpgt_epi32(_mm256_set1_epi32(int(r)), _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7));
}

// exp(x), x <= 0 (x = s - max); -inf, NaN and results below 2^-126 (x < -87.33) give 0. Cody-Waite
// reduction x = n ln2 + r, |r| <= ln2/2, Taylor polynomial of degree 7, 2^n built in the exponent field.
inline __m256 exp_ps(__m256 x) {
    const __m256 live = _mm256_cmp_ps(x, _mm256_set1_ps(-87.33f), _CMP_GE_OQ);
    x = _mm256_max_ps(x, _mm256_set1_ps(-87.33f));
    const __m256 n = _mm256_round_ps(_mm256_mul_ps(x, _mm256_set1_ps(1.44269504088896341f)),
                                     _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
    __m256 r = _mm256_fnmadd_ps(n, _mm256_set1_ps(0.693145751953125f), x);
    r = _mm256_fnmadd_ps(n, _mm256_set1_ps(1.42860682030941723e-6f), r);
    __m256 p = _mm256_set1_ps(1.0f / 5040.0f);
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(1.0f / 720.0f));
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(1.0f / 120.0f));
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(1.0f / 24.0f));
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(1.0f / 6.0f));
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(0.5f));
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(1.0f));
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(1.0f));
    // n in [-126, 0]: 2^n is (n + 127) << 23
    const __m256i e = _mm256_slli_epi32(_mm256_add_epi32(_mm256_cvtps_epi32(n), _mm256_set1_epi32(127)), 23);
    return _mm256_and_ps(live, _mm256_mul_ps(p, _mm256_castsi256_ps(e)));
}

inline float hmax(__m256 v) {
    __m128 s = _mm_max_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
    s = _mm_max_ps(s, _mm_movehl_ps(s, s));
    s = _mm_max_ss(s, _mm_movehdup_ps(s));
    return _mm_cvtss_f32(s);
}
inline float hsum(__m256 v) {
    __m128 s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
    s = _mm_add_ps(s, _mm_movehl_ps(s, s));
    s = _mm_add_ss(s, _mm_movehdup_ps(s));
    return _mm_cvtss_f32(s);
}

// Lane m of the result = the sum of the 8 lanes of a[m], by the same tree for every m:
// (l + l+4) for l < 4, then (0 + 2) + (1 + 3).
inline __m256 reduce8(const __m256 *a) {
    __m256 t[4], v[2];
    #pragma GCC unroll 4
    for (int k = 0; k < 4; k++) // [a[2k] partial 4 | a[2k+1] partial 4]
        t[k] = _mm256_add_ps(_mm256_permute2f128_ps(a[2 * k], a[2 * k + 1], 0x20),
                             _mm256_permute2f128_ps(a[2 * k], a[2 * k + 1], 0x31));
    #pragma GCC unroll 2
    for (int k = 0; k < 2; k++)
        v[k] = _mm256_add_ps(_mm256_shuffle_ps(t[2 * k], t[2 * k + 1], _MM_SHUFFLE(1, 0, 1, 0)),
                             _mm256_shuffle_ps(t[2 * k], t[2 * k + 1], _MM_SHUFFLE(3, 2, 3, 2)));
    const __m256 w = _mm256_add_ps(_mm256_shuffle_ps(v[0], v[1], _MM_SHUFFLE(2, 0, 2, 0)),
                                   _mm256_shuffle_ps(v[0], v[1], _MM_SHUFFLE(3, 1, 3, 1)));
    // lane 4b + c of w is the sum of a[2c + b]
    return _mm256_permutevar8x32_ps(w, _mm256_setr_epi32(0, 4, 1, 5, 2, 6, 3, 7));
}

constexpr uint32_t kF16 = GPTNEOX_TYPE_F16, kQ8 = GPTNEOX_TYPE_Q8_0;

// Chunk c (8 elements) of an f16 row as f32; the last chunk of a head dim that is not a multiple of 8
// through a zero-padded copy (the row's end may be the cache's; such head dims pay a scalar copy per row
// and chunk -- the models' head dims are multiples of 8).
inline __m256 load_chunk(const uint8_t *row, int64_t c, int64_t hd) {
    if (8 * c + 8 <= hd) return _mm256_cvtph_ps(_mm_loadu_si128(reinterpret_cast<const __m128i *>(row + 16 * c)));
    alignas(16) uint16_t t[8] = {0, 0, 0, 0, 0, 0, 0, 0};
    std::memcpy(t, row + 16 * c, size_t(hd - 8 * c) * 2);
    return _mm256_cvtph_ps(_mm_load_si128(reinterpret_cast<const __m128i *>(t)));
}
// Chunk c of a Q8_0 row (hd % 32 == 0): its 8 q as f32 (without the scale); block b's scale.
inline __m256 q8_chunk(const uint8_t *row, int64_t c) {
    const uint8_t *q = row + sizeof(block_q8_0) * size_t(c / 4) + 2 + 8 * (c % 4);
    return _mm256_cvtepi32_ps(_mm256_cvtepi8_epi32(_mm_loadl_epi64(reinterpret_cast<const __m128i *>(q))));
}
inline float q8_scale(const uint8_t *row, int64_t b) {
    uint16_t d;
    std::memcpy(&d, row + sizeof(block_q8_0) * size_t(b), 2);
    return _cvtsh_ss(d);
}

// Row j's hd values into dst[0..hdp) (zero past hd): F16 as f32; Q8_0 its q as f32, block b's scale at
// scales[b].
template <uint32_t T> inline void convert_row(const uint8_t *src, int64_t hd, float *dst, float *scales) {
    if constexpr (T == kQ8) {
        for (int64_t c = 0; 8 * c < hd; c++) _mm256_store_ps(dst + 8 * c, q8_chunk(src, c));
        for (int64_t b = 0; b < hd / 32; b++) scales[b] = q8_scale(src, b);
    } else {
        (void)scales;
        for (int64_t c = 0; 8 * c < hd; c++) _mm256_store_ps(dst + 8 * c, load_chunk(src, c, hd));
    }
}

// out[i][c0 * 8 ..] += p_ij v_j for the 4 queries at P / O and NC chunks from c0, keys of one group.
// Q8: vb holds q, key m's block scales at vd + m * nbp (c0 even: both chunks lie in one block).
template <int NC, bool Q8>
inline void values_tile(const uint32_t *w, int i0, const float *P, size_t ns, const float *vb, int64_t hdp, int64_t c0,
                        float *O, const float *vd, int64_t nbp) {
    __m256 acc[4][NC];
    #pragma GCC unroll 4
    for (int ii = 0; ii < 4; ii++) {
        #pragma GCC unroll 2
        for (int c = 0; c < NC; c++) acc[ii][c] = _mm256_load_ps(O + ii * hdp + 8 * (c0 + c));
    }
    for (int m = 0; m < kG; m++) {
        const uint32_t wm = w[m] >> i0;
        if (!(wm & 0xF)) continue;
        __m256 vv[NC];
        #pragma GCC unroll 2
        for (int c = 0; c < NC; c++) vv[c] = _mm256_load_ps(vb + m * hdp + 8 * (c0 + c));
        #pragma GCC unroll 4
        for (int ii = 0; ii < 4; ii++) {
            if (!((wm >> ii) & 1)) continue;
            const __m256 p = Q8 ? _mm256_set1_ps(P[size_t(ii) * ns + m] * vd[m * nbp + c0 / 4])
                                : _mm256_broadcast_ss(P + size_t(ii) * ns + m);
            #pragma GCC unroll 2
            for (int c = 0; c < NC; c++) acc[ii][c] = _mm256_fmadd_ps(p, vv[c], acc[ii][c]);
        }
    }
    #pragma GCC unroll 4
    for (int ii = 0; ii < 4; ii++) {
        #pragma GCC unroll 2
        for (int c = 0; c < NC; c++) _mm256_store_ps(O + ii * hdp + 8 * (c0 + c), acc[ii][c]);
    }
}

// One query's scores s[0..ns) (ns a multiple of 8, -inf for keys it does not see) -> softmax weights;
// all zeros if it sees nothing (its output then stays 0: no key is visible to it).
inline void softmax_row(float *s, size_t ns) {
    __m256 mx = _mm256_set1_ps(-__builtin_inff());
    for (size_t c = 0; c < ns; c += kG) mx = _mm256_max_ps(mx, _mm256_load_ps(s + c));
    const float m = hmax(mx);
    if (m == -__builtin_inff()) {
        for (size_t c = 0; c < ns; c += kG) _mm256_store_ps(s + c, _mm256_setzero_ps());
        return;
    }
    const __m256 vm = _mm256_set1_ps(m);
    __m256 sum = _mm256_setzero_ps();
    for (size_t c = 0; c < ns; c += kG) {
        const __m256 e = exp_ps(_mm256_sub_ps(_mm256_load_ps(s + c), vm));
        _mm256_store_ps(s + c, e);
        sum = _mm256_add_ps(sum, e);
    }
    const __m256 inv = _mm256_set1_ps(1.0f / hsum(sum));
    for (size_t c = 0; c < ns; c += kG) _mm256_store_ps(s + c, _mm256_mul_ps(_mm256_load_ps(s + c), inv));
}

constexpr int64_t kOneMaxHd = 128; // head dims attn_one takes (its row of zeros is this long)
constexpr int kOneChunks = int(kOneMaxHd / 8);

// A block of one query (a decode step), head dims up to kOneMaxHd (NC = 1..16 chunks of 8): the block
// path's operations for that query in the same order, with K and V rows converted as they are read
// instead of through the scratch rows.
// Scores: key by key, each row's chunks in order, so the loads walk the cache front to back; chunk by
// chunk across a group's 8 rows (256 bytes apart for a 128-wide head) read it slower from memory.
// Rows the query does not see are replaced by a row of zeros (their lanes are -inf anyway); the query is
// copied once into a zero-padded row.
// Values: the whole output row in one pass over the keys, each element getting its FMAs in ascending key
// order. 16 accumulators and the broadcast weight need more than AVX2's 16 registers, so some may live in
// L1 (the compiler's choice); that costs less than a second pass over V (8 chunks per pass read a
// 128-wide head's V twice).
// One thread, a rinna-shaped head after 1907 tokens (bench/attention_bench.cpp): with V in two passes
// and K chunk by chunk 49 us hot, 11.3 GB/s from memory (its cold mode); V in one pass 26 us, 19-20 GB/s;
// and K key by key with NC a compile-time constant (the chunk loops unroll fully), 20 us, 23.5-30 GB/s.
// Q8_0 rows (the scale per block): 25.1 us hot, 200 such heads from memory in 5.4-5.5 ms against 6.5-6.7
// for f16 rows (33.7 us and 7.1 ms with d * q formed per element).
template <uint32_t KT, uint32_t VT, int NC> void attn_one(const attn_block_args &a) {
    const int64_t hd = a.hd;
    const size_t k_bytes = attn_groups::row_bytes(KT, hd), v_bytes = attn_groups::row_bytes(VT, hd);
    int64_t g0, g1;
    attn_groups::range<kG>(a, &g0, &g1);
    const size_t ns = size_t(g1 - g0);
    float *S = a.work; // [ns] scores, then weights
    const __m256 ninf = _mm256_set1_ps(-__builtin_inff());
    alignas(32) static const uint8_t zeros[2 * kOneMaxHd] = {}; // a row of zeros of either type
    alignas(32) uint32_t w[kG];
    alignas(32) float qp[8 * NC] = {};
    for (int64_t e = 0; e < hd; e++) qp[e] = a.q[e];
    for (int64_t g = g0; g < g1; g += kG) {
        float *Sg = S + (g - g0);
        if (!attn_groups::visibility<kG>(a, g, 1, w)) {
            _mm256_store_ps(Sg, ninf);
            continue;
        }
        attn_groups::prefetch<kG>(a.k, a.k_stride, g + kG, a.k1, k_bytes);
        __m256 acc[kG];
        #pragma GCC unroll 8
        for (int m = 0; m < kG; m++) {
            const uint8_t *row = w[m] ? a.k + size_t(g + m) * a.k_stride : zeros;
            __m256 am = _mm256_setzero_ps();
            if constexpr (KT == kQ8) {
                #pragma GCC unroll 4
                for (int b = 0; b < NC / 4; b++) {
                    __m256 t = _mm256_mul_ps(_mm256_load_ps(qp + 32 * b), q8_chunk(row, 4 * b));
                    #pragma GCC unroll 3
                    for (int c = 4 * b + 1; c < 4 * b + 4; c++)
                        t = _mm256_fmadd_ps(_mm256_load_ps(qp + 8 * c), q8_chunk(row, c), t);
                    am = _mm256_fmadd_ps(t, _mm256_set1_ps(q8_scale(row, b)), am);
                }
            } else {
                #pragma GCC unroll 16
                for (int c = 0; c < NC; c++) am = _mm256_fmadd_ps(_mm256_load_ps(qp + 8 * c), load_chunk(row, c, hd), am);
            }
            acc[m] = am;
        }
        const __m256i wv = _mm256_load_si256(reinterpret_cast<const __m256i *>(w));
        const __m256i one = _mm256_set1_epi32(1);
        const __m256 sel = _mm256_castsi256_ps(_mm256_cmpeq_epi32(_mm256_and_si256(wv, one), one));
        _mm256_store_ps(Sg, _mm256_blendv_ps(ninf, _mm256_mul_ps(reduce8(acc), _mm256_set1_ps(a.scale)), sel));
    }
    softmax_row(S, ns);
    __m256 o[NC];
    #pragma GCC unroll 16
    for (int c = 0; c < NC; c++) o[c] = _mm256_setzero_ps();
    for (int64_t g = g0; g < g1; g += kG) {
        if (!attn_groups::visibility<kG>(a, g, 1, w)) continue;
        attn_groups::prefetch<kG>(a.v, a.v_stride, g + kG, a.k1, v_bytes);
        for (int m = 0; m < kG; m++) {
            if (!w[m]) continue;
            const float pm = S[size_t(g - g0) + size_t(m)];
            const uint8_t *row = a.v + size_t(g + m) * a.v_stride;
            if constexpr (VT == kQ8) {
                #pragma GCC unroll 4
                for (int b = 0; b < NC / 4; b++) {
                    const __m256 p = _mm256_set1_ps(pm * q8_scale(row, b));
                    #pragma GCC unroll 4
                    for (int c = 4 * b; c < 4 * b + 4; c++) o[c] = _mm256_fmadd_ps(p, q8_chunk(row, c), o[c]);
                }
            } else {
                const __m256 p = _mm256_set1_ps(pm);
                #pragma GCC unroll 16
                for (int c = 0; c < NC; c++) o[c] = _mm256_fmadd_ps(p, load_chunk(row, c, hd), o[c]);
            }
        }
    }
    #pragma GCC unroll 16
    for (int c = 0; c < NC; c++) {
        const int64_t e0 = 8 * c;
        if (e0 + 8 <= hd) {
            _mm256_storeu_ps(a.out + e0, o[c]);
        } else {
            alignas(32) float t8[8];
            _mm256_store_ps(t8, o[c]);
            for (int64_t e = e0; e < hd; e++) a.out[e] = t8[e - e0];
        }
    }
}

// attn_one for the query's head dim (at most kOneMaxHd).
template <uint32_t KT, uint32_t VT, int NC> void attn_one_n(const attn_block_args &a) {
    if constexpr (NC > 1) {
        if ((a.hd + 7) / 8 < NC) return attn_one_n<KT, VT, NC - 1>(a);
    }
    attn_one<KT, VT, NC>(a);
}

template <uint32_t KT, uint32_t VT> void attn_block_t(const attn_block_args &a) {
    if (a.n_q == 1 && a.hd <= kOneMaxHd) return attn_one_n<KT, VT, kOneChunks>(a);
    const size_t k_bytes = attn_groups::row_bytes(KT, a.hd), v_bytes = attn_groups::row_bytes(VT, a.hd);
    const int64_t hd = a.hd, hdp = (hd + 7) & ~int64_t(7), nc = hdp / 8;
    const int nq = a.n_q, nq4 = (nq + 3) & ~3;
    const uint32_t qmask = attn_groups::query_mask(nq);
    int64_t g0, g1;
    attn_groups::range<kG>(a, &g0, &g1);
    const size_t ns = size_t(g1 - g0);
    // 64-byte aligned pieces: [16][hdp] converted rows (8 used; Q8_0 V rows' block scales in the other 8's
    // space), [nq4][hdp] outputs, [nq][ns] scores
    const int64_t hda = (hd + 15) & ~int64_t(15);
    float *kv = a.work;
    float *kvd = kv + kG * hda; // Q8_0: the rows' block scales, [8][nbp] (in the scratch's unused half)
    const int64_t nbp = hd / 32;
    float *O = kv + 16 * hda;
    float *S = O + nq4 * hda;
    const size_t os = size_t(hda); // output row stride
    (void)hdp;
    const __m256 ninf = _mm256_set1_ps(-__builtin_inff());
    const __m256i qtail = lane_mask(hd % 8 ? hd % 8 : 8);
    alignas(32) uint32_t w[kG];

    // ---- scores
    for (int64_t g = g0; g < g1; g += kG) {
        float *Sg = S + (g - g0);
        const uint32_t any = attn_groups::visibility<kG>(a, g, qmask, w);
        if (!any) {
            for (int i = 0; i < nq; i++) _mm256_store_ps(Sg + i * ns, ninf);
            continue;
        }
        for (int m = 0; m < kG; m++)
            if (w[m]) convert_row<KT>(a.k + size_t(g + m) * a.k_stride, hd, kv + m * hda, kvd + m * nbp);
        attn_groups::prefetch<kG>(a.k, a.k_stride, g + kG, a.k1, k_bytes);
        const __m256i wv = _mm256_load_si256(reinterpret_cast<const __m256i *>(w));
        for (int i = 0; i < nq; i++) {
            const __m256i bit = _mm256_set1_epi32(int(uint32_t(1) << i));
            const __m256 sel = _mm256_castsi256_ps(_mm256_cmpeq_epi32(_mm256_and_si256(wv, bit), bit));
            if (!_mm256_movemask_ps(sel)) {
                _mm256_store_ps(Sg + i * ns, ninf);
                continue;
            }
            const float *q = a.q + size_t(i) * a.q_stride;
            __m256 acc[kG];
            #pragma GCC unroll 8
            for (int m = 0; m < kG; m++) acc[m] = _mm256_setzero_ps();
            if constexpr (KT == kQ8) {
                for (int64_t b = 0; b < nc / 4; b++) {
                    __m256 qb[4];
                    #pragma GCC unroll 4
                    for (int c = 0; c < 4; c++) qb[c] = _mm256_loadu_ps(q + 32 * b + 8 * c);
                    #pragma GCC unroll 8
                    for (int m = 0; m < kG; m++) {
                        const float *kb = kv + m * hda + 32 * b;
                        __m256 t = _mm256_mul_ps(qb[0], _mm256_load_ps(kb));
                        #pragma GCC unroll 3
                        for (int c = 1; c < 4; c++) t = _mm256_fmadd_ps(qb[c], _mm256_load_ps(kb + 8 * c), t);
                        acc[m] = _mm256_fmadd_ps(t, _mm256_set1_ps(kvd[m * nbp + b]), acc[m]);
                    }
                }
            } else {
                for (int64_t c = 0; c < nc; c++) {
                    const __m256 qc = c + 1 < nc ? _mm256_loadu_ps(q + 8 * c) : _mm256_maskload_ps(q + 8 * c, qtail);
                    #pragma GCC unroll 8
                    for (int m = 0; m < kG; m++) acc[m] = _mm256_fmadd_ps(qc, _mm256_load_ps(kv + m * hda + 8 * c), acc[m]);
                }
            }
            const __m256 r = _mm256_mul_ps(reduce8(acc), _mm256_set1_ps(a.scale));
            _mm256_store_ps(Sg + i * ns, _mm256_blendv_ps(ninf, r, sel));
        }
    }

    // ---- softmax of each query's row
    for (int i = 0; i < nq; i++) softmax_row(S + i * ns, ns);

    // ---- values
    for (int64_t e = 0; e < int64_t(nq4) * hda; e += 8) _mm256_store_ps(O + e, _mm256_setzero_ps());
    for (int64_t g = g0; g < g1; g += kG) {
        const uint32_t any = attn_groups::visibility<kG>(a, g, qmask, w);
        if (!any) continue;
        for (int m = 0; m < kG; m++)
            if (w[m]) convert_row<VT>(a.v + size_t(g + m) * a.v_stride, hd, kv + m * hda, kvd + m * nbp);
        attn_groups::prefetch<kG>(a.v, a.v_stride, g + kG, a.k1, v_bytes);
        for (int i0 = 0; i0 < nq; i0 += 4) {
            if (!((any >> i0) & 0xF)) continue;
            const float *P = S + i0 * ns + (g - g0);
            float *Oi = O + i0 * os;
            int64_t c0 = 0;
            constexpr bool q8 = VT == kQ8;
            for (; c0 + 2 <= nc; c0 += 2) values_tile<2, q8>(w, i0, P, ns, kv, hda, c0, Oi, kvd, nbp);
            if (c0 < nc) values_tile<1, q8>(w, i0, P, ns, kv, hda, c0, Oi, kvd, nbp); // F16 only
        }
    }
    for (int i = 0; i < nq; i++) {
        float *out = a.out + size_t(i) * a.out_stride;
        const float *o = O + i * os;
        for (int64_t e = 0; e < hd; e++) out[e] = o[e];
    }
}

void attn_block(const attn_block_args &a) {
    if (a.k_type == kQ8) return a.v_type == kQ8 ? attn_block_t<kQ8, kQ8>(a) : attn_block_t<kQ8, kF16>(a);
    return a.v_type == kQ8 ? attn_block_t<kF16, kQ8>(a) : attn_block_t<kF16, kF16>(a);
}

} // namespace

void fill_attention_avx2(kernels &k) { k.attn_block = attn_block; }

} // namespace gptneox
