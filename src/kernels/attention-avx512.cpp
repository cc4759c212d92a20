// Blocked attention, AVX-512 F/BW/VL/DQ (kernels.attn_block on GPTNEOX_KERNELS_AVX512; the scalar
// reference is attention-scalar.cpp), over F16 or Q8_0 cache rows (a template parameter each for K and
// V). A block of up to 32 queries of one head walks the keys in groups of 16: each group's K (then V)
// rows are converted to f32 once and used by every query of the block, so the cache is read once per
// block instead of once per query. A block of one query (a decode step) takes attn_one instead: the same
// operations for that query, reading the rows in place.
//
// Batch invariance (logits must not depend on how a prompt is split into batches): every number a query
// gets is computed by the same operations in the same order whatever the block holds:
//   score(i, j): one 16-lane FMA accumulator over the head's 16-element chunks in order, then the fixed
//                addition tree of reduce16 (the same tree for every lane), times scale;
//   softmax:     per-lane max / sum over chunks of 16 keys aligned to absolute key index 0 (keys outside
//                the block's range are -inf and add exactly 0), then the same horizontal reductions;
//   out(i, d):   acc = 0, then acc = fma(p_ij, v_jd, acc) for the keys i sees, ascending j.
// Q8_0 rows (element = d_b q, blocks b of 32) keep the scale out of the element-wise work, one multiply
// per block instead of per element (a decode step after 1907 tokens, one thread, a rinna head in
// bench/attention_bench.cpp: with d * q formed per element 31 us hot, 15.2-15.6 GB/s cold; so, 25.5 us
// and 18.9-19.1 GB/s, i.e. 5.4-5.5 ms for 200 heads against 6.4-7.0 for their f16 rows):
//   score:  per block, t = q_c0 * k_c0 then fma(q_c1, k_c1, t) over its two chunks of q (int8 as f32),
//           acc = fma(t, d_b, acc); then reduce16 as above;
//   out:    acc = fma(p_ij * d_jb (an f32 product), v_jd, acc), ascending j.
// Internal linkage only, no std:: templates (see kernels-avx2.cpp).
#include <immintrin.h>

#include <cstring>

#pragma GCC diagnostic ignored "-Wuninitialized"
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"

#include "kernels/attention-groups.h"
#include "kernels/exp-avx512.h"
#include "kernels/kernels-impl.h"

namespace gptneox {
namespace {

constexpr int kG = 16; // keys per group = f32 lanes

inline __mmask16 tail_mask(int64_t r) { return static_cast<__mmask16>((1u << r) - 1); }

// Lane m of the result = the sum of the 16 lanes of a[m], by the same tree for every m:
// ((l + l+8) + (l+4 + l+12)) for l < 4, then (0 + 2) + (1 + 3).
inline __m512 reduce16(const __m512 *a) {
    __m512 t[8], u[4], v[2];
    #pragma GCC unroll 8
    for (int k = 0; k < 8; k++)
        t[k] = _mm512_add_ps(_mm512_shuffle_f32x4(a[2 * k], a[2 * k + 1], _MM_SHUFFLE(1, 0, 1, 0)),
                             _mm512_shuffle_f32x4(a[2 * k], a[2 * k + 1], _MM_SHUFFLE(3, 2, 3, 2)));
    #pragma GCC unroll 4
    for (int k = 0; k < 4; k++) // 128-bit block b of u[k] holds a[4k + b]
        u[k] = _mm512_add_ps(_mm512_shuffle_f32x4(t[2 * k], t[2 * k + 1], _MM_SHUFFLE(2, 0, 2, 0)),
                             _mm512_shuffle_f32x4(t[2 * k], t[2 * k + 1], _MM_SHUFFLE(3, 1, 3, 1)));
    #pragma GCC unroll 2
    for (int k = 0; k < 2; k++)
        v[k] = _mm512_add_ps(_mm512_shuffle_ps(u[2 * k], u[2 * k + 1], _MM_SHUFFLE(1, 0, 1, 0)),
                             _mm512_shuffle_ps(u[2 * k], u[2 * k + 1], _MM_SHUFFLE(3, 2, 3, 2)));
    const __m512 w = _mm512_add_ps(_mm512_shuffle_ps(v[0], v[1], _MM_SHUFFLE(2, 0, 2, 0)),
                                   _mm512_shuffle_ps(v[0], v[1], _MM_SHUFFLE(3, 1, 3, 1)));
    // lane 4b + c of w is the sum of a[4c + b]
    const __m512i idx = _mm512_setr_epi32(0, 4, 8, 12, 1, 5, 9, 13, 2, 6, 10, 14, 3, 7, 11, 15);
    return _mm512_permutexvar_ps(idx, w);
}

constexpr uint32_t kF16 = GPTNEOX_TYPE_F16, kQ8 = GPTNEOX_TYPE_Q8_0;

// Chunk c (elements 16c ..) of an f16 row as f32; lanes outside m are zeros and not read.
inline __m512 f16_chunk(const uint8_t *row, int64_t c, __mmask16 m) {
    return _mm512_cvtph_ps(_mm256_maskz_loadu_epi16(m, row + 32 * c));
}
// Chunk c of a Q8_0 row: its 16 q as f32 (without the scale); block b's scale.
inline __m512 q8_chunk(const uint8_t *row, int64_t c) {
    const uint8_t *q = row + sizeof(block_q8_0) * size_t(c / 2) + 2 + 16 * (c % 2);
    return _mm512_cvtepi32_ps(_mm512_cvtepi8_epi32(_mm_loadu_si128(reinterpret_cast<const __m128i *>(q))));
}
inline float q8_scale(const uint8_t *row, int64_t b) {
    uint16_t d;
    std::memcpy(&d, row + sizeof(block_q8_0) * size_t(b), 2);
    return _cvtsh_ss(d);
}
// A Q8_0 row of zeros for attn_one's keys the query does not see (head dims up to 128).
alignas(64) const uint8_t kZeroQ8Row[sizeof(block_q8_0) * 4] = {};

// Row j's hd values into the scratch, 16-element chunk c at dst + c * step (zero past hd): step 16 for
// a row in place (V), 16 * kG for the chunk-major group (K). F16: as f32; Q8_0: q as f32, and block b's
// scale at scales[b].
template <uint32_t T> inline void convert_row(const uint8_t *src, int64_t hd, float *dst, int64_t step, float *scales) {
    int64_t c = 0;
    if constexpr (T == kQ8) {
        for (; 16 * c < hd; c++, dst += step) _mm512_store_ps(dst, q8_chunk(src, c));
        for (int64_t b = 0; b < hd / 32; b++) scales[b] = q8_scale(src, b);
    } else {
        (void)scales;
        for (; 16 * c + 16 <= hd; c++, dst += step) _mm512_store_ps(dst, f16_chunk(src, c, 0xFFFF));
        if (16 * c < hd) _mm512_store_ps(dst, f16_chunk(src, c, tail_mask(hd - 16 * c)));
    }
}

// out[i][c0 * 16 ..] += p_ij v_j for the 4 queries at P / O and NC chunks from c0, keys of one group.
// Q8: vb holds q, key m's block scales at vd + m * nbp (c0 even: a pair of chunks is one block).
template <int NC, bool Q8>
inline void values_tile(const uint32_t *w, int i0, const float *P, size_t ns, const float *vb, int64_t hdp, int64_t c0,
                        float *O, const float *vd, int64_t nbp) {
    __m512 acc[4][NC];
    #pragma GCC unroll 4
    for (int ii = 0; ii < 4; ii++) {
        #pragma GCC unroll 4
        for (int c = 0; c < NC; c++) acc[ii][c] = _mm512_load_ps(O + ii * hdp + 16 * (c0 + c));
    }
    for (int m = 0; m < kG; m++) {
        const uint32_t wm = w[m] >> i0;
        if (!(wm & 0xF)) continue;
        __m512 vv[NC];
        #pragma GCC unroll 4
        for (int c = 0; c < NC; c++) vv[c] = _mm512_load_ps(vb + m * hdp + 16 * (c0 + c));
        #pragma GCC unroll 4
        for (int ii = 0; ii < 4; ii++) {
            if (!((wm >> ii) & 1)) continue;
            const float pm = P[size_t(ii) * ns + m];
            #pragma GCC unroll 4
            for (int c = 0; c < NC; c++) {
                const __m512 p = _mm512_set1_ps(Q8 ? pm * vd[m * nbp + (c0 + c) / 2] : pm);
                acc[ii][c] = _mm512_fmadd_ps(p, vv[c], acc[ii][c]);
            }
        }
    }
    #pragma GCC unroll 4
    for (int ii = 0; ii < 4; ii++) {
        #pragma GCC unroll 4
        for (int c = 0; c < NC; c++) _mm512_store_ps(O + ii * hdp + 16 * (c0 + c), acc[ii][c]);
    }
}

// One query's scores s[0..ns) (ns a multiple of 16, -inf for keys it does not see) -> softmax weights;
// all zeros if it sees nothing (its output then stays 0: no key is visible to it).
inline void softmax_row(float *s, size_t ns) {
    const __m512 ninf = _mm512_set1_ps(-__builtin_inff());
    __m512 mx = ninf;
    for (size_t c = 0; c < ns; c += kG) mx = _mm512_max_ps(mx, _mm512_load_ps(s + c));
    const float m = _mm512_reduce_max_ps(mx);
    if (m == -__builtin_inff()) {
        for (size_t c = 0; c < ns; c += kG) _mm512_store_ps(s + c, _mm512_setzero_ps());
        return;
    }
    const __m512 vm = _mm512_set1_ps(m);
    __m512 sum = _mm512_setzero_ps();
    for (size_t c = 0; c < ns; c += kG) {
        const __m512 e = exp_ps(_mm512_sub_ps(_mm512_load_ps(s + c), vm));
        _mm512_store_ps(s + c, e);
        sum = _mm512_add_ps(sum, e);
    }
    const __m512 inv = _mm512_set1_ps(1.0f / _mm512_reduce_add_ps(sum));
    for (size_t c = 0; c < ns; c += kG) _mm512_store_ps(s + c, _mm512_mul_ps(_mm512_load_ps(s + c), inv));
}

// A block of one query (a decode step), head dims up to 16 * NC: the block path's operations for that
// query in the same order, with K and V rows converted as they are read (masked loads: rows the query
// does not see are never read, chunks past hd read as zeros) instead of through the scratch rows, and
// the output sums in registers for the whole key range.
template <uint32_t KT, uint32_t VT, int NC> void attn_one(const attn_block_args &a) {
    const int64_t hd = a.hd;
    const size_t k_bytes = attn_groups::row_bytes(KT, hd), v_bytes = attn_groups::row_bytes(VT, hd);
    int64_t g0, g1;
    attn_groups::range<kG>(a, &g0, &g1);
    const size_t ns = size_t(g1 - g0);
    float *S = a.work; // [ns] scores, then weights
    const __m512 ninf = _mm512_set1_ps(-__builtin_inff());
    const __mmask16 tail = hd % 16 ? tail_mask(hd % 16) : static_cast<__mmask16>(0xFFFF);
    auto chunk_mask = [&](int c, bool row) -> __mmask16 {
        return !row ? static_cast<__mmask16>(0) : c + 1 < NC ? static_cast<__mmask16>(0xFFFF) : tail;
    };
    alignas(64) uint32_t w[kG];
    __m512 qv[NC];
    #pragma GCC unroll 8
    for (int c = 0; c < NC; c++) qv[c] = _mm512_maskz_loadu_ps(chunk_mask(c, true), a.q + 16 * c);
    constexpr int NB = NC / 2; // Q8_0 blocks (NC is even for Q8_0 rows)

    for (int64_t g = g0; g < g1; g += kG) {
        float *Sg = S + (g - g0);
        if (!attn_groups::visibility<kG>(a, g, 1, w)) {
            _mm512_store_ps(Sg, ninf);
            continue;
        }
        attn_groups::prefetch<kG>(a.k, a.k_stride, g + kG, a.k1, k_bytes);
        const uint8_t *row[kG]; // rows it does not see may lie past the cache: never formed, never read
        #pragma GCC unroll 16
        for (int m = 0; m < kG; m++) row[m] = w[m] ? a.k + size_t(g + m) * a.k_stride : KT == kQ8 ? kZeroQ8Row : a.k;
        __m512 acc[kG];
        #pragma GCC unroll 16
        for (int m = 0; m < kG; m++) acc[m] = _mm512_setzero_ps();
        // key by key, each row's chunks in order: the loads walk the cache front to back (chunk by chunk
        // across the 16 rows, 256 bytes apart, read it from memory at 2/3 the speed: one thread, a rinna
        // head after 1907 tokens, 21.5 vs 29.5-31 GB/s in bench/attention_bench.cpp's cold mode); each
        // acc[m] sees the same FMAs in the same order
        #pragma GCC unroll 16
        for (int m = 0; m < kG; m++) {
            if constexpr (KT == kQ8) {
                #pragma GCC unroll 4
                for (int b = 0; b < NB; b++) {
                    __m512 t = _mm512_mul_ps(qv[2 * b], q8_chunk(row[m], 2 * b));
                    t = _mm512_fmadd_ps(qv[2 * b + 1], q8_chunk(row[m], 2 * b + 1), t);
                    acc[m] = _mm512_fmadd_ps(t, _mm512_set1_ps(q8_scale(row[m], b)), acc[m]);
                }
            } else {
                #pragma GCC unroll 8
                for (int c = 0; c < NC; c++)
                    acc[m] = _mm512_fmadd_ps(qv[c], f16_chunk(row[m], c, chunk_mask(c, w[m] != 0)), acc[m]);
            }
        }
        const __mmask16 sel = _mm512_test_epi32_mask(_mm512_load_si512(w), _mm512_set1_epi32(1));
        _mm512_store_ps(Sg, _mm512_mask_mov_ps(ninf, sel, _mm512_mul_ps(reduce16(acc), _mm512_set1_ps(a.scale))));
    }
    softmax_row(S, ns);
    __m512 o[NC];
    #pragma GCC unroll 8
    for (int c = 0; c < NC; c++) o[c] = _mm512_setzero_ps();
    for (int64_t g = g0; g < g1; g += kG) {
        if (!attn_groups::visibility<kG>(a, g, 1, w)) continue;
        attn_groups::prefetch<kG>(a.v, a.v_stride, g + kG, a.k1, v_bytes);
        for (int m = 0; m < kG; m++) {
            if (!w[m]) continue;
            const float pm = S[size_t(g - g0) + size_t(m)];
            const uint8_t *row = a.v + size_t(g + m) * a.v_stride;
            if constexpr (VT == kQ8) {
                #pragma GCC unroll 4
                for (int b = 0; b < NB; b++) {
                    const __m512 p = _mm512_set1_ps(pm * q8_scale(row, b));
                    o[2 * b] = _mm512_fmadd_ps(p, q8_chunk(row, 2 * b), o[2 * b]);
                    o[2 * b + 1] = _mm512_fmadd_ps(p, q8_chunk(row, 2 * b + 1), o[2 * b + 1]);
                }
            } else {
                const __m512 p = _mm512_set1_ps(pm);
                #pragma GCC unroll 8
                for (int c = 0; c < NC; c++) o[c] = _mm512_fmadd_ps(p, f16_chunk(row, c, chunk_mask(c, true)), o[c]);
            }
        }
    }
    #pragma GCC unroll 8
    for (int c = 0; c < NC; c++) _mm512_mask_storeu_ps(a.out + 16 * c, chunk_mask(c, true), o[c]);
}

template <uint32_t KT, uint32_t VT> void attn_block_t(const attn_block_args &a) {
    if (a.n_q == 1) {
        switch ((a.hd + 15) / 16) {
        case 1: return attn_one<KT, VT, 1>(a);
        case 2: return attn_one<KT, VT, 2>(a);
        case 3: return attn_one<KT, VT, 3>(a);
        case 4: return attn_one<KT, VT, 4>(a);
        case 5: return attn_one<KT, VT, 5>(a);
        case 6: return attn_one<KT, VT, 6>(a);
        case 7: return attn_one<KT, VT, 7>(a);
        case 8: return attn_one<KT, VT, 8>(a);
        default: break; // wider heads: the block path
        }
    }
    const size_t k_bytes = attn_groups::row_bytes(KT, a.hd), v_bytes = attn_groups::row_bytes(VT, a.hd);
    const int64_t hd = a.hd, hdp = (hd + 15) & ~int64_t(15), nc = hdp / 16;
    const int nq = a.n_q, nq4 = (nq + 3) & ~3;
    const uint32_t qmask = attn_groups::query_mask(nq);
    int64_t g0, g1;
    attn_groups::range<kG>(a, &g0, &g1);
    const size_t ns = size_t(g1 - g0); // score row length (a multiple of 16)
    float *kv = a.work;                // the group's K ([nc][16][16], chunk-major) or V ([16][hdp]) rows as f32
    const int64_t nbp = (hd / 32 + 15) & ~int64_t(15);
    float *kvd = kv + kG * hdp;        // Q8_0: their block scales, [16][nbp]
    float *O = kvd + kG * nbp;         // [nq4][hdp] outputs
    float *S = O + nq4 * hdp;          // [nq][ns] scores, then weights
    const __m512 ninf = _mm512_set1_ps(-__builtin_inff());
    const __mmask16 qtail = hd % 16 ? tail_mask(hd % 16) : static_cast<__mmask16>(0xFFFF);
    alignas(64) uint32_t w[kG];

    // ---- scores
    for (int64_t g = g0; g < g1; g += kG) {
        float *Sg = S + (g - g0);
        const uint32_t any = attn_groups::visibility<kG>(a, g, qmask, w);
        if (!any) {
            for (int i = 0; i < nq; i++) _mm512_store_ps(Sg + i * ns, ninf);
            continue;
        }
        // chunk-major ([chunk][key][16]): the FMAs of one chunk read one run of 16 vectors
        for (int m = 0; m < kG; m++)
            if (w[m]) convert_row<KT>(a.k + size_t(g + m) * a.k_stride, hd, kv + 16 * m, 16 * kG, kvd + m * nbp);
        attn_groups::prefetch<kG>(a.k, a.k_stride, g + kG, a.k1, k_bytes);
        const __m512i wv = _mm512_load_si512(w);
        for (int i = 0; i < nq; i++) {
            const __mmask16 sel = _mm512_test_epi32_mask(wv, _mm512_set1_epi32(int(uint32_t(1) << i)));
            if (!sel) {
                _mm512_store_ps(Sg + i * ns, ninf);
                continue;
            }
            const float *q = a.q + size_t(i) * a.q_stride;
            __m512 acc[kG];
            #pragma GCC unroll 16
            for (int m = 0; m < kG; m++) acc[m] = _mm512_setzero_ps();
            if constexpr (KT == kQ8) {
                for (int64_t b = 0; b < nc / 2; b++) {
                    const __m512 q0 = _mm512_loadu_ps(q + 32 * b), q1 = _mm512_loadu_ps(q + 32 * b + 16);
                    const float *k0 = kv + 16 * kG * (2 * b), *k1 = k0 + 16 * kG;
                    #pragma GCC unroll 16
                    for (int m = 0; m < kG; m++) {
                        __m512 t = _mm512_mul_ps(q0, _mm512_load_ps(k0 + 16 * m));
                        t = _mm512_fmadd_ps(q1, _mm512_load_ps(k1 + 16 * m), t);
                        acc[m] = _mm512_fmadd_ps(t, _mm512_set1_ps(kvd[m * nbp + b]), acc[m]);
                    }
                }
            } else {
                for (int64_t c = 0; c < nc; c++) {
                    const __m512 qc = c + 1 < nc ? _mm512_loadu_ps(q + 16 * c) : _mm512_maskz_loadu_ps(qtail, q + 16 * c);
                    const float *kc = kv + 16 * kG * c;
                    #pragma GCC unroll 16
                    for (int m = 0; m < kG; m++) acc[m] = _mm512_fmadd_ps(qc, _mm512_load_ps(kc + 16 * m), acc[m]);
                }
            }
            const __m512 r = _mm512_mul_ps(reduce16(acc), _mm512_set1_ps(a.scale));
            _mm512_store_ps(Sg + i * ns, _mm512_mask_mov_ps(ninf, sel, r));
        }
    }

    // ---- softmax of each query's row
    for (int i = 0; i < nq; i++) softmax_row(S + i * ns, ns);

    // ---- values
    for (int64_t e = 0; e < int64_t(nq4) * hdp; e += 16) _mm512_store_ps(O + e, _mm512_setzero_ps());
    for (int64_t g = g0; g < g1; g += kG) {
        const uint32_t any = attn_groups::visibility<kG>(a, g, qmask, w);
        if (!any) continue;
        for (int m = 0; m < kG; m++)
            if (w[m]) convert_row<VT>(a.v + size_t(g + m) * a.v_stride, hd, kv + m * hdp, 16, kvd + m * nbp);
        attn_groups::prefetch<kG>(a.v, a.v_stride, g + kG, a.k1, v_bytes);
        for (int i0 = 0; i0 < nq; i0 += 4) {
            if (!((any >> i0) & 0xF)) continue;
            const float *P = S + i0 * ns + (g - g0);
            float *Oi = O + i0 * hdp;
            int64_t c0 = 0;
            constexpr bool q8 = VT == kQ8;
            for (; c0 + 4 <= nc; c0 += 4) values_tile<4, q8>(w, i0, P, ns, kv, hdp, c0, Oi, kvd, nbp);
            switch (nc - c0) { // Q8_0: nc is even
            case 3: values_tile<3, q8>(w, i0, P, ns, kv, hdp, c0, Oi, kvd, nbp); break;
            case 2: values_tile<2, q8>(w, i0, P, ns, kv, hdp, c0, Oi, kvd, nbp); break;
            case 1: values_tile<1, q8>(w, i0, P, ns, kv, hdp, c0, Oi, kvd, nbp); break;
            default: break;
            }
        }
    }
    for (int i = 0; i < nq; i++) {
        float *out = a.out + size_t(i) * a.out_stride;
        int64_t e = 0;
        for (; e + 16 <= hd; e += 16) _mm512_storeu_ps(out + e, _mm512_load_ps(O + i * hdp + e));
        if (e < hd) _mm512_mask_storeu_ps(out + e, tail_mask(hd - e), _mm512_load_ps(O + i * hdp + e));
    }
}

} // namespace

void attn_block_avx512(const attn_block_args &a) {
    if (a.k_type == kQ8) return a.v_type == kQ8 ? attn_block_t<kQ8, kQ8>(a) : attn_block_t<kQ8, kF16>(a);
    return a.v_type == kQ8 ? attn_block_t<kF16, kQ8>(a) : attn_block_t<kF16, kF16>(a);
}

void fill_attention_avx512(kernels &k) { k.attn_block = attn_block_avx512; }

} // namespace gptneox
