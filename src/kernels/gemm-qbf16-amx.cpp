// Q8_0 / Q4_0 prompt batches on AMX-BF16 tiles (the AMX table's gemm_packed for those types, on CPUs with
// AMX-BF16 and AVX512_BF16; dispatch.cpp). Batches of fewer than kMinTokens tokens -- decode -- stay on the
// VNNI kernels over the same packed weights (gemm-packed-avx512.cpp), with Q8_0 activations.
//
// Why bf16: Q8_0 scales every 32 weights by their own f16, so an int8 tile product (TDPBSSD) covers one
// block, after which its 16 x 16 integer sums need storing, converting and scaling on the AVX-512 ports --
// which on the Xeons we met then do not work beside the tile unit (bench/amx_overlap.cpp: 23-25 ns per 16 x 16 x 32
// block; the int8 kernel that did this, gemm-amx.cpp until 11-27, ran rinna's matrices at 490-550 GMAC/s
// on 2 cores). Here each block's weights are dequantized once per pass (q * d, exact in f32, rounded to
// bf16) and the tiles add up a whole K-slice in f32 with nothing between products: 700-775 GMAC/s in the
// same phases (bench/phase_profile.py, rinna q8_0, 512 tokens), kernels_bench 1.5x the int8 kernel; 826-930
// since the next pair is dequantized inside the tile loop (below).
//
// Arithmetic of one output (the statement packed_test checks): the activations rounded to bf16 as
// VCVTNEPS2BF16 does (bf16dp_round_ref: nearest-even, denormals to zero), the weights as bf16(q * d) (q * d
// is exact in f32; nearest-even), and the products summed by TDPBF16PS, 32 per instruction, in block order,
// from the row's bias (gemm_packed_bias: matmul's bias then costs no pass over y, which in rinna's prompts
// took 3.6-4% of the time, bench/perf_profile.py) or from zero (the instruction's own way of adding its
// products to C is what it is: tested within the f32 summation bound of a double reference). A token's result
// is the same in any batch of kMinTokens or more; it differs in the last bits from the result of a smaller
// batch (the VNNI kernels, Q8_0 activations), as llama.cpp's results depend on its batch's size. The bf16
// rounding of q * d is at most 2^-8 of the weight (8 significant bits; this said 2^-9 until 11-27), below
// Q8_0's own rounding (up to 1/254 of its block's largest), and bf16 activations are finer than Q8_0's:
// test_parity's table measures the compute error against Hugging Face on the file's own weights at 4.3e-3
// here, 1.1e-2 with Q8_0 activations.
//
// Loops: the tokens are packed once per matmul (gemm_pack, from the f32 rows) as tiles of 16 tokens x 32
// bf16 per block. Batches of up to kNarrowTiles tiles (64 tokens) go to narrow() (below chunk()): one group
// of 16 rows at a time against every token tile, each block dequantized into a small ring in L1 two blocks
// before its products. Larger batches are taken in passes of kChunkTiles tiles. A pass goes over the blocks
// in K-slices sized so that its tiles' slice fits kActBudget (L2); per slice, each pair of 16-row groups is
// dequantized into one half of the work area (the tiles' B layout, packed-layout.h's pairs) and then met by
// every token tile, two tiles at a time: 2 x 2 products per block on four C tiles, which start at zero
// (first slice) or at the sums the previous slice stored in y. (Swept on the Xeon: passes of 8-32 tiles
// and budgets of 0.5-2 MiB within the noise of each other, except 4 tiles or less: the dequantization is
// then paid too often. Budgets again with the dequantization inside the loop, kernels_bench, 512 tokens:
// 0.5-1 MiB within 3%, 1.5-2 MiB 5-25% slower on 2816 x 11264.)
// While a pair's tiles work, the next pair is dequantized into the other half, a few vectors after each
// block's products: the tile unit and the AVX-512 ports do work side by side when the tiles' operands are
// loaded between -- in part (bench/amx_bf16_overlap.cpp, the operands in L2: 4 products + 4 tile loads
// 32-34 ns, + 2 vectors of dequantization 36-40, the 2 vectors alone 7-8); at 8 vectors per block product
// (Q8_0, 64 tokens) not at all (66-77 ns, the 8 alone 20-22), so there 4 go inside and the rest is
// dequantized before the tiles (kMaxVectorsPerProducts). What bounds the loop in the model is that, and
// each products() call's C store and reload (the same bench: 100-400 ns of tile time each), more than the
// products themselves:
// kernels_bench (2816 x 11264, 512 tokens, one thread) 60-64 ns per block product, ~45 built without the
// dequantization, ~52 with C kept in L1. (Tried on 11-27, none faster: K-slices of 8-32 blocks with C in a
// compact buffer and the pair's slice in L1; passes of 24-32 token tiles; the vectors' stores deferred a
// block product, their values held in registers.) (The 64-token figures here and at kMaxVectorsPerProducts
// were measured when chunk() also ran batches of 16-64 tokens; since 11-27 those are narrow()'s, and chunk()
// starts at 65.)
#pragma GCC target("avx512bf16,avx512vbmi")
#include <immintrin.h>

#include <cstddef>
#include <cstring>
#include <initializer_list>

#include "kernels/amx-tiles.h"
#include "kernels/kernels-impl.h"
#include "kernels/packed-layout.h"

#pragma GCC diagnostic ignored "-Wuninitialized" // GCC 12 AVX-512 headers, see kernels-avx512.cpp
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"

namespace gptneox {
namespace {

constexpr int kTileTok = 16;
constexpr int64_t kMinTokens = 16;                // fewer: the VNNI kernels
constexpr int64_t kNarrowTiles = 4;            // up to this many token tiles: narrow() (one group at a time)
constexpr int64_t kChunkTiles = 16;            // token tiles per pass over the weights (256 tokens)
constexpr size_t kActBudget = size_t(1) << 20; // bytes of a pass's token tiles per K-slice (L2 is 2 MiB here)
constexpr int64_t kMinSlice = 8, kMaxSlice = 128; // blocks per K-slice
// At most this many vectors of the next group pair's dequantization run inside the tile loop (dequantizer)
// after each block product; the rest runs before the loop. A pair's block is 16 Q8_0 vectors (8 Q4_0) and
// meets one product call per pair of full token tiles plus one for a partial tile, so all of it goes
// inside in a pass of Q8_0 81-95 or 97+ tokens, of Q4_0 17-31 or 33+; at Q8_0 64 tokens half. Measured on
// the Xeon, kernels_bench, rinna's 11264 x 2816, Q8_0, 2 threads, interleaved: 512 tokens 14.3-14.8 vs
// 18.1-18.2 ms all before, 256 tokens 6.9-7.4 vs 7.6-8.3; 64 tokens 2.3-2.4 with all before, 2.7-3.2 with
// all 8 inside. At 64 tokens, 4 inside and 4 before: phase_profile pp64 150-152 vs 137-148 tok/s all before
// (3 or 6 inside: no better). Q4_0 at 64 tokens (all 4 inside): pp64 176-180 vs 162-170 all before.
constexpr int kMaxVectorsPerProducts = 4;
constexpr size_t kTileBytes = 1024;               // one block of a token tile or of a dequantized group
// tiles: A0 = 0, A1 = 1 (token tiles), B0 = 2, B1 = 3 (groups), C[a][b] = 4 + 2a + b (the intrinsics paste
// their tile numbers into the instruction text: literals below)

// Every tile 16 rows of 64 bytes, except A0 and the C tiles of token tile 0 (C00, C01) with m rows (the
// last, partial token tile). LDTILECFG zeroes the tiles: only between products.
void configure(int m) {
    tile_config c;
    for (int t = 0; t < 8; t++) c.colsb[t] = 64, c.rows[t] = kTileTok;
    c.rows[0] = c.rows[4] = c.rows[5] = uint8_t(m);
    load_tile_config(c);
}

// ---- activations: gemm_pack from f32 rows ----

size_t pack_bytes(int64_t n) { return size_t(kTileTok) * size_t(n) * 2; }

// Tile `tile` of n_tok tokens (x rows x_stride bytes apart): per block ib, 16 rows of 32 bf16 at
// out + 1024 ib (zeros for tokens past n_tok).
void pack_tile(int64_t n, const uint8_t *xv, size_t x_stride, int64_t n_tok, int64_t tile, uint8_t *out) {
    const int64_t nb = n / 32;
    for (int t = 0; t < kTileTok; t++) {
        const int64_t tok = kTileTok * tile + t;
        uint8_t *o = out + 64 * t;
        if (tok >= n_tok) {
            for (int64_t ib = 0; ib < nb; ib++) std::memset(o + kTileBytes * size_t(ib), 0, 64);
            continue;
        }
        const float *x = reinterpret_cast<const float *>(xv + size_t(tok) * x_stride);
        for (int64_t ib = 0; ib < nb; ib++) {
            const __m512bh h = _mm512_cvtne2ps_pbh(_mm512_loadu_ps(x + 32 * ib + 16), _mm512_loadu_ps(x + 32 * ib));
            _mm512_store_si512(o + kTileBytes * size_t(ib), reinterpret_cast<const __m512i &>(h));
        }
    }
}

// ---- weights: one group's blocks [b0, b1) dequantized into the pairs layout ----

// Row scales of a packed block as f32, spread as the block's vectors are. Q4_0: for quarter j of a 64-byte
// vector (lane 4i + e = row 4j + i), d and d times the stored value of zero (8). Q8_0 (dequantize_vector):
// for half h (lane L = row 8h + L / 2), 256 d and 32896 d (128 * 257: both exact, d has 11 bits).
struct block_scales {
    __m512 d[4], off[4];
};
template <bool Q4> block_scales scales_of(const uint8_t *grp, int64_t ib) {
    const __m256i h = _mm256_load_si256(reinterpret_cast<const __m256i *>(grp + x16_scales_at<Q4>(ib)));
    const __m512 d = _mm512_cvtph_ps(h);
    const __m512i lane = _mm512_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15);
    block_scales s;
    if constexpr (Q4) {
        #pragma GCC unroll 4
        for (int j = 0; j < 4; j++) {
            s.d[j] = _mm512_permutexvar_ps(_mm512_add_epi32(_mm512_srli_epi32(lane, 2), _mm512_set1_epi32(4 * j)), d);
            s.off[j] = _mm512_mul_ps(s.d[j], _mm512_set1_ps(8.0f)); // exact: a power of two
        }
    } else {
        #pragma GCC unroll 2
        for (int half = 0; half < 2; half++) {
            const __m512i row = _mm512_add_epi32(_mm512_srli_epi32(lane, 1), _mm512_set1_epi32(8 * half));
            const __m512 r = _mm512_permutexvar_ps(row, d);
            s.d[half] = _mm512_mul_ps(r, _mm512_set1_ps(256.0f));
            s.off[half] = _mm512_mul_ps(r, _mm512_set1_ps(32896.0f));
        }
    }
    return s;
}

// Four quarters' values (rows 4j..4j+3 x 4 consecutive elements each, f32) -> the two pair lines of those
// elements: line 0 = elements (0, 1) of every row, line 1 = (2, 3).
inline void store_lines(const __m512 f[4], uint8_t *line0, uint8_t *line1) {
    const __m512bh lo = _mm512_cvtne2ps_pbh(f[1], f[0]), hi = _mm512_cvtne2ps_pbh(f[3], f[2]);
    // dword 2r (+1) of lo / hi: row r (8 + r) elements 0-1 (2-3)
    const __m512i even = _mm512_setr_epi32(0, 2, 4, 6, 8, 10, 12, 14, 16, 18, 20, 22, 24, 26, 28, 30);
    const __m512i odd = _mm512_add_epi32(even, _mm512_set1_epi32(1));
    const __m512i l = reinterpret_cast<const __m512i &>(lo), h = reinterpret_cast<const __m512i &>(hi);
    _mm512_store_si512(line0, _mm512_permutex2var_epi32(l, even, h));
    _mm512_store_si512(line1, _mm512_permutex2var_epi32(l, odd, h));
}

// (stored - zero) * d, exactly q * d: one rounding of an exact product
inline __m512 value(__m512i stored, const block_scales &s, int j) {
    return _mm512_fmsub_ps(_mm512_cvtepi32_ps(stored), s.d[j], s.off[j]);
}

// Vector v of a block (Q8_0: elements 4v..4v+3 of its 16 rows; Q4_0: those and 16 + 4v..): its pair lines
// in the block's 1024 bytes at o.
template <bool Q4> inline void dequantize_vector(const uint8_t *q, const block_scales &s, int v, uint8_t *o) {
    if constexpr (Q4) {
        __m512 f[4], g[4];
        #pragma GCC unroll 4
        for (int j = 0; j < 4; j++) {
            const __m128i b = _mm_load_si128(reinterpret_cast<const __m128i *>(q + 64 * v + 16 * j));
            const __m512i u = _mm512_cvtepu8_epi32(b);
            f[j] = value(_mm512_and_si512(u, _mm512_set1_epi32(15)), s, j);
            g[j] = value(_mm512_srli_epi32(u, 4), s, j);
        }
        store_lines(f, o + 64 * (2 * v), o + 64 * (2 * v + 1));
        store_lines(g, o + 64 * (8 + 2 * v), o + 64 * (8 + 2 * v + 1));
    } else {
        // Byte 4r + e of the vector is row r's element 4v + e, stored as u = q + 128. VPERMB puts u in bits
        // 8-15 of 0x43000000, the f32 128 + u / 256 (exact), in the order of the pair lines, so that no
        // permute follows: f32 lane L of the line's low half is row L / 2 (high half: row 8 + L / 2), element
        // L % 2 (second line: 2 + L % 2). Then (128 + u / 256) * 256 d - 32896 d = (u - 128) d = q d, exact
        // inside the FMA and so exact after it. 10 instructions where widening, converting and permuting
        // took 18. On the Xeon, kernels_bench 11264 x 2816 Q8_0, 64 tokens, medians of 8 interleaved runs:
        // 6.06 vs 6.45 ms (one thread), 3.01 vs 3.21 (two); 512 tokens the same (19.3 vs 19.5, two).
        const __m512i u = _mm512_load_si512(q + 64 * v);
        const __m512i lane = _mm512_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15);
        // source byte of lane L of the first line's low half, in byte 1 of dword L
        const __m512i byte = _mm512_add_epi32(_mm512_slli_epi32(_mm512_srli_epi32(lane, 1), 2),
                                              _mm512_and_si512(lane, _mm512_set1_epi32(1)));
        const __m512i src = _mm512_slli_epi32(byte, 8);
        __m512 f[4]; // line 0 low, high; line 1 low, high
        #pragma GCC unroll 4
        for (int j = 0; j < 4; j++) {
            const __m512i idx = _mm512_add_epi32(src, _mm512_set1_epi32(((j & 1) * 32 + (j >> 1) * 2) << 8));
            const __m512i bits =
                _mm512_mask_permutexvar_epi8(_mm512_set1_epi32(0x43000000), 0x2222222222222222ull, idx, u);
            f[j] = _mm512_fmsub_ps(_mm512_castsi512_ps(bits), s.d[j & 1], s.off[j & 1]);
        }
        const __m512bh l0 = _mm512_cvtne2ps_pbh(f[1], f[0]), l1 = _mm512_cvtne2ps_pbh(f[3], f[2]);
        _mm512_store_si512(o + 64 * (2 * v), reinterpret_cast<const __m512i &>(l0));
        _mm512_store_si512(o + 64 * (2 * v + 1), reinterpret_cast<const __m512i &>(l1));
    }
}

// A pair of groups' blocks [b0, b1) to dequantize into out[0], out[1], a vector at a time: the tile loop
// of the group pair before calls step() once per block product so that the AVX-512 work runs beside the
// tile unit's (on the Xeon: 4 products + 2 vectors take about as long as the products alone, + 4 vectors
// a third longer), block() and one() do what comes before the loop, finish() what is left after it.
template <bool Q4> struct dequantizer {
    static constexpr int kVectors = Q4 ? 4 : 8; // per block
    const uint8_t *grp[2] = {nullptr, nullptr};
    uint8_t *out[2] = {nullptr, nullptr};
    int n_groups = 0; // 0: nothing to do
    int64_t b0 = 0, b1 = 0;
    int per_step = 0; // vectors per step()
    int h = 0, v = 0; // position: group h, block ib, vector v
    int64_t ib = 0;
    block_scales s;

    void start(const uint8_t *g0, const uint8_t *g1, int64_t first, int64_t last, uint8_t *o0, uint8_t *o1) {
        grp[0] = g0, grp[1] = g1, out[0] = o0, out[1] = o1;
        n_groups = g1 ? 2 : 1, b0 = first, b1 = last, h = 0, v = 0, ib = first;
        s = scales_of<Q4>(g0, first);
    }
    int64_t vectors() const { return int64_t(n_groups) * (b1 - b0) * kVectors; }
    inline void next_block() {
        v = 0;
        if (++ib == b1) ib = b0, ++h;
        if (h < n_groups) s = scales_of<Q4>(grp[h], ib);
    }
    inline void one() {
        dequantize_vector<Q4>(grp[h] + x16_quants_at<Q4>(ib), s, v, out[h] + kTileBytes * size_t(ib - b0));
        if (++v == kVectors) next_block();
    }
    inline void step() {
        for (int i = 0; i < per_step && h < n_groups; i++) one();
    }
    // The rest of the current block (all of it if none was done); false when nothing was left.
    bool block() {
        if (h >= n_groups) return false;
        const uint8_t *q = grp[h] + x16_quants_at<Q4>(ib);
        uint8_t *o = out[h] + kTileBytes * size_t(ib - b0);
        #pragma GCC unroll 2
        for (; v < kVectors; v++) dequantize_vector<Q4>(q, s, v, o);
        next_block();
        return true;
    }
    void finish() {
        while (block()) {
        }
    }
};

// The packed weights of the step after next, asked into L2 (prefetcht1) a few cache lines at a time while
// this step's tiles work and part of the next step is dequantized before them (Q8_0 passes under 81
// tokens: each step then reads much of its ~96 KiB of weights in a burst that the hardware prefetchers do
// not keep up with). kernels_bench on
// weights larger than L3 (180224 x 2816 Q8_0, 64 tokens, 2 threads, interleaved): 1095-1184 GFLOP/s
// against 979-1008 without (the next step then all dequantized before the tiles); two steps ahead beat
// three or four (1030-1119, 1076-1094). Where the next step is dequantized inside the tile loop its reads
// are spread out already: no gain there (not done).
struct ahead {
    const char *p[2] = {nullptr, nullptr}, *end[2] = {nullptr, nullptr}; // up to two byte ranges, in turn
    int per_step = 0;                                                     // lines per step()
    inline void step() {
        for (int i = 0; i < per_step; i++) {
            const int r = p[0] < end[0] ? 0 : 1;
            if (p[r] >= end[r]) return;
            _mm_prefetch(p[r], _MM_HINT_T1);
            p[r] += 64;
        }
    }
};

// What runs beside the tiles: the next step's dequantization, the step after's weights fetched.
template <bool Q4> struct background {
    dequantizer<Q4> dq;
    ahead pf;
    inline void step() {
        dq.step();
        pf.step();
    }
};

// ---- the tile loop ----

// Token tiles a0 (and a1 if Pair) against groups' slices w0 (and w1 if Two), nb blocks; C from y (or if
// First, every row from the groups' bias b, 16 floats per group, or zero without one), back to y (rows
// y_stride floats apart; C00 and C01 have the configured m rows); next.step() after each block's products.
template <bool Pair, bool Two, class Next>
void products(const uint8_t *a0, const uint8_t *a1, const uint8_t *w0, const uint8_t *w1, int64_t nb, bool first,
              const float *b, float *y0, float *y1, size_t y_stride, Next &next) {
    const size_t ys = y_stride * sizeof(float);
    __asm__ volatile("" ::: "memory"); // (tileloadd's asm declares no memory input)
    if (first && b) { // row stride 0: the same 16 floats in every row
        _tile_loadd(4, b, 0);
        if (Two) _tile_loadd(5, b + 16, 0);
        if (Pair) _tile_loadd(6, b, 0);
        if (Pair && Two) _tile_loadd(7, b + 16, 0);
    } else if (first) {
        _tile_zero(4);
        if (Two) _tile_zero(5);
        if (Pair) _tile_zero(6);
        if (Pair && Two) _tile_zero(7);
    } else {
        _tile_loadd(4, y0, ys);
        if (Two) _tile_loadd(5, y0 + 16, ys);
        if (Pair) _tile_loadd(6, y1, ys);
        if (Pair && Two) _tile_loadd(7, y1 + 16, ys);
    }
    for (int64_t ib = 0; ib < nb; ib++) {
        const size_t o = kTileBytes * size_t(ib);
        _tile_loadd(0, a0 + o, 64);
        _tile_loadd(2, w0 + o, 64);
        if (Two) _tile_loadd(3, w1 + o, 64);
        if (Pair) _tile_loadd(1, a1 + o, 64);
        _tile_dpbf16ps(4, 0, 2);
        if (Two) _tile_dpbf16ps(5, 0, 3);
        if (Pair) _tile_dpbf16ps(6, 1, 2);
        if (Pair && Two) _tile_dpbf16ps(7, 1, 3);
        next.step();
    }
    _tile_stored(4, y0, ys);
    if (Two) _tile_stored(5, y0 + 16, ys);
    if (Pair) _tile_stored(6, y1, ys);
    if (Pair && Two) _tile_stored(7, y1 + 16, ys);
}

template <bool Two, class Next>
void tile_pair(bool pair, const uint8_t *a0, const uint8_t *a1, const uint8_t *w0, const uint8_t *w1, int64_t nb,
               bool first, const float *b, float *y0, float *y1, size_t y_stride, Next &next) {
    if (pair) products<true, Two>(a0, a1, w0, w1, nb, first, b, y0, y1, y_stride, next);
    else products<false, Two>(a0, a1, w0, w1, nb, first, b, y0, y1, y_stride, next);
}

// Tokens [c0, c0 + c_tok) of the packed tiles against rows [0, 16 groups): K-slices of at most Budget bytes
// of these tiles each; per slice, every pair of groups in turn (a step), its blocks dequantized into one
// half of wb during the step before (the other half), then met by every token tile.
template <bool Q4, size_t Budget, int StepVectors>
void chunk(int64_t nb, const uint8_t *w, size_t gb, int64_t groups, const uint8_t *tiles, size_t act_stride,
           int64_t c_tok, const float *bias, float *y, size_t y_stride, uint8_t *wb, int &configured) {
    const int64_t n_full = c_tok / kTileTok, tail = c_tok % kTileTok, n_tiles = n_full + (tail ? 1 : 0);
    int64_t slice = int64_t(Budget / (kTileBytes * size_t(n_tiles)));
    slice = slice < kMinSlice ? kMinSlice : slice > kMaxSlice ? kMaxSlice : slice;
    const int64_t n_pairs = (groups + 1) / 2, n_steps = (nb + slice - 1) / slice * n_pairs;
    const size_t half = kTileBytes * size_t(kMaxSlice); // one group's slice
    // step i: blocks [k0, k1) of groups g, g + 1 (if two), dequantized into wb's half i % 2
    auto step_of = [&](int64_t i, int64_t &k0, int64_t &k1, int64_t &g, bool &two, uint8_t *&w0, uint8_t *&w1) {
        k0 = i / n_pairs * slice, k1 = k0 + slice < nb ? k0 + slice : nb, g = 2 * (i % n_pairs);
        two = g + 1 < groups, w0 = wb + 2 * half * size_t(i % 2), w1 = w0 + half;
    };
    auto start = [&](dequantizer<Q4> &dq, int64_t i) {
        int64_t k0, k1, g;
        bool two;
        uint8_t *w0, *w1;
        step_of(i, k0, k1, g, two, w0, w1);
        dq.start(w + size_t(g) * gb, two ? w + size_t(g + 1) * gb : nullptr, k0, k1, w0, w1);
    };
    background<Q4> bg;
    dequantizer<Q4> &next = bg.dq;
    start(next, 0);
    next.finish();
    for (int64_t i = 0; i < n_steps; i++) {
        int64_t k0, k1, g;
        bool two;
        uint8_t *w0, *w1;
        step_of(i, k0, k1, g, two, w0, w1);
        const int64_t products_calls = ((n_full + 1) / 2 + (tail ? 1 : 0)) * (k1 - k0);
        // the next step: up to kMaxVectorsPerProducts vectors after each block product, the rest now, before
        // this step's tiles
        int64_t now = 0;
        next.n_groups = 0;
        if (i + 1 < n_steps) {
            start(next, i + 1);
            const int64_t inside = int64_t(StepVectors ? StepVectors : kMaxVectorsPerProducts) * products_calls;
            now = StepVectors || next.vectors() <= inside ? 0 : next.vectors() - inside;
            next.per_step = int((next.vectors() - now + products_calls - 1) / products_calls);
            if (StepVectors) next.per_step = StepVectors; // (packed_test's variant: all inside, 3 at a time)
        }
        // where part of it comes now (a burst of reads): the step after next's weights, over this step's block
        // products and the blocks dequantized now
        bg.pf = ahead();
        if (i + 2 < n_steps && now > 0) {
            int64_t f0, f1, fg;
            bool ftwo;
            uint8_t *u0, *u1;
            step_of(i + 2, f0, f1, fg, ftwo, u0, u1);
            size_t lines = 0;
            for (int h = 0; h < (ftwo ? 2 : 1); h++) {
                const char *grp = reinterpret_cast<const char *>(w + size_t(fg + h) * gb);
                bg.pf.p[h] = grp + x16_scales_at<Q4>(f0 & ~int64_t(1));
                bg.pf.end[h] = grp + x16_quants_at<Q4>(f1 - 1) + x16_qbytes<Q4>();
                lines += size_t(bg.pf.end[h] - bg.pf.p[h] + 63) / 64;
            }
            const size_t calls = size_t(products_calls + now / next.kVectors);
            bg.pf.per_step = int((lines + calls - 1) / calls);
        }
        for (int64_t left = now; left > 0;) {
            if (next.v == 0 && left >= next.kVectors) { // a whole block
                next.block();
                bg.pf.step();
                left -= next.kVectors;
            } else {
                next.one();
                left--;
            }
        }
        // token tiles t (and t + 1 if pair) against the pair's slices
        auto run = [&](int64_t t, bool pair) {
            const uint8_t *a0 = tiles + size_t(t) * act_stride + kTileBytes * size_t(k0);
            float *y0 = y + size_t(kTileTok * t) * y_stride + 16 * g, *y1 = y0 + kTileTok * y_stride;
            const float *b = bias ? bias + 16 * g : nullptr;
            if (two) tile_pair<true>(pair, a0, a0 + act_stride, w0, w1, k1 - k0, k0 == 0, b, y0, y1, y_stride, bg);
            else tile_pair<false>(pair, a0, a0 + act_stride, w0, w1, k1 - k0, k0 == 0, b, y0, y1, y_stride, bg);
        };
        if (n_full) {
            if (configured != kTileTok) configure(configured = kTileTok);
            for (int64_t t = 0; t < n_full; t += 2) run(t, t + 1 < n_full);
        }
        if (tail) {
            if (configured != int(tail)) configure(configured = int(tail));
            run(n_full, false);
        }
        next.finish();
    }
}

// ---- batches of up to four token tiles: one group at a time, each block dequantized just before use ----

// Up to 64 tokens there are at most four token tiles, so one group's C tiles for all of them fit in the tile
// file beside two A and two B tiles: here C = tiles 4.. (token tile t: 4 + t, all 16 rows; a partial last
// tile's go through `scratch`, its pack_tile rows past n_tok being zeros), A = tiles 0 and 1 in turn, B =
// tiles 2 and 3 in turn. No tile load then waits for products still reading its tile's previous contents
// (chunk()'s 2 x 2 loop reloads A0, A1, B0, B1 right after the products that read them), each group's blocks
// are dequantized kAhead blocks before their products into a ring of kRing blocks that stays in L1 (chunk()
// writes a whole K-slice of a group pair to L2 and reads it back per token tile pair), and that
// dequantization is spread between the products, a share after each. The weights are asked into L2
// (prefetcht1) kPrefetchBlocks blocks ahead. Measured on the Xeon, 2 threads, 64 tokens, Q8_0 (chunk() ->
// narrow()): kernels_bench rinna's 11264 x 2816 (L3) 2.9-3.1 -> 1.85-1.97 ms, 180224 x 2816 (from memory)
// 55 -> 42-45 ms; phase_profile rinna pp64 130-140 -> 184-188 tok/s (Q4_0 181-189 -> 225-226). Without the
// prefetch 10-20% slower from memory; with all of a block's dequantization before the products 8% slower;
// 8-64 blocks of prefetch alike; K-slices sized for L1 (32-64 KiB of token tiles) 15% slower (C reloads).
// (bench/amx_narrow_overlap.cpp, this loop with the token tiles in L1 / L2: 4 products + 5 tile loads 18 /
// 26 ns, + 8 Q8_0 vectors of dequantization 30 / 42, spread between the products 27 / 33; chunk()'s 2 x 2
// loop: 4 products + 4 loads 23 from L1, 28-32 from L2, bench/amx_bf16_overlap.cpp.) With the weights
// streaming from memory, as in the model, this loop is ~30% slower than with them in L3 (kernels_bench 64
// tokens, 180224 vs 11264 x 2816, one thread: 5.4-6.8 vs 8.0-9.7 GB/s of weights; 2 threads 11.5-13.0 vs
// 14.6-18.4), though a core reads 13.5 GB/s alone; tried on 11-27, none faster: prefetch hints T0 / T2 (NTA
// halves it), one prefetch per 4 KiB page instead of one per line, none at all (3-11% slower), K-slices of
// 8-44 blocks, the four token tiles of a block interleaved in memory. What helped: beside the prefetch of
// every line, the first line of each 4 KiB page kFarBytes past the prefetch's position is asked for once
// (prefetcht1), which starts the L2 streamer on that page early: kernels_bench 180224 x 2816 (from memory),
// 64 tokens, 2 threads, interleaved: 12.0-13.4 GB/s of weights against 11.1-12.2 without (8-32 KiB alike);
// phase_profile rinna q8_0 pp64, 5 interleaved pairs: 147-159 (median 149) against 136-166 (143) tok/s.
constexpr int kRing = 4, kAhead = 2, kPrefetchBlocks = 16;
constexpr uintptr_t kFarBytes = 16384;

// Block products of NT token tiles (A at a, act_stride bytes apart) with the dequantized block at b into tile
// B (2 or 3); between(t) after product t: a share of the next blocks' dequantization (vectors written for
// later products: the tiles do not read them).
template <int NT, int B, class Between>
inline void narrow_products(const uint8_t *a, size_t act_stride, const uint8_t *b, Between &&between) {
    __asm__ volatile("" ::: "memory"); // (tileloadd's asm declares no memory input: the ring's stores first)
    tile_load<B>(b, 64);
    tile_load<0>(a, 64);
    tile_dpbf16ps<4, 0, B>();
    between(0);
    if constexpr (NT > 1) {
        tile_load<1>(a + act_stride, 64);
        tile_dpbf16ps<5, 1, B>();
        between(1);
    }
    if constexpr (NT > 2) {
        tile_load<0>(a + 2 * act_stride, 64);
        tile_dpbf16ps<6, 0, B>();
        between(2);
    }
    if constexpr (NT > 3) {
        tile_load<1>(a + 3 * act_stride, 64);
        tile_dpbf16ps<7, 1, B>();
        between(3);
    }
}

// C tile t from / to c[t] (rows s[t] bytes apart)
template <int NT> inline void narrow_c_load(float *const c[4], const size_t s[4]) {
    __asm__ volatile("" ::: "memory");
    _tile_loadd(4, c[0], s[0]);
    if constexpr (NT > 1) _tile_loadd(5, c[1], s[1]);
    if constexpr (NT > 2) _tile_loadd(6, c[2], s[2]);
    if constexpr (NT > 3) _tile_loadd(7, c[3], s[3]);
}
// C tiles at the start of a group's sums: every row the group's bias b (row stride 0), or zero without one
template <int NT> inline void narrow_c_start(const float *b) {
    if (b) {
        __asm__ volatile("" ::: "memory");
        _tile_loadd(4, b, 0);
        if constexpr (NT > 1) _tile_loadd(5, b, 0);
        if constexpr (NT > 2) _tile_loadd(6, b, 0);
        if constexpr (NT > 3) _tile_loadd(7, b, 0);
        return;
    }
    _tile_zero(4);
    if constexpr (NT > 1) _tile_zero(5);
    if constexpr (NT > 2) _tile_zero(6);
    if constexpr (NT > 3) _tile_zero(7);
}
template <int NT> inline void narrow_c_store(float *const c[4], const size_t s[4]) {
    _tile_stored(4, c[0], s[0]);
    if constexpr (NT > 1) _tile_stored(5, c[1], s[1]);
    if constexpr (NT > 2) _tile_stored(6, c[2], s[2]);
    if constexpr (NT > 3) _tile_stored(7, c[3], s[3]);
    __asm__ volatile("" ::: "memory"); // (nor tilestored's a memory output)
}

// NT token tiles (n_tok tokens) against `groups` groups: K-slices of the tiles that fit Budget; per slice,
// the groups in turn, each block of each group dequantized into the ring kAhead blocks before its products.
template <bool Q4, int NT, size_t Budget>
void narrow(int64_t nb, const uint8_t *w, size_t gb, int64_t groups, const uint8_t *tiles, size_t act_stride,
            int64_t n_tok, const float *bias, float *y, size_t y_stride, uint8_t *work) {
    constexpr int kVectors = Q4 ? 4 : 8;
    uint8_t *ring = work;
    float *scratch = reinterpret_cast<float *>(work + kRing * kTileBytes); // the partial token tile's C
    const int64_t m = n_tok - kTileTok * (NT - 1);                          // its rows (1-16)
    // C tile t: token tile t's rows of y (or scratch), cs[t] bytes apart
    float *c[4] = {};
    size_t cs[4] = {};
    for (int t = 0; t < NT; t++) cs[t] = t == NT - 1 && m < kTileTok ? 64 : y_stride * sizeof(float);
    int64_t slice = int64_t(Budget / (kTileBytes * size_t(NT)));
    slice = slice < kMinSlice ? kMinSlice : slice > nb ? nb : slice;
    for (int64_t k0 = 0; k0 < nb; k0 += slice) {
        const int64_t k1 = k0 + slice < nb ? k0 + slice : nb;
        // the dequantization's position: block dib of group dg, ring slot du % kRing
        int64_t dg = 0, dib = k0, du = 0;
        // the prefetch's: kPrefetchBlocks blocks ahead of it; the page last asked for kFarBytes past it
        int64_t pg = 0, pib = k0;
        const uintptr_t w_end = reinterpret_cast<uintptr_t>(w + size_t(groups) * gb);
        uintptr_t far_page = 0;
        auto prefetch_next = [&] {
            if (pg == groups) return;
            const char *grp = reinterpret_cast<const char *>(w + size_t(pg) * gb);
            if (pib == k0 || (pib & 1) == 0) _mm_prefetch(grp + x16_scales_at<Q4>(pib), _MM_HINT_T1);
            const char *q = grp + x16_quants_at<Q4>(pib);
            for (int l = 0; l < kVectors; l++) _mm_prefetch(q + 64 * l, _MM_HINT_T1);
            const uintptr_t far = reinterpret_cast<uintptr_t>(q) + kFarBytes;
            if (far < w_end && far >> 12 != far_page) {
                far_page = far >> 12;
                _mm_prefetch(reinterpret_cast<const char *>(far_page << 12), _MM_HINT_T1);
            }
            if (++pib == k1) pib = k0, pg++;
        };
        for (int i = 0; i < kPrefetchBlocks; i++) prefetch_next();
        // the block at the dequantization's position: its scales, quants and ring slot
        struct {
            block_scales s;
            const uint8_t *q = nullptr;
            uint8_t *o = nullptr;
        } d;
        auto start_next = [&] {
            if (dg == groups) return false;
            prefetch_next();
            const uint8_t *grp = w + size_t(dg) * gb;
            d.s = scales_of<Q4>(grp, dib);
            d.q = grp + x16_quants_at<Q4>(dib);
            d.o = ring + kTileBytes * size_t(du % kRing);
            du++;
            if (++dib == k1) dib = k0, dg++;
            return true;
        };
        auto vectors = [&](int v0, int v1) {
            for (int v = v0; v < v1; v++) dequantize_vector<Q4>(d.q, d.s, v, d.o);
        };
        for (int i = 0; i < kAhead; i++)
            if (start_next()) vectors(0, kVectors);
        int64_t u = 0; // this block's ring slot: u % kRing
        for (int64_t g = 0; g < groups; g++) {
            for (int t = 0; t < NT; t++)
                c[t] = t == NT - 1 && m < kTileTok ? scratch : y + size_t(kTileTok * t) * y_stride + 16 * g;
            if (k0 == 0) {
                narrow_c_start<NT>(bias ? bias + 16 * g : nullptr);
            } else {
                if (m < kTileTok)
                    for (int64_t r = 0; r < m; r++)
                        std::memcpy(scratch + 16 * r, y + size_t(kTileTok * (NT - 1) + r) * y_stride + 16 * g, 64);
                narrow_c_load<NT>(c, cs);
            }
            for (int64_t ib = k0; ib < k1; ib++, u++) {
                const bool more = start_next();
                // product t is followed by vectors [t V / NT, (t + 1) V / NT) of the block kAhead on
                auto between = [&](int t) {
                    if (more) vectors(t * kVectors / NT, (t + 1) * kVectors / NT);
                };
                const uint8_t *a = tiles + kTileBytes * size_t(ib), *b = ring + kTileBytes * size_t(u % kRing);
                if (u & 1) narrow_products<NT, 3>(a, act_stride, b, between);
                else narrow_products<NT, 2>(a, act_stride, b, between);
            }
            narrow_c_store<NT>(c, cs);
            if (m < kTileTok)
                for (int64_t r = 0; r < m; r++)
                    std::memcpy(y + size_t(kTileTok * (NT - 1) + r) * y_stride + 16 * g, scratch + 16 * r, 64);
        }
    }
}

template <bool Q4, size_t Budget>
void narrow_of(int64_t n_tiles, int64_t nb, const uint8_t *w, size_t gb, int64_t groups, const uint8_t *tiles,
               size_t act_stride, int64_t n_tok, const float *bias, float *y, size_t y_stride, uint8_t *work) {
    switch (n_tiles) {
    case 1: return narrow<Q4, 1, Budget>(nb, w, gb, groups, tiles, act_stride, n_tok, bias, y, y_stride, work);
    case 2: return narrow<Q4, 2, Budget>(nb, w, gb, groups, tiles, act_stride, n_tok, bias, y, y_stride, work);
    case 3: return narrow<Q4, 3, Budget>(nb, w, gb, groups, tiles, act_stride, n_tok, bias, y, y_stride, work);
    default: return narrow<Q4, 4, Budget>(nb, w, gb, groups, tiles, act_stride, n_tok, bias, y, y_stride, work);
    }
}

size_t work_bytes(int64_t n) {
    // chunk(): two halves of two groups' slices (narrow(): its ring and one C tile, less)
    const size_t own = 64 + 4 * kTileBytes * size_t(kMaxSlice);
    static_assert((kRing + 1) * kTileBytes <= 4 * kTileBytes * size_t(kMaxSlice), "narrow()'s work area");
    return own > gemm_work_bytes(n) ? own : gemm_work_bytes(n);
}

// The tiles' path: act = matmul's packed tiles of n_tok >= kMinTokens tokens, each sum started at the rows'
// bias (nullptr: zero).
template <bool Q4, int64_t ChunkTiles, size_t Budget, int StepVectors>
void tiles_gemm(int64_t n, const uint8_t *w, size_t gb, int64_t n_rows, const uint8_t *tiles, size_t act_stride,
                int64_t n_tok, const float *bias, float *y, size_t y_stride, void *work) {
    uint8_t *wb = reinterpret_cast<uint8_t *>((reinterpret_cast<uintptr_t>(work) + 63) & ~uintptr_t(63));
    int configured = 0;
    if (n_tok <= kNarrowTiles * kTileTok) {
        configure(kTileTok);
        narrow_of<Q4, Budget>((n_tok + kTileTok - 1) / kTileTok, n / 32, w, gb, n_rows / 16, tiles, act_stride, n_tok,
                              bias, y, y_stride, wb);
        _tile_release();
        return;
    }
    for (int64_t c0 = 0; c0 < n_tok; c0 += kTileTok * ChunkTiles) {
        const int64_t c_tok = n_tok - c0 < kTileTok * ChunkTiles ? n_tok - c0 : kTileTok * ChunkTiles;
        chunk<Q4, Budget, StepVectors>(n / 32, w, gb, n_rows / 16, tiles + size_t(c0 / kTileTok) * act_stride,
                                       act_stride, c_tok, bias, y + size_t(c0) * y_stride, y_stride, wb, configured);
    }
    if (configured) _tile_release();
}

// gemm_packed: fewer than kMinTokens tokens (no tiles: matmul made Q8_0 rows and their prep) on the VNNI kernels
template <bool Q4, int64_t ChunkTiles, size_t Budget, int StepVectors = 0>
void gemm(int64_t n, const void *wv, size_t gb, int64_t n_rows, const void *act, size_t act_stride,
          const void *prep, size_t prep_stride, int64_t n_tok, float *y, size_t y_stride, void *work) {
    // (from kMinTokens on, matmul has packed the tokens from their f32 rows: act; no prep)
    if (n_tok < kMinTokens || act == nullptr || work == nullptr)
        return (Q4 ? gemm_packed_q4_vnni : gemm_packed_q8_vnni)(n, wv, gb, n_rows, act, act_stride, prep, prep_stride,
                                                                n_tok, y, y_stride, work);
    tiles_gemm<Q4, ChunkTiles, Budget, StepVectors>(n, static_cast<const uint8_t *>(wv), gb, n_rows,
                                                    static_cast<const uint8_t *>(act), act_stride, n_tok, nullptr, y,
                                                    y_stride, work);
}

// gemm_packed_bias: matmul calls it only on its packed tiles (kernels.h), so always the tiles' path
template <bool Q4, int64_t ChunkTiles, size_t Budget, int StepVectors = 0>
void gemm_bias(int64_t n, const void *wv, size_t gb, int64_t n_rows, const void *act, size_t act_stride,
               const void *, size_t, int64_t n_tok, const float *bias, float *y, size_t y_stride, void *work) {
    tiles_gemm<Q4, ChunkTiles, Budget, StepVectors>(n, static_cast<const uint8_t *>(wv), gb, n_rows,
                                                    static_cast<const uint8_t *>(act), act_stride, n_tok, bias, y,
                                                    y_stride, work);
}

} // namespace

void fill_gemm_qbf16_amx(kernels &k) {
    for (uint32_t t : {GPTNEOX_TYPE_Q4_0, GPTNEOX_TYPE_Q8_0}) {
        type_traits &tr = k.traits[t];
        tr.gemm_work_size = work_bytes;
        tr.gemm_pack = pack_tile;
        tr.gemm_pack_f32 = true;
        tr.gemm_pack_bytes = pack_bytes;
        tr.gemm_pack_min_tokens = kMinTokens;
        tr.bf16_prompt = true;
    }
    k.traits[GPTNEOX_TYPE_Q4_0].gemm_packed = gemm<true, kChunkTiles, kActBudget>;
    k.traits[GPTNEOX_TYPE_Q8_0].gemm_packed = gemm<false, kChunkTiles, kActBudget>;
    k.traits[GPTNEOX_TYPE_Q4_0].gemm_packed_bias = gemm_bias<true, kChunkTiles, kActBudget>;
    k.traits[GPTNEOX_TYPE_Q8_0].gemm_packed_bias = gemm_bias<false, kChunkTiles, kActBudget>;
}
void fill_gemm_qbf16_amx_test(kernels &k) {
    fill_gemm_qbf16_amx(k);
    // passes of two token tiles and K-slices of kMinSlice blocks, so that packed_test's sizes cover both; and
    // the next pair always dequantized inside the tile loop, 3 vectors per block product (not a divisor of
    // a block's 8 or 4: steps end mid-block and the rest is left to finish())
    k.traits[GPTNEOX_TYPE_Q4_0].gemm_packed = gemm<true, 2, 1, 3>;
    k.traits[GPTNEOX_TYPE_Q8_0].gemm_packed = gemm<false, 2, 1, 3>;
    k.traits[GPTNEOX_TYPE_Q4_0].gemm_packed_bias = gemm_bias<true, 2, 1, 3>;
    k.traits[GPTNEOX_TYPE_Q8_0].gemm_packed_bias = gemm_bias<false, 2, 1, 3>;
}

} // namespace gptneox
