// Why gemm-qbf16-amx.cpp dequantizes the next group pair inside chunk()'s tile loop for large batches and
// what bounds that loop (not a test). One thread; nanoseconds per iteration of a loop that does the kernel's
// parts alone or together:
//   4 tdp              four TDPBF16PS on tiles already loaded (the 2 x 2 blocking: C[a][b] += A[a] B[b])
//   + 4 loads          and the four operand tiles loaded first as chunk() loads them: A0, A1 from two token
//                      tiles' blocks, B0, B1 from the two groups' halves of the work area, all four distinct
//                      and new each iteration, from 8 blocks of each (L1: 32 KiB together) or 128 (L2: 512
//                      KiB); every operand a normal bf16 number of random sign and mantissa, as activations
//                      and weights are (with all-zero operands the L2 loop below ran in 24-26 ns, not 29-31)
//   N vectors          N of the kernel's dequantization steps (dequantize_vector, Q8_0: 64 weights by VPERMB
//                      into 0x43000000, an FMA per 16, two VCVTNE2PS2BF16, two 64-byte stores), from L1
//   + C every K        the four C tiles stored and loaded back every K blocks (chunk() does so per call of
//                      products(): each K-slice of each token tile pair)
// If the tile unit and the AVX-512 ports work side by side, "together" takes the longer of the parts.
// Measured on the Xeon (11-27, three runs, each line the best of 5): 4 tdp 18.4-18.6; 2 / 4 / 8 vectors
// alone 11.2-11.4 / 22.6 / 49-50. With the operands in L1: + 4 loads 23.0-23.3, + 2 vectors 25.6-25.7, + 4
// 35.0-35.4, + 8 62-70. In L2: + 4 loads 27.6-31.7, + 2 vectors 34-38, + 4 44.5-48.5, + 8 86-92; C every
// 64 blocks 35.7-37.2 against 30.4-31.1 (the same loop with the branch but no C), every 16 37.6-38.9. So
// from L2 the four tile loads cost 9-13 ns per 4 products, 2 vectors half hide behind the tiles and 8 not
// at all, and a C store and reload costs some 100-400 ns of tile time each time; the stores are that cost
// (reloading from other addresses, from a bias row with stride 0, or zeroing instead: the same, 11-27).
// (Until 11-27 this loop loaded A1 = the next A0 and B1 = the next B0, so half its loads hit L1, with
// operands of bytes 0-63 -- bf16 denormals -- and an older dequantization: "4 products + 4 loads 21.3-21.8
// from L1 or L2 alike".)
// The kernel itself (kernels_bench, rinna's 2816 x 11264, Q8_0, 512 tokens, one thread) takes 60-64 ns per
// such iteration; built without its dequantization ~45, with its C tiles kept in L1 ~52, both ~40.
// Build (from the repo root): g++ -std=c++17 -O2 -Isrc -mavx512f -mavx512bw -mavx512vl -mavx512bf16
//   -mavx512vbmi -mamx-tile -mamx-bf16 bench/amx_bf16_overlap.cpp -o build/amx_bf16_overlap
#include <immintrin.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <chrono>
#include <cstdint>
#include <cstdio>
#include <initializer_list>
#include <random>

#include "kernels/amx-tiles.h"

#pragma GCC diagnostic ignored "-Wuninitialized" // GCC 12 AVX-512 headers, see kernels-avx512.cpp
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"

namespace {

using gptneox::tile_config;

constexpr long kBlocks = 128; // blocks of each of A0, A1, B0, B1 (1 KiB each; at most 512 KiB together, L2)
alignas(64) uint8_t g_a[2][kBlocks * 1024], g_b[2][kBlocks * 1024];
alignas(64) uint8_t g_q[512 * 64], g_out[256 * 128];
alignas(64) float g_c[4][256];

double now() { return std::chrono::duration<double>(std::chrono::steady_clock::now().time_since_epoch()).count(); }

// Q8_0 vector v of a block at q (its 16 rows' bytes 4v..4v+3, stored + 128) -> its two pair lines at o, as
// gemm-qbf16-amx.cpp's dequantize_vector does it (d: 256 x the scales, off: 32896 x the scales)
inline void dequantize_vector(const uint8_t *q, __m512 d, __m512 off, uint8_t *o) {
    const __m512i u = _mm512_load_si512(q);
    const __m512i lane = _mm512_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15);
    const __m512i byte = _mm512_add_epi32(_mm512_slli_epi32(_mm512_srli_epi32(lane, 1), 2),
                                          _mm512_and_si512(lane, _mm512_set1_epi32(1)));
    const __m512i src = _mm512_slli_epi32(byte, 8);
    __m512 f[4];
    for (int j = 0; j < 4; j++) {
        const __m512i idx = _mm512_add_epi32(src, _mm512_set1_epi32(((j & 1) * 32 + (j >> 1) * 2) << 8));
        const __m512i bits = _mm512_mask_permutexvar_epi8(_mm512_set1_epi32(0x43000000), 0x2222222222222222ull, idx, u);
        f[j] = _mm512_fmsub_ps(_mm512_castsi512_ps(bits), d, off);
    }
    const __m512bh l0 = _mm512_cvtne2ps_pbh(f[1], f[0]), l1 = _mm512_cvtne2ps_pbh(f[3], f[2]);
    _mm512_store_si512(o, reinterpret_cast<const __m512i &>(l0));
    _mm512_store_si512(o + 64, reinterpret_cast<const __m512i &>(l1));
}

// `mask` + 1 blocks of each operand walked in order; the C tiles stored and reloaded every `c_every`
// iterations (0: never)
template <bool Tdp, bool Loads, int Vectors>
__attribute__((noinline)) double run(long n, long mask, long c_every = 0) {
    const __m512 d = _mm512_set1_ps(0.01f * 256), off = _mm512_set1_ps(0.01f * 32896);
    const double t0 = now();
    long c_left = c_every;
    for (long i = 0; i < n; i++) {
        if constexpr (Loads) {
            const size_t o = 1024 * size_t(i & mask);
            _tile_loadd(0, g_a[0] + o, 64);
            _tile_loadd(2, g_b[0] + o, 64);
            _tile_loadd(3, g_b[1] + o, 64);
            _tile_loadd(1, g_a[1] + o, 64);
        }
        if constexpr (Tdp) {
            _tile_dpbf16ps(4, 0, 2);
            _tile_dpbf16ps(5, 0, 3);
            _tile_dpbf16ps(6, 1, 2);
            _tile_dpbf16ps(7, 1, 3);
        }
        for (int v = 0; v < Vectors; v++) {
            const long k = i * Vectors + v;
            dequantize_vector(g_q + 64 * (k & 511), d, off, g_out + 128 * (k & 255));
        }
        if (c_every && --c_left == 0) {
            c_left = c_every;
            _tile_stored(4, g_c[0], 64);
            _tile_stored(5, g_c[1], 64);
            _tile_stored(6, g_c[2], 64);
            _tile_stored(7, g_c[3], 64);
            __asm__ volatile("" ::: "memory"); // (the tile intrinsics declare no memory operands)
            _tile_loadd(4, g_c[0], 64);
            _tile_loadd(5, g_c[1], 64);
            _tile_loadd(6, g_c[2], 64);
            _tile_loadd(7, g_c[3], 64);
        }
    }
    _tile_stored(4, g_c[0], 64);
    return now() - t0;
}

template <bool Tdp, bool Loads, int Vectors> void report(const char *name, long mask = 7, long c_every = 0) {
    const long n = 2000000;
    run<Tdp, Loads, Vectors>(n / 10, mask, c_every);
    double best = 1e30;
    for (int r = 0; r < 5; r++) {
        const double t = run<Tdp, Loads, Vectors>(n, mask, c_every);
        best = t < best ? t : best;
    }
    std::printf("%-36s %7.2f ns\n", name, best / double(n) * 1e9);
}

} // namespace

int main() {
    constexpr long kReqXcompPerm = 0x1023, kXfeatureXtiledata = 18;
    if (!__builtin_cpu_supports("avx512vbmi") || syscall(SYS_arch_prctl, kReqXcompPerm, kXfeatureXtiledata) != 0) {
        std::printf("no AMX here (or the OS refused the tile state)\n");
        return 0;
    }
    // operands: bf16 of magnitude 2^-4..2^3, random sign and mantissa; quants: random bytes
    std::mt19937 rng(1);
    for (auto *m : {g_a[0], g_a[1], g_b[0], g_b[1]}) {
        uint16_t *h = reinterpret_cast<uint16_t *>(m);
        for (long i = 0; i < kBlocks * 512; i++) {
            const uint32_t r = rng();
            h[i] = uint16_t((r & 0x8000) | ((123 + (r >> 16) % 8) << 7) | (r & 0x7f));
        }
    }
    for (long i = 0; i < long(sizeof g_q); i++) g_q[i] = uint8_t(rng());
    tile_config c;
    for (int t = 0; t < 8; t++) c.colsb[t] = 64, c.rows[t] = 16;
    gptneox::load_tile_config(c);
    _tile_loadd(0, g_a[0], 64); // (the intrinsics take literal tile numbers)
    _tile_loadd(1, g_a[1], 64);
    _tile_loadd(2, g_b[0], 64);
    _tile_loadd(3, g_b[1], 64);
    _tile_zero(4);
    _tile_zero(5);
    _tile_zero(6);
    _tile_zero(7);
    report<true, false, 0>("4 tdp");
    for (int v : {2, 4, 8}) {
        char name[64];
        std::snprintf(name, sizeof name, "%d vectors", v);
        if (v == 2) report<false, false, 2>(name);
        if (v == 4) report<false, false, 4>(name);
        if (v == 8) report<false, false, 8>(name);
    }
    for (long mask : {7L, kBlocks - 1}) {
        const char *where = mask == 7 ? "L1" : "L2";
        char name[64];
        std::snprintf(name, sizeof name, "4 tdp + 4 loads (%s)", where);
        report<true, true, 0>(name, mask);
        std::snprintf(name, sizeof name, "4 tdp + 4 loads (%s) + 2 vectors", where);
        report<true, true, 2>(name, mask);
        std::snprintf(name, sizeof name, "4 tdp + 4 loads (%s) + 4 vectors", where);
        report<true, true, 4>(name, mask);
        std::snprintf(name, sizeof name, "4 tdp + 4 loads (%s) + 8 vectors", where);
        report<true, true, 8>(name, mask);
    }
    for (long every : {1L << 40, 64L, 16L}) {
        char name[64];
        if (every > kBlocks) std::snprintf(name, sizeof name, "4 tdp + 4 loads (L2) + C never (branch)");
        else std::snprintf(name, sizeof name, "4 tdp + 4 loads (L2) + C every %ld", every);
        report<true, true, 0>(name, kBlocks - 1, every);
    }
    _tile_release();
    return 0;
}
