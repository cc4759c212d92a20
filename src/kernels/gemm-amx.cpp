// Q8_0 / Q4_0 prompt batches on AMX-INT8 tiles (GPTNEOX_KERNELS_AMX: the AVX-512 VNNI table with this
// gemm over the x16 layouts the loader repacks to). Compiled with AVX-512 + AMX flags; reached only
// through dispatch.cpp after the CPU reported AMX-INT8 and the OS granted the tile state.
//
// Same contract as every Q8_0-activation kernel (gemm-vnni.h): per output, for each block b in order,
//   acc = fma(float(isum_b), dw_b * dy_b, acc)
// with isum_b exact, so results are bit-identical to the VNNI kernels' (which take batches of fewer than
// 16 tokens: batching never changes logits). Here isum_b is one TDPBSSD (signed x signed) per block and
// 16 x 16 outputs: A = 16 tokens' signed activation bytes of the block (a 16 x 32-byte tile), B = the
// block's 16 weight rows in AMX's B layout (K/4 rows x 16 columns x 4 bytes: what packed-layout.h's
// vectors hold, Q8_0 with the sign bit flipped back, Q4_0 nibbles unpacked to q - 8), so no correction
// term is needed. A scale per 32 weights keeps K at 32 per tile product, and the f32 part (per 16
// outputs: convert, scale product, FMA) runs on AVX-512 beside the tiles; that part, not the tiles,
// bounds the kernel (bench/amx_overlap.cpp on a Xeon: per 16 x 16 x 32 block the tile part 11-12 ns, the
// f32 part 8.4, both 23-25: the tile and vector instructions do not overlap; the same block on AMX-BF16,
// whose f32 sums need no conversion, took 27-28). Two tile sets (A, B, C) alternate from block to
// block and each product is stored one block ahead of the FMAs that read it; the 16 tokens' f32 sums
// stay in zmm registers for the whole row.
//
// Data flow: matmul has gemm_pack write the tokens once per matmul as A tiles (each tile's 16 x 32 bytes
// per block, then its token scales per block as 16 floats). The tiles are taken in chunks of about
// kActBudget bytes (they stay in L2); per chunk, each 16-row group of the range once: its quants made
// signed and its scales widened to f32 in the work area while the next group is prefetched, then every
// tile of the chunk over all blocks. The weights stream from memory once per chunk.
//
// Tile operations go through a policy type: `hw` issues the instructions; `emulated` (used only by
// packed_test, on CPUs without AMX) computes the same operations in scalar code on its own storage,
// so the test checks this file's layouts and loops anywhere AVX-512 VNNI runs.
#include <immintrin.h>

#include <cstddef>
#include <cstring>
#include <initializer_list>
#include <type_traits>

#include "kernels/amx-tiles.h"
#include "kernels/gemm-vnni.h"
#include "kernels/packed-layout.h"

namespace gptneox {
namespace {

constexpr int kTileTok = 16; // tokens per A / C tile (the tile's rows)
constexpr int kTileK = 32;   // one block: bytes per A tile row, B tile rows x 4
constexpr size_t kActBudget = size_t(1) << 20; // bytes of A tiles per chunk (L2 is 2 MiB on the Xeons we met)
constexpr int kLag = 1;                        // blocks between a product's store and its FMAs

// The tiles: A 16 rows x 32 bytes, B 8 rows x 64 bytes, C 16 x 64; tile set s is A, B, C = tiles 3s,
// 3s + 1, 3s + 2.
tile_config make_config() {
    tile_config c;
    for (int s = 0; s < 2; s++) {
        c.colsb[3 * s] = kTileK, c.rows[3 * s] = kTileTok;
        c.colsb[3 * s + 1] = 64, c.rows[3 * s + 1] = kTileK / 4;
        c.colsb[3 * s + 2] = 64, c.rows[3 * s + 2] = kTileTok;
    }
    return c;
}

struct hw {
    explicit hw(const tile_config &c) { load_tile_config(c); }
    ~hw() { _tile_release(); }
    hw(const hw &) = delete;
    hw &operator=(const hw &) = delete;
    // out (16 rows x 64 bytes) = A (gemm_pack's 16 x 32 bytes, rows adjacent) x B from zero, on tile set
    // S (the intrinsics paste their tile number into the instruction text: literals). GCC 12's tileloadd
    // asm declares no memory input, so a compiler barrier first: every store to the bytes it reads (the
    // signed copy) is emitted before it. tilestored has its "memory" clobber.
    template <int S> void product(const void *a, const void *b, int32_t *out) {
        __asm__ volatile("" ::: "memory");
        if constexpr (S == 0) {
            _tile_loadd(0, a, kTileK);
            _tile_loadd(1, b, 64);
            _tile_zero(2);
            _tile_dpbssd(2, 0, 1);
            _tile_stored(2, out, 64);
        } else {
            _tile_loadd(3, a, kTileK);
            _tile_loadd(4, b, 64);
            _tile_zero(5);
            _tile_dpbssd(5, 3, 4);
            _tile_stored(5, out, 64);
        }
    }
};

// Scalar model of the same instructions (Intel SDM: TILELOADD, TDPBSSD, both operands signed).
struct emulated {
    explicit emulated(const tile_config &) {}
    template <int S> void product(const void *a, const void *b, int32_t *out) {
        const int8_t *pa = static_cast<const int8_t *>(a), *pb = static_cast<const int8_t *>(b);
        for (int m = 0; m < kTileTok; m++)
            for (int n = 0; n < 16; n++) {
                int32_t s = 0;
                for (int k = 0; k < kTileK / 4; k++)
                    for (int i = 0; i < 4; i++)
                        s += int32_t(pa[kTileK * m + 4 * k + i]) * int32_t(pb[64 * k + 4 * n + i]);
                out[16 * m + n] = s;
            }
    }
};

// Tiles per chunk for rows of n inputs: as many as Budget bytes of their activations (at least one).
template <size_t Budget> int64_t chunk_tiles(int64_t n) {
    const size_t tiles = Budget / (size_t(kTileTok) * size_t(n));
    return int64_t(tiles ? tiles : 1);
}

// The work area after its start is aligned to 64 bytes: one group's quants signed (16 n bytes), its f32
// scales (2 n), then kLag + 1 C buffers (1 KiB each).
struct work_layout {
    uint8_t *sq;
    float *dw;
    int32_t *c;
};
work_layout layout_of(void *work, int64_t n) {
    uint8_t *p = reinterpret_cast<uint8_t *>((reinterpret_cast<uintptr_t>(work) + 63) & ~uintptr_t(63));
    return {p, reinterpret_cast<float *>(p + 16 * size_t(n)), reinterpret_cast<int32_t *>(p + 18 * size_t(n))};
}
// (at least gemm_work_bytes: the same area goes to the VNNI kernels, for batches too small for a tile and
// for weights that are not repacked)
size_t work_bytes(int64_t n) {
    const size_t own = 64 + 18 * size_t(n) + 1024 * (kLag + 1);
    return own > gemm_work_bytes(n) ? own : gemm_work_bytes(n);
}

// gemm_pack's tile (kernels.h), made once per matmul: 16 tokens' activation bytes as A tiles, per block
// the 16 tokens' 32 bytes (16 n bytes), then their scales per block as [block][16 tokens] (2 n bytes);
// zeros for tokens past n_tok.
size_t pack_bytes(int64_t n) { return 18 * size_t(n); }
template <bool Q4>
void pack_tile(int64_t n, const uint8_t *prep, size_t prep_stride, int64_t n_tok, int64_t tile, uint8_t *out) {
    using T = std::conditional_t<Q4, vnni::q4_traits, vnni::q8_traits>;
    const int64_t nb = n / 32;
    float *dy = reinterpret_cast<float *>(out + 16 * size_t(n));
    for (int t = 0; t < kTileTok; t++) {
        const int64_t tok = kTileTok * tile + t;
        if (tok < n_tok) {
            const uint8_t *row = prep + size_t(tok) * prep_stride;
            const float *d = vnni::act_of(row, n).d;
            for (int64_t ib = 0; ib < nb; ib++) {
                // a Q8_0 block's 32 bytes in order; a Q4_0 block's halves where gemm_prep put them
                const int64_t lo = vnni::act_lo<T>(ib, nb);
                std::memcpy(out + 512 * ib + 32 * t, row + lo, 16);
                std::memcpy(out + 512 * ib + 32 * t + 16, row + lo + vnni::act_hi<T>(ib, nb), 16);
                dy[16 * ib + t] = d[ib];
            }
        } else {
            for (int64_t ib = 0; ib < nb; ib++) {
                std::memset(out + 512 * ib + 32 * t, 0, 32);
                dy[16 * ib + t] = 0.0f;
            }
        }
    }
}

// One packed group's quants as signed bytes in AMX's B layout (per block, 8 rows of 16 weight rows x 4
// elements: rows 0-3 elements 0-15, rows 4-7 elements 16-31), its f16 row scales as f32. Q8_0: the
// packed vectors are that layout already, with the sign bit flipped; Q4_0: vector v's low nibbles are
// elements 4v..4v+3, its high nibbles 16 + 4v.., each q - 8.
template <bool Q4> void sign_group(const uint8_t *grp, int64_t nb, uint8_t *sq, float *dw) {
    for (int64_t ib = 0; ib < nb; ib++) {
        const uint8_t *q = grp + x16_quants_at<Q4>(ib);
        uint8_t *o = sq + 512 * ib;
        if constexpr (Q4) {
            const __m512i lo4 = _mm512_set1_epi8(0x0F), eight = _mm512_set1_epi8(8);
            #pragma GCC unroll 4
            for (int v = 0; v < 4; v++) {
                const __m512i x = _mm512_load_si512(q + 64 * v);
                _mm512_store_si512(o + 64 * v, _mm512_sub_epi8(_mm512_and_si512(x, lo4), eight));
                const __m512i hi = _mm512_and_si512(_mm512_srli_epi16(x, 4), lo4);
                _mm512_store_si512(o + 64 * (4 + v), _mm512_sub_epi8(hi, eight));
            }
        } else {
            const __m512i flip = _mm512_set1_epi8(static_cast<char>(0x80));
            #pragma GCC unroll 8
            for (int v = 0; v < 8; v++)
                _mm512_store_si512(o + 64 * v, _mm512_xor_si512(_mm512_load_si512(q + 64 * v), flip));
        }
        const __m256i h = _mm256_load_si256(reinterpret_cast<const __m256i *>(grp + x16_scales_at<Q4>(ib)));
        _mm512_store_ps(dw + 16 * ib, _mm512_cvtph_ps(h));
    }
}

// pf: lines to prefetch into L2 (the next group's packed bytes), pf_step bytes of them per block; returns
// where the next tile goes on.
template <typename Tiles>
const uint8_t *token_tile(Tiles &tl, int64_t nb, const uint8_t *sq, const float *dw, const float *dy,
                          const uint8_t *a, int32_t *c, int m, float *y, size_t y_stride, const uint8_t *pf,
                          const uint8_t *pf_end, size_t pf_step) {
    __m512 acc[kTileTok];
    #pragma GCC unroll 16
    for (int t = 0; t < kTileTok; t++) acc[t] = _mm512_setzero_ps();
    // (the 16 sums are indexed by constants only -- loops unrolled, no lambda or pointer to them -- so they
    // stay in zmm registers: an addressable array would be stored and reloaded around every tilestored,
    // whose asm clobbers memory)
    // Block ib's product is stored kLag blocks before its FMAs read it (kLag + 1 C buffers in turn): the
    // loads then find the rows in L1, not waiting on the tile store.
    auto product = [&](int64_t ib) {
        int32_t *cc = c + 256 * (ib % (kLag + 1));
        if (ib & 1) tl.template product<1>(a + 512 * ib, sq + 512 * ib, cc);
        else tl.template product<0>(a + 512 * ib, sq + 512 * ib, cc);
    };
    for (int64_t ib = 0; ib < kLag && ib < nb; ib++) product(ib);
    for (int64_t ib = 0; ib < nb; ib++) {
        if (ib + kLag < nb) product(ib + kLag);
        for (size_t o = 0; o < pf_step && pf < pf_end; o += 64, pf += 64)
            _mm_prefetch(reinterpret_cast<const char *>(pf), _MM_HINT_T1);
        const int32_t *cc = c + 256 * (ib % (kLag + 1));
        const __m512 w = _mm512_load_ps(dw + 16 * ib);
        #pragma GCC unroll 16
        for (int t = 0; t < kTileTok; t++) {
            const __m512 s = _mm512_mul_ps(w, _mm512_set1_ps(dy[16 * ib + t]));
            acc[t] = _mm512_fmadd_ps(_mm512_cvtepi32_ps(_mm512_load_si512(cc + 16 * t)), s, acc[t]);
        }
    }
    #pragma GCC unroll 16
    for (int t = 0; t < kTileTok; t++)
        if (t < m) _mm512_storeu_ps(y + size_t(t) * y_stride, acc[t]);
    return pf;
}

// Fewer tokens than this: the VNNI kernels (a tile would be mostly empty).
constexpr int64_t kAmxMinTokens = 16;

template <bool Q4, typename Tiles, size_t Budget>
void gemm_x16(int64_t n, const void *wv, size_t gb, int64_t n_rows, const void *act, size_t act_stride,
             const void *prep_v, size_t prep_stride, int64_t n_tok, float *y, size_t y_stride, void *work) {
    // (from kAmxMinTokens on, matmul has made gemm_pack's tiles: act)
    if (n_tok < kAmxMinTokens || prep_v == nullptr || work == nullptr || act == nullptr)
        return (Q4 ? gemm_packed_q4_vnni : gemm_packed_q8_vnni)(n, wv, gb, n_rows, act, act_stride, prep_v, prep_stride,
                                                                n_tok, y, y_stride, work);
    const uint8_t *tiles = static_cast<const uint8_t *>(act);
    const int64_t nb = n / 32;
    const work_layout w = layout_of(work, n);
    const int64_t n_tiles = (n_tok + kTileTok - 1) / kTileTok, chunk = chunk_tiles<Budget>(n);
    Tiles tl(make_config());
    for (int64_t i0 = 0; i0 < n_tiles; i0 += chunk) {
        const int64_t i1 = i0 + chunk < n_tiles ? i0 + chunk : n_tiles;
        // while one group's tiles run, the next group's bytes are prefetched, evenly over the blocks
        const size_t pf_step = (gb / 64 + size_t((i1 - i0) * nb) - 1) / size_t((i1 - i0) * nb) * 64;
        for (int64_t g = 0; g < n_rows; g += 16) {
            const uint8_t *grp = static_cast<const uint8_t *>(wv) + size_t(g / 16) * gb;
            sign_group<Q4>(grp, nb, w.sq, w.dw);
            const uint8_t *pf = grp + gb, *pf_end = g + 16 < n_rows ? grp + 2 * gb : pf;
            for (int64_t i = i0; i < i1; i++) {
                const uint8_t *a = tiles + size_t(i) * act_stride;
                const int m = n_tok - kTileTok * i < kTileTok ? int(n_tok - kTileTok * i) : kTileTok;
                pf = token_tile(tl, nb, w.sq, w.dw, reinterpret_cast<const float *>(a + 16 * size_t(n)), a, w.c, m,
                                y + size_t(kTileTok * i) * y_stride + g, y_stride, pf, pf_end, pf_step);
            }
        }
    }
}

} // namespace

void fill_gemm_amx(kernels &k) {
    for (uint32_t t : {GPTNEOX_TYPE_Q4_0, GPTNEOX_TYPE_Q8_0}) {
        type_traits &tr = k.traits[t];
        tr.gemm_work_size = work_bytes;
        tr.gemm_pack = t == GPTNEOX_TYPE_Q4_0 ? pack_tile<true> : pack_tile<false>;
        tr.gemm_pack_bytes = pack_bytes;
        tr.gemm_pack_min_tokens = kAmxMinTokens;
    }
    k.traits[GPTNEOX_TYPE_Q4_0].gemm_packed = gemm_x16<true, hw, kActBudget>;
    k.traits[GPTNEOX_TYPE_Q8_0].gemm_packed = gemm_x16<false, hw, kActBudget>;
}
void fill_gemm_amx_test(kernels &k, bool emulate) {
    fill_gemm_amx(k);
    // a budget of one tile per chunk, so packed_test's token counts cover several chunks and a partial one
    k.traits[GPTNEOX_TYPE_Q4_0].gemm_packed = emulate ? gemm_x16<true, emulated, 1> : gemm_x16<true, hw, 1>;
    k.traits[GPTNEOX_TYPE_Q8_0].gemm_packed = emulate ? gemm_x16<false, emulated, 1> : gemm_x16<false, hw, 1>;
}

} // namespace gptneox
