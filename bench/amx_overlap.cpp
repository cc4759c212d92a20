// What bounds the AMX Q8_0 / Q4_0 prompt kernel (gemm-amx.cpp) on a CPU with AMX-INT8 (not a test). One
// thread, data in L1, nanoseconds per 16 x 16 x 32 block product (one Q8_0 block of 16 tokens x 16 rows),
// each line a loop of the kernel's parts alone or together:
//   tiles           per block: load A (16 x 32 bytes) and B (8 x 64), zero C, TDPBSSD, store C (two tile
//                   sets alternating, as the kernel does)
//   tdp only        TDPBSSD and the zeroing alone (no loads, no stores)
//   fma zmm         48 independent 512-bit FMAs on registers: the count of the kernel's f32 part per
//                   block (per token: int -> float, scale product, FMA)
//   scaling         the kernel's f32 part itself: 16 x (load C row, convert, dw x dy, FMA)
//   tiles, A stride 64  the same with A's rows 64 bytes apart (two blocks' A tiles interleaved)
//   tiles + fma     the first and third in one loop; likewise the others
// If the tile unit and the FMA ports worked side by side, "tiles + fma zmm" would take the longer of the
// two; on the Xeon we measured it takes more than their sum.
// Build (from the repo root): g++ -std=c++17 -O2 -mavx512f -mavx512bw -mavx512vl -mfma -mamx-tile -mamx-int8
//   bench/amx_overlap.cpp -o build/amx_overlap
#include <immintrin.h>
#include <sys/syscall.h>
#pragma GCC diagnostic ignored "-Wuninitialized" // GCC 12 AVX-512 headers, see kernels-avx512.cpp
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#include <unistd.h>

#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <initializer_list>

namespace {

struct alignas(64) tile_config {
    uint8_t palette = 1, start_row = 0;
    uint8_t reserved[14] = {};
    uint16_t colsb[16] = {};
    uint8_t rows[16] = {};
};

alignas(64) int8_t g_a[64 * 512 + 1024], g_b[64 * 512];
alignas(64) int32_t g_c[2][256];
alignas(64) float g_dw[64 * 16], g_dy[64 * 16];
volatile float g_sink;

double now() { return std::chrono::duration<double>(std::chrono::steady_clock::now().time_since_epoch()).count(); }

enum part : unsigned { kTiles = 1, kTdp = 2, kFma = 4, kScaling = 8, kStride64 = 16 };

template <unsigned P> __attribute__((noinline)) double run(long n) {
    __m512 acc[16];
    #pragma GCC unroll 16
    for (int t = 0; t < 16; t++) acc[t] = _mm512_set1_ps(0.001f * float(t));
    __m512 x = _mm512_set1_ps(0.999f), y = _mm512_set1_ps(1e-4f);
    const double t0 = now();
    for (long i = 0; i < n; i++) {
        const long j = i & 63;
        if constexpr ((P & kTiles) != 0) {
            // A: 16 rows of 32 bytes, packed (stride 32) or interleaved with another block's (stride 64)
            constexpr size_t sa = (P & kStride64) != 0 ? 64 : 32;
            const int8_t *a = (P & kStride64) != 0 ? g_a + 1024 * (j >> 1) + 32 * (j & 1) : g_a + 512 * j;
            if (i & 1) {
                _tile_loadd(3, a, sa);
                _tile_loadd(4, g_b + 512 * j, 64);
                _tile_zero(5);
                _tile_dpbssd(5, 3, 4);
                _tile_stored(5, g_c[1], 64);
            } else {
                _tile_loadd(0, a, sa);
                _tile_loadd(1, g_b + 512 * j, 64);
                _tile_zero(2);
                _tile_dpbssd(2, 0, 1);
                _tile_stored(2, g_c[0], 64);
            }
        }
        if constexpr ((P & kTdp) != 0) {
            if (i & 1) {
                _tile_zero(5);
                _tile_dpbssd(5, 3, 4);
            } else {
                _tile_zero(2);
                _tile_dpbssd(2, 0, 1);
            }
        }
        if constexpr ((P & kFma) != 0) {
            #pragma GCC unroll 3
            for (int r = 0; r < 3; r++) {
                #pragma GCC unroll 16
                for (int t = 0; t < 16; t++) acc[t] = _mm512_fmadd_ps(acc[t], x, y);
            }
            __asm__ volatile("" : "+v"(x), "+v"(y));
        }
        if constexpr ((P & kScaling) != 0) {
            const int32_t *cc = g_c[(i + 1) & 1];
            const __m512 w = _mm512_load_ps(g_dw + 16 * j);
            #pragma GCC unroll 16
            for (int t = 0; t < 16; t++) {
                const __m512 s = _mm512_mul_ps(w, _mm512_set1_ps(g_dy[16 * j + t]));
                acc[t] = _mm512_fmadd_ps(_mm512_cvtepi32_ps(_mm512_load_si512(cc + 16 * t)), s, acc[t]);
            }
        }
    }
    const double dt = now() - t0;
    float s = 0;
    for (int t = 0; t < 16; t++) s += _mm512_reduce_add_ps(acc[t]);
    g_sink = s;
    return dt;
}

} // namespace

int main(int argc, char **argv) {
    constexpr long kReqXcompPerm = 0x1023, kXfeatureXtiledata = 18;
    if (!__builtin_cpu_supports("avx512f") || syscall(SYS_arch_prctl, kReqXcompPerm, kXfeatureXtiledata) != 0) {
        std::printf("no AMX-INT8 here (or the OS refused the tile state)\n");
        return 0;
    }
    unsigned r = 1;
    for (int i = 0; i < 64 * 512; i++) g_a[i] = int8_t((r = r * 1103515245u + 12345u) >> 24);
    for (int i = 0; i < 64 * 512; i++) g_b[i] = int8_t((r = r * 1103515245u + 12345u) >> 24);
    for (int i = 0; i < 64 * 16; i++) g_dw[i] = 0.01f, g_dy[i] = 0.02f;
    tile_config c;
    for (int s = 0; s < 2; s++) {
        c.colsb[3 * s] = 32, c.rows[3 * s] = 16;
        c.colsb[3 * s + 1] = 64, c.rows[3 * s + 1] = 8;
        c.colsb[3 * s + 2] = 64, c.rows[3 * s + 2] = 16;
    }
    _tile_loadconfig(&c);
    // load the tiles once, so that "tdp only" multiplies real data
    _tile_loadd(0, g_a, 32);
    _tile_loadd(1, g_b, 64);
    _tile_loadd(3, g_a, 32);
    _tile_loadd(4, g_b, 64);
    const long n = argc > 1 ? std::atol(argv[1]) : 4000000;
    struct {
        const char *name;
        double (*fn)(long);
    } cases[] = {{"tiles", run<kTiles>},
                 {"tiles, A stride 64", run<kTiles | kStride64>},
                 {"tdp only", run<kTdp>},
                 {"fma zmm", run<kFma>},
                 {"scaling", run<kScaling>},
                 {"tiles + fma zmm", run<kTiles | kFma>},
                 {"tdp only + fma zmm", run<kTdp | kFma>},
                 {"tiles + scaling", run<kTiles | kScaling>},
                 {"tiles64 + scaling", run<kTiles | kStride64 | kScaling>}};
    for (int rep = 0; rep < 2; rep++)
        for (auto &cs : cases) std::printf("%-20s %6.2f ns per block\n", cs.name, cs.fn(n) / double(n) * 1e9);
    _tile_release();
    return 0;
}
