// Blocked attention, AVX-512 F/BW/VL/DQ (kernels.attn_block_f16 on GPTNEOX_KERNELS_AVX512; the scalar
// reference is attention-scalar.cpp). A block of up to 32 queries of one head walks the keys in groups
// of 16: each group's K (then V) rows are converted to f32 once and used by every query of the block,
// so the cache is read once per block instead of once per query. A block of one query (a decode step)
// takes attn_one instead: the same operations for that query, reading the rows in place.
//
// Batch invariance (logits must not depend on how a prompt is split into batches): every number a query
// gets is computed by the same operations in the same order whatever the block holds:
//   score(i, j): one 16-lane FMA accumulator over the head's 16-element chunks in order, then the fixed
//                addition tree of reduce16 (the same tree for every lane), times scale;
//   softmax:     per-lane max / sum over chunks of 16 keys aligned to absolute key index 0 (keys outside
//                the block's range are -inf and add exactly 0), then the same horizontal reductions;
//   out(i, d):   acc = 0, then acc = fma(p_ij, v_jd, acc) for the keys i sees, ascending j.
// Internal linkage only, no std:: templates (see kernels-avx2.cpp).
#include <immintrin.h>

#pragma GCC diagnostic ignored "-Wuninitialized"
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"

#include "kernels/attention-groups.h"
#include "kernels/kernels-impl.h"

namespace gptneox {
namespace {

constexpr int kG = 16; // keys per group = f32 lanes

inline __mmask16 tail_mask(int64_t r) { return static_cast<__mmask16>((1u << r) - 1); }

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

// Row j's hd f16 values as f32, 16-element chunk c at dst + c * step (zero past hd): step 16 for a row in
// place (V), 16 * kG for the chunk-major group (K).
inline void convert_row(const uint16_t *src, int64_t hd, float *dst, int64_t step = 16) {
    int64_t e = 0;
    for (; e + 16 <= hd; e += 16, dst += step)
        _mm512_store_ps(dst, _mm512_cvtph_ps(_mm256_loadu_si256(reinterpret_cast<const __m256i *>(src + e))));
    if (e < hd) _mm512_store_ps(dst, _mm512_cvtph_ps(_mm256_maskz_loadu_epi16(tail_mask(hd - e), src + e)));
}

// out[i][c0 * 16 ..] += p_ij v_j for the 4 queries at P / O and NC chunks from c0, keys of one group.
template <int NC>
inline void values_tile(const uint32_t *w, int i0, const float *P, size_t ns, const float *vb, int64_t hdp, int64_t c0,
                        float *O) {
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
            const __m512 p = _mm512_set1_ps(P[size_t(ii) * ns + m]);
            #pragma GCC unroll 4
            for (int c = 0; c < NC; c++) acc[ii][c] = _mm512_fmadd_ps(p, vv[c], acc[ii][c]);
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
template <int NC> void attn_one(const attn_block_args &a) {
    const int64_t hd = a.hd;
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

    for (int64_t g = g0; g < g1; g += kG) {
        float *Sg = S + (g - g0);
        if (!attn_groups::visibility<kG>(a, g, 1, w)) {
            _mm512_store_ps(Sg, ninf);
            continue;
        }
        attn_groups::prefetch<kG>(a.k, a.k_stride, g + kG, a.k1, hd);
        const uint16_t *row[kG]; // rows it does not see may lie past the cache: never formed, never read
        #pragma GCC unroll 16
        for (int m = 0; m < kG; m++) row[m] = w[m] ? a.k + size_t(g + m) * a.k_stride : a.k;
        __m512 acc[kG];
        #pragma GCC unroll 16
        for (int m = 0; m < kG; m++) acc[m] = _mm512_setzero_ps();
        // key by key, each row's chunks in order: the loads walk the cache front to back (chunk by chunk
        // across the 16 rows, 256 bytes apart, read it from memory at 2/3 the speed: one thread, a rinna
        // head after 1907 tokens, 21.5 vs 29.5-31 GB/s in bench/attention_bench.cpp's cold mode); each
        // acc[m] sees the same FMAs in the same order
        #pragma GCC unroll 16
        for (int m = 0; m < kG; m++) {
            #pragma GCC unroll 8
            for (int c = 0; c < NC; c++) {
                const __m512 kc = _mm512_cvtph_ps(_mm256_maskz_loadu_epi16(chunk_mask(c, w[m] != 0), row[m] + 16 * c));
                acc[m] = _mm512_fmadd_ps(qv[c], kc, acc[m]);
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
        attn_groups::prefetch<kG>(a.v, a.v_stride, g + kG, a.k1, hd);
        for (int m = 0; m < kG; m++) {
            if (!w[m]) continue;
            const __m512 p = _mm512_set1_ps(S[size_t(g - g0) + size_t(m)]);
            const uint16_t *row = a.v + size_t(g + m) * a.v_stride;
            #pragma GCC unroll 8
            for (int c = 0; c < NC; c++)
                o[c] = _mm512_fmadd_ps(p, _mm512_cvtph_ps(_mm256_maskz_loadu_epi16(chunk_mask(c, true), row + 16 * c)),
                                       o[c]);
        }
    }
    #pragma GCC unroll 8
    for (int c = 0; c < NC; c++) _mm512_mask_storeu_ps(a.out + 16 * c, chunk_mask(c, true), o[c]);
}

void attn_block_f16(const attn_block_args &a) {
    if (a.n_q == 1) {
        switch ((a.hd + 15) / 16) {
        case 1: return attn_one<1>(a);
        case 2: return attn_one<2>(a);
        case 3: return attn_one<3>(a);
        case 4: return attn_one<4>(a);
        case 5: return attn_one<5>(a);
        case 6: return attn_one<6>(a);
        case 7: return attn_one<7>(a);
        case 8: return attn_one<8>(a);
        default: break; // wider heads: the block path
        }
    }
    const int64_t hd = a.hd, hdp = (hd + 15) & ~int64_t(15), nc = hdp / 16;
    const int nq = a.n_q, nq4 = (nq + 3) & ~3;
    const uint32_t qmask = attn_groups::query_mask(nq);
    int64_t g0, g1;
    attn_groups::range<kG>(a, &g0, &g1);
    const size_t ns = size_t(g1 - g0); // score row length (a multiple of 16)
    float *kv = a.work;                // the group's K ([nc][16][16], chunk-major) or V ([16][hdp]) rows as f32
    float *O = kv + kG * hdp;          // [nq4][hdp] outputs
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
            if (w[m]) convert_row(a.k + size_t(g + m) * a.k_stride, hd, kv + 16 * m, 16 * kG);
        attn_groups::prefetch<kG>(a.k, a.k_stride, g + kG, a.k1, hd);
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
            for (int64_t c = 0; c < nc; c++) {
                const __m512 qc = c + 1 < nc ? _mm512_loadu_ps(q + 16 * c) : _mm512_maskz_loadu_ps(qtail, q + 16 * c);
                const float *kc = kv + 16 * kG * c;
                #pragma GCC unroll 16
                for (int m = 0; m < kG; m++) acc[m] = _mm512_fmadd_ps(qc, _mm512_load_ps(kc + 16 * m), acc[m]);
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
            if (w[m]) convert_row(a.v + size_t(g + m) * a.v_stride, hd, kv + m * hdp);
        attn_groups::prefetch<kG>(a.v, a.v_stride, g + kG, a.k1, hd);
        for (int i0 = 0; i0 < nq; i0 += 4) {
            if (!((any >> i0) & 0xF)) continue;
            const float *P = S + i0 * ns + (g - g0);
            float *Oi = O + i0 * hdp;
            int64_t c0 = 0;
            for (; c0 + 4 <= nc; c0 += 4) values_tile<4>(w, i0, P, ns, kv, hdp, c0, Oi);
            switch (nc - c0) {
            case 3: values_tile<3>(w, i0, P, ns, kv, hdp, c0, Oi); break;
            case 2: values_tile<2>(w, i0, P, ns, kv, hdp, c0, Oi); break;
            case 1: values_tile<1>(w, i0, P, ns, kv, hdp, c0, Oi); break;
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

void fill_attention_avx512(kernels &k) { k.attn_block_f16 = attn_block_f16; }

} // namespace gptneox
