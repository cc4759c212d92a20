// Blocked Q8_0 / Q4_0 products for AVX-512 with VNNI (the `gemm` entries of kernels.h), compiled with
// the AVX-512 flags and reached only through dispatch.cpp when the CPU has AVX512-VNNI.
//
// Decode (few tokens): 16 weight rows at a time, read in place; per row one VPDPBUSD of a pair of
// blocks gives 16 int32 partial sums, and an in-lane transpose-add tree turns the 16 rows' partials
// into block sums, one row per lane, so the correction and the scale FMA are done for 16 rows at
// once. Q4_0 goes four blocks at a time where it can (decode_quads_q4: one
// gather of a row's 64 nibble bytes, one AND / one shift + AND for the 128 values, both VPDPBUSDs into
// one int32 vector), the integer block sums being the same exact numbers either way.
// Prompt: 16 rows are repacked (in-register transposes) into VNNI order -- for block b and 4-element
// group c, one 64-byte vector holds elements 4c..4c+3 of the 16 rows, as the same unsigned bytes. A
// broadcast of 4 activation bytes then feeds 64 multiply-adds per VPDPBUSD, and the block sums start
// from the token's correction. From 2 tokens on this costs less than the decode kernel once per token
// (the repacking is about one token's worth of the in-place kernel's shuffles).
// Whole 32-row groups go through tile32: both 16-row halves are packed (for a K chunk of the blocks at a
// time, so the two fit in gemm_work_bytes), and each activation broadcast feeds two VPDPBUSDs (one per
// half) for 6 tokens at a time -- fewer loads per multiply-add. A later K chunk resumes from the f32
// results the previous one stored, so every output still sees exactly the per-block FMA sequence above.
// The arithmetic every output follows and the prep row layout: gemm-vnni.h. Rows repacked at load
// (use_extra_bufts) are gemm-packed-avx512.cpp's.

#include "kernels/gemm-vnni.h"

namespace gptneox {
namespace {

using namespace vnni;

// ---- decode: rows in place ----

// Transpose-add tree (in-lane unpacks, so no operand is destroyed and most steps are 1-cycle
// shuffles). merge1/merge2 fold row vectors pairwise; finish gives the 16 rows' sums of the two blocks.
// Row vectors hold 4 partial sums per 128-bit lane q; the block of lane q is b for q = 0, 1 and b+1 for
// q = 2, 3 in Q8_0's layout, b for q = 0, 2 and b+1 for q = 1, 3 in Q4_0's.
template <bool Q4> struct lane_tree {
    // lane q of the result: [a0+a2, b0+b2, a1+a3, b1+b3] (rows a, b interleaved)
    static __m512i merge1(__m512i a, __m512i b) {
        return _mm512_add_epi32(_mm512_unpacklo_epi32(a, b), _mm512_unpackhi_epi32(a, b));
    }
    // of two merge1 results (rows r, r+1 and r+2, r+3): lane q = rows r..r+3, one sum each
    static __m512i merge2(__m512i c, __m512i d) {
        return _mm512_add_epi32(_mm512_unpacklo_epi64(c, d), _mm512_unpackhi_epi64(c, d));
    }
    // x[j] = rows 4j..4j+3 (per 128-bit lane q); *sb / *sb1: row r's block sums in lane r
    static void finish(const __m512i x[4], __m512i *sb, __m512i *sb1) {
        __m512i y[2];
        #pragma GCC unroll 2
        for (int i = 0; i < 2; i++) {
            // [b of x0, b1 of x0, b of x1, b1 of x1] as the sum of its two halves
            const __m512i p = Q4 ? _mm512_shuffle_i32x4(x[2 * i], x[2 * i + 1], _MM_SHUFFLE(1, 0, 1, 0))
                                 : _mm512_shuffle_i32x4(x[2 * i], x[2 * i + 1], _MM_SHUFFLE(2, 0, 2, 0));
            const __m512i q = Q4 ? _mm512_shuffle_i32x4(x[2 * i], x[2 * i + 1], _MM_SHUFFLE(3, 2, 3, 2))
                                 : _mm512_shuffle_i32x4(x[2 * i], x[2 * i + 1], _MM_SHUFFLE(3, 1, 3, 1));
            y[i] = _mm512_add_epi32(p, q);
        }
        *sb = _mm512_shuffle_i32x4(y[0], y[1], _MM_SHUFFLE(2, 0, 2, 0));
        *sb1 = _mm512_shuffle_i32x4(y[0], y[1], _MM_SHUFFLE(3, 1, 3, 1));
    }
};

// Partial sums of one row's block pair (the row's block b at p, b+1 at p + d1) with the activations
// prepared by pair_act. Q8_0: sum (w + 128) * a, the weights made unsigned by flipping the sign bit.
// Q4_0: sum q * a with q = nibble 0..15 in the order [lo b | lo b+1 | hi b | hi b+1]. (The offset
// times sum(a) is the prep row's correction, added once for all rows.)
template <typename T> inline __m512i row_pair(const uint8_t *p, size_t d1, __m512i av);
template <> inline __m512i row_pair<q8_traits>(const uint8_t *p, size_t d1, __m512i av) {
    __m512i wv = load2(p + 2, p + d1 + 2);
    return _mm512_dpbusd_epi32(_mm512_setzero_si512(), _mm512_xor_si512(wv, _mm512_set1_epi8(static_cast<char>(0x80))), av);
}
template <> inline __m512i row_pair<q4_traits>(const uint8_t *p, size_t d1, __m512i av) {
    __m256i b = _mm256_inserti128_si256(_mm256_castsi128_si256(_mm_loadu_si128(reinterpret_cast<const __m128i *>(p + 2))),
                                        _mm_loadu_si128(reinterpret_cast<const __m128i *>(p + d1 + 2)), 1);
    // low nibbles in the lower half, high nibbles (shifted by 4 per 16-bit lane) in the upper half
    const __m512i shift = _mm512_inserti64x4(_mm512_setzero_si512(), _mm256_set1_epi16(4), 1);
    __m512i z = _mm512_srlv_epi16(_mm512_inserti64x4(_mm512_castsi256_si512(b), b, 1), shift);
    return _mm512_dpbusd_epi32(_mm512_setzero_si512(), _mm512_and_si512(z, _mm512_set1_epi8(0x0F)), av);
}
// The activation pair in row_pair's element order, and the weights' offset (see prep).
template <typename T> inline __m512i pair_act(__m512i av) {
    if constexpr (T::size == sizeof(block_q4_0)) return _mm512_permutexvar_epi64(_mm512_setr_epi64(0, 1, 4, 5, 2, 3, 6, 7), av);
    return av;
}

// Q4_0 decode, four blocks at a time. One row's blocks b..b+3 are 72 contiguous bytes; one vpermt2w
// (the nibble bytes sit at even offsets 18q + 2) gathers their 64 nibble bytes, block b+q in 128-bit
// lane q. One AND gives the 64 low nibbles (elements 0-15 of each block), one shift + AND the high ones
// (16-31), and both VPDPBUSDs accumulate into one int32 vector: lane q holds 4 partial sums of block
// b+q. The transpose-add tree then gives each block's 16 row sums, one row per lane. The four f16
// scales (words 9q of the same 64 bytes) go to lane r of two scale vectors by a masked vpermw.
inline __m512i quad_idx_q4() {
    alignas(64) int16_t ix[32];
    for (int q = 0; q < 4; q++)
        for (int k = 0; k < 8; k++) ix[8 * q + k] = static_cast<int16_t>(9 * q + 1 + k);
    return _mm512_load_si512(ix);
}
// word 16q + r (q = 0, 1) <- word 9q (scales of blocks b, b+1); of the second vector, 9(q + 2)
inline __m512i scale_idx_q4(int half) {
    alignas(64) int16_t ix[32];
    for (int q = 0; q < 2; q++)
        for (int r = 0; r < 16; r++) ix[16 * q + r] = static_cast<int16_t>(9 * (q + 2 * half));
    return _mm512_load_si512(ix);
}
inline __m512i row_quad_q4(const uint8_t *p, __m512i idx, __m512i alo, __m512i ahi, __m512i *v0_out) {
    const __m512i v0 = _mm512_loadu_si512(p);
    const __m512i v1 = _mm512_castsi128_si512(_mm_loadl_epi64(reinterpret_cast<const __m128i *>(p + 64)));
    const __m512i q = _mm512_permutex2var_epi16(v0, idx, v1);
    const __m512i m = _mm512_set1_epi8(0x0F);
    const __m512i s = _mm512_dpbusd_epi32(_mm512_setzero_si512(), _mm512_and_si512(q, m), alo);
    *v0_out = v0;
    return _mm512_dpbusd_epi32(s, _mm512_and_si512(_mm512_srli_epi16(q, 4), m), ahi);
}

// Blocks [0, nb & ~3) of the Q4_0 rows (see decode_group); returns the accumulator, *pf advanced.
inline __m512 decode_quads_q4(int64_t nb, const uint8_t *w, size_t row_bytes, int nv, const act_row &a,
                              const uint8_t *next, size_t next_bytes, size_t *pf_io) {
    const size_t pf_step = 16 * 4 * sizeof(block_q4_0);
    size_t pf = *pf_io;
    using tree = lane_tree<true>;
    const size_t step_last = nv == 16 ? row_bytes : 0;
    const __m512i idx = quad_idx_q4(), sidx0 = scale_idx_q4(0), sidx1 = scale_idx_q4(1);
    __m512 acc = _mm512_setzero_ps();
    for (int64_t ib = 0; ib + 4 <= nb; ib += 4) {
        for (size_t e = pf + pf_step; pf < e && pf < next_bytes; pf += 64)
            _mm_prefetch(reinterpret_cast<const char *>(next + pf), _MM_HINT_T1);
        const __m512i alo = _mm512_loadu_si512(a.q + ib * 32), ahi = _mm512_loadu_si512(a.q + ib * 32 + 64);
        const uint8_t *p = w + size_t(ib) * sizeof(block_q4_0);
        __m512i x[4];
        // scales: block ib+q of row r at word 16q + r of h01 (q < 2) / word 16(q-2) + r of h23; even and
        // odd rows in separate vectors (two short dependency chains), merged below
        __m512i h01[2] = {_mm512_setzero_si512(), _mm512_setzero_si512()}, h23[2] = {h01[0], h01[0]};
        #pragma GCC unroll 4
        for (int j = 0; j < 4; j++) {
            __m512i wq[2];
            #pragma GCC unroll 2
            for (int h = 0; h < 2; h++) {
                __m512i v[2];
                #pragma GCC unroll 2
                for (int i = 0; i < 2; i++) {
                    const int r = 4 * j + 2 * h + i;
                    __m512i raw;
                    v[i] = row_quad_q4(p, idx, alo, ahi, &raw);
                    const __mmask32 mr = static_cast<__mmask32>(0x00010001u << r);
                    h01[i] = _mm512_mask_permutexvar_epi16(h01[i], mr, sidx0, raw);
                    h23[i] = _mm512_mask_permutexvar_epi16(h23[i], mr, sidx1, raw);
                    if (r + 1 < nv) p += row_bytes;
                    else if (r + 1 < 16) p += step_last;
                }
                wq[h] = tree::merge1(v[0], v[1]);
            }
            x[j] = tree::merge2(wq[0], wq[1]);
        }
        // 4 x 4 transpose of 128-bit lanes: sb[q] = block ib+q of rows 0-15
        const __m512i u0 = _mm512_shuffle_i32x4(x[0], x[1], _MM_SHUFFLE(1, 0, 1, 0));
        const __m512i u1 = _mm512_shuffle_i32x4(x[2], x[3], _MM_SHUFFLE(1, 0, 1, 0));
        const __m512i u2 = _mm512_shuffle_i32x4(x[0], x[1], _MM_SHUFFLE(3, 2, 3, 2));
        const __m512i u3 = _mm512_shuffle_i32x4(x[2], x[3], _MM_SHUFFLE(3, 2, 3, 2));
        const __m512i sb[4] = {_mm512_shuffle_i32x4(u0, u1, _MM_SHUFFLE(2, 0, 2, 0)),
                               _mm512_shuffle_i32x4(u0, u1, _MM_SHUFFLE(3, 1, 3, 1)),
                               _mm512_shuffle_i32x4(u2, u3, _MM_SHUFFLE(2, 0, 2, 0)),
                               _mm512_shuffle_i32x4(u2, u3, _MM_SHUFFLE(3, 1, 3, 1))};
        const __mmask32 odd = 0xAAAAAAAAu;
        const __m512i hA = _mm512_mask_blend_epi16(odd, h01[0], h01[1]), hB = _mm512_mask_blend_epi16(odd, h23[0], h23[1]);
        const __m512 dw[4] = {_mm512_cvtph_ps(_mm512_castsi512_si256(hA)), _mm512_cvtph_ps(_mm512_extracti64x4_epi64(hA, 1)),
                              _mm512_cvtph_ps(_mm512_castsi512_si256(hB)), _mm512_cvtph_ps(_mm512_extracti64x4_epi64(hB, 1))};
        #pragma GCC unroll 4
        for (int q = 0; q < 4; q++)
            acc = _mm512_fmadd_ps(_mm512_cvtepi32_ps(_mm512_add_epi32(sb[q], _mm512_set1_epi32(a.corr[ib + q]))),
                                  _mm512_mul_ps(dw[q], _mm512_set1_ps(a.d[ib + q])), acc);
    }
    *pf_io = pf;
    return acc;
}

// y[r] (r < nv) = row r of w against one token's prep row a.
template <typename T>
void decode_group(int64_t nb, const uint8_t *w, size_t row_bytes, int nv, const act_row &a, float *y,
                  const uint8_t *next, size_t next_bytes) {
    const size_t pf_step = 16 * 2 * T::size; // bytes of the next group per block pair
    size_t pf = 0;
    using tree = lane_tree<T::size == sizeof(block_q4_0)>;
    // a short group repeats its last row (those results are dropped)
    const size_t step_last = nv == 16 ? row_bytes : 0;
    __m512 acc = _mm512_setzero_ps();
    int64_t ib0 = 0;
    if constexpr (T::size == sizeof(block_q4_0)) {
        acc = decode_quads_q4(nb, w, row_bytes, nv, a, next, next_bytes, &pf);
        ib0 = nb & ~int64_t(3);
    }
    for (int64_t ib = ib0; ib < nb; ib += 2) {
        const bool lone = ib + 1 >= nb; // odd last block: pair it with itself, keep the first sum
        const int64_t ib1 = lone ? ib : ib + 1;
        for (size_t e = pf + pf_step; pf < e && pf < next_bytes; pf += 64)
            _mm_prefetch(reinterpret_cast<const char *>(next + pf), _MM_HINT_T1);
        // blocks from ib0 on are in order in the prep row
        const __m512i av = pair_act<T>(load2(a.q + ib * 32, a.q + ib1 * 32));
        const size_t d1 = size_t(ib1 - ib) * T::size;
        const uint8_t *p = w + size_t(ib) * T::size;
        __m512i x[4];
        alignas(64) uint16_t hs[32]; // scales of block ib (rows 0-15), then of block ib1
        #pragma GCC unroll 4
        for (int j = 0; j < 4; j++) {
            __m512i wq[2];
            #pragma GCC unroll 2
            for (int h = 0; h < 2; h++) {
                __m512i v[2];
                #pragma GCC unroll 2
                for (int i = 0; i < 2; i++) {
                    const int r = 4 * j + 2 * h + i;
                    v[i] = row_pair<T>(p, d1, av);
                    __builtin_memcpy(&hs[r], p, 2); // the rows' f16 scales, gathered on the way
                    __builtin_memcpy(&hs[16 + r], p + d1, 2);
                    if (r + 1 < nv) p += row_bytes;
                    else if (r + 1 < 16) p += step_last; // stays on the last row
                }
                wq[h] = tree::merge1(v[0], v[1]);
            }
            x[j] = tree::merge2(wq[0], wq[1]);
        }
        __m512i s0, s1;
        tree::finish(x, &s0, &s1);
        const __m512i hv = _mm512_load_si512(hs);
        const __m512 dw0 = _mm512_cvtph_ps(_mm512_castsi512_si256(hv));
        acc = _mm512_fmadd_ps(_mm512_cvtepi32_ps(_mm512_add_epi32(s0, _mm512_set1_epi32(a.corr[ib]))),
                              _mm512_mul_ps(dw0, _mm512_set1_ps(a.d[ib])), acc);
        if (!lone) {
            const __m512 dw1 = _mm512_cvtph_ps(_mm512_extracti64x4_epi64(hv, 1));
            acc = _mm512_fmadd_ps(_mm512_cvtepi32_ps(_mm512_add_epi32(s1, _mm512_set1_epi32(a.corr[ib1]))),
                                  _mm512_mul_ps(dw1, _mm512_set1_ps(a.d[ib1])), acc);
        }
    }
    _mm512_mask_storeu_ps(y, static_cast<__mmask16>((1u << nv) - 1), acc);
}

// ---- prompt: repacked rows ----

// work: [nb][8] 64-byte vectors (elements 4c..4c+3 of the 16 rows, as unsigned bytes), then [nb]
// vectors of the rows' f32 scales.
// While packing it prefetches the first half of the next group (next_bytes bytes at next; the rest
// follows during the first token tile, see tile), front to back at the pace it reads this group.
template <typename T>
void pack_group(int64_t nb, const uint8_t *w, size_t row_bytes, int nv, uint8_t *work, const uint8_t *next,
                size_t next_bytes) {
    size_t pf = 0;
    const size_t pf_half = next_bytes / 2;
    const uint8_t *rp[16];
    for (int r = 0; r < 16; r++) rp[r] = w + size_t(r < nv ? r : nv - 1) * row_bytes;
    __m512i *q = reinterpret_cast<__m512i *>(work);
    __m512 *d = reinterpret_cast<__m512 *>(work + size_t(nb) * 8 * 64);
    for (int64_t ib = 0; ib < nb; ib++) {
        for (size_t e = pf + 8 * T::size; pf < e && pf < pf_half; pf += 64)
            _mm_prefetch(reinterpret_cast<const char *>(next + pf), _MM_HINT_T1);
        __m512i v[8];
        if constexpr (T::size == sizeof(block_q8_0)) transpose_q8(rp, v);
        else transpose_q4(rp, v);
        #pragma GCC unroll 8
        for (int c = 0; c < 8; c++) _mm512_store_si512(q + ib * 8 + c, v[c]);
        alignas(32) uint16_t hs[16];
        #pragma GCC unroll 16
        for (int r = 0; r < 16; r++) {
            __builtin_memcpy(&hs[r], rp[r], 2);
            rp[r] += T::size;
        }
        _mm512_store_ps(d + ib, _mm512_cvtph_ps(_mm256_load_si256(reinterpret_cast<const __m256i *>(hs))));
    }
}


template <typename T>
void gemm(int64_t n, const void *wv, size_t row_bytes, int64_t n_rows, const void *, size_t, const void *prep_v,
          size_t prep_stride, int64_t n_tok, float *y, size_t y_stride, void *work) {
    const int64_t nb = n / 32;
    const uint8_t *w = static_cast<const uint8_t *>(wv);
    const uint8_t *prep = static_cast<const uint8_t *>(prep_v);
    const bool decode = n_tok < kPromptMinTokens || work == nullptr;
    uint8_t *pk = align64(work);
    const int64_t kc32 = chunk32_blocks(n);
    for (int64_t g = 0; g < n_rows; g += 16) {
        const int nv = int(n_rows - g < 16 ? n_rows - g : 16);
        const uint8_t *wg = w + size_t(g) * row_bytes;
        const int64_t nn = n_rows - g - nv < 16 ? n_rows - g - nv : 16; // rows of the next group
        if (!decode && nv == 16 && n_rows - g >= 32 && kc32 > 0) {
            // 32 rows in K chunks of kc32 blocks (both packed halves fit in work); the next 32 rows are
            // prefetched over the whole pass, spread across the chunks' first token tiles
            const int64_t nn32 = n_rows - g - 32 < 32 ? n_rows - g - 32 : 32;
            auto pack = [&](int64_t kb, int64_t kc, uint8_t *wa, uint8_t *wb) {
                pack_group<T>(kc, wg + size_t(kb) * T::size, row_bytes, 16, wa, nullptr, 0);
                pack_group<T>(kc, wg + 16 * row_bytes + size_t(kb) * T::size, row_bytes, 16, wb, nullptr, 0);
            };
            pass32<T, false>(nb, n, kc32, packed_into(pk, kc32, pack), prep, prep_stride, n_tok, y + g, y_stride,
                             wg + 32 * row_bytes, size_t(nn32) * row_bytes);
            g += 16; // the loop adds the other 16
            continue;
        }
        if (decode) {
            for (int64_t t = 0; t < n_tok; t++)
                decode_group<T>(nb, wg, row_bytes, nv, act_of(prep + t * prep_stride, n), y + t * y_stride + g,
                                wg + 16 * row_bytes, t == 0 ? size_t(nn) * row_bytes : 0);
            continue;
        }
        pack_group<T>(nb, wg, row_bytes, nv, pk, wg + 16 * row_bytes, size_t(nn) * row_bytes);
        for (int64_t t0 = 0; t0 < n_tok; t0 += kTokTile) {
            const int tt = int(n_tok - t0 < kTokTile ? n_tok - t0 : kTokTile);
            tile_n<T, kTokTile>(tt, nb, n, pk, prep + t0 * prep_stride, prep_stride, y + t0 * y_stride + g, y_stride, nv,
                                wg + 16 * row_bytes, t0 == 0 ? size_t(nn) * row_bytes : 0);
        }
    }
}

// Q8_0 activation row -> gemm_prep's layout for T (see act_row): the signed bytes in T's order, the f32
// scales, -c * (sum of each block's values).
template <typename T> void prep(int64_t n, const void *a, void *out) {
    const int64_t nb = n / 32;
    const block_q8_0 *x = static_cast<const block_q8_0 *>(a);
    uint8_t *q = static_cast<uint8_t *>(out);
    float *d = reinterpret_cast<float *>(q + n);
    int32_t *corr = reinterpret_cast<int32_t *>(q + n + 4 * nb);
    const __m256i bias = _mm256_set1_epi8(static_cast<char>(0x80));
    for (int64_t ib = 0; ib < nb; ib++) {
        const __m128i lo = _mm_loadu_si128(reinterpret_cast<const __m128i *>(x[ib].qs));
        const __m128i hi = _mm_loadu_si128(reinterpret_cast<const __m128i *>(x[ib].qs + 16));
        _mm_storeu_si128(reinterpret_cast<__m128i *>(q + act_lo<T>(ib, nb)), lo);
        _mm_storeu_si128(reinterpret_cast<__m128i *>(q + act_lo<T>(ib, nb) + act_hi<T>(ib, nb)), hi);
        // sum of the values: sum of (v + 128) by vpsadbw, less 32 * 128
        const __m256i sad = _mm256_sad_epu8(_mm256_xor_si256(_mm256_set_m128i(hi, lo), bias), _mm256_setzero_si256());
        const __m128i s2 = _mm_add_epi64(_mm256_castsi256_si128(sad), _mm256_extracti128_si256(sad, 1));
        const int32_t sum = static_cast<int32_t>(_mm_cvtsi128_si64(_mm_add_epi64(s2, _mm_unpackhi_epi64(s2, s2)))) - 32 * 128;
        const float s = h2f(x[ib].d);
        const int32_t c = -offset_factor<T>() * sum;
        __builtin_memcpy(d + ib, &s, 4);
        __builtin_memcpy(corr + ib, &c, 4);
    }
}

} // namespace

void fill_gemm_avx512_vnni(kernels &k) {
    k.traits[GPTNEOX_TYPE_Q8_0].gemm = gemm<q8_traits>;
    k.traits[GPTNEOX_TYPE_Q8_0].gemm_prep = prep<q8_traits>;
    k.traits[GPTNEOX_TYPE_Q8_0].gemm_min_tokens = kPromptMinTokens;
    k.traits[GPTNEOX_TYPE_Q8_0].gemm_prep_decode = true;
    k.traits[GPTNEOX_TYPE_Q4_0].gemm = gemm<q4_traits>;
    k.traits[GPTNEOX_TYPE_Q4_0].gemm_prep = prep<q4_traits>;
    k.traits[GPTNEOX_TYPE_Q4_0].gemm_min_tokens = kPromptMinTokens;
    k.traits[GPTNEOX_TYPE_Q4_0].gemm_prep_decode = true;
}

} // namespace gptneox
