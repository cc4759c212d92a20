// Blocked Q8_0 / Q4_0 products for AVX2 (the `gemm` entries of kernels.h on the AVX2 path), compiled
// with -mavx2 -mfma -mf16c and reached only through dispatch.cpp when the CPU has those features.
//
// Every output (weight row r, token t) gets the same arithmetic whatever the batch, so a token's result
// never depends on how many tokens were multiplied together (decode vs prompt kernel, ubatch size):
//   acc = 0;  for each block b in order:  acc = fma(float(isum_b), dw_b * dy_b, acc);  y = acc
// isum_b is the exact integer dot of weight block b and activation block b (|isum| <= 32*128*127 < 2^24,
// so its float is exact), dw_b * dy_b the f32 product of the two f16 scales (exact: 11 x 11 bits).
//
// Integer dots use vpmaddubsw (u8 x s8 -> i16 pair sums, saturating) and vpmaddwd. Why nothing saturates:
//  - Q8_0, decode kernel: |w| (as u8, <= 128 even for w = -128) times a * sign(w). Activations come from
//    q8_0_from_float, so |a| <= 127 (q = round(x / (amax / 127)) with amax the block's largest |x|):
//    a pair sum is at most 2 * 128 * 127 = 32512 < 32767; vpmaddwd then widens to i32 at once.
//  - Q8_0, prompt kernel: no vpmaddubsw at all. Weights (packed) and activations (once per token, by
//    gemm_prep) are sign-extended to i16 and multiplied by vpmaddwd alone (i16 x i16 -> i32 pair sums,
//    which cannot overflow here: |pair| <= 2 * 128 * 128 = 32768, and vpmaddwd saturates only for
//    four -32768 inputs). Measured on Zen 4: vpsignb / vpabsb issue on the same two pipes as
//    vpmaddubsw / vpmaddwd, so the sign trick cost a third of the multiply throughput (3 multiply-pipe
//    operations per 32 multiply-adds); vpmaddwd + vpaddd is 2 per 32, the adds going to the other pipes.
//  - Q4_0, prompt kernel: a + 128 (u8, 0..255, any int8 a) times q - 8 (s8, -8..7). A pair is at most
//    2 * 255 * 8 = 4080 in magnitude, and a block's 8 vpmaddubsw results are summed in i16 before one
//    vpmaddwd: 16 products per i16 lane, |sum| <= 16 * 255 * 8 = 32640 < 32767. The 128 * sum(q - 8)
//    this adds is a weight-row constant per block, taken off once (exact i32 arithmetic).
//  - Q4_0, decode kernel: q (u8, 0..15) times a: a pair is at most 2 * 15 * 128 = 3840, and the low- and
//    high-nibble results are added in i16 (<= 7680) before vpmaddwd; 8 * sum(a) (pairs <= 2048, two
//    added <= 4096) is subtracted per block in i32.
//
// Prompt kernel (gemm_prep given): the 16 rows of a call are repacked one K-chunk at a time (the chunk's
// packed weights, 20-34 KiB, stay in L1 / L2 while every token passes over them) into "rows in lanes" order:
// for block b, row group g (8 rows) and element group c, one 32-byte vector holds the group's elements
// of the 8 rows (Q4_0: 4 elements 4c..4c+3 as s8 q - 8; Q8_0: 2 elements 2c, 2c+1 as i16); then the
// rows' f32 scales (and for Q4_0 128 * sum(q - 8)). A broadcast of one activation dword (4 bytes a + 128
// for Q4_0, 2 i16 for Q8_0) then feeds 32 (16) multiply-adds for 8 rows at once, and the i32 block sums
// come out one row per lane, ready for the scale FMA. A register tile is 2 row groups x 4 tokens; its
// per-block loop is inline assembly (the compiler kept sums in memory or copied all 8 every step). The
// running f32 sums live in a stack array within a call and in y between K-chunks (a store and reload of
// a float is exact, so the FMA chain is unchanged).
// Decode kernel (no gemm_prep, few tokens): 4 rows read in place (4 streams plus a software prefetch of
// the next 4 rows at the pace they are consumed: 8 rows side by side streamed measurably worse), two
// blocks at a time: per row one or two 8-lane partial vectors, folded by an hadd tree into one vector
// [rows 0-3 of block b | rows 0-3 of block b+1], then two 4-lane FMAs in block order.
// Q4_0 repacked at load (packed-layout.h, gemm_q4x16): 8 rows' nibble dwords per 32-byte load, so decode
// needs no hadd tree (one row per lane already) and the prompt records are an AND / shift away.
#include <immintrin.h>

#include "kernels/kernels-impl.h"
#include "kernels/packed-layout.h"

namespace gptneox {
namespace {

inline float h2f(uint16_t h) { return _cvtsh_ss(h); }

constexpr int kTok = 4;          // tokens per register tile (prompt kernel)
constexpr int kDecTok = 4;       // tokens the decode kernel takes per pass over the weights
// Blocks per K-chunk of packed weights, at most: Q8_0 2 x 32 x 544 B = 34 KiB, a little over L1, read from
// L2 front to back by each token tile; 3-6% faster than 16 blocks (17 KiB), which set up and stored every
// tile twice as often (kernels_bench, AVX2, 64 and 512 tokens, 2816 and 11264 inputs, 1 and 2 threads).
constexpr int64_t kChunkQ8 = 32;
constexpr int64_t kChunkQ4 = 32; // Q4_0: 2 x 32 x 320 B = 20 KiB
constexpr size_t kRecQ8 = 16 * 32 + 32;     // per (block, row group): 16 i16 weight vectors + 8 f32 scales
constexpr size_t kRecQ4 = 8 * 32 + 32 + 32; // 8 weight vectors, 8 f32 scales, 8 i32 corrections (128 * sum(q - 8))

struct q8_traits {
    using block = block_q8_0;
    static constexpr bool q4 = false;
    static constexpr size_t rec = kRecQ8;
    static constexpr int steps = 16;                // weight vectors (2 elements x 8 rows, i16) per block
    static constexpr int64_t act_bytes = 2;         // per activation in gemm_prep's row (i16)
    static constexpr int64_t chunk = kChunkQ8;
    static constexpr _mm_hint hint = _MM_HINT_T1; // measured: Q8_0 decode streams better into L2
};
struct q4_traits {
    using block = block_q4_0;
    static constexpr bool q4 = true;
    static constexpr size_t rec = kRecQ4;
    static constexpr int steps = 8;                 // weight vectors (4 elements x 8 rows, s8) per block
    static constexpr int64_t act_bytes = 1;         // (a + 128, u8)
    static constexpr int64_t chunk = kChunkQ4;
    static constexpr _mm_hint hint = _MM_HINT_T0;
};

inline __m256i load32(const void *p) { return _mm256_loadu_si256(static_cast<const __m256i *>(p)); }

// Lanes [0, nv) valid: nv >= 8 full vector store, else a masked one (never writes past the rows).
inline __m256i lane_mask(int nv) {
    return _mm256_cmpgt_epi32(_mm256_set1_epi32(nv), _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7));
}
inline void store_rows(float *y, __m256 v, int nv) {
    if (nv >= 8) _mm256_storeu_ps(y, v);
    else _mm256_maskstore_ps(y, lane_mask(nv), v);
}
inline __m256 load_rows(const float *y, int nv) {
    if (nv >= 8) return _mm256_loadu_ps(y);
    return _mm256_maskload_ps(y, lane_mask(nv));
}

// A Q4_0 block's 32 nibbles as bytes in element order: low nibbles (0-15) then high (16-31).
inline __m256i nibbles(const block_q4_0 &b) {
    const __m256i x = _mm256_broadcastsi128_si256(_mm_loadu_si128(reinterpret_cast<const __m128i *>(b.qs)));
    return _mm256_and_si256(_mm256_srlv_epi32(x, _mm256_setr_epi32(0, 0, 0, 0, 4, 4, 4, 4)), _mm256_set1_epi8(0x0F));
}

// 8 i32 vectors -> one vector whose lane r is the sum of p[r]'s 8 lanes.
inline __m256i sum8(const __m256i p[8]) {
    const __m256i h01 = _mm256_hadd_epi32(p[0], p[1]), h23 = _mm256_hadd_epi32(p[2], p[3]);
    const __m256i h45 = _mm256_hadd_epi32(p[4], p[5]), h67 = _mm256_hadd_epi32(p[6], p[7]);
    const __m256i q0 = _mm256_hadd_epi32(h01, h23), q1 = _mm256_hadd_epi32(h45, h67);
    return _mm256_add_epi32(_mm256_permute2x128_si256(q0, q1, 0x20), _mm256_permute2x128_si256(q0, q1, 0x31));
}

// The 8 rows' f16 scales of block ib as f32 lanes.
template <typename B> inline __m256 row_scales(const B *const *x, int64_t ib) {
    const __m128i h = _mm_setr_epi16(static_cast<short>(x[0][ib].d), static_cast<short>(x[1][ib].d),
                                     static_cast<short>(x[2][ib].d), static_cast<short>(x[3][ib].d),
                                     static_cast<short>(x[4][ib].d), static_cast<short>(x[5][ib].d),
                                     static_cast<short>(x[6][ib].d), static_cast<short>(x[7][ib].d));
    return _mm256_cvtph_ps(h);
}

// ---- decode: 4 rows in place, NT tokens (Q8_0 activation rows) ----

// 4 i32 vectors -> lane r = the sum of p[r]'s 8 lanes.
inline __m128i sum4(const __m256i p[4]) {
    const __m256i q = _mm256_hadd_epi32(_mm256_hadd_epi32(p[0], p[1]), _mm256_hadd_epi32(p[2], p[3]));
    return _mm_add_epi32(_mm256_castsi256_si128(q), _mm256_extracti128_si256(q, 1));
}
template <typename B> inline __m128 row_scales4(const B *const *x, int64_t ib) {
    const __m128i h = _mm_setr_epi16(static_cast<short>(x[0][ib].d), static_cast<short>(x[1][ib].d),
                                     static_cast<short>(x[2][ib].d), static_cast<short>(x[3][ib].d), 0, 0, 0, 0);
    return _mm_cvtph_ps(h);
}
template <typename T, int NT>
void decode4(int64_t nb, const uint8_t *w, size_t row_bytes, int nv, const uint8_t *act, size_t act_stride, float *y,
             size_t y_stride, const uint8_t *next, size_t next_bytes) {
    using B = typename T::block;
    const B *x[4];
    for (int r = 0; r < 4; r++) x[r] = reinterpret_cast<const B *>(w + size_t(r < nv ? r : nv - 1) * row_bytes);
    const block_q8_0 *ya[NT];
    #pragma GCC unroll 4
    for (int t = 0; t < NT; t++) ya[t] = reinterpret_cast<const block_q8_0 *>(act + t * act_stride);
    __m128 acc[NT];
    #pragma GCC unroll 4
    for (int t = 0; t < NT; t++) acc[t] = _mm_setzero_ps();
    const __m256i ones16 = _mm256_set1_epi16(1);
    const size_t pf_step = 4 * sizeof(B);
    size_t pf = 0;
    int64_t ib = 0;
    for (; ib + 2 <= nb; ib += 2) {
        for (const size_t e = pf + 2 * pf_step; pf < e && pf < next_bytes; pf += 64)
            _mm_prefetch(reinterpret_cast<const char *>(next + pf), T::hint);
        const __m256 dw = _mm256_cvtph_ps(_mm_setr_epi16(
            static_cast<short>(x[0][ib].d), static_cast<short>(x[1][ib].d), static_cast<short>(x[2][ib].d),
            static_cast<short>(x[3][ib].d), static_cast<short>(x[0][ib + 1].d), static_cast<short>(x[1][ib + 1].d),
            static_cast<short>(x[2][ib + 1].d), static_cast<short>(x[3][ib + 1].d)));
        #pragma GCC unroll 4
        for (int t = 0; t < NT; t++) {
            __m256i s;
            if constexpr (T::q4) {
                // lane h (128 bits) = block ib + h: low nibbles x elements 0-15 plus high x 16-31
                const __m256i a0 = load32(ya[t][ib].qs), a1 = load32(ya[t][ib + 1].qs);
                const __m256i alo = _mm256_permute2x128_si256(a0, a1, 0x20), ahi = _mm256_permute2x128_si256(a0, a1, 0x31);
                const __m256i m4 = _mm256_set1_epi8(0x0F);
                __m256i p[4];
                #pragma GCC unroll 4
                for (int r = 0; r < 4; r++) {
                    const __m256i q = _mm256_inserti128_si256(
                        _mm256_castsi128_si256(_mm_loadu_si128(reinterpret_cast<const __m128i *>(x[r][ib].qs))),
                        _mm_loadu_si128(reinterpret_cast<const __m128i *>(x[r][ib + 1].qs)), 1);
                    const __m256i d16 = _mm256_add_epi16(_mm256_maddubs_epi16(_mm256_and_si256(q, m4), alo),
                                                         _mm256_maddubs_epi16(_mm256_and_si256(_mm256_srli_epi16(q, 4), m4), ahi));
                    p[r] = _mm256_madd_epi16(d16, ones16);
                }
                s = _mm256_hadd_epi32(_mm256_hadd_epi32(p[0], p[1]), _mm256_hadd_epi32(p[2], p[3]));
                const __m256i e8 = _mm256_set1_epi8(8);
                __m256i sa = _mm256_madd_epi16(_mm256_add_epi16(_mm256_maddubs_epi16(e8, alo), _mm256_maddubs_epi16(e8, ahi)), ones16);
                sa = _mm256_add_epi32(sa, _mm256_shuffle_epi32(sa, _MM_SHUFFLE(1, 0, 3, 2)));
                sa = _mm256_add_epi32(sa, _mm256_shuffle_epi32(sa, _MM_SHUFFLE(2, 3, 0, 1)));
                s = _mm256_sub_epi32(s, sa);
            } else {
                __m256i p[8];
                #pragma GCC unroll 2
                for (int h = 0; h < 2; h++) {
                    const __m256i a = load32(ya[t][ib + h].qs);
                    #pragma GCC unroll 4
                    for (int r = 0; r < 4; r++) {
                        const __m256i wv = load32(x[r][ib + h].qs);
                        p[4 * h + r] = _mm256_madd_epi16(_mm256_maddubs_epi16(_mm256_sign_epi8(wv, wv), _mm256_sign_epi8(a, wv)), ones16);
                    }
                }
                s = sum8(p); // rows 0-3 of block ib | of block ib + 1
            }
            const __m256 f = _mm256_cvtepi32_ps(s);
            const __m256 sc = _mm256_mul_ps(dw, _mm256_setr_m128(_mm_set1_ps(h2f(ya[t][ib].d)), _mm_set1_ps(h2f(ya[t][ib + 1].d))));
            acc[t] = _mm_fmadd_ps(_mm256_castps256_ps128(f), _mm256_castps256_ps128(sc), acc[t]);
            acc[t] = _mm_fmadd_ps(_mm256_extractf128_ps(f, 1), _mm256_extractf128_ps(sc, 1), acc[t]);
        }
    }
    for (; ib < nb; ib++) {
        for (const size_t e = pf + pf_step; pf < e && pf < next_bytes; pf += 64)
            _mm_prefetch(reinterpret_cast<const char *>(next + pf), T::hint);
        const __m128 dw = row_scales4(x, ib);
        #pragma GCC unroll 4
        for (int t = 0; t < NT; t++) {
            const __m256i a = load32(ya[t][ib].qs);
            __m256i p[4];
            #pragma GCC unroll 4
            for (int r = 0; r < 4; r++) {
                if constexpr (T::q4) {
                    p[r] = _mm256_madd_epi16(_mm256_maddubs_epi16(nibbles(x[r][ib]), a), ones16);
                } else {
                    const __m256i wv = load32(x[r][ib].qs);
                    p[r] = _mm256_madd_epi16(_mm256_maddubs_epi16(_mm256_sign_epi8(wv, wv), _mm256_sign_epi8(a, wv)), ones16);
                }
            }
            __m128i s = sum4(p);
            if constexpr (T::q4) {
                __m256i sa8 = _mm256_madd_epi16(_mm256_maddubs_epi16(_mm256_set1_epi8(8), a), ones16);
                __m128i sa = _mm_add_epi32(_mm256_castsi256_si128(sa8), _mm256_extracti128_si256(sa8, 1));
                sa = _mm_add_epi32(sa, _mm_shuffle_epi32(sa, _MM_SHUFFLE(1, 0, 3, 2)));
                sa = _mm_add_epi32(sa, _mm_shuffle_epi32(sa, _MM_SHUFFLE(2, 3, 0, 1)));
                s = _mm_sub_epi32(s, sa);
            }
            acc[t] = _mm_fmadd_ps(_mm_cvtepi32_ps(s), _mm_mul_ps(dw, _mm_set1_ps(h2f(ya[t][ib].d))), acc[t]);
        }
    }
    #pragma GCC unroll 4
    for (int t = 0; t < NT; t++) {
        if (nv >= 4) _mm_storeu_ps(y + t * y_stride, acc[t]);
        else _mm_maskstore_ps(y + t * y_stride, _mm256_castsi256_si128(lane_mask(nv)), acc[t]);
    }
}

template <typename T>
void decode_rows(int64_t nb, const uint8_t *w, size_t row_bytes, int64_t n_rows, const uint8_t *act, size_t act_stride,
                 int64_t n_tok, float *y, size_t y_stride) {
    for (int64_t g = 0; g < n_rows; g += 4) {
        const int nv = int(n_rows - g < 4 ? n_rows - g : 4);
        const uint8_t *wg = w + size_t(g) * row_bytes;
        const int64_t nn = n_rows - g - nv < 4 ? n_rows - g - nv : 4; // rows of the next group
        const uint8_t *next = wg + size_t(nv) * row_bytes;
        for (int64_t t = 0; t < n_tok; t += kDecTok) {
            const int nt = int(n_tok - t < kDecTok ? n_tok - t : kDecTok);
            const uint8_t *a = act + t * act_stride;
            float *yt = y + t * y_stride + g;
            const size_t nx = t == 0 ? size_t(nn) * row_bytes : 0;
            switch (nt) {
            case 1: decode4<T, 1>(nb, wg, row_bytes, nv, a, act_stride, yt, y_stride, next, nx); break;
            case 2: decode4<T, 2>(nb, wg, row_bytes, nv, a, act_stride, yt, y_stride, next, nx); break;
            case 3: decode4<T, 3>(nb, wg, row_bytes, nv, a, act_stride, yt, y_stride, next, nx); break;
            default: decode4<T, 4>(nb, wg, row_bytes, nv, a, act_stride, yt, y_stride, next, nx); break;
            }
        }
    }
}

// ---- prompt: packed K-chunks ----

// 8 x 8 transpose of dwords: out[c] lane r = in[r] lane c.
inline void transpose8(const __m256i in[8], __m256i out[8]) {
    __m256i t[8], u[8];
    #pragma GCC unroll 4
    for (int i = 0; i < 4; i++) {
        t[2 * i] = _mm256_unpacklo_epi32(in[2 * i], in[2 * i + 1]);     // r0c0 r1c0 r0c1 r1c1 | c4..c5
        t[2 * i + 1] = _mm256_unpackhi_epi32(in[2 * i], in[2 * i + 1]); // c2, c3 | c6, c7
    }
    #pragma GCC unroll 2
    for (int i = 0; i < 2; i++) {
        // rows 4i..4i+3
        u[4 * i + 0] = _mm256_unpacklo_epi64(t[4 * i], t[4 * i + 2]);     // c0 | c4
        u[4 * i + 1] = _mm256_unpackhi_epi64(t[4 * i], t[4 * i + 2]);     // c1 | c5
        u[4 * i + 2] = _mm256_unpacklo_epi64(t[4 * i + 1], t[4 * i + 3]); // c2 | c6
        u[4 * i + 3] = _mm256_unpackhi_epi64(t[4 * i + 1], t[4 * i + 3]); // c3 | c7
    }
    #pragma GCC unroll 4
    for (int c = 0; c < 4; c++) {
        out[c] = _mm256_permute2x128_si256(u[c], u[4 + c], 0x20);
        out[c + 4] = _mm256_permute2x128_si256(u[c], u[4 + c], 0x31);
    }
}

// Blocks [b0, b0 + kb) of 2 row groups (rows rp[0..15], a short group repeating its last row) into pk:
// record (block i, group g) at pk + (2 i + g) * T::rec.
template <typename T> void pack_chunk(const uint8_t *const *rp, int64_t b0, int64_t kb, uint8_t *pk) {
    using B = typename T::block;
    const __m256i ones8 = _mm256_set1_epi8(1), ones16 = _mm256_set1_epi16(1), eight = _mm256_set1_epi8(8);
    for (int64_t i = 0; i < kb; i++) {
        for (int g = 0; g < 2; g++) {
            uint8_t *rec = pk + size_t(2 * i + g) * T::rec;
            const B *bl[8];
            #pragma GCC unroll 8
            for (int r = 0; r < 8; r++) bl[r] = reinterpret_cast<const B *>(rp[8 * g + r]) + b0 + i;
            __m256i in[8], out[8];
            if constexpr (T::q4) {
                #pragma GCC unroll 8
                for (int r = 0; r < 8; r++) in[r] = _mm256_sub_epi8(nibbles(*bl[r]), eight);
                transpose8(in, out);
                __m256i sum = _mm256_setzero_si256();
                #pragma GCC unroll 8
                for (int c = 0; c < 8; c++) {
                    _mm256_store_si256(reinterpret_cast<__m256i *>(rec + 32 * c), out[c]);
                    sum = _mm256_add_epi32(sum, _mm256_madd_epi16(_mm256_maddubs_epi16(ones8, out[c]), ones16));
                }
                _mm256_store_si256(reinterpret_cast<__m256i *>(rec + 288), _mm256_slli_epi32(sum, 7));
            } else {
                // elements 16h..16h+15 as i16: a dword holds 2 elements, so the transpose gives vector
                // 8h + c = elements 16h + 2c, 16h + 2c + 1 of the 8 rows
                #pragma GCC unroll 2
                for (int h = 0; h < 2; h++) {
                    #pragma GCC unroll 8
                    for (int r = 0; r < 8; r++)
                        in[r] = _mm256_cvtepi8_epi16(_mm_loadu_si128(reinterpret_cast<const __m128i *>(bl[r]->qs + 16 * h)));
                    transpose8(in, out);
                    #pragma GCC unroll 8
                    for (int c = 0; c < 8; c++) _mm256_store_si256(reinterpret_cast<__m256i *>(rec + 256 * h + 32 * c), out[c]);
                }
            }
            _mm256_store_ps(reinterpret_cast<float *>(rec + 32 * T::steps), row_scales(bl, 0));
        }
    }
}

// The Q8_0 2 x 4 tile's work on one packed block: for each of the 16 element pairs c, row group g and
// token t, s[g][t] += vpmaddwd(w[g][c], a[t] pair c broadcast). In assembly so that the 8 sums stay in
// registers with no copies between steps (the compiler's own loop added a register move per sum and step).
static_assert(kRecQ8 == 544, "q8_block hard-codes the second row group's offset");
inline void q8_block(const uint8_t *rec, const uint8_t *const *ai, __m256i *s0, __m256i *s1) {
    __m256i a00 = s0[0], a01 = s0[1], a02 = s0[2], a03 = s0[3], a10 = s1[0], a11 = s1[1], a12 = s1[2], a13 = s1[3];
    __m256i w0, w1, ab, tp;
    __asm__(".irp c, 0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15\n\t"
            "vmovdqa (32 * \\c)(%[w]), %[w0]\n\t"
            "vmovdqa (0x220 + 32 * \\c)(%[w]), %[w1]\n\t"
#define NEOX_Q8_TOK(P, S0, S1)                                                                                         \
            "vpbroadcastd (4 * \\c)(%[" P "]), %[ab]\n\t"                                                          \
            "vpmaddwd %[ab], %[w0], %[tp]\n\t"                                                                        \
            "vpaddd %[tp], %[" S0 "], %[" S0 "]\n\t"                                                                     \
            "vpmaddwd %[ab], %[w1], %[ab]\n\t"                                                                        \
            "vpaddd %[ab], %[" S1 "], %[" S1 "]\n\t"
            NEOX_Q8_TOK("p0", "s00", "s10") NEOX_Q8_TOK("p1", "s01", "s11") NEOX_Q8_TOK("p2", "s02", "s12")
            NEOX_Q8_TOK("p3", "s03", "s13")
#undef NEOX_Q8_TOK
            ".endr"
            : [s00] "+x"(a00), [s01] "+x"(a01), [s02] "+x"(a02), [s03] "+x"(a03), [s10] "+x"(a10), [s11] "+x"(a11),
              [s12] "+x"(a12), [s13] "+x"(a13), [w0] "=&x"(w0), [w1] "=&x"(w1), [ab] "=&x"(ab), [tp] "=&x"(tp)
            : [w] "r"(rec), [p0] "r"(ai[0]), [p1] "r"(ai[1]), [p2] "r"(ai[2]), [p3] "r"(ai[3])
            : "memory");
    s0[0] = a00, s0[1] = a01, s0[2] = a02, s0[3] = a03, s1[0] = a10, s1[1] = a11, s1[2] = a12, s1[3] = a13;
}

// The same for the Q4_0 2 x 4 tile (8 groups c of 4 elements): s[g][t] += vpmaddubsw(a[t] group c + 128
// broadcast, w[g][c]), i16 lanes.
static_assert(kRecQ4 == 320, "q4_block hard-codes the second row group's offset");
inline void q4_block(const uint8_t *rec, const uint8_t *const *ai, __m256i *s0, __m256i *s1) {
    __m256i a00 = s0[0], a01 = s0[1], a02 = s0[2], a03 = s0[3], a10 = s1[0], a11 = s1[1], a12 = s1[2], a13 = s1[3];
    __m256i w0, w1, ab, tp;
    __asm__(".irp c, 0, 1, 2, 3, 4, 5, 6, 7\n\t"
            "vmovdqa (32 * \\c)(%[w]), %[w0]\n\t"
            "vmovdqa (0x140 + 32 * \\c)(%[w]), %[w1]\n\t"
#define NEOX_Q4_TOK(P, S0, S1)                                                                                         \
            "vpbroadcastd (4 * \\c)(%[" P "]), %[ab]\n\t"                                                          \
            "vpmaddubsw %[w0], %[ab], %[tp]\n\t"                                                                      \
            "vpaddw %[tp], %[" S0 "], %[" S0 "]\n\t"                                                                     \
            "vpmaddubsw %[w1], %[ab], %[ab]\n\t"                                                                      \
            "vpaddw %[ab], %[" S1 "], %[" S1 "]\n\t"
            NEOX_Q4_TOK("p0", "s00", "s10") NEOX_Q4_TOK("p1", "s01", "s11") NEOX_Q4_TOK("p2", "s02", "s12")
            NEOX_Q4_TOK("p3", "s03", "s13")
#undef NEOX_Q4_TOK
            ".endr"
            : [s00] "+x"(a00), [s01] "+x"(a01), [s02] "+x"(a02), [s03] "+x"(a03), [s10] "+x"(a10), [s11] "+x"(a11),
              [s12] "+x"(a12), [s13] "+x"(a13), [w0] "=&x"(w0), [w1] "=&x"(w1), [ab] "=&x"(ab), [tp] "=&x"(tp)
            : [w] "r"(rec), [p0] "r"(ai[0]), [p1] "r"(ai[1]), [p2] "r"(ai[2]), [p3] "r"(ai[3])
            : "memory");
    s0[0] = a00, s0[1] = a01, s0[2] = a02, s0[3] = a03, s1[0] = a10, s1[1] = a11, s1[2] = a12, s1[3] = a13;
}

// R row groups x TT tokens over kb packed blocks. a[t]: the token's activation dwords at the chunk's
// first block (its prep row: Q4_0 bytes, Q8_0 i16), dy[t] its f32 scales there; y[t]: the
// token's outputs for the 16 rows; nv valid rows. The running f32 sums live in a small stack array
// (loaded, FMA'd and stored once per block): with AVX2's 16 vector registers, the R * TT integer block
// sums, the weight vectors and the broadcast already fill the register file, and keeping the float sums
// in registers too made the compiler spill every product. The partial tiles' loop over a block's element
// groups is not unrolled, for the same reason; the full 2 x 4 tile uses q8_block / q4_block.
template <typename T, int R, int TT>
void tile(int64_t kb, const uint8_t *pk, const uint8_t *const *a, const float *const *dy, float *const *y, int nv,
          bool first) {
    alignas(32) float accm[R][TT][8];
    #pragma GCC unroll 2
    for (int g = 0; g < R; g++)
        #pragma GCC unroll 4
        for (int t = 0; t < TT; t++)
            _mm256_store_ps(accm[g][t], first ? _mm256_setzero_ps() : load_rows(y[t] + 8 * g, nv - 8 * g));
    const __m256i ones16 = _mm256_set1_epi16(1);
    for (int64_t i = 0; i < kb; i++) {
        const uint8_t *rec = pk + size_t(2 * i) * T::rec;
        __m256i s[R][TT];
        #pragma GCC unroll 2
        for (int g = 0; g < R; g++)
            #pragma GCC unroll 4
            for (int t = 0; t < TT; t++) s[g][t] = _mm256_setzero_si256();
        const uint8_t *ai[TT];
        #pragma GCC unroll 4
        for (int t = 0; t < TT; t++) ai[t] = a[t] + i * (4 * T::steps);
        if constexpr (R == 2 && TT == 4) {
            if constexpr (T::q4) q4_block(rec, ai, s[0], s[1]);
            else q8_block(rec, ai, s[0], s[1]);
        } else
        #pragma GCC unroll 1
        for (int c = 0; c < T::steps; c++) {
            __m256i wv[R];
            #pragma GCC unroll 2
            for (int g = 0; g < R; g++) wv[g] = _mm256_load_si256(reinterpret_cast<const __m256i *>(rec + g * T::rec + 32 * c));
            #pragma GCC unroll 4
            for (int t = 0; t < TT; t++) {
                int32_t a4;
                __builtin_memcpy(&a4, ai[t] + 4 * c, 4);
                const __m256i ab = _mm256_set1_epi32(a4);
                #pragma GCC unroll 2
                for (int g = 0; g < R; g++) {
                    if constexpr (T::q4)
                        s[g][t] = _mm256_add_epi16(s[g][t], _mm256_maddubs_epi16(ab, wv[g]));
                    else
                        s[g][t] = _mm256_add_epi32(s[g][t], _mm256_madd_epi16(wv[g], ab));
                }
            }
        }
        #pragma GCC unroll 2
        for (int g = 0; g < R; g++) {
            const __m256 dw = _mm256_load_ps(reinterpret_cast<const float *>(rec + g * T::rec + 32 * T::steps));
            #pragma GCC unroll 4
            for (int t = 0; t < TT; t++) {
                __m256i is = s[g][t];
                if constexpr (T::q4)
                    is = _mm256_sub_epi32(_mm256_madd_epi16(is, ones16),
                                          _mm256_load_si256(reinterpret_cast<const __m256i *>(rec + g * T::rec + 288)));
                _mm256_store_ps(accm[g][t], _mm256_fmadd_ps(_mm256_cvtepi32_ps(is), _mm256_mul_ps(dw, _mm256_set1_ps(dy[t][i])),
                                                            _mm256_load_ps(accm[g][t])));
            }
        }
    }
    #pragma GCC unroll 2
    for (int g = 0; g < R; g++)
        #pragma GCC unroll 4
        for (int t = 0; t < TT; t++) store_rows(y[t] + 8 * g, _mm256_load_ps(accm[g][t]), nv - 8 * g);
}

template <typename T, int R>
void tile_n(int tt, int64_t kb, const uint8_t *pk, const uint8_t *const *a, const float *const *dy, float *const *y,
            int nv, bool first) {
    switch (tt) {
    case 1: return tile<T, R, 1>(kb, pk, a, dy, y, nv, first);
    case 2: return tile<T, R, 2>(kb, pk, a, dy, y, nv, first);
    case 3: return tile<T, R, 3>(kb, pk, a, dy, y, nv, first);
    default: return tile<T, R, kTok>(kb, pk, a, dy, y, nv, first);
    }
}

// Blocks per K-chunk of the prompt kernel: at most T::chunk, and 2 records per block must fit the work
// area after aligning its start (Q4_0: gemm_work_bytes(n) >= 640 bytes per block + 64, always room). A
// Q8_0 weight of one block (n = 32) has no room for one (0): the decode kernel gives the same results
// (module contract).
template <typename T> int64_t chunk_blocks(int64_t n) {
    const int64_t fit = int64_t((gemm_work_bytes(n) - 32) / (2 * T::rec));
    return fit < T::chunk ? fit : T::chunk;
}

// The prompt kernel over n_rows rows, 16 at a time: pack(g, b0, kb, pk) puts blocks [b0, b0 + kb) of
// rows g..g+15 in pk (pack_chunk's records), then every token tile runs over them.
template <typename T, typename Pack>
void prompt(int64_t n, int64_t n_rows, int64_t kc, const Pack &pack, const void *prep, size_t prep_stride,
            int64_t n_tok, float *y, size_t y_stride, void *work) {
    const int64_t nb = n / 32;
    uint8_t *pk = reinterpret_cast<uint8_t *>((reinterpret_cast<uintptr_t>(work) + 31) & ~uintptr_t(31));
    const uint8_t *pa = static_cast<const uint8_t *>(prep);
    for (int64_t g = 0; g < n_rows; g += 16) {
        const int nv = int(n_rows - g < 16 ? n_rows - g : 16);
        for (int64_t b0 = 0; b0 < nb; b0 += kc) {
            const int64_t kb = nb - b0 < kc ? nb - b0 : kc;
            pack(g, b0, kb, pk);
            for (int64_t t0 = 0; t0 < n_tok; t0 += kTok) {
                const int tt = int(n_tok - t0 < kTok ? n_tok - t0 : kTok);
                const uint8_t *a[kTok];
                const float *dy[kTok];
                float *yo[kTok];
                for (int t = 0; t < tt; t++) {
                    const uint8_t *p = pa + (t0 + t) * prep_stride;
                    a[t] = p + b0 * 32 * T::act_bytes;
                    dy[t] = reinterpret_cast<const float *>(p + n * T::act_bytes) + b0;
                    yo[t] = y + (t0 + t) * y_stride + g;
                }
                if (nv > 8) tile_n<T, 2>(tt, kb, pk, a, dy, yo, nv, b0 == 0);
                else tile_n<T, 1>(tt, kb, pk, a, dy, yo, nv, b0 == 0);
            }
        }
    }
}

template <typename T>
void gemm(int64_t n, const void *wv, size_t row_bytes, int64_t n_rows, const void *act, size_t act_stride,
          const void *prep, size_t prep_stride, int64_t n_tok, float *y, size_t y_stride, void *work) {
    const int64_t nb = n / 32;
    const uint8_t *w = static_cast<const uint8_t *>(wv);
    const int64_t kc = prep ? chunk_blocks<T>(n) : 0;
    if (kc < 1) return decode_rows<T>(nb, w, row_bytes, n_rows, static_cast<const uint8_t *>(act), act_stride, n_tok, y, y_stride);
    auto pack = [&](int64_t g, int64_t b0, int64_t kb, uint8_t *pk) {
        const int nv = int(n_rows - g < 16 ? n_rows - g : 16);
        const uint8_t *rp[16];
        for (int r = 0; r < 16; r++) rp[r] = w + size_t(g + (r < nv ? r : nv - 1)) * row_bytes;
        pack_chunk<T>(rp, b0, kb, pk);
    };
    prompt<T>(n, n_rows, kc, pack, prep, prep_stride, n_tok, y, y_stride, work);
}

// ---- Q4_0 repacked at load (packed-layout.h's x16 layout, shared with the AVX-512 path) ----
// Rows 0-7 of a group are the low 32 bytes of each 64-byte vector, rows 8-15 the high 32 bytes: one
// 32-byte load gives 8 rows' nibble dwords, row r in lane r, so the block sums come out one row per lane
// with no transpose (decode) and the prompt records are an AND / shift away (pack_chunk_q4x16).

// y[r] (16 rows) = the packed group grp against one Q8_0 activation row: per block and half h, the 8
// vpmaddubsw of nibbles (u8 0..15) x activation dwords (|pair| <= 2 * 15 * 128 = 3840) are summed in
// i16 (<= 8 * 3840 = 30720 < 32767), vpmaddwd gives each row's i32 dot, less 8 * sum(a): the exact
// isum_b, then the same per-block FMA as decode4. No software prefetch: the groups are one run of memory
// the hardware prefetchers follow (one thread: 26.5-28 GB/s without, 20-21 with one at this pace).
void decode_group_q4x16(int64_t nb, const uint8_t *grp, const block_q8_0 *a, float *y) {
    const __m256i m4 = _mm256_set1_epi8(0x0F), ones16 = _mm256_set1_epi16(1), e8 = _mm256_set1_epi8(8);
    __m256 acc0 = _mm256_setzero_ps(), acc1 = _mm256_setzero_ps();
    for (int64_t ib = 0; ib < nb; ib++) {
        const __m256i av = load32(a[ib].qs);
        // 8 * sum(a) in every lane
        __m256i sa = _mm256_madd_epi16(_mm256_maddubs_epi16(e8, av), ones16);
        sa = _mm256_add_epi32(sa, _mm256_permute2x128_si256(sa, sa, 0x01));
        sa = _mm256_add_epi32(sa, _mm256_shuffle_epi32(sa, _MM_SHUFFLE(1, 0, 3, 2)));
        sa = _mm256_add_epi32(sa, _mm256_shuffle_epi32(sa, _MM_SHUFFLE(2, 3, 0, 1)));
        int32_t ad[8];
        __builtin_memcpy(ad, a[ib].qs, 32);
        const uint8_t *q = grp + x16_quants_at<true>(ib), *sc = grp + x16_scales_at<true>(ib);
        __m256i s16[2];
        #pragma GCC unroll 2
        for (int h = 0; h < 2; h++) {
            __m256i s = _mm256_setzero_si256();
            #pragma GCC unroll 4
            for (int v = 0; v < 4; v++) {
                const __m256i x = _mm256_load_si256(reinterpret_cast<const __m256i *>(q + 64 * v + 32 * h));
                s = _mm256_add_epi16(s, _mm256_maddubs_epi16(_mm256_and_si256(x, m4), _mm256_set1_epi32(ad[v])));
                s = _mm256_add_epi16(s, _mm256_maddubs_epi16(_mm256_and_si256(_mm256_srli_epi16(x, 4), m4),
                                                             _mm256_set1_epi32(ad[4 + v])));
            }
            s16[h] = s;
        }
        const __m256 da = _mm256_set1_ps(h2f(a[ib].d));
        const __m256 dw0 = _mm256_cvtph_ps(_mm_load_si128(reinterpret_cast<const __m128i *>(sc)));
        const __m256 dw1 = _mm256_cvtph_ps(_mm_load_si128(reinterpret_cast<const __m128i *>(sc + 16)));
        const __m256i i0 = _mm256_sub_epi32(_mm256_madd_epi16(s16[0], ones16), sa);
        const __m256i i1 = _mm256_sub_epi32(_mm256_madd_epi16(s16[1], ones16), sa);
        acc0 = _mm256_fmadd_ps(_mm256_cvtepi32_ps(i0), _mm256_mul_ps(dw0, da), acc0);
        acc1 = _mm256_fmadd_ps(_mm256_cvtepi32_ps(i1), _mm256_mul_ps(dw1, da), acc1);
    }
    _mm256_storeu_ps(y, acc0);
    _mm256_storeu_ps(y + 8, acc1);
}

// pack_chunk's records for blocks [b0, b0 + kb) of a packed group: vector c < 4 of row group g is the
// low nibbles of the layout's vector c (its half g) less 8, vector c + 4 the high nibbles less 8.
void pack_chunk_q4x16(const uint8_t *grp, int64_t b0, int64_t kb, uint8_t *pk) {
    const __m256i m4 = _mm256_set1_epi8(0x0F), eight = _mm256_set1_epi8(8);
    const __m256i ones8 = _mm256_set1_epi8(1), ones16 = _mm256_set1_epi16(1);
    for (int64_t i = 0; i < kb; i++) {
        const int64_t ib = b0 + i;
        const uint8_t *q = grp + x16_quants_at<true>(ib), *sc = grp + x16_scales_at<true>(ib);
        for (int g = 0; g < 2; g++) {
            uint8_t *rec = pk + size_t(2 * i + g) * kRecQ4;
            __m256i sum = _mm256_setzero_si256();
            #pragma GCC unroll 4
            for (int v = 0; v < 4; v++) {
                const __m256i x = _mm256_load_si256(reinterpret_cast<const __m256i *>(q + 64 * v + 32 * g));
                const __m256i lo = _mm256_sub_epi8(_mm256_and_si256(x, m4), eight);
                const __m256i hi = _mm256_sub_epi8(_mm256_and_si256(_mm256_srli_epi16(x, 4), m4), eight);
                _mm256_store_si256(reinterpret_cast<__m256i *>(rec + 32 * v), lo);
                _mm256_store_si256(reinterpret_cast<__m256i *>(rec + 32 * (v + 4)), hi);
                sum = _mm256_add_epi32(sum, _mm256_madd_epi16(_mm256_maddubs_epi16(ones8, lo), ones16));
                sum = _mm256_add_epi32(sum, _mm256_madd_epi16(_mm256_maddubs_epi16(ones8, hi), ones16));
            }
            _mm256_store_si256(reinterpret_cast<__m256i *>(rec + 288), _mm256_slli_epi32(sum, 7));
            _mm256_store_ps(reinterpret_cast<float *>(rec + 256),
                            _mm256_cvtph_ps(_mm_load_si128(reinterpret_cast<const __m128i *>(sc + 16 * g))));
        }
    }
}

// gemm over packed groups (n_rows % 16 == 0, w = the first group, gb = the group stride).
void gemm_q4x16(int64_t n, const void *wv, size_t gb, int64_t n_rows, const void *act, size_t act_stride,
                const void *prep, size_t prep_stride, int64_t n_tok, float *y, size_t y_stride, void *work) {
    const int64_t nb = n / 32;
    const uint8_t *w = static_cast<const uint8_t *>(wv);
    const int64_t kc = prep ? chunk_blocks<q4_traits>(n) : 0;
    if (kc < 1) {
        for (int64_t g = 0; g < n_rows; g += 16) {
            const uint8_t *grp = w + size_t(g / 16) * gb;
            for (int64_t t = 0; t < n_tok; t++)
                decode_group_q4x16(nb, grp, reinterpret_cast<const block_q8_0 *>(static_cast<const uint8_t *>(act) + t * act_stride),
                                   y + t * y_stride + g);
        }
        return;
    }
    auto pack = [&](int64_t g, int64_t b0, int64_t kb, uint8_t *pk) { pack_chunk_q4x16(w + size_t(g / 16) * gb, b0, kb, pk); };
    prompt<q4_traits>(n, n_rows, kc, pack, prep, prep_stride, n_tok, y, y_stride, work);
}

// Q8_0 activation row -> [n activations][n/32 f32 scales]: a as i16 (Q8_0 weights: the prompt kernel
// broadcasts i16 pairs, and widening once per token here is cheaper than once per 16 rows) or a + 128 as
// u8 (Q4_0).
template <typename T> void prep(int64_t n, const void *av, void *out) {
    const block_q8_0 *x = static_cast<const block_q8_0 *>(av);
    uint8_t *q = static_cast<uint8_t *>(out);
    float *d = reinterpret_cast<float *>(q + n * T::act_bytes);
    for (int64_t ib = 0; ib < n / 32; ib++) {
        if constexpr (T::q4) {
            _mm256_storeu_si256(reinterpret_cast<__m256i *>(q + ib * 32), _mm256_xor_si256(load32(x[ib].qs), _mm256_set1_epi8(-128)));
        } else {
            #pragma GCC unroll 2
            for (int h = 0; h < 2; h++)
                _mm256_storeu_si256(reinterpret_cast<__m256i *>(q + ib * 64 + 32 * h),
                                    _mm256_cvtepi8_epi16(_mm_loadu_si128(reinterpret_cast<const __m128i *>(x[ib].qs + 16 * h))));
        }
        const float s = h2f(x[ib].d);
        __builtin_memcpy(d + ib, &s, 4);
    }
}
template <typename T> size_t prep_size(int64_t n) { return size_t(n) * T::act_bytes + 4 * size_t(n / 32); }

} // namespace

void fill_gemm_avx2(kernels &k) {
    k.traits[GPTNEOX_TYPE_Q8_0].gemm = gemm<q8_traits>;
    k.traits[GPTNEOX_TYPE_Q8_0].gemm_prep = prep<q8_traits>;
    k.traits[GPTNEOX_TYPE_Q8_0].gemm_prep_size = prep_size<q8_traits>;
    k.traits[GPTNEOX_TYPE_Q8_0].gemm_min_tokens = 4;
    k.traits[GPTNEOX_TYPE_Q4_0].gemm = gemm<q4_traits>;
    k.traits[GPTNEOX_TYPE_Q4_0].gemm_prep = prep<q4_traits>;
    k.traits[GPTNEOX_TYPE_Q4_0].gemm_prep_size = prep_size<q4_traits>;
    k.traits[GPTNEOX_TYPE_Q4_0].gemm_min_tokens = 4;
    k.traits[GPTNEOX_TYPE_Q4_0].packed_layout = kPackedQ4x16;
    k.traits[GPTNEOX_TYPE_Q4_0].packed_group_bytes = x16_group_bytes<true>;
    k.traits[GPTNEOX_TYPE_Q4_0].repack = repack_x16_ref<true>;
    k.traits[GPTNEOX_TYPE_Q4_0].gemm_packed = gemm_q4x16;
}

} // namespace gptneox
