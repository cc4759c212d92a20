// Why Q8_0 / Q4_0 prompts on AMX do not use int8 tiles (not a test): what bounded the former kernel that did
// (gemm-amx.cpp, replaced on 11-27 by gemm-qbf16-amx.cpp, which dequantizes the weights to bf16 so that its
// tiles need no work between products). One thread, data in L1, nanoseconds per 16 x 16 x 32 block product
// (one Q8_0 block of 16 tokens x 16 rows), each line a loop of that kernel's parts alone or together:
//   tiles           per block: load A (16 x 32 bytes) and B (8 x 64), zero C, TDPBSSD, store C (two tile
//                   sets alternating, as the kernel does)
//   tdp only        TDPBSSD and the zeroing alone (no loads, no stores)
//   fma zmm         48 independent 512-bit FMAs on registers: the count of the kernel's f32 part per
//                   block (per token: int -> float, scale product, FMA)
//   scaling         the kernel's f32 part itself: 16 x (load C row, convert, dw x dy, FMA)
//   tiles, A stride 64  the same with A's rows 64 bytes apart (two blocks' A tiles interleaved)
//   tiles + fma     the first and third in one loop; likewise the others
//   bf16 ...        the same block as TDPBF16PS on the int8 values as bf16 (exact: the f32 sums are the
//                   integers), so the scaling needs no int -> float conversion (2 ops per row, not 3)
// If the tile unit and the FMA ports worked side by side, "tiles + fma zmm" would take the longer of the
// two; on the Xeon we measured it takes more than their sum. The bf16 variant saves the conversions (6 ns
// scaling, not 8.4) but its tiles (twice the bytes) cost more (17.5-18.5 ns, not 11.7): 27-28 ns per block
// together, not 23-25.
// Build (from the repo root): g++ -std=c++17 -O2 -mavx512f -mavx512bw -mavx512vl -mfma -mamx-tile -mamx-int8
//   -mamx-bf16 bench/amx_overlap.cpp -o build/amx_overlap
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
alignas(64) uint16_t g_ha[64 * 512], g_hb[64 * 512]; // bf16 of int8 values (exact)
alignas(64) int32_t g_c[2][256];
alignas(64) float g_dw[64 * 16], g_dy[64 * 16];
volatile float g_sink;

double now() { return std::chrono::duration<double>(std::chrono::steady_clock::now().time_since_epoch()).count(); }

enum part : unsigned { kTiles = 1, kTdp = 2, kFma = 4, kScaling = 8, kStride64 = 16, kBf16 = 32 };

template <unsigned P> __attribute__((noinline)) double run(long n) {
    __m512 acc[16];
    #pragma GCC unroll 16
    for (int t = 0; t < 16; t++) acc[t] = _mm512_set1_ps(0.001f * float(t));
    __m512 x = _mm512_set1_ps(0.999f), y = _mm512_set1_ps(1e-4f);
    const double t0 = now();
    for (long i = 0; i < n; i++) {
        const long j = i & 63;
        if constexpr ((P & kTiles) != 0 && (P & kBf16) != 0) {
            // the same block as TDPBF16PS: A 16 x 32 bf16, B 16 pair lines, C f32 (exact integer sums)
            if (i & 1) {
                _tile_loadd(3, g_ha + 512 * j, 64);
                _tile_loadd(4, g_hb + 512 * j, 64);
                _tile_zero(5);
                _tile_dpbf16ps(5, 3, 4);
                _tile_stored(5, g_c[1], 64);
            } else {
                _tile_loadd(0, g_ha + 512 * j, 64);
                _tile_loadd(1, g_hb + 512 * j, 64);
                _tile_zero(2);
                _tile_dpbf16ps(2, 0, 1);
                _tile_stored(2, g_c[0], 64);
            }
        } else if constexpr ((P & kTiles) != 0) {
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
                const __m512 c = (P & kBf16) != 0 ? _mm512_load_ps(reinterpret_cast<const float *>(cc + 16 * t))
                                                  : _mm512_cvtepi32_ps(_mm512_load_si512(cc + 16 * t));
                acc[t] = _mm512_fmadd_ps(c, s, acc[t]);
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
    for (int i = 0; i < 64 * 512; i++) {
        const float fa = float(g_a[i]), fb = float(g_b[i]);
        uint32_t ua, ub;
        std::memcpy(&ua, &fa, 4), std::memcpy(&ub, &fb, 4);
        g_ha[i] = uint16_t(ua >> 16), g_hb[i] = uint16_t(ub >> 16);
    }
    for (int i = 0; i < 64 * 16; i++) g_dw[i] = 0.01f, g_dy[i] = 0.02f;
    // int8: A 16 x 32 bytes, B 8 x 64; bf16 (K = 32 elements): A 16 x 64 bytes, B 16 x 64; C 16 x 64
    tile_config int8_cfg, bf16_cfg;
    for (int s = 0; s < 2; s++) {
        int8_cfg.colsb[3 * s] = 32, int8_cfg.rows[3 * s] = 16;
        int8_cfg.colsb[3 * s + 1] = 64, int8_cfg.rows[3 * s + 1] = 8;
        bf16_cfg.colsb[3 * s] = 64, bf16_cfg.rows[3 * s] = 16;
        bf16_cfg.colsb[3 * s + 1] = 64, bf16_cfg.rows[3 * s + 1] = 16;
        int8_cfg.colsb[3 * s + 2] = bf16_cfg.colsb[3 * s + 2] = 64;
        int8_cfg.rows[3 * s + 2] = bf16_cfg.rows[3 * s + 2] = 16;
    }
    const long n = argc > 1 ? std::atol(argv[1]) : 4000000;
    struct {
        const char *name;
        double (*fn)(long);
        bool bf16;
    } cases[] = {{"tiles", run<kTiles>, false},
                 {"tiles, A stride 64", run<kTiles | kStride64>, false},
                 {"tdp only", run<kTdp>, false},
                 {"fma zmm", run<kFma>, false},
                 {"scaling", run<kScaling>, false},
                 {"tiles + fma zmm", run<kTiles | kFma>, false},
                 {"tdp only + fma zmm", run<kTdp | kFma>, false},
                 {"tiles + scaling", run<kTiles | kScaling>, false},
                 {"tiles64 + scaling", run<kTiles | kStride64 | kScaling>, false},
                 {"bf16 tiles", run<kTiles | kBf16>, true},
                 {"bf16 scaling", run<kScaling | kBf16>, true},
                 {"bf16 tiles + scaling", run<kTiles | kScaling | kBf16>, true}};
    for (int rep = 0; rep < 2; rep++) {
        for (auto &cs : cases) {
            _tile_loadconfig(cs.bf16 ? &bf16_cfg : &int8_cfg);
            // load the tiles once, so that "tdp only" multiplies real data
            _tile_loadd(0, g_a, 32);
            _tile_loadd(1, g_b, 64);
            _tile_loadd(3, g_a, 32);
            _tile_loadd(4, g_b, 64);
            std::printf("%-20s %6.2f ns per block\n", cs.name, cs.fn(n) / double(n) * 1e9);
        }
    }
    _tile_release();
    return 0;
}
