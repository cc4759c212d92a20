// Blocked attention of prompt blocks on AMX-BF16 tiles (kernels.attn_block on GPTNEOX_KERNELS_AMX): blocks
// of 2..32 queries over F16 K / V rows with a head dim that is a multiple of 32 (up to 256), where the
// caller allows bf16 operands (attn_block_args::bf16: the model's prompt matmuls round their activations
// to bf16 already; an F32 or F16 model keeps f32 attention). Everything else -- a decode step's single
// query, Q8_0 rows, other head dims -- goes to the AVX-512 kernel
// (attention-avx512.cpp), whose f32 FMAs cost ~23 cycles per (query, key) pair of a rinna head; here the
// products run on the tile unit and what is left is conversion and the softmax's exp.
//
// Arithmetic (the statement attention_test checks against a double-precision definition, with the bound
// of bf16 operands): q, k, v and the softmax weights p are rounded to bf16 (nearest-even), the products
// summed in f32 by TDPBF16PS:
//   scores: S^T = K Q^T per 32 dims of the head, tiles of 16 keys x 16 queries (K rows are the A operand
//           as stored, Q is laid out once per block as the B operand); then times scale;
//   softmax: per query, over its visible keys in ascending order (max, then exp(s - max) summed, then
//           p = e / sum), on f32 lanes = queries, so no transposes and no horizontal reductions;
//   values: O = P V per 32 keys (P rows = queries, the A operand: each 32 keys x 16 queries of weights
//           transposed once; V rows interleaved in pairs, the B operand), summed in the C tiles over the
//           key range in ascending chunks of 32 aligned to key 0.
// A query's result depends only on its own row of Q, its visibility bits and the rows it sees: not on
// the block's other queries nor on [k0, k1) (keys it does not see add exact zeros), so any split of a
// prompt into blocks of 2+ queries gives the same bits. A block of one query is the AVX-512 kernel's: in
// f32, different in the last bits, as the AMX matmuls' prompt batches differ from their decode steps.
//
// Tiles: scores A0, A1 = 16 keys each, B0, B1 = 16 queries each, C[a][b] = 4 + 2a + b; values A0, A1 =
// the weights of 16 queries each, B0, B1 = two 16-dim tiles of V, C[a][b] = queries a x dims b.
#pragma GCC target("avx512bf16")
#include <immintrin.h>

#include <cstddef>
#include <cstdint>
#include <cstring>

#include "kernels/amx-tiles.h"
#include "kernels/attention-groups.h"
#include "kernels/exp-avx512.h"
#include "kernels/kernels-impl.h"

#pragma GCC diagnostic ignored "-Wuninitialized" // GCC 12 AVX-512 headers, see kernels-avx512.cpp
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"

namespace gptneox {
namespace {

constexpr int kChunk = 32;      // keys per chunk: one bf16 tile row (the K dimension of P V)
constexpr int64_t kMaxHd = 256; // head dims up to this many (8 chunks of 32)
constexpr size_t kTile = 1024;

// 32 f16 at src -> 32 bf16
inline __m512i bf16_of_f16(const uint8_t *src) {
    const __m512 lo = _mm512_cvtph_ps(_mm256_loadu_si256(reinterpret_cast<const __m256i *>(src)));
    const __m512 hi = _mm512_cvtph_ps(_mm256_loadu_si256(reinterpret_cast<const __m256i *>(src + 32)));
    const __m512bh h = _mm512_cvtne2ps_pbh(hi, lo);
    return reinterpret_cast<const __m512i &>(h);
}

// Two rows of 16 f32 (a, b) as bf16 pairs: dword l = (a[l], b[l]).
inline __m512i pairs(__m512 a, __m512 b) {
    const __m512bh h = _mm512_cvtne2ps_pbh(b, a); // words 0-15 a, 16-31 b
    const __m512i inter = _mm512_setr_epi32(0x00100000, 0x00110001, 0x00120002, 0x00130003, 0x00140004, 0x00150005,
                                            0x00160006, 0x00170007, 0x00180008, 0x00190009, 0x001A000A, 0x001B000B,
                                            0x001C000C, 0x001D000D, 0x001E000E, 0x001F000F);
    return _mm512_permutexvar_epi16(inter, reinterpret_cast<const __m512i &>(h));
}

// r[i] dword l -> r[l] dword i: at each scale b = 8, 4, 2, 1 the off-diagonal b x b blocks swap (row i
// keeps its lanes l without bit b and takes row i + b's lanes l - b; row i + b takes row i's l + b).
template <int B> inline void swap_blocks(__m512i r[16]) {
    const __m512i l = _mm512_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15);
    const __mmask16 has_b = _mm512_test_epi32_mask(l, _mm512_set1_epi32(B));
    const __m512i lo = _mm512_mask_add_epi32(l, has_b, l, _mm512_set1_epi32(16 - B)); // l or 16 + l - B
    const __m512i hi = _mm512_mask_add_epi32(_mm512_add_epi32(l, _mm512_set1_epi32(B)), has_b, l,
                                             _mm512_set1_epi32(16)); // l + B or 16 + l
    #pragma GCC unroll 16
    for (int i = 0; i < 16; i++) {
        if (i & B) continue;
        const __m512i x = r[i], y = r[i + B];
        r[i] = _mm512_permutex2var_epi32(x, lo, y);
        r[i + B] = _mm512_permutex2var_epi32(x, hi, y);
    }
}
inline void transpose16(__m512i r[16]) {
    swap_blocks<8>(r);
    swap_blocks<4>(r);
    swap_blocks<2>(r);
    swap_blocks<1>(r);
}

void configure() {
    tile_config c;
    for (int t = 0; t < 8; t++) c.colsb[t] = 64, c.rows[t] = 16;
    load_tile_config(c);
}

// The work area (attn_work_floats): tiles first, then the scores and the weights' tiles.
struct layout {
    uint8_t *qt;  // [2][nch] tiles: B operand of the scores, line p = dims 2p, 2p+1 of chunk c, dword i = query
    uint8_t *kt;  // [2][nch] tiles: 16 keys x 32 dims each, the current 32 keys
    uint8_t *vp;  // [2] tiles: V of the current 32 keys, two 16-dim tiles, line p = keys 2p, 2p+1
    float *ob;    // one C tile for a partial query tile's output
    float *st;    // [ns][32]: key j's scores (then exp) for the 32 queries
    uint8_t *pt;  // [ns / 32][2] tiles: the weights, row i = query, 32 keys
};
layout lay_out(float *work, int64_t hd, int64_t ns) {
    const size_t nch = size_t(hd / 32);
    uint8_t *b = reinterpret_cast<uint8_t *>(work);
    layout l;
    l.qt = b;
    l.kt = l.qt + 2 * nch * kTile;
    l.vp = l.kt + 2 * nch * kTile;
    l.ob = reinterpret_cast<float *>(l.vp + 2 * kTile);
    l.st = work + size_t(hd + 16) * (16 + kAttnMaxQ); // past attn_work_floats' first term
    l.pt = reinterpret_cast<uint8_t *>(l.st + size_t(ns) * 32);
    return l;
}

void attn_tiles(const attn_block_args &a) {
    const int64_t hd = a.hd, nch = hd / 32;
    const int nq = a.n_q, nqt = nq > 16 ? 2 : 1;
    const uint32_t qmask = attn_groups::query_mask(nq);
    int64_t g0, g1;
    attn_groups::range<kChunk>(a, &g0, &g1);
    const int64_t ns = g1 - g0;
    const layout l = lay_out(a.work, hd, ns);

    // ---- Q as the scores' B operand (queries past n_q: zeros). In a prompt the Q rows (the QKV matmul's
    // output) and the output rows are cold and few per call: both are asked for ahead (single thread, rinna
    // q8_0 pp512, bench/phase_profile.py's attention: 0.70 ms/token with neither, 0.44-0.50 with both,
    // 0.53-0.59 without the Q rows'; a prefetch of the next keys' K or V rows measured no gain).
    for (int i = 0; i < nq; i++)
        for (int64_t e = 0; e < hd; e += 16)
            _mm_prefetch(reinterpret_cast<const char *>(a.q + size_t(i) * a.q_stride + e), _MM_HINT_T0);
    std::memset(l.qt, 0, 2 * size_t(nch) * kTile);
    for (int i = 0; i < nq; i++) {
        const float *q = a.q + size_t(i) * a.q_stride;
        for (int64_t c = 0; c < nch; c++) {
            alignas(64) uint32_t d[16];
            const __m512bh h = _mm512_cvtne2ps_pbh(_mm512_loadu_ps(q + 32 * c + 16), _mm512_loadu_ps(q + 32 * c));
            _mm512_store_si512(d, reinterpret_cast<const __m512i &>(h));
            uint32_t *tile = reinterpret_cast<uint32_t *>(l.qt + size_t((i / 16) * nch + c) * kTile);
            for (int p = 0; p < 16; p++) tile[16 * p + i % 16] = d[p];
        }
    }

    configure();
    // ---- scores, 32 keys at a time: S^T tiles into st
    alignas(64) uint32_t w[kChunk];
    for (int64_t g = g0; g < g1; g += kChunk) {
        float *sg = l.st + size_t(g - g0) * 32;
        if (!attn_groups::visibility<kChunk>(a, g, qmask, w)) continue; // (softmax masks these rows)
        for (int m = 0; m < kChunk; m++) {
            uint8_t *row = l.kt + size_t((m / 16) * nch) * kTile + 64 * size_t(m % 16);
            const uint8_t *src = a.k + size_t(g + m) * a.k_stride;
            for (int64_t c = 0; c < nch; c++)
                _mm512_store_si512(row + size_t(c) * kTile, w[m] ? bf16_of_f16(src + 64 * c) : _mm512_setzero_si512());
        }
        __asm__ volatile("" ::: "memory"); // (tileloadd's asm declares no memory input)
        _tile_zero(4);
        _tile_zero(6);
        if (nqt == 2) {
            _tile_zero(5);
            _tile_zero(7);
        }
        for (int64_t c = 0; c < nch; c++) {
            _tile_loadd(0, l.kt + size_t(c) * kTile, 64);
            _tile_loadd(1, l.kt + size_t(nch + c) * kTile, 64);
            _tile_loadd(2, l.qt + size_t(c) * kTile, 64);
            _tile_dpbf16ps(4, 0, 2);
            _tile_dpbf16ps(6, 1, 2);
            if (nqt == 2) {
                _tile_loadd(3, l.qt + size_t(nch + c) * kTile, 64);
                _tile_dpbf16ps(5, 0, 3);
                _tile_dpbf16ps(7, 1, 3);
            }
        }
        _tile_stored(4, sg, 128);
        _tile_stored(6, sg + 16 * 32, 128);
        if (nqt == 2) {
            _tile_stored(5, sg + 16, 128);
            _tile_stored(7, sg + 16 * 32 + 16, 128);
        }
    }

    // ---- softmax per query (lanes), keys in ascending order; rows nobody sees become zeros
    const __m512 ninf = _mm512_set1_ps(-__builtin_inff()), scale = _mm512_set1_ps(a.scale);
    auto seen = [&](int64_t j) -> uint32_t { return j >= a.k0 && j < a.k1 ? a.vis[j] & qmask : 0; };
    __m512 mx[2] = {ninf, ninf}, sum[2] = {_mm512_setzero_ps(), _mm512_setzero_ps()};
    for (int64_t j = g0; j < g1; j++) {
        const uint32_t s = seen(j);
        float *row = l.st + size_t(j - g0) * 32;
        for (int h = 0; h < nqt; h++) {
            const __m512 v = _mm512_mask_mul_ps(ninf, __mmask16(s >> (16 * h)), _mm512_load_ps(row + 16 * h), scale);
            _mm512_store_ps(row + 16 * h, v);
            mx[h] = _mm512_max_ps(mx[h], v);
        }
    }
    for (int64_t j = g0; j < g1; j++) {
        float *row = l.st + size_t(j - g0) * 32;
        for (int h = 0; h < nqt; h++) {
            const __m512 e = exp_ps(_mm512_sub_ps(_mm512_load_ps(row + 16 * h), mx[h])); // -inf, NaN: 0
            _mm512_store_ps(row + 16 * h, e);
            sum[h] = _mm512_add_ps(sum[h], e);
        }
    }
    __m512 inv[2];
    for (int h = 0; h < nqt; h++) {
        const __mmask16 some = _mm512_cmp_ps_mask(sum[h], _mm512_setzero_ps(), _CMP_GT_OQ);
        inv[h] = _mm512_maskz_div_ps(some, _mm512_set1_ps(1.0f), sum[h]);
    }
    // the weights of each 32 keys as the values' A tiles: rows of key pairs, then transposed
    for (int64_t g = g0; g < g1; g += kChunk) {
        const float *sg = l.st + size_t(g - g0) * 32;
        for (int h = 0; h < nqt; h++) {
            __m512i r[16];
            #pragma GCC unroll 16
            for (int p = 0; p < 16; p++)
                r[p] = pairs(_mm512_mul_ps(_mm512_load_ps(sg + 32 * (2 * p) + 16 * h), inv[h]),
                             _mm512_mul_ps(_mm512_load_ps(sg + 32 * (2 * p + 1) + 16 * h), inv[h]));
            transpose16(r);
            uint8_t *tile = l.pt + size_t((g - g0) / kChunk * 2 + h) * kTile;
            #pragma GCC unroll 16
            for (int i = 0; i < 16; i++) _mm512_store_si512(tile + 64 * i, r[i]);
        }
    }

    // ---- values: O = P V, two 16-dim tiles at a time over the key range (the output rows asked for first:
    // owned, so that the tile stores do not wait for them)
    for (int i = 0; i < nq; i++)
        for (int64_t e = 0; e < hd; e += 16) _m_prefetchw(a.out + size_t(i) * a.out_stride + e);
    for (int64_t d0 = 0; d0 < hd; d0 += 32) {
        __asm__ volatile("" ::: "memory");
        _tile_zero(4);
        _tile_zero(5);
        if (nqt == 2) {
            _tile_zero(6);
            _tile_zero(7);
        }
        for (int64_t g = g0; g < g1; g += kChunk) {
            if (!attn_groups::visibility<kChunk>(a, g, qmask, w)) continue; // (weights all zero)
            for (int p = 0; p < 16; p++) {
                __m512 v[2][2]; // [key 2p, 2p + 1][dims d0.., d0 + 16..]
                for (int e = 0; e < 2; e++) {
                    const int m = 2 * p + e;
                    const uint8_t *src = a.v + size_t(g + m) * a.v_stride + 2 * size_t(d0);
                    for (int t = 0; t < 2; t++) {
                        const __m256i *h = reinterpret_cast<const __m256i *>(src + 32 * t);
                        v[e][t] = w[m] ? _mm512_cvtph_ps(_mm256_loadu_si256(h)) : _mm512_setzero_ps();
                    }
                }
                _mm512_store_si512(l.vp + 64 * p, pairs(v[0][0], v[1][0]));
                _mm512_store_si512(l.vp + kTile + 64 * p, pairs(v[0][1], v[1][1]));
            }
            __asm__ volatile("" ::: "memory");
            const uint8_t *pg = l.pt + size_t((g - g0) / kChunk * 2) * kTile;
            _tile_loadd(0, pg, 64);
            _tile_loadd(2, l.vp, 64);
            _tile_loadd(3, l.vp + kTile, 64);
            _tile_dpbf16ps(4, 0, 2);
            _tile_dpbf16ps(5, 0, 3);
            if (nqt == 2) {
                _tile_loadd(1, pg + kTile, 64);
                _tile_dpbf16ps(6, 1, 2);
                _tile_dpbf16ps(7, 1, 3);
            }
        }
        // outputs: a full query tile straight to out, a partial one through ob
        const size_t os = a.out_stride * sizeof(float);
        for (int h = 0; h < nqt; h++) {
            const int rows = nq - 16 * h < 16 ? nq - 16 * h : 16;
            float *out = a.out + size_t(16 * h) * a.out_stride + d0;
            for (int t = 0; t < 2; t++) {
                float *dst = rows == 16 ? out + 16 * t : l.ob;
                const size_t stride = rows == 16 ? os : 64;
                if (h == 0 && t == 0) _tile_stored(4, dst, stride);
                if (h == 0 && t == 1) _tile_stored(5, dst, stride);
                if (h == 1 && t == 0) _tile_stored(6, dst, stride);
                if (h == 1 && t == 1) _tile_stored(7, dst, stride);
                if (rows < 16) {
                    __asm__ volatile("" ::: "memory");
                    for (int i = 0; i < rows; i++)
                        _mm512_storeu_ps(out + size_t(i) * a.out_stride + 16 * t, _mm512_load_ps(l.ob + 16 * i));
                }
            }
        }
    }
    _tile_release();
}

void attn_block(const attn_block_args &a) {
    const bool tiles = a.bf16 && a.n_q >= 2 && a.k_type == GPTNEOX_TYPE_F16 && a.v_type == GPTNEOX_TYPE_F16 &&
                       a.hd % 32 == 0 && a.hd <= kMaxHd;
    if (tiles) attn_tiles(a);
    else attn_block_avx512(a);
}

} // namespace

void fill_attention_amx(kernels &k) { k.attn_block = attn_block; }

} // namespace gptneox
