// Pieces shared by the AVX-512 VNNI Q8_0 / Q4_0 kernels: gemm-avx512.cpp (rows read in place) and
// gemm-packed-avx512.cpp (rows repacked at load). Included only by
// files built with the AVX-512 flags.
//
// Every kernel gives every output the same arithmetic, so a token's result does not depend on how many
// tokens were multiplied together (prompt vs decode, ubatch size) or on the weights' layout:
//   for each block b in order:  acc = fma(float(isum_b), dw_b * dy_b, acc)
// where isum_b is the exact integer dot of weight block b and activation block b (|isum| < 2^24, so
// its float is exact) and dw_b * dy_b the f32 product of the two f16 scales.
//
// Every token is first put in gemm_prep's layout (once per token and matmul, whatever the batch):
// its signed activation bytes (Q4_0: four blocks at a time as [elements 0-15 of blocks b..b+3 |
// 16-31 of blocks b..b+3], so the decode kernel loads them as two vectors), the f32 block scales and
// the block corrections -c * sum(a) (c = 128 for Q8_0 weights made unsigned by flipping the sign bit,
// 8 for Q4_0 nibbles 0..15 taken as they are): sum(u * a) + corr is the exact block dot.
// The prompt kernels (tile, tile32) run over 16 rows in VNNI order in a work area -- for block b and
// 4-element group c, one 64-byte vector holds elements 4c..4c+3 of the 16 rows, as unsigned bytes, then
// the block's 16 f32 row scales -- which each file fills from its own layout.
#pragma once

#include <immintrin.h>

#include <cstring>

#pragma GCC diagnostic ignored "-Wuninitialized" // GCC 12 AVX-512 headers, see kernels-avx512.cpp
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
// -O2 does not unroll loops, and a rolled loop over a register tile keeps the tile in memory: the
// small fixed loops below carry unroll pragmas.

#include "kernels/kernels-impl.h"
#include "kernels/packed-layout.h"

namespace gptneox {
namespace vnni {

constexpr int kTokTile = 8;          // tokens per register tile of the prompt kernel (16 rows)
constexpr int kTokTile32 = 6;        // tokens per register tile of the 32-row kernel
constexpr int64_t kPromptMinTokens = 2; // fewer tokens: the decode kernel (rows read in place)

inline float h2f(uint16_t h) { return _cvtsh_ss(h); }

struct q8_traits {
    using block = block_q8_0;
    static constexpr size_t size = sizeof(block_q8_0);
};
struct q4_traits {
    using block = block_q4_0;
    static constexpr size_t size = sizeof(block_q4_0);
};

inline __m512i load2(const void *p0, const void *p1) {
    return _mm512_inserti64x4(_mm512_castsi256_si512(_mm256_loadu_si256(static_cast<const __m256i *>(p0))),
                              _mm256_loadu_si256(static_cast<const __m256i *>(p1)), 1);
}

template <typename T> constexpr bool is_q4() { return T::size == sizeof(block_q4_0); }
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

// ---- 16 rows of one block into VNNI order ----

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

// Q4_0: the 16 nibble bytes of each row as 4 vectors, dword r of vector v = row r's bytes 4v..4v+3
// (g[k] = [row k | row k+4 | row k+8 | row k+12]; per 128-bit lane the unpacks transpose 4 x 4 dwords).
inline void transpose_q4_bytes(const uint8_t *const *rp, __m512i out[4]) {
    __m512i g[4];
    #pragma GCC unroll 4
    for (int k = 0; k < 4; k++) {
        g[k] = _mm512_castsi128_si512(_mm_loadu_si128(reinterpret_cast<const __m128i *>(rp[k] + 2)));
        g[k] = _mm512_inserti32x4(g[k], _mm_loadu_si128(reinterpret_cast<const __m128i *>(rp[k + 4] + 2)), 1);
        g[k] = _mm512_inserti32x4(g[k], _mm_loadu_si128(reinterpret_cast<const __m128i *>(rp[k + 8] + 2)), 2);
        g[k] = _mm512_inserti32x4(g[k], _mm_loadu_si128(reinterpret_cast<const __m128i *>(rp[k + 12] + 2)), 3);
    }
    const __m512i t0 = _mm512_unpacklo_epi32(g[0], g[1]), t1 = _mm512_unpackhi_epi32(g[0], g[1]);
    const __m512i t2 = _mm512_unpacklo_epi32(g[2], g[3]), t3 = _mm512_unpackhi_epi32(g[2], g[3]);
    out[0] = _mm512_unpacklo_epi64(t0, t2);
    out[1] = _mm512_unpackhi_epi64(t0, t2);
    out[2] = _mm512_unpacklo_epi64(t1, t3);
    out[3] = _mm512_unpackhi_epi64(t1, t3);
}

// Q4_0 in VNNI order: low nibbles give elements 0-15 (vectors 0-3), high nibbles 16-31 (vectors 4-7).
inline void transpose_q4(const uint8_t *const *rp, __m512i out[8]) {
    const __m512i lo4 = _mm512_set1_epi8(0x0F);
    __m512i raw[4];
    transpose_q4_bytes(rp, raw);
    #pragma GCC unroll 4
    for (int v = 0; v < 4; v++) {
        out[v] = _mm512_and_si512(raw[v], lo4);
        out[v + 4] = _mm512_and_si512(_mm512_srli_epi16(raw[v], 4), lo4);
    }
}

// ---- prompt register tiles over the work layout ----

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

// Where tile32 reads blocks [kb, kb + kc) of a pair of 16-row halves (block kb + j: its 8 VNNI-order
// vectors and 16 row scales). The work layout: vectors at qa / qb + 512 j, f32 scales at sa / sb + 64 j.
// F16, the weights' own packed Q8_0 layout (packed-layout.h): qa / qb and sa / sb are the two groups, the
// block at its pair's offsets, f16 scales converted as they are read (the same f32 values).
struct chunk32 {
    const uint8_t *qa, *qb, *sa, *sb;
    template <bool F16> static const __m512i *quants(const uint8_t *q, int64_t kb, int64_t j) {
        if constexpr (F16) return reinterpret_cast<const __m512i *>(q + x16_quants_at<false>(kb + j));
        return reinterpret_cast<const __m512i *>(q) + 8 * j;
    }
    template <bool F16> static __m512 scales(const uint8_t *s, int64_t kb, int64_t j) {
        if constexpr (F16)
            return _mm512_cvtph_ps(_mm256_load_si256(reinterpret_cast<const __m256i *>(s + x16_scales_at<false>(kb + j))));
        return _mm512_load_ps(reinterpret_cast<const float *>(s + 64 * j));
    }
};

// 32 rows (two 16-row halves, blocks [kb, kb + kc) of the rows, read as w says) against TT tokens:
// every broadcast of 4 activation bytes feeds two VPDPBUSDs. The f32 accumulators start from y (kb > 0:
// the previous K chunk's exact result) or zero, so each output sees the same operations in the same order
// as in tile / decode_group. Prefetches [pf, pf_end) at next, pf_step bytes per block.
template <typename T, int TT, bool F16>
void tile32(int64_t kb, int64_t kc, int64_t nb, int64_t n, const chunk32 &w, const uint8_t *prep, size_t stride,
            float *y, size_t y_stride, const uint8_t *next, size_t pf, size_t pf_end, size_t pf_step) {
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
        const __m512i *qa = chunk32::quants<F16>(w.qa, kb, j), *qb = chunk32::quants<F16>(w.qb, kb, j);
        #pragma GCC unroll 8
        for (int c = 0; c < 8; c++) {
            const __m512i w0 = _mm512_load_si512(qa + c), w1 = _mm512_load_si512(qb + c);
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
        const __m512 dw0 = chunk32::scales<F16>(w.sa, kb, j), dw1 = chunk32::scales<F16>(w.sb, kb, j);
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

template <typename T, int TT, bool F16>
void tile32_n(int tt, int64_t kb, int64_t kc, int64_t nb, int64_t n, const chunk32 &w, const uint8_t *prep,
              size_t stride, float *y, size_t y_stride, const uint8_t *next, size_t pf, size_t pf_end, size_t pf_step) {
    if constexpr (TT > 0) {
        if (tt == TT) return tile32<T, TT, F16>(kb, kc, nb, n, w, prep, stride, y, y_stride, next, pf, pf_end, pf_step);
        tile32_n<T, TT - 1, F16>(tt, kb, kc, nb, n, w, prep, stride, y, y_stride, next, pf, pf_end, pf_step);
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

// The 32-row prompt pass over one pair of 16-row groups: for each K chunk of kc32 blocks, source(kb, kc)
// says where the chunk is (a chunk32: packed into the work area, or the weights' own packed layout, F16),
// then every token tile runs tile32 (y: the pair's first row, token 0); the next pair's next_bytes at next
// are prefetched over the whole pass, spread across the chunks' first token tiles.
template <typename T, bool F16, typename Source>
void pass32(int64_t nb, int64_t n, int64_t kc32, const Source &source, const uint8_t *prep, size_t prep_stride,
            int64_t n_tok, float *y, size_t y_stride, const uint8_t *next, size_t next_bytes) {
    for (int64_t kb = 0; kb < nb; kb += kc32) {
        const int64_t kc = nb - kb < kc32 ? nb - kb : kc32;
        const chunk32 w = source(kb, kc);
        const size_t pf0 = next_bytes * size_t(kb) / size_t(nb) / 64 * 64;
        const size_t pf1 = next_bytes * size_t(kb + kc) / size_t(nb);
        const size_t pf_step = (pf1 - pf0) / size_t(kc) + 64;
        for (int64_t t0 = 0; t0 < n_tok; t0 += kTokTile32) {
            const int tt = int(n_tok - t0 < kTokTile32 ? n_tok - t0 : kTokTile32);
            tile32_n<T, kTokTile32, F16>(tt, kb, kc, nb, n, w, prep + t0 * prep_stride, prep_stride, y + t0 * y_stride,
                                         y_stride, next, pf0, t0 == 0 ? pf1 : 0, pf_step);
        }
    }
}

// A source for pass32 that packs the chunk into the work area pk: pack(kb, kc, wa, wb) fills the halves
// wa, wb (pack_group's layout: kc blocks of 8 vectors, then kc vectors of f32 scales).
template <typename Pack> auto packed_into(uint8_t *pk, int64_t kc32, const Pack &pack) {
    return [pk, kc32, &pack](int64_t kb, int64_t kc) {
        uint8_t *wa = pk, *wb = pk + size_t(kc32) * (8 * 64 + 64);
        pack(kb, kc, wa, wb);
        return chunk32{wa, wb, wa + size_t(kc) * 8 * 64, wb + size_t(kc) * 8 * 64};
    };
}

} // namespace vnni
} // namespace gptneox
