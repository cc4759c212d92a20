// BF16 weights on AMX-BF16 tiles (TDPBF16PS), the BF16 entries of the AMX table where the CPU also has
// AVX512_BF16 (dispatch.cpp): activations are rounded to bf16 rows as on that path (its from_float), the
// weights repacked at load into the tiles' B layout (packed-layout.h, kPackedPairs16x16), and every token
// count -- decode too -- goes through the tiles, so a token's result never depends on the batch.
//
// Arithmetic of one output: C (f32) starts at zero and takes one TDPBF16PS per 32 elements in order; the
// instruction's own way of adding its 32 products to C is what it is (measured on a Xeon: no simple
// sequence of f32 roundings reproduces it), so this path is tested against a double-precision
// reference within a bound, and bit for bit against itself across batch sizes (packed_test).
//
// Tiles: A = up to 16 tokens x 32 bf16 (their rows read in place, act_stride apart), B = one 16-row group's
// block (16 element pairs x 16 rows), two groups at a time sharing A (C0, C1 accumulate over the whole
// row and are stored straight into y). Tokens in chunks of about 1 MiB of activations, each chunk over all
// groups of the range, so a chunk stays in L2 while the weights stream.
#include <immintrin.h>

#include <cstddef>
#include <cstring>

#include "kernels/amx-tiles.h"
#include "kernels/kernels-impl.h"
#include "kernels/packed-layout.h"

namespace gptneox {
namespace {

constexpr int kTileTok = 16;
constexpr size_t kActBudget = size_t(1) << 20;
// tiles: A = 0, B0 = 1, B1 = 2, C0 = 3, C1 = 4 (the intrinsics paste their tile numbers into the
// instruction text: literals below)
enum : int { kA = 0, kB0 = 1, kB1 = 2, kC0 = 3, kC1 = 4 };

// A chunk of one token tile (decode, small batches) reads each weight once, the groups front to back;
// asking for the bytes 2 KiB ahead of each block (into L2) kept more of the run in flight on a Xeon
// (pythia-410m bf16 generation, interleaved phase profiles: 38.7 -> 40.7-42.4 tok/s; 4-8 KiB ahead gained
// less). (A prefetch past the range's end touches the next rows or nothing: it never faults.)
constexpr size_t kDecodePrefetch = 2048;
inline void prefetch_block(const uint8_t *p) {
    #pragma GCC unroll 16
    for (int l = 0; l < 1024; l += 64) _mm_prefetch(reinterpret_cast<const char *>(p + l), _MM_HINT_T1);
}

// m tokens (1..16): A and C have m rows; B 16 rows (element pairs) of 64 bytes.
void configure(int m) {
    tile_config c;
    c.colsb[kA] = 64, c.rows[kA] = uint8_t(m);
    c.colsb[kB0] = c.colsb[kB1] = 64, c.rows[kB0] = c.rows[kB1] = 16;
    c.colsb[kC0] = c.colsb[kC1] = 64, c.rows[kC0] = c.rows[kC1] = uint8_t(m);
    load_tile_config(c);
}

void gemm(int64_t n, const void *wv, size_t gb, int64_t n_rows, const void *act, size_t act_stride, const void *,
          size_t, int64_t n_tok, float *y, size_t y_stride, void *) {
    const int64_t nb = n / 32, groups = n_rows / 16;
    const uint8_t *w = static_cast<const uint8_t *>(wv), *a = static_cast<const uint8_t *>(act);
    const size_t tile_act = size_t(kTileTok) * size_t(n) * 2;
    const int64_t chunk = kTileTok * (kActBudget / tile_act ? int64_t(kActBudget / tile_act) : 1);
    int configured = 0;
    for (int64_t c0 = 0; c0 < n_tok; c0 += chunk) {
        const int64_t c1 = c0 + chunk < n_tok ? c0 + chunk : n_tok;
        const bool stream = c1 - c0 <= kTileTok; // one token tile: each weight read once (decode)
        for (int64_t g = 0; g < groups; g += 2) {
            const uint8_t *b0 = w + size_t(g) * gb, *b1 = b0 + gb;
            const bool two = g + 1 < groups;
            for (int64_t t0 = c0; t0 < c1; t0 += kTileTok) {
                const int m = c1 - t0 < kTileTok ? int(c1 - t0) : kTileTok;
                if (m != configured) configure(configured = m);
                const uint8_t *at = a + size_t(t0) * act_stride;
                _tile_zero(3);
                _tile_zero(4);
                __asm__ volatile("" ::: "memory"); // (tileloadd's asm declares no memory input)
                if (two) {
                    for (int64_t ib = 0; ib < nb; ib++) {
                        if (stream) {
                            prefetch_block(b0 + 1024 * ib + kDecodePrefetch);
                            prefetch_block(b1 + 1024 * ib + kDecodePrefetch);
                        }
                        _tile_loadd(0, at + 64 * ib, act_stride);
                        _tile_loadd(1, b0 + 1024 * ib, 64);
                        _tile_loadd(2, b1 + 1024 * ib, 64);
                        _tile_dpbf16ps(3, 0, 1);
                        _tile_dpbf16ps(4, 0, 2);
                    }
                } else {
                    for (int64_t ib = 0; ib < nb; ib++) {
                        _tile_loadd(0, at + 64 * ib, act_stride);
                        _tile_loadd(1, b0 + 1024 * ib, 64);
                        _tile_dpbf16ps(3, 0, 1);
                    }
                }
                float *yt = y + size_t(t0) * y_stride + 16 * g;
                _tile_stored(3, yt, y_stride * sizeof(float));
                if (two) _tile_stored(4, yt + 16, y_stride * sizeof(float));
            }
        }
    }
    if (configured) _tile_release();
}

} // namespace

void fill_gemm_bf16_amx(kernels &k) {
    use_pairs16x16(k.traits[GPTNEOX_TYPE_BF16]);
    k.traits[GPTNEOX_TYPE_BF16].gemm_packed = gemm;
}

} // namespace gptneox
