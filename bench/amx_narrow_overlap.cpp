// Why gemm-qbf16-amx.cpp's narrow() (batches of up to 64 tokens) alternates its operand tiles, keeps the
// dequantized blocks in a ring in L1 and spreads a block's dequantization between the products (not a test).
// One thread; nanoseconds per group-block, i.e. one 16-row x 32-element Q8_0 block met by four token tiles:
//   4 tdp                  four TDPBF16PS into C4-C7 on operand tiles already loaded
//   + 5 loads              the block's B tile (from the ring, tiles 2 / 3 in turn) and the four token tiles'
//                          A tiles (tiles 0 / 1 in turn), from A_BLOCKS blocks of 4 KiB (8: L1, 64: L2)
//   8 vectors              the block kAhead on dequantized into the ring as the kernel does (VPERMB into
//                          0x43000000, one FMA, VCVTNE2PS2BF16, two stores per 64 weights), all before
//                          the products, or spread: two vectors after each product
// Measured on the Xeon (11-27): A in L1: 4 tdp 18.2; + 5 loads 18.0; 8 vectors alone 18.3; 4 tdp + 8 vectors
// 19.9; all 30.1, spread 27.0. A in L2 (64 blocks): + 5 loads 26.2; all 41.7, spread 32.9. (In the kernel
// built in: 4 tdp + 5 loads + 8 vectors 35.9 / 48.1, spread 30.4 / 39.7. amx_bf16_overlap.cpp's 2 x 2 loop,
// which reloads the tiles its products just read: 4 tdp + 4 loads 23 from L1, 28-32 from L2.) Random
// operands and quants instead of these patterns, side by side (11-27 evening, a slower hour, from L2): the
// same, + 5 loads 27.7 / 27.6, all 48.0 / 47.8, spread 38.2 / 38.6.
// Build (from the repo root): g++ -std=c++17 -O2 -Isrc -mavx512f -mavx512bw -mavx512vl -mavx512bf16
//   -mavx512vbmi -mamx-tile -mamx-bf16 bench/amx_narrow_overlap.cpp -o build/amx_narrow_overlap
// Run: build/amx_narrow_overlap [A_BLOCKS]
#include <immintrin.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstdlib>

#include "kernels/amx-tiles.h"

#pragma GCC diagnostic ignored "-Wuninitialized" // GCC 12 AVX-512 headers, see kernels-avx512.cpp
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"

namespace {

constexpr int kAhead = 2;
alignas(64) uint8_t g_a[64 * 4096]; // token tiles: 4 KiB per block (four tiles)
alignas(64) uint8_t g_q[64 * 512];  // Q8_0 quants: 512 bytes per block
alignas(64) uint8_t g_ring[4 * 1024];
alignas(64) float g_c[256];
int g_a_blocks = 8;

double now() { return std::chrono::duration<double>(std::chrono::steady_clock::now().time_since_epoch()).count(); }

// vector v of a block (gemm-qbf16-amx.cpp's dequantize_vector, Q8_0)
inline void dequantize_vector(const uint8_t *q, uint8_t *o, __m512 d, __m512 off, int v) {
    const __m512i lane = _mm512_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15);
    const __m512i byte = _mm512_add_epi32(_mm512_slli_epi32(_mm512_srli_epi32(lane, 1), 2),
                                          _mm512_and_si512(lane, _mm512_set1_epi32(1)));
    const __m512i src = _mm512_slli_epi32(byte, 8);
    const __m512i u = _mm512_load_si512(q + 64 * v);
    __m512 f[4];
    #pragma GCC unroll 4
    for (int j = 0; j < 4; j++) {
        const __m512i idx = _mm512_add_epi32(src, _mm512_set1_epi32(((j & 1) * 32 + (j >> 1) * 2) << 8));
        const __m512i bits = _mm512_mask_permutexvar_epi8(_mm512_set1_epi32(0x43000000), 0x2222222222222222ull, idx, u);
        f[j] = _mm512_fmsub_ps(_mm512_castsi512_ps(bits), d, off);
    }
    const __m512bh l0 = _mm512_cvtne2ps_pbh(f[1], f[0]), l1 = _mm512_cvtne2ps_pbh(f[3], f[2]);
    _mm512_store_si512(o + 128 * v, reinterpret_cast<const __m512i &>(l0));
    _mm512_store_si512(o + 128 * v + 64, reinterpret_cast<const __m512i &>(l1));
}

enum : int { kTdp = 1, kLoads = 2, kVectors = 4, kSpread = 8 };

// the block's products (B: tile 2 or 3), between(t) after product t
template <int Mode, int B, class Between> inline void products(const uint8_t *a, const uint8_t *bt, Between &&between) {
    using gptneox::tile_dpbf16ps;
    using gptneox::tile_load;
    if (Mode & kLoads) tile_load<B>(bt, 64);
    if (Mode & kLoads) tile_load<0>(a, 64);
    if (Mode & kTdp) tile_dpbf16ps<4, 0, B>();
    between(0);
    if (Mode & kLoads) tile_load<1>(a + 1024, 64);
    if (Mode & kTdp) tile_dpbf16ps<5, 1, B>();
    between(1);
    if (Mode & kLoads) tile_load<0>(a + 2048, 64);
    if (Mode & kTdp) tile_dpbf16ps<6, 0, B>();
    between(2);
    if (Mode & kLoads) tile_load<1>(a + 3072, 64);
    if (Mode & kTdp) tile_dpbf16ps<7, 1, B>();
    between(3);
}

template <int Mode> __attribute__((noinline)) double run(long n) {
    const __m512 d = _mm512_set1_ps(0.01f), off = _mm512_set1_ps(1.28f);
    const int a_blocks = g_a_blocks;
    const double t0 = now();
    for (long i = 0; i < n; i += 2) {
        #pragma GCC unroll 2
        for (int h = 0; h < 2; h++) {
            const long b = i + h;
            const uint8_t *q = g_q + 512 * ((b + kAhead) & 63);
            uint8_t *o = g_ring + 1024 * ((b + kAhead) & 3);
            auto between = [&](int t) {
                if constexpr ((Mode & kVectors) && (Mode & kSpread)) {
                    dequantize_vector(q, o, d, off, 2 * t);
                    dequantize_vector(q, o, d, off, 2 * t + 1);
                }
            };
            if constexpr ((Mode & kVectors) && !(Mode & kSpread))
                for (int v = 0; v < 8; v++) dequantize_vector(q, o, d, off, v);
            const uint8_t *bt = g_ring + 1024 * (b & 3), *a = g_a + 4096 * (b % a_blocks);
            __asm__ volatile("" ::: "memory");
            if (h == 0) products<Mode, 2>(a, bt, between);
            else products<Mode, 3>(a, bt, between);
        }
    }
    _tile_stored(4, g_c, 64);
    return now() - t0;
}

template <int Mode> void report(const char *name) {
    const long n = 2000000;
    run<Mode>(n / 10);
    double best = 1e30;
    for (int r = 0; r < 5; r++) {
        const double t = run<Mode>(n);
        best = t < best ? t : best;
    }
    std::printf("%-40s %7.2f ns per group-block\n", name, best / double(n) * 1e9);
}

} // namespace

int main(int argc, char **argv) {
    constexpr long kReqXcompPerm = 0x1023, kXfeatureXtiledata = 18;
    if (!__builtin_cpu_supports("avx512vbmi") || syscall(SYS_arch_prctl, kReqXcompPerm, kXfeatureXtiledata) != 0) {
        std::printf("no AMX here (or the OS refused the tile state)\n");
        return 0;
    }
    if (argc > 1) g_a_blocks = std::atoi(argv[1]);
    if (g_a_blocks < 1 || g_a_blocks > 64) g_a_blocks = 8;
    for (long i = 0; i < long(sizeof g_q); i++) g_q[i] = uint8_t(i * 7);
    for (long i = 0; i < long(sizeof g_a); i++) g_a[i] = uint8_t(i & 0x3f); // small bf16 values
    gptneox::tile_config c;
    for (int t = 0; t < 8; t++) c.colsb[t] = 64, c.rows[t] = 16;
    gptneox::load_tile_config(c);
    _tile_loadd(0, g_a, 64); // (operands for the modes without loads)
    _tile_loadd(1, g_a, 64);
    _tile_loadd(2, g_a, 64);
    _tile_loadd(3, g_a, 64);
    _tile_zero(4);
    _tile_zero(5);
    _tile_zero(6);
    _tile_zero(7);
    std::printf("token tiles: %d blocks (%d KiB)\n", g_a_blocks, 4 * g_a_blocks);
    report<kTdp>("4 tdp");
    report<kTdp | kLoads>("4 tdp + 5 loads");
    report<kVectors>("8 vectors");
    report<kTdp | kVectors>("4 tdp + 8 vectors (no loads)");
    report<kTdp | kLoads | kVectors>("4 tdp + 5 loads + 8 vectors");
    report<kTdp | kLoads | kVectors | kSpread>("the same, vectors spread");
    _tile_release();
    return 0;
}
