// Blocked Q8_0 / Q4_0 products for AVX-512 with VNNI (the `gemm` entries of kernels.h), compiled with
// the AVX-512 flags and reached only through dispatch.cpp when the CPU has AVX512-VNNI.
//
// Both kernels give every output the same arithmetic, so a token's result does not depend on how many
// tokens were multiplied together (prompt vs decode, ubatch size):
//   for each block b in order:  acc = fma(float(isum_b), dw_b * dy_b, acc)
// where isum_b is the exact integer dot of weight block b and activation block b (|isum| < 2^24, so
// its float is exact) and dw_b * dy_b the f32 product of the two f16 scales.
//
// Every token is first put in gemm_prep's layout (once per token and matmul, whatever the batch):
// its signed activation bytes (Q4_0: four blocks at a time as [elements 0-15 of blocks b..b+3 |
// 16-31 of blocks b..b+3], so the decode kernel loads them as two vectors), the f32 block scales and
// the block corrections -c * sum(a) (c = 128 for Q8_0 weights made unsigned by flipping the sign bit,
// 8 for Q4_0 nibbles 0..15 taken as they are): sum(u * a) + corr is the exact block dot.
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
// Q4_0 repacked at load (use_extra_bufts, gemm_q4x16): the file's nibbles already transposed into VNNI
// order, 16 rows per group, so decode is one AND / shift + AND and two VPDPBUSDs per 64 bytes (no gathers,
// no tree) and the prompt kernels' packing is a copy; the same exact block sums and FMA sequence.
#include <immintrin.h>

#include <cstring>

#pragma GCC diagnostic ignored "-Wuninitialized" // GCC 12 AVX-512 headers, see kernels-avx512.cpp
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
// -O2 does not unroll loops, and a rolled loop over a register tile keeps the tile in memory: the
// small fixed loops below carry unroll pragmas.

#include "kernels/kernels-impl.h"

namespace gptneox {
namespace {

constexpr int kTokTile = 8;          // tokens per register tile of the prompt kernel (16 rows)
constexpr int kTokTile32 = 6;        // tokens per register tile of the 32-row kernel
constexpr int64_t kPromptMinTokens = 2; // fewer tokens: the decode kernel (rows read in place)
// Decode reads 16 rows side by side, more streams than the hardware prefetchers follow well, so while
// it works on one group of rows it prefetches the next group front to back, at the pace it consumes.

inline float h2f(uint16_t h) { return _cvtsh_ss(h); }

inline __m512i load2(const void *p0, const void *p1) {
    return _mm512_inserti64x4(_mm512_castsi256_si512(_mm256_loadu_si256(static_cast<const __m256i *>(p0))),
                              _mm256_loadu_si256(static_cast<const __m256i *>(p1)), 1);
}

struct q8_traits {
    using block = block_q8_0;
    static constexpr size_t size = sizeof(block_q8_0);
};
struct q4_traits {
    using block = block_q4_0;
    static constexpr size_t size = sizeof(block_q4_0);
};

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
template <typename T> constexpr int32_t offset_factor() { return T::size == sizeof(block_q4_0) ? 8 : 128; }

// One token's gemm_prep row: n activation bytes (in the type's order, see act_lo), then nb f32 scales,
// then nb int32 corrections.
struct act_row {
    const int8_t *q;
    const float *d;
    const int32_t *corr;
};
inline act_row act_of(const uint8_t *prep, int64_t n) {
    const int64_t nb = n / 32;
    return {reinterpret_cast<const int8_t *>(prep), reinterpret_cast<const float *>(prep + n),
            reinterpret_cast<const int32_t *>(prep + n + 4 * nb)};
}
// Byte offset of block ib's elements 0-15 in the prep row; elements 16-31 follow at act_hi. Q8_0: the
// blocks in order. Q4_0: whole groups of four blocks as [0-15 of b..b+3 | 16-31 of b..b+3], the last
// nb % 4 blocks in order.
template <typename T> inline int64_t act_lo(int64_t ib, int64_t nb) {
    if constexpr (T::size == sizeof(block_q4_0)) {
        if (ib < (nb & ~int64_t(3))) return (ib & ~int64_t(3)) * 32 + (ib & 3) * 16;
    }
    (void)nb;
    return ib * 32;
}
template <typename T> inline int64_t act_hi(int64_t ib, int64_t nb) {
    if constexpr (T::size == sizeof(block_q4_0)) {
        if (ib < (nb & ~int64_t(3))) return 64;
    }
    (void)ib;
    (void)nb;
    return 16;
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

// Rows 0-15 of the group (a short group repeats its last row): pointers to their block ib.
// The 16 x 8 dword transposes use in-lane unpacks and one 128-bit lane shuffle per output.
inline void transpose_q8(const uint8_t *const *rp, __m512i out[8]) {
    // z[i] = [row i | row i+4] (i < 4), z[4+i] = [row 8+i | row 12+i]: the lane order that makes the
    // last shuffle put rows 0..15 in lanes 0..15
    const __m512i flip = _mm512_set1_epi8(static_cast<char>(0x80));
    __m512i z[8];
    #pragma GCC unroll 4
    for (int i = 0; i < 4; i++) {
        z[i] = _mm512_xor_si512(load2(rp[i] + 2, rp[i + 4] + 2), flip);
        z[4 + i] = _mm512_xor_si512(load2(rp[8 + i] + 2, rp[12 + i] + 2), flip);
    }
    __m512i t[8], u[8];
    #pragma GCC unroll 2
    for (int h = 0; h < 2; h++) {
        const __m512i *r = z + 4 * h;
        __m512i *tt = t + 4 * h;
        tt[0] = _mm512_unpacklo_epi32(r[0], r[1]); // d0 d4 of rows 0,1 (per 128-bit lane)
        tt[1] = _mm512_unpackhi_epi32(r[0], r[1]); // d2 d6
        tt[2] = _mm512_unpacklo_epi32(r[2], r[3]);
        tt[3] = _mm512_unpackhi_epi32(r[2], r[3]);
        __m512i *uu = u + 4 * h;
        uu[0] = _mm512_unpacklo_epi64(tt[0], tt[2]); // dword 0 (lanes 0, 2) / 4 (lanes 1, 3) of 4 rows
        uu[1] = _mm512_unpackhi_epi64(tt[0], tt[2]); // 1 / 5
        uu[2] = _mm512_unpacklo_epi64(tt[1], tt[3]); // 2 / 6
        uu[3] = _mm512_unpackhi_epi64(tt[1], tt[3]); // 3 / 7
    }
    #pragma GCC unroll 4
    for (int c = 0; c < 4; c++) {
        out[c] = _mm512_shuffle_i32x4(u[c], u[4 + c], _MM_SHUFFLE(2, 0, 2, 0));
        out[c + 4] = _mm512_shuffle_i32x4(u[c], u[4 + c], _MM_SHUFFLE(3, 1, 3, 1));
    }
}

// Q4_0: 16 bytes of nibbles per row; g[k] = [row k | row k+4 | row k+8 | row k+12], low nibbles give
// elements 0-15 (dwords 0-3), high nibbles elements 16-31 (dwords 4-7).
inline void transpose_q4(const uint8_t *const *rp, __m512i out[8]) {
    const __m512i lo4 = _mm512_set1_epi8(0x0F);
    __m512i lo[4], hi[4];
    #pragma GCC unroll 4
    for (int k = 0; k < 4; k++) {
        __m512i g = _mm512_castsi128_si512(_mm_loadu_si128(reinterpret_cast<const __m128i *>(rp[k] + 2)));
        g = _mm512_inserti32x4(g, _mm_loadu_si128(reinterpret_cast<const __m128i *>(rp[k + 4] + 2)), 1);
        g = _mm512_inserti32x4(g, _mm_loadu_si128(reinterpret_cast<const __m128i *>(rp[k + 8] + 2)), 2);
        g = _mm512_inserti32x4(g, _mm_loadu_si128(reinterpret_cast<const __m128i *>(rp[k + 12] + 2)), 3);
        lo[k] = _mm512_and_si512(g, lo4);
        hi[k] = _mm512_and_si512(_mm512_srli_epi16(g, 4), lo4);
    }
    #pragma GCC unroll 2
    for (int h = 0; h < 2; h++) {
        const __m512i *r = h ? hi : lo;
        const __m512i t0 = _mm512_unpacklo_epi32(r[0], r[1]), t1 = _mm512_unpackhi_epi32(r[0], r[1]);
        const __m512i t2 = _mm512_unpacklo_epi32(r[2], r[3]), t3 = _mm512_unpackhi_epi32(r[2], r[3]);
        out[4 * h + 0] = _mm512_unpacklo_epi64(t0, t2);
        out[4 * h + 1] = _mm512_unpackhi_epi64(t0, t2);
        out[4 * h + 2] = _mm512_unpacklo_epi64(t1, t3);
        out[4 * h + 3] = _mm512_unpackhi_epi64(t1, t3);
    }
}

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

// TT tokens against a packed group: y[t][0..nv) for t < TT; token t's prep row at prep + t * stride.
// It prefetches [next_bytes / 2, next_bytes) at next (the second half of the next group of rows, the
// first half was prefetched by the packing) front to back: the weights keep streaming in while the
// VPDPBUSDs run, and the next pack reads them from L2 (16 rows in parallel are more streams than the
// hardware prefetchers follow well).
template <typename T, int TT>
void tile(int64_t nb, int64_t n, const uint8_t *work, const uint8_t *prep, size_t stride, float *y, size_t y_stride,
          int nv, const uint8_t *next, size_t next_bytes) {
    size_t pf = next_bytes / 2 / 64 * 64;
    const __m512i *q = reinterpret_cast<const __m512i *>(work);
    const __m512 *d = reinterpret_cast<const __m512 *>(work + size_t(nb) * 8 * 64);
    const uint8_t *pt[TT]; // the tokens' prep rows
    #pragma GCC unroll 8
    for (int t = 0; t < TT; t++) pt[t] = prep + t * stride;
    const int64_t sc_off = n, corr_off = n + 4 * nb;
    __m512 acc[TT];
    #pragma GCC unroll 8
    for (int t = 0; t < TT; t++) acc[t] = _mm512_setzero_ps();
    for (int64_t ib = 0; ib < nb; ib++) {
        for (size_t e = pf + 8 * T::size; pf < e && pf < next_bytes; pf += 64)
            _mm_prefetch(reinterpret_cast<const char *>(next + pf), _MM_HINT_T1);
        const int64_t lo = act_lo<T>(ib, nb), hi = lo + act_hi<T>(ib, nb);
        __m512i s[TT];
        #pragma GCC unroll 8
        for (int t = 0; t < TT; t++) {
            int32_t c0;
            __builtin_memcpy(&c0, pt[t] + corr_off + 4 * ib, 4);
            s[t] = _mm512_set1_epi32(c0);
        }
        #pragma GCC unroll 8
        for (int c = 0; c < 8; c++) {
            const __m512i wv = _mm512_load_si512(q + ib * 8 + c);
            const int64_t off = c < 4 ? lo + 4 * c : hi + 4 * (c - 4);
            #pragma GCC unroll 8
            for (int t = 0; t < TT; t++) {
                int32_t a4;
                __builtin_memcpy(&a4, pt[t] + off, 4);
                s[t] = _mm512_dpbusd_epi32(s[t], wv, _mm512_set1_epi32(a4));
            }
        }
        const __m512 dw = _mm512_load_ps(d + ib);
        #pragma GCC unroll 8
        for (int t = 0; t < TT; t++) {
            float dy;
            __builtin_memcpy(&dy, pt[t] + sc_off + 4 * ib, 4);
            acc[t] = _mm512_fmadd_ps(_mm512_cvtepi32_ps(s[t]), _mm512_mul_ps(dw, _mm512_set1_ps(dy)), acc[t]);
        }
    }
    const __mmask16 m = static_cast<__mmask16>((1u << nv) - 1);
    #pragma GCC unroll 8
    for (int t = 0; t < TT; t++) _mm512_mask_storeu_ps(y + t * y_stride, m, acc[t]);
}

// 32 rows (two packed 16-row halves at wa, wb, blocks [kb, kb + kc) of the rows) against TT tokens:
// every broadcast of 4 activation bytes feeds two VPDPBUSDs. The f32 accumulators start from y (kb > 0:
// the previous K chunk's exact result) or zero, so each output sees the same operations in the same order
// as in tile / decode_group. Prefetches [pf, pf_end) at next, pf_step bytes per block.
template <typename T, int TT>
void tile32(int64_t kb, int64_t kc, int64_t nb, int64_t n, const uint8_t *wa, const uint8_t *wb, const uint8_t *prep,
            size_t stride, float *y, size_t y_stride, const uint8_t *next, size_t pf, size_t pf_end, size_t pf_step) {
    const __m512i *qa = reinterpret_cast<const __m512i *>(wa), *qb = reinterpret_cast<const __m512i *>(wb);
    const __m512 *da = reinterpret_cast<const __m512 *>(wa + size_t(kc) * 8 * 64);
    const __m512 *db = reinterpret_cast<const __m512 *>(wb + size_t(kc) * 8 * 64);
    const uint8_t *pt[TT];
    #pragma GCC unroll 8
    for (int t = 0; t < TT; t++) pt[t] = prep + t * stride;
    const int64_t sc_off = n, corr_off = n + 4 * nb;
    __m512 acc0[TT], acc1[TT];
    #pragma GCC unroll 8
    for (int t = 0; t < TT; t++) {
        acc0[t] = kb == 0 ? _mm512_setzero_ps() : _mm512_loadu_ps(y + t * y_stride);
        acc1[t] = kb == 0 ? _mm512_setzero_ps() : _mm512_loadu_ps(y + t * y_stride + 16);
    }
    for (int64_t j = 0; j < kc; j++) {
        const int64_t ib = kb + j;
        for (size_t e = pf + pf_step; pf < e && pf < pf_end; pf += 64)
            _mm_prefetch(reinterpret_cast<const char *>(next + pf), _MM_HINT_T1);
        const int64_t lo = act_lo<T>(ib, nb), hi = lo + act_hi<T>(ib, nb);
        __m512i s0[TT], s1[TT];
        #pragma GCC unroll 8
        for (int t = 0; t < TT; t++) {
            int32_t c0;
            __builtin_memcpy(&c0, pt[t] + corr_off + 4 * ib, 4);
            s0[t] = _mm512_set1_epi32(c0);
            s1[t] = s0[t];
        }
        #pragma GCC unroll 8
        for (int c = 0; c < 8; c++) {
            const __m512i w0 = _mm512_load_si512(qa + j * 8 + c), w1 = _mm512_load_si512(qb + j * 8 + c);
            const int64_t off = c < 4 ? lo + 4 * c : hi + 4 * (c - 4);
            #pragma GCC unroll 8
            for (int t = 0; t < TT; t++) {
                int32_t a4;
                __builtin_memcpy(&a4, pt[t] + off, 4);
                const __m512i av = _mm512_set1_epi32(a4);
                s0[t] = _mm512_dpbusd_epi32(s0[t], w0, av);
                s1[t] = _mm512_dpbusd_epi32(s1[t], w1, av);
            }
        }
        const __m512 dw0 = _mm512_load_ps(da + j), dw1 = _mm512_load_ps(db + j);
        #pragma GCC unroll 8
        for (int t = 0; t < TT; t++) {
            float dy;
            __builtin_memcpy(&dy, pt[t] + sc_off + 4 * ib, 4);
            const __m512 vy = _mm512_set1_ps(dy);
            acc0[t] = _mm512_fmadd_ps(_mm512_cvtepi32_ps(s0[t]), _mm512_mul_ps(dw0, vy), acc0[t]);
            acc1[t] = _mm512_fmadd_ps(_mm512_cvtepi32_ps(s1[t]), _mm512_mul_ps(dw1, vy), acc1[t]);
        }
    }
    #pragma GCC unroll 8
    for (int t = 0; t < TT; t++) {
        _mm512_storeu_ps(y + t * y_stride, acc0[t]);
        _mm512_storeu_ps(y + t * y_stride + 16, acc1[t]);
    }
}

template <typename T, int TT>
void tile32_n(int tt, int64_t kb, int64_t kc, int64_t nb, int64_t n, const uint8_t *wa, const uint8_t *wb,
              const uint8_t *prep, size_t stride, float *y, size_t y_stride, const uint8_t *next, size_t pf,
              size_t pf_end, size_t pf_step) {
    if constexpr (TT > 0) {
        if (tt == TT) return tile32<T, TT>(kb, kc, nb, n, wa, wb, prep, stride, y, y_stride, next, pf, pf_end, pf_step);
        tile32_n<T, TT - 1>(tt, kb, kc, nb, n, wa, wb, prep, stride, y, y_stride, next, pf, pf_end, pf_step);
    }
}

template <typename T, int TT>
void tile_n(int tt, int64_t nb, int64_t n, const uint8_t *work, const uint8_t *prep, size_t stride, float *y,
            size_t y_stride, int nv, const uint8_t *next, size_t next_bytes) {
    if constexpr (TT > 0) {
        if (tt == TT) return tile<T, TT>(nb, n, work, prep, stride, y, y_stride, nv, next, next_bytes);
        tile_n<T, TT - 1>(tt, nb, n, work, prep, stride, y, y_stride, nv, next, next_bytes);
    }
}

inline uint8_t *align64(void *p) {
    return reinterpret_cast<uint8_t *>((reinterpret_cast<uintptr_t>(p) + 63) & ~uintptr_t(63));
}
// Blocks per K chunk of the 32-row path: two packed halves of 16 rows, (8 + 1) vectors per block each,
// within the gemm_work_bytes(n) bytes after alignment (0: blocks too few, 16-row groups only).
inline int64_t chunk32_blocks(int64_t n) { return int64_t((gemm_work_bytes(n) - 63) / (2 * 9 * 64)); }

// The 32-row prompt pass over one pair of 16-row groups: for each K chunk of kc32 blocks, pack(kb, kc,
// wa, wb) fills both packed halves in the work area pk, then every token tile runs tile32 (y: the pair's
// first row, token 0); the next pair's next_bytes at next are prefetched over the whole pass, spread
// across the chunks' first token tiles.
template <typename T, typename Pack>
void pass32(int64_t nb, int64_t n, int64_t kc32, uint8_t *pk, const Pack &pack, const uint8_t *prep,
            size_t prep_stride, int64_t n_tok, float *y, size_t y_stride, const uint8_t *next, size_t next_bytes) {
    const size_t half_bytes = size_t(kc32) * (8 * 64 + 64);
    for (int64_t kb = 0; kb < nb; kb += kc32) {
        const int64_t kc = nb - kb < kc32 ? nb - kb : kc32;
        pack(kb, kc, pk, pk + half_bytes);
        const size_t pf0 = next_bytes * size_t(kb) / size_t(nb) / 64 * 64;
        const size_t pf1 = next_bytes * size_t(kb + kc) / size_t(nb);
        const size_t pf_step = (pf1 - pf0) / size_t(kc) + 64;
        for (int64_t t0 = 0; t0 < n_tok; t0 += kTokTile32) {
            const int tt = int(n_tok - t0 < kTokTile32 ? n_tok - t0 : kTokTile32);
            tile32_n<T, kTokTile32>(tt, kb, kc, nb, n, pk, pk + half_bytes, prep + t0 * prep_stride, prep_stride,
                                    y + t0 * y_stride, y_stride, next, pf0, t0 == 0 ? pf1 : 0, pf_step);
        }
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
            pass32<T>(nb, n, kc32, pk, pack, prep, prep_stride, n_tok, y + g, y_stride, wg + 32 * row_bytes,
                      size_t(nn32) * row_bytes);
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

// ---- Q4_0 / Q8_0 repacked at load (type_traits::packed_layout kPackedQ4x16 / kPackedQ8x16) ----
// A group of 16 rows: [nb_even x 32 B: block b's 16 f16 row scales at 32 b][nb x Q bytes: block b's
// weights at Q b as 64-byte vectors, dword r of vector v = row r's quant bytes 4v..4v+3] (nb_even = nb
// rounded up to even, so the vectors and every group start 64-byte aligned; the same bytes per weight as
// the file). Q4_0 (Q = 256, 4 vectors): low nibbles of vector v are elements 4v..4v+3 of the 16 rows,
// high nibbles elements 16+4v..16+4v+3. Q8_0 (Q = 512, 8 vectors): vector v is elements 4v..4v+3, made
// unsigned (sign bit flipped) as the kernels read them. Either way: transpose_q4 / transpose_q8's output,
// done once.
constexpr uint32_t kPackedQ4x16 = 1, kPackedQ8x16 = 2;
template <typename T> constexpr bool is_q4() { return T::size == sizeof(block_q4_0); }
template <typename T> constexpr size_t x16_qbytes() { return is_q4<T>() ? 256 : 512; }
inline int64_t even_blocks(int64_t nb) { return (nb + 1) & ~int64_t(1); }
template <typename T> size_t x16_group_bytes(int64_t n) {
    return size_t(32 * even_blocks(n / 32)) + x16_qbytes<T>() * size_t(n / 32);
}

template <typename T> void repack_x16(int64_t n, const void *wv, size_t row_bytes, int64_t n_rows, uint8_t *out) {
    constexpr int kVec = int(x16_qbytes<T>() / 64);
    const int64_t nb = n / 32;
    const uint8_t *w = static_cast<const uint8_t *>(wv);
    const size_t gb = x16_group_bytes<T>(n);
    for (int64_t g = 0; g < n_rows / 16; g++) {
        uint8_t *sc = out + size_t(g) * gb, *qv = sc + 32 * even_blocks(nb);
        std::memset(sc, 0, size_t(32 * even_blocks(nb)));
        for (int r = 0; r < 16; r++) {
            const uint8_t *row = w + size_t(16 * g + r) * row_bytes;
            for (int64_t ib = 0; ib < nb; ib++) {
                const uint8_t *blk = row + size_t(ib) * T::size;
                std::memcpy(sc + 32 * ib + 2 * r, blk, 2);
                for (int v = 0; v < kVec; v++) {
                    uint8_t *dst = qv + x16_qbytes<T>() * size_t(ib) + 64 * v + 4 * r;
                    std::memcpy(dst, blk + 2 + 4 * v, 4);
                    if constexpr (!is_q4<T>())
                        for (int e = 0; e < 4; e++) dst[e] ^= 0x80;
                }
            }
        }
    }
}

// The 8 VNNI-order vectors of block ib of a packed group (what transpose_q4 / transpose_q8 give).
template <typename T> inline void unpack_x16(const uint8_t *qv, int64_t ib, __m512i out[8]) {
    const uint8_t *p = qv + x16_qbytes<T>() * size_t(ib);
    if constexpr (is_q4<T>()) {
        const __m512i lo4 = _mm512_set1_epi8(0x0F);
        #pragma GCC unroll 4
        for (int v = 0; v < 4; v++) {
            const __m512i x = _mm512_load_si512(p + 64 * v);
            out[v] = _mm512_and_si512(x, lo4);
            out[v + 4] = _mm512_and_si512(_mm512_srli_epi16(x, 4), lo4);
        }
    } else {
        #pragma GCC unroll 8
        for (int v = 0; v < 8; v++) out[v] = _mm512_load_si512(p + 64 * v);
    }
}

// decode_group over a packed group (all 16 rows valid): the same integer block sums and the same
// per-block FMA as decode_group, without its gathers and transpose tree. Vector c < 4 meets the token's
// elements 4c..4c+3 of the block, c >= 4 elements 16+4(c-4).. (act_lo / act_hi: both types' prep order).
template <typename T>
void decode_group_x16(int64_t nb, const uint8_t *grp, const act_row &a, float *y, const uint8_t *next,
                      size_t next_bytes) {
    const uint8_t *sc = grp, *qv = grp + 32 * even_blocks(nb);
    const size_t pf_step = 32 + x16_qbytes<T>();
    size_t pf = 0;
    __m512 acc = _mm512_setzero_ps();
    for (int64_t ib = 0; ib < nb; ib++) {
        for (size_t e = pf + pf_step; pf < e && pf < next_bytes; pf += 64)
            _mm_prefetch(reinterpret_cast<const char *>(next + pf), _MM_HINT_T1);
        __m512i q[8];
        unpack_x16<T>(qv, ib, q);
        const int8_t *alo = a.q + act_lo<T>(ib, nb), *ahi = alo + act_hi<T>(ib, nb);
        __m512i s0 = _mm512_set1_epi32(a.corr[ib]), s1 = _mm512_setzero_si512(); // two chains, exact sums
        #pragma GCC unroll 4
        for (int v = 0; v < 4; v++) {
            int32_t l4, h4;
            std::memcpy(&l4, alo + 4 * v, 4);
            std::memcpy(&h4, ahi + 4 * v, 4);
            s0 = _mm512_dpbusd_epi32(s0, q[v], _mm512_set1_epi32(l4));
            s1 = _mm512_dpbusd_epi32(s1, q[v + 4], _mm512_set1_epi32(h4));
        }
        const __m512 dw = _mm512_cvtph_ps(_mm256_load_si256(reinterpret_cast<const __m256i *>(sc + 32 * ib)));
        acc = _mm512_fmadd_ps(_mm512_cvtepi32_ps(_mm512_add_epi32(s0, s1)), _mm512_mul_ps(dw, _mm512_set1_ps(a.d[ib])), acc);
    }
    _mm512_storeu_ps(y, acc);
}

// pack_group's work layout from nb blocks of a packed group (sc / qv: the scales and weights of the
// range's first block).
template <typename T> void pack_group_x16(int64_t nb, const uint8_t *sc, const uint8_t *qv, uint8_t *work) {
    __m512i *q = reinterpret_cast<__m512i *>(work);
    __m512 *d = reinterpret_cast<__m512 *>(work + size_t(nb) * 8 * 64);
    for (int64_t ib = 0; ib < nb; ib++) {
        __m512i v[8];
        unpack_x16<T>(qv, ib, v);
        #pragma GCC unroll 8
        for (int c = 0; c < 8; c++) _mm512_store_si512(q + ib * 8 + c, v[c]);
        _mm512_store_ps(d + ib, _mm512_cvtph_ps(_mm256_load_si256(reinterpret_cast<const __m256i *>(sc + 32 * ib))));
    }
}

// gemm over packed groups (n_rows % 16 == 0, w = the first group, gb = the group stride).
template <typename T>
void gemm_x16(int64_t n, const void *wv, size_t gb, int64_t n_rows, const void *, size_t, const void *prep_v,
              size_t prep_stride, int64_t n_tok, float *y, size_t y_stride, void *work) {
    constexpr size_t Q = x16_qbytes<T>();
    const int64_t nb = n / 32, ne = even_blocks(nb);
    const uint8_t *prep = static_cast<const uint8_t *>(prep_v);
    uint8_t *pk = align64(work);
    const int64_t kc32 = chunk32_blocks(n);
    const bool decode = n_tok < kPromptMinTokens || work == nullptr;
    for (int64_t g = 0; g < n_rows; g += 16) {
        const uint8_t *grp = static_cast<const uint8_t *>(wv) + size_t(g / 16) * gb;
        const size_t rest = size_t(n_rows - g - 16) / 16 * gb; // bytes of the groups after this one
        if (!decode && n_rows - g >= 32 && kc32 > 0) {
            const uint8_t *grp1 = grp + gb;
            const size_t after1 = rest - gb; // n_rows - g >= 32: the second group exists
            auto pack = [&](int64_t kb, int64_t kc, uint8_t *wa, uint8_t *wb) {
                pack_group_x16<T>(kc, grp + 32 * kb, grp + 32 * ne + Q * size_t(kb), wa);
                pack_group_x16<T>(kc, grp1 + 32 * kb, grp1 + 32 * ne + Q * size_t(kb), wb);
            };
            pass32<T>(nb, n, kc32, pk, pack, prep, prep_stride, n_tok, y + g, y_stride, grp + 2 * gb,
                      after1 < 2 * gb ? after1 : 2 * gb);
            g += 16; // the loop adds the other 16
            continue;
        }
        const uint8_t *next = grp + gb;
        const size_t next_bytes = rest >= gb ? gb : rest;
        if (decode) {
            for (int64_t t = 0; t < n_tok; t++)
                decode_group_x16<T>(nb, grp, act_of(prep + t * prep_stride, n), y + t * y_stride + g, next,
                                    t == 0 ? next_bytes : 0);
            continue;
        }
        pack_group_x16<T>(nb, grp, grp + 32 * ne, pk);
        for (int64_t t0 = 0; t0 < n_tok; t0 += kTokTile) {
            const int tt = int(n_tok - t0 < kTokTile ? n_tok - t0 : kTokTile);
            tile_n<T, kTokTile>(tt, nb, n, pk, prep + t0 * prep_stride, prep_stride, y + t0 * y_stride + g, y_stride, 16,
                                next, t0 == 0 ? next_bytes : 0);
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
    // Q8_0 is not repacked by default: see fill_packed_q8_avx512.
    k.traits[GPTNEOX_TYPE_Q4_0].packed_layout = kPackedQ4x16;
    k.traits[GPTNEOX_TYPE_Q4_0].packed_group_bytes = x16_group_bytes<q4_traits>;
    k.traits[GPTNEOX_TYPE_Q4_0].repack = repack_x16<q4_traits>;
    k.traits[GPTNEOX_TYPE_Q4_0].gemm_packed = gemm_x16<q4_traits>;
}

void fill_packed_q8_avx512(kernels &k) {
    type_traits &t = k.traits[GPTNEOX_TYPE_Q8_0];
    t.packed_layout = kPackedQ8x16;
    t.packed_group_bytes = x16_group_bytes<q8_traits>;
    t.repack = repack_x16<q8_traits>;
    t.gemm_packed = gemm_x16<q8_traits>;
}

} // namespace gptneox
