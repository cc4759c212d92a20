// Why gemm-qbf16-amx.cpp dequantizes the next group pair inside chunk()'s tile loop for large batches and
// what bounds that loop (not a test). One thread; nanoseconds per iteration of a loop that does the kernel's
// parts alone or together:
//   4 tdp              four TDPBF16PS on tiles already loaded (the 2 x 2 blocking: C[a][b] += A[a] B[b])
//   + 4 loads          and the four operand tiles loaded first as chunk() loads them: A0, A1 from two token
//                      tiles' blocks, B0, B1 from the two groups' halves of the work area, all four distinct
//                      and new each iteration, from 8 blocks of each (L1: 32 KiB together) or 128 (L2: 512
//                      KiB); every operand a normal bf16 number of random sign and mantissa, as activations
//                      and weights are (with all-zero operands the L2 loop below ran in 24-26 ns, not 29-31)
//   N vectors          N calls of the kernel's own dequantize_vector (Q8_0: 64 weights by VPERMB into
//                      0x43000000, an FMA per 16, two VCVTNE2PS2BF16, two 64-byte stores; this file compiles
//                      gemm-qbf16-amx.cpp for it), from L1
//   + C every K        the four C tiles stored and loaded back every K blocks (chunk() does so per call of
//                      products(): each K-slice of each token tile pair)
// If the tile unit and the AVX-512 ports work side by side, "together" takes the longer of the parts.
// Measured on the Xeon (11-27, four runs, each line the best of 5): 4 tdp 18.7-20.1; 2 / 4 / 8 vectors
// alone 7.1-7.9 / 15.1-16.8 / 20.2-21.7. With the operands in L1: + 4 loads 23.5-24.0, + 2 vectors
// 24.0-25.5, + 4 29.3-31.2, + 8 55.8-58.9. In L2: + 4 loads 31.6-33.9, + 2 vectors 36.3-40.0, + 4
// 45.8-49.9, + 8 66-77; C every 64 blocks 35.0-40.9 against 28.6-33.7 (the same loop with the branch but no
// C), every 16 37.6-39.2. So from L2 the four tile loads cost 9-15 ns per 4 products, 2 vectors half hide
// behind the tiles and 8 not at all (more than the sum), and a C store and reload costs some 100-400 ns of
// tile time each time; the stores are that cost (reloading from other addresses, from a bias row with
// stride 0, or zeroing instead: the same, 11-27).
// (Until 11-27 this loop loaded A1 = the next A0 and B1 = the next B0, so half its loads hit L1, with
// operands of bytes 0-63 -- bf16 denormals -- and an older dequantization: "4 products + 4 loads 21.3-21.8
// from L1 or L2 alike".)
// The kernel itself (kernels_bench, rinna's 2816 x 11264, Q8_0, 512 tokens, one thread) takes 60-64 ns per
// such iteration; built without its dequantization ~45, with its C tiles kept in L1 ~52, both ~40.
// (Until the evening of 11-27 this file carried its own copy of dequantize_vector, which measured slower
// -- 2 / 4 / 8 vectors alone 11.2-11.4 / 22.6 / 49-50, in L2 + 2 vectors 34-38, + 8 86-92 -- presumably as
// it lacked the kernel's `#pragma GCC unroll 4`.)
// Build (from the repo root, after `make`, whose object supplies the VNNI kernels gemm() falls back to):
//   g++ -std=c++17 -O2 -Iinclude -Isrc -mavx512f -mavx512bw -mavx512vl -mavx512bf16 -mavx512vbmi -mamx-tile
//   -mamx-bf16 bench/amx_bf16_overlap.cpp build/release/src/kernels/gemm-packed-avx512.o -o build/amx_bf16_overlap
#include <immintrin.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <chrono>
#include <cstdint>
#include <cstdio>
#include <initializer_list>
#include <random>

#include "kernels/gemm-qbf16-amx.cpp" // its dequantize_vector (anonymous namespace: this file compiles it)

#pragma GCC diagnostic ignored "-Wuninitialized" // GCC 12 AVX-512 headers, see kernels-avx512.cpp
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"

namespace {

using gptneox::tile_config;

constexpr long kBlocks = 128; // blocks of each of A0, A1, B0, B1 (1 KiB each; at most 512 KiB together, L2)
alignas(64) uint8_t g_a[2][kBlocks * 1024], g_b[2][kBlocks * 1024];
alignas(64) uint8_t g_q[512 * 64], g_out[256 * 128];
alignas(64) float g_c[4][256];

double now() { return std::chrono::duration<double>(std::chrono::steady_clock::now().time_since_epoch()).count(); }

// `mask` + 1 blocks of each operand walked in order; the C tiles stored and reloaded every `c_every`
// iterations (0: never)
template <bool Tdp, bool Loads, int Vectors>
__attribute__((noinline)) double run(long n, long mask, long c_every = 0) {
    gptneox::block_scales s; // every row's scale 0.01 (d: 256 x the scale, off: 32896 x it)
    for (int j = 0; j < 4; j++) s.d[j] = _mm512_set1_ps(0.01f * 256), s.off[j] = _mm512_set1_ps(0.01f * 32896);
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
            gptneox::dequantize_vector<false>(g_q + 64 * (k & 511), s, 0, g_out + 128 * (k & 255));
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
