// Q8_0 prompt batches on AMX-INT8 tiles (GPTNEOX_KERNELS_AMX: the AVX-512 VNNI table with this gemm
// over the Q8_0 x16 layout the loader repacks to). Compiled with AVX-512 + AMX flags; reached only
// through dispatch.cpp after the CPU reported AMX-INT8 and the OS granted the tile data state.
//
// Same contract as every Q8_0 kernel (gemm-vnni.h): per output, for each block b in order,
//   acc = fma(float(isum_b), dw_b * dy_b, acc)
// with isum_b exact. Here isum_b comes from one TDPBSUD per block: A = 16 tokens' signed activation
// bytes of the block (gemm_prep's row, 32 bytes per token: a 16 x 32-byte tile read in place with the
// prep stride), B = the block's 8 packed vectors (packed-layout.h: vector v holds elements 4v..4v+3 of
// the 16 rows as unsigned bytes w + 128 -- exactly AMX's B layout of K/4 rows x 16 columns x 4 bytes),
// C = 16 tokens x 16 rows of sum(a * (w + 128)); gemm_prep's correction -128 * sum(a) makes it isum_b.
// The per-block scales (Q8_0 has one per 32 weights) keep K at 32 per tile product, so the f32 part
// runs on AVX-512 beside the tiles: C is stored (two C tiles alternate, so the next block's product
// overlaps this block's FMAs), and the 16 tokens' f32 sums stay in zmm registers for the whole row.
//
// Tile operations go through a policy type: `hw` issues the instructions; `emulated` (used only by
// packed_test, on CPUs without AMX) computes the same operations in scalar code on its own storage,
// so the test checks this file's layouts and loops anywhere AVX-512 VNNI runs.
#include <immintrin.h>

#include <cstddef>
#include <cstring>

#include "kernels/gemm-vnni.h"
#include "kernels/packed-layout.h"

namespace gptneox {
namespace {

constexpr int kTileTok = 16;     // tokens per A / C tile (the tile's rows)
constexpr int kTileK = 32;       // one Q8_0 block: bytes per A tile row, B tile rows x 4
enum : int { kA = 0, kB = 1, kC0 = 2, kC1 = 3 };

// LDTILECFG's 64-byte operand (palette 1): A 16 rows x 32 bytes, B 8 rows x 64 bytes, C 16 x 64.
struct alignas(64) tile_config {
    uint8_t palette = 1, start_row = 0;
    uint8_t reserved[14] = {};
    uint16_t colsb[16] = {};
    uint8_t rows[16] = {};
};
static_assert(offsetof(tile_config, colsb) == 16 && offsetof(tile_config, rows) == 48 && sizeof(tile_config) == 64,
              "LDTILECFG's operand layout");
tile_config make_config() {
    tile_config c;
    c.colsb[kA] = kTileK, c.rows[kA] = kTileTok;
    c.colsb[kB] = 64, c.rows[kB] = kTileK / 4;
    c.colsb[kC0] = c.colsb[kC1] = 64, c.rows[kC0] = c.rows[kC1] = kTileTok;
    return c;
}

struct hw {
    // (ldtilecfg's asm declares only 8 of the 64 bytes as read: the barrier makes every byte stored first)
    explicit hw(const tile_config &c) {
        __asm__ volatile("" ::: "memory");
        _tile_loadconfig(&c);
    }
    ~hw() { _tile_release(); }
    hw(const hw &) = delete;
    hw &operator=(const hw &) = delete;
    // (the intrinsics paste their tile number into the instruction text: literals, kA = 0, kB = 1, kC0 = 2,
    // kC1 = 3). GCC 12's tileloadd asm declares no memory input, so a compiler barrier first: every store
    // to the bytes it reads (the tail copy) is emitted before it. tilestored has its "memory" clobber.
    void load_a(const void *p, size_t stride) {
        __asm__ volatile("" ::: "memory");
        _tile_loadd(0, p, stride);
    }
    void load_b(const void *p) {
        __asm__ volatile("" ::: "memory");
        _tile_loadd(1, p, 64);
    }
    // C (0 or 1) = A x B from zero, then stored to out (16 rows x 64 bytes)
    template <int C> void product(int32_t *out) {
        if constexpr (C == 0) {
            _tile_zero(2);
            _tile_dpbsud(2, 0, 1);
            _tile_stored(2, out, 64);
        } else {
            _tile_zero(3);
            _tile_dpbsud(3, 0, 1);
            _tile_stored(3, out, 64);
        }
    }
};

// Scalar model of the same instructions (Intel SDM: TILELOADD, TDPBSUD with A signed, B unsigned).
struct emulated {
    explicit emulated(const tile_config &) {}
    int8_t a[kTileTok][kTileK];
    uint8_t b[kTileK / 4][64];
    void load_a(const void *p, size_t stride) {
        for (int r = 0; r < kTileTok; r++) std::memcpy(a[r], static_cast<const uint8_t *>(p) + r * stride, kTileK);
    }
    void load_b(const void *p) { std::memcpy(b, p, sizeof b); }
    template <int C> void product(int32_t *out) {
        for (int m = 0; m < kTileTok; m++)
            for (int n = 0; n < 16; n++) {
                int32_t s = 0;
                for (int k = 0; k < kTileK / 4; k++)
                    for (int i = 0; i < 4; i++) s += int32_t(a[m][4 * k + i]) * int32_t(b[k][4 * n + i]);
                out[16 * m + n] = s;
            }
    }
};

// 16 rows (one packed group) x m <= 16 tokens whose activation bytes are a (stride a_stride) and whose
// prep rows (scales, corrections) are at prep. Per block: acc[t] = fma(float(c[t] + corr_t), dw * dy_t,
// acc[t]). The 16 sums are indexed by constants only (loops unrolled, no pointer to them), so they stay
// in zmm registers: an addressable array would be stored and reloaded around every tilestored, whose asm
// clobbers memory.
template <typename Tiles>
void group_tile(Tiles &tl, int64_t n, const uint8_t *grp, const uint8_t *a, size_t a_stride, const uint8_t *prep,
                size_t prep_stride, int m, float *y, size_t y_stride) {
    const int64_t nb = n / 32;
    alignas(64) int32_t c[2][kTileTok * 16];
    __m512 acc[kTileTok];
    #pragma GCC unroll 16
    for (int t = 0; t < kTileTok; t++) acc[t] = _mm512_setzero_ps();
    for (int64_t ib = 0; ib < nb; ib++) {
        // two C tiles alternate, so this block's product can start while the last block's FMAs run
        const int which = int(ib & 1);
        tl.load_a(a + 32 * ib, a_stride);
        tl.load_b(grp + x16_quants_at<false>(ib));
        if (which) tl.template product<1>(c[1]);
        else tl.template product<0>(c[0]);
        const int32_t *cc = c[which];
        const __m512 dw = _mm512_cvtph_ps(_mm256_load_si256(reinterpret_cast<const __m256i *>(grp + x16_scales_at<false>(ib))));
        #pragma GCC unroll 16
        for (int t = 0; t < kTileTok; t++) {
            if (t < m) {
                const vnni::act_row r = vnni::act_of(prep + size_t(t) * prep_stride, n);
                const __m512i is = _mm512_add_epi32(_mm512_load_si512(cc + 16 * t), _mm512_set1_epi32(r.corr[ib]));
                acc[t] = _mm512_fmadd_ps(_mm512_cvtepi32_ps(is), _mm512_mul_ps(dw, _mm512_set1_ps(r.d[ib])), acc[t]);
            }
        }
    }
    #pragma GCC unroll 16
    for (int t = 0; t < kTileTok; t++)
        if (t < m) _mm512_storeu_ps(y + size_t(t) * y_stride, acc[t]);
}

// Fewer tokens than this: the VNNI kernels (a tile would be mostly empty).
constexpr int64_t kAmxMinTokens = 16;

template <typename Tiles>
void gemm_q8(int64_t n, const void *wv, size_t gb, int64_t n_rows, const void *act, size_t act_stride,
             const void *prep_v, size_t prep_stride, int64_t n_tok, float *y, size_t y_stride, void *work) {
    if (n_tok < kAmxMinTokens || prep_v == nullptr || work == nullptr)
        return gemm_packed_q8_vnni(n, wv, gb, n_rows, act, act_stride, prep_v, prep_stride, n_tok, y, y_stride, work);
    const uint8_t *prep = static_cast<const uint8_t *>(prep_v);
    // The last tokens (n_tok % 16) as a full tile: their activation bytes copied into the work area
    // (gemm_work_bytes(n) >= 16 n + 64), the rows after them zero.
    const int64_t full = n_tok / kTileTok * kTileTok;
    const int rest = int(n_tok - full);
    uint8_t *tail = reinterpret_cast<uint8_t *>((reinterpret_cast<uintptr_t>(work) + 63) & ~uintptr_t(63));
    if (rest) {
        std::memset(tail, 0, size_t(kTileTok) * size_t(n));
        for (int t = 0; t < rest; t++) std::memcpy(tail + size_t(t) * size_t(n), prep + size_t(full + t) * prep_stride, size_t(n));
    }
    Tiles tl(make_config());
    for (int64_t g = 0; g < n_rows; g += 16) {
        const uint8_t *grp = static_cast<const uint8_t *>(wv) + size_t(g / 16) * gb;
        for (int64_t t0 = 0; t0 < full; t0 += kTileTok)
            group_tile(tl, n, grp, prep + size_t(t0) * prep_stride, prep_stride, prep + size_t(t0) * prep_stride,
                       prep_stride, kTileTok, y + size_t(t0) * y_stride + g, y_stride);
        if (rest)
            group_tile(tl, n, grp, tail, size_t(n), prep + size_t(full) * prep_stride, prep_stride, rest,
                       y + size_t(full) * y_stride + g, y_stride);
    }
}

} // namespace

void fill_gemm_amx(kernels &k) { k.traits[GPTNEOX_TYPE_Q8_0].gemm_packed = gemm_q8<hw>; }
void fill_gemm_amx_emulated(kernels &k) { k.traits[GPTNEOX_TYPE_Q8_0].gemm_packed = gemm_q8<emulated>; }

} // namespace gptneox
