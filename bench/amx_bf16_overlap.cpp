// Why gemm-qbf16-amx.cpp dequantizes the next group pair inside the tile loop for large batches and not
// for 64-token ones (not a test). One thread; nanoseconds per iteration of a loop that does the kernel's
// parts alone or together:
//   4 tdp              four TDPBF16PS on tiles already loaded (the 2 x 2 blocking: C[a][b] += A[a] B[b])
//   + 4 loads          and the four operand tiles loaded first (A0, A1, B0, B1), as the kernel does, from
//                      operands of the size given (L1: 32 KiB each; L2: 512 KiB each, walked in order)
//   N vectors          N of the kernel's dequantization steps (64 Q8_0 weights each: zero-extend, convert,
//                      (u - zero) * d, two bf16 conversions, two permutes, two 64-byte stores), from L1
// If the tile unit and the AVX-512 ports work side by side, "together" takes the longer of the parts.
// Measured on the Xeon (11-27, L1 and L2 alike): 4 tdp 17.8-18.4; + 4 loads 21.3-21.8; 2 / 4 / 8 vectors
// alone 9.0 / 17.9 / 35.5; 4 tdp + 4 loads + 2 vectors 23.3-24.5 (nearly hidden), + 4 vectors 31.7-32.1, + 8
// vectors 62-65 (more than the sum, 57). With 1 MiB of operands each (L2 overflowing) the loads alone 36.
// Build (from the repo root): g++ -std=c++17 -O2 -Isrc -mavx512f -mavx512bw -mavx512vl -mavx512bf16 -mamx-tile
//   -mamx-bf16 bench/amx_bf16_overlap.cpp -o build/amx_bf16_overlap
#include <immintrin.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <chrono>
#include <cstdint>
#include <cstdio>
#include <initializer_list>

#include "kernels/amx-tiles.h"

#pragma GCC diagnostic ignored "-Wuninitialized" // GCC 12 AVX-512 headers, see kernels-avx512.cpp
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"

namespace {

using gptneox::tile_config;

constexpr long kBlocks = 512; // operand tiles of 1 KiB in each of A and B (at most: 1 MiB together, in L2)
alignas(64) uint8_t g_a[kBlocks * 1024], g_b[kBlocks * 1024];
alignas(64) uint8_t g_q[512 * 64], g_out[256 * 128];
alignas(64) float g_c[256];

double now() { return std::chrono::duration<double>(std::chrono::steady_clock::now().time_since_epoch()).count(); }

// `mask` + 1 operand tiles are walked in order
template <bool Tdp, bool Loads, int Vectors> __attribute__((noinline)) double run(long n, long mask) {
    const __m512 d = _mm512_set1_ps(0.01f), off = _mm512_set1_ps(1.28f);
    const __m512i even = _mm512_setr_epi32(0, 2, 4, 6, 8, 10, 12, 14, 16, 18, 20, 22, 24, 26, 28, 30);
    const __m512i odd = _mm512_add_epi32(even, _mm512_set1_epi32(1));
    const double t0 = now();
    for (long i = 0; i < n; i++) {
        if constexpr (Loads) {
            const long j = i & mask, k = (i + 1) & mask;
            _tile_loadd(0, g_a + 1024 * j, 64);
            _tile_loadd(2, g_b + 1024 * j, 64);
            _tile_loadd(3, g_b + 1024 * k, 64);
            _tile_loadd(1, g_a + 1024 * k, 64);
        }
        if constexpr (Tdp) {
            _tile_dpbf16ps(4, 0, 2);
            _tile_dpbf16ps(5, 0, 3);
            _tile_dpbf16ps(6, 1, 2);
            _tile_dpbf16ps(7, 1, 3);
        }
        for (int v = 0; v < Vectors; v++) {
            const uint8_t *q = g_q + 64 * ((i * Vectors + v) & 511);
            __m512 f[4];
            for (int t = 0; t < 4; t++) {
                const __m512i u = _mm512_cvtepu8_epi32(_mm_load_si128(reinterpret_cast<const __m128i *>(q + 16 * t)));
                f[t] = _mm512_fmsub_ps(_mm512_cvtepi32_ps(u), d, off);
            }
            const __m512bh lo = _mm512_cvtne2ps_pbh(f[1], f[0]), hi = _mm512_cvtne2ps_pbh(f[3], f[2]);
            const __m512i l = reinterpret_cast<const __m512i &>(lo), h = reinterpret_cast<const __m512i &>(hi);
            uint8_t *o = g_out + 128 * ((i * Vectors + v) & 255);
            _mm512_store_si512(o, _mm512_permutex2var_epi32(l, even, h));
            _mm512_store_si512(o + 64, _mm512_permutex2var_epi32(l, odd, h));
        }
    }
    _tile_stored(4, g_c, 64);
    return now() - t0;
}

template <bool Tdp, bool Loads, int Vectors> void report(const char *name, long mask = 31) {
    const long n = 2000000;
    run<Tdp, Loads, Vectors>(n / 10, mask);
    double best = 1e30;
    for (int r = 0; r < 5; r++) {
        const double t = run<Tdp, Loads, Vectors>(n, mask);
        best = t < best ? t : best;
    }
    std::printf("%-36s %7.2f ns\n", name, best / double(n) * 1e9);
}

} // namespace

int main() {
    constexpr long kReqXcompPerm = 0x1023, kXfeatureXtiledata = 18;
    if (!__builtin_cpu_supports("avx512f") || syscall(SYS_arch_prctl, kReqXcompPerm, kXfeatureXtiledata) != 0) {
        std::printf("no AMX here (or the OS refused the tile state)\n");
        return 0;
    }
    for (long i = 0; i < long(sizeof g_q); i++) g_q[i] = uint8_t(i * 7);
    for (long i = 0; i < long(sizeof g_a); i++) g_a[i] = g_b[i] = uint8_t(i & 0x3f); // small bf16 values
    tile_config c;
    for (int t = 0; t < 8; t++) c.colsb[t] = 64, c.rows[t] = 16;
    gptneox::load_tile_config(c);
    _tile_loadd(0, g_a, 64); // (the intrinsics take literal tile numbers)
    _tile_loadd(1, g_a, 64);
    _tile_loadd(2, g_b, 64);
    _tile_loadd(3, g_b, 64);
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
    for (long mask : {31L, kBlocks - 1}) {
        const char *where = mask == 31 ? "L1" : "L2";
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
    _tile_release();
    return 0;
}
