/* Peak multiply-accumulate throughput of the instructions the matrix kernels use, with N threads.
 *   peak <threads> [milliseconds per kernel]
 * Prints one line per kernel the CPU supports: "<name> <GMAC/s> <MACs per instruction group>".
 *
 * Kernels (each a loop of independent accumulator chains, register-only, so it measures the execution
 * ports, not memory):
 *   avx512_vnni  vpdpbusd zmm: 64 u8 x s8 multiply-adds into s32 per instruction
 *   avx_vnni     vpdpbusd ymm (VEX): 32 per instruction
 *   avx512_vnni256 vpdpbusd ymm (EVEX, AVX-512 VL): 32 per instruction
 *   avx2_int8    vpmaddubsw + vpmaddwd + vpaddd ymm: 32 u8 x s8 multiply-adds per group of three
 *   avx512bw_int8 the same sequence on zmm: 64 per group
 *   avx512_bf16  vdpbf16ps zmm: 32 bf16 pair products into f32 per instruction
 *   fma256_f32   vfmadd ymm: 8 per instruction
 *   fma512_f32   vfmadd zmm: 16 per instruction
 *   amx_int8     tdpbssd on full tiles (16 x 64 bytes by 16 x 64): 16 * 16 * 64 s8 x s8 multiply-adds into
 *                s32 per instruction, 6 accumulator tiles (the other 2 hold A and B); only where cpuid says
 *                AMX-INT8, XCR0 has the tile state and the OS grants it (arch_prctl)
 *   amx_bf16     tdpbf16ps on full tiles: 16 * 16 * 32 bf16 pair products into f32 per instruction, the same
 *                way (cpuid AMX-BF16)
 * Each kernel is compiled for its instruction set with a target attribute (the file itself is built with
 * plain -O2, no -m flags) and runs only if __builtin_cpu_supports says the CPU has every feature it needs.
 */
#include <immintrin.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <cpuid.h>
#include <sys/syscall.h>
#include <unistd.h>

#define CHAINS 12
#define INNER 1000
/* the chains must live in registers: unroll the loop over them completely */
#define UNROLL _Pragma("GCC unroll 16")

typedef uint64_t (*kernel_fn)(uint64_t iters, int seed);

static double now(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + 1e-9 * (double)t.tv_nsec;
}

/* Each kernel runs `iters` x INNER groups of CHAINS independent instructions and returns a value that
 * depends on every accumulator, so that nothing is optimized away. */

__attribute__((target("avx512f,avx512vnni"))) static uint64_t k_avx512_vnni(uint64_t iters, int seed) {
    __m512i acc[CHAINS];
    for (int c = 0; c < CHAINS; c++) acc[c] = _mm512_set1_epi32(seed + c);
    __m512i a = _mm512_set1_epi8((char)(seed | 1)), b = _mm512_set1_epi8((char)(seed + 3));
    for (uint64_t i = 0; i < iters; i++) {
        for (int j = 0; j < INNER; j++) {
            UNROLL for (int c = 0; c < CHAINS; c++) acc[c] = _mm512_dpbusd_epi32(acc[c], a, b);
            __asm__ volatile("" : "+v"(a), "+v"(b));
        }
    }
    __m512i s = acc[0];
    for (int c = 1; c < CHAINS; c++) s = _mm512_add_epi32(s, acc[c]);
    return (uint64_t)_mm512_reduce_add_epi32(s);
}

__attribute__((target("avx512f,avx512vl,avx512vnni"))) static uint64_t k_avx512_vnni256(uint64_t iters,
                                                                                       int seed) {
    __m256i acc[CHAINS];
    for (int c = 0; c < CHAINS; c++) acc[c] = _mm256_set1_epi32(seed + c);
    __m256i a = _mm256_set1_epi8((char)(seed | 1)), b = _mm256_set1_epi8((char)(seed + 3));
    for (uint64_t i = 0; i < iters; i++) {
        for (int j = 0; j < INNER; j++) {
            UNROLL for (int c = 0; c < CHAINS; c++) acc[c] = _mm256_dpbusd_epi32(acc[c], a, b);
            __asm__ volatile("" : "+v"(a), "+v"(b));
        }
    }
    __m256i s = acc[0];
    for (int c = 1; c < CHAINS; c++) s = _mm256_add_epi32(s, acc[c]);
    return (uint64_t)_mm256_extract_epi32(s, 0);
}

__attribute__((target("avx2,avxvnni"))) static uint64_t k_avx_vnni(uint64_t iters, int seed) {
    __m256i acc[CHAINS];
    for (int c = 0; c < CHAINS; c++) acc[c] = _mm256_set1_epi32(seed + c);
    __m256i a = _mm256_set1_epi8((char)(seed | 1)), b = _mm256_set1_epi8((char)(seed + 3));
    for (uint64_t i = 0; i < iters; i++) {
        for (int j = 0; j < INNER; j++) {
            UNROLL for (int c = 0; c < CHAINS; c++) acc[c] = _mm256_dpbusd_avx_epi32(acc[c], a, b);
            __asm__ volatile("" : "+x"(a), "+x"(b));
        }
    }
    __m256i s = acc[0];
    for (int c = 1; c < CHAINS; c++) s = _mm256_add_epi32(s, acc[c]);
    return (uint64_t)_mm256_extract_epi32(s, 0);
}

__attribute__((target("avx2"))) static uint64_t k_avx2_int8(uint64_t iters, int seed) {
    __m256i acc[CHAINS];
    for (int c = 0; c < CHAINS; c++) acc[c] = _mm256_set1_epi32(seed + c);
    __m256i a = _mm256_set1_epi8((char)(seed | 1)), b = _mm256_set1_epi8((char)(seed + 3));
    const __m256i ones = _mm256_set1_epi16(1);
    for (uint64_t i = 0; i < iters; i++) {
        for (int j = 0; j < INNER; j++) {
            UNROLL for (int c = 0; c < CHAINS; c++) {
                __m256i p = _mm256_maddubs_epi16(a, b);
                acc[c] = _mm256_add_epi32(acc[c], _mm256_madd_epi16(p, ones));
                __asm__ volatile("" : "+x"(a)); /* a new `a` for each chain: no common subexpression */
            }
            __asm__ volatile("" : "+x"(a), "+x"(b));
        }
    }
    __m256i s = acc[0];
    for (int c = 1; c < CHAINS; c++) s = _mm256_add_epi32(s, acc[c]);
    return (uint64_t)_mm256_extract_epi32(s, 0);
}

__attribute__((target("avx512f,avx512bw"))) static uint64_t k_avx512bw_int8(uint64_t iters, int seed) {
    __m512i acc[CHAINS];
    for (int c = 0; c < CHAINS; c++) acc[c] = _mm512_set1_epi32(seed + c);
    __m512i a = _mm512_set1_epi8((char)(seed | 1)), b = _mm512_set1_epi8((char)(seed + 3));
    const __m512i ones = _mm512_set1_epi16(1);
    for (uint64_t i = 0; i < iters; i++) {
        for (int j = 0; j < INNER; j++) {
            UNROLL for (int c = 0; c < CHAINS; c++) {
                __m512i p = _mm512_maddubs_epi16(a, b);
                acc[c] = _mm512_add_epi32(acc[c], _mm512_madd_epi16(p, ones));
                __asm__ volatile("" : "+v"(a)); /* a new `a` for each chain: no common subexpression */
            }
            __asm__ volatile("" : "+v"(a), "+v"(b));
        }
    }
    __m512i s = acc[0];
    for (int c = 1; c < CHAINS; c++) s = _mm512_add_epi32(s, acc[c]);
    return (uint64_t)_mm512_reduce_add_epi32(s);
}

__attribute__((target("avx512f,avx512bf16"))) static uint64_t k_avx512_bf16(uint64_t iters, int seed) {
    __m512 acc[CHAINS];
    for (int c = 0; c < CHAINS; c++) acc[c] = _mm512_set1_ps((float)(seed + c));
    __m512bh a = (__m512bh)_mm512_set1_epi16(0x3f80), b = (__m512bh)_mm512_set1_epi16(0x3f00);
    for (uint64_t i = 0; i < iters; i++) {
        for (int j = 0; j < INNER; j++) {
            UNROLL for (int c = 0; c < CHAINS; c++) acc[c] = _mm512_dpbf16_ps(acc[c], a, b);
            __asm__ volatile("" : "+v"(a), "+v"(b));
        }
    }
    __m512 s = acc[0];
    for (int c = 1; c < CHAINS; c++) s = _mm512_add_ps(s, acc[c]);
    return (uint64_t)_mm512_reduce_add_ps(s);
}

__attribute__((target("avx2,fma"))) static uint64_t k_fma256(uint64_t iters, int seed) {
    __m256 acc[CHAINS];
    for (int c = 0; c < CHAINS; c++) acc[c] = _mm256_set1_ps((float)(seed + c));
    __m256 a = _mm256_set1_ps(0.999f), b = _mm256_set1_ps(1e-3f);
    for (uint64_t i = 0; i < iters; i++) {
        for (int j = 0; j < INNER; j++) {
            UNROLL for (int c = 0; c < CHAINS; c++) acc[c] = _mm256_fmadd_ps(acc[c], a, b);
            __asm__ volatile("" : "+x"(a), "+x"(b));
        }
    }
    __m256 s = acc[0];
    for (int c = 1; c < CHAINS; c++) s = _mm256_add_ps(s, acc[c]);
    return (uint64_t)_mm256_cvtss_f32(s);
}

__attribute__((target("avx512f"))) static uint64_t k_fma512(uint64_t iters, int seed) {
    __m512 acc[CHAINS];
    for (int c = 0; c < CHAINS; c++) acc[c] = _mm512_set1_ps((float)(seed + c));
    __m512 a = _mm512_set1_ps(0.999f), b = _mm512_set1_ps(1e-3f);
    for (uint64_t i = 0; i < iters; i++) {
        for (int j = 0; j < INNER; j++) {
            UNROLL for (int c = 0; c < CHAINS; c++) acc[c] = _mm512_fmadd_ps(acc[c], a, b);
            __asm__ volatile("" : "+v"(a), "+v"(b));
        }
    }
    __m512 s = acc[0];
    for (int c = 1; c < CHAINS; c++) s = _mm512_add_ps(s, acc[c]);
    return (uint64_t)_mm512_reduce_add_ps(s);
}

/* AMX-INT8: each thread configures its own tiles; 12 TDPBSSDs per inner step, 2 rounds over 6 C tiles. */
struct tile_cfg {
    uint8_t palette, start_row, reserved[14];
    uint16_t colsb[16];
    uint8_t rows[16];
} __attribute__((aligned(64)));

/* Both AMX kernels: 8 tiles of 16 rows x 64 bytes, A (tile 0) and B (tile 1) loaded from a and b, the 6
 * accumulator tiles 2-7 zero. */
__attribute__((target("amx-tile"))) static void amx_begin(const void *a, const void *b) {
    struct tile_cfg c;
    memset(&c, 0, sizeof c);
    c.palette = 1;
    for (int t = 0; t < 8; t++) c.colsb[t] = 64, c.rows[t] = 16;
    __asm__ volatile("" ::: "memory");
    _tile_loadconfig(&c);
    _tile_loadd(0, a, 64);
    _tile_loadd(1, b, 64);
    _tile_zero(2);
    _tile_zero(3);
    _tile_zero(4);
    _tile_zero(5);
    _tile_zero(6);
    _tile_zero(7);
}

/* The 6 accumulator tiles to out (6 x 1 KiB), then the tiles released. */
__attribute__((target("amx-tile"))) static void amx_end(uint8_t *out) {
    _tile_stored(2, out, 64);
    _tile_stored(3, out + 1024, 64);
    _tile_stored(4, out + 2048, 64);
    _tile_stored(5, out + 3072, 64);
    _tile_stored(6, out + 4096, 64);
    _tile_stored(7, out + 5120, 64);
    _tile_release();
}

__attribute__((target("amx-tile,amx-int8"))) static uint64_t k_amx_int8(uint64_t iters, int seed) {
    static __thread int8_t a[16 * 64] __attribute__((aligned(64))), b[16 * 64] __attribute__((aligned(64)));
    static __thread int32_t out[6][256] __attribute__((aligned(64)));
    memset(a, seed | 1, sizeof a);
    memset(b, seed + 3, sizeof b);
    amx_begin(a, b);
    for (uint64_t i = 0; i < iters; i++) {
        for (int j = 0; j < INNER; j++) {
            for (int r = 0; r < 2; r++) {
                _tile_dpbssd(2, 0, 1);
                _tile_dpbssd(3, 0, 1);
                _tile_dpbssd(4, 0, 1);
                _tile_dpbssd(5, 0, 1);
                _tile_dpbssd(6, 0, 1);
                _tile_dpbssd(7, 0, 1);
            }
        }
    }
    amx_end((uint8_t *)out);
    uint64_t s = 0;
    for (int t = 0; t < 6; t++) s += (uint64_t)(uint32_t)out[t][seed & 255];
    return s;
}

__attribute__((target("amx-tile,amx-bf16"))) static uint64_t k_amx_bf16(uint64_t iters, int seed) {
    static __thread uint16_t a[16 * 32] __attribute__((aligned(64))), b[16 * 32] __attribute__((aligned(64)));
    static __thread float out[6][256] __attribute__((aligned(64)));
    for (int i = 0; i < 16 * 32; i++) a[i] = 0x3f80, b[i] = (uint16_t)(0x3000 + (seed & 7)); /* 1.0, tiny */
    amx_begin(a, b);
    for (uint64_t i = 0; i < iters; i++) {
        for (int j = 0; j < INNER; j++) {
            for (int r = 0; r < 2; r++) {
                _tile_dpbf16ps(2, 0, 1);
                _tile_dpbf16ps(3, 0, 1);
                _tile_dpbf16ps(4, 0, 1);
                _tile_dpbf16ps(5, 0, 1);
                _tile_dpbf16ps(6, 0, 1);
                _tile_dpbf16ps(7, 0, 1);
            }
        }
    }
    amx_end((uint8_t *)out);
    float s = 0;
    for (int t = 0; t < 6; t++) s += out[t][seed & 255];
    return (uint64_t)s;
}

/* cpuid AMX-TILE + the AMX feature (bit 25 INT8, 22 BF16), the OS saving the tile state (XCR0 bits
 * 17-18), and Linux granting it to this process (ARCH_REQ_XCOMP_PERM for XTILEDATA; until then a tile
 * instruction faults) */
static int amx_usable(unsigned feature_bit) {
    unsigned a, b, c, d;
    if (!__get_cpuid_count(7, 0, &a, &b, &c, &d) || !(d & (1u << 24)) || !(d & (1u << feature_bit))) return 0;
    if (!__get_cpuid(1, &a, &b, &c, &d) || !(c & (1u << 27))) return 0;
    uint32_t lo, hi;
    __asm__ volatile("xgetbv" : "=a"(lo), "=d"(hi) : "c"(0));
    if ((lo & 0x60000) != 0x60000) return 0;
    return syscall(SYS_arch_prctl, 0x1023, 18) == 0;
}

struct kernel {
    const char *name;
    kernel_fn fn;
    int macs; /* multiply-adds per accumulator step */
    int supported;
};

struct job {
    kernel_fn fn;
    uint64_t iters;
    int seed;
    uint64_t out;
};

static void *run(void *arg) {
    struct job *j = (struct job *)arg;
    j->out = j->fn(j->iters, j->seed);
    return NULL;
}

/* Seconds for `nt` threads to each run `iters` outer iterations. */
static double timed(kernel_fn fn, int nt, uint64_t iters, uint64_t *sink) {
    pthread_t th[256];
    struct job jobs[256];
    double t = now();
    for (int k = 0; k < nt; k++) {
        jobs[k].fn = fn;
        jobs[k].iters = iters;
        jobs[k].seed = k + 1;
        pthread_create(&th[k], NULL, run, &jobs[k]);
    }
    for (int k = 0; k < nt; k++) {
        pthread_join(th[k], NULL);
        *sink += jobs[k].out;
    }
    return now() - t;
}

int main(int argc, char **argv) {
    int nt = argc > 1 ? atoi(argv[1]) : 2;
    double ms = argc > 2 ? atof(argv[2]) : 300.0;
    if (nt < 1 || nt > 256 || ms <= 0) {
        fprintf(stderr, "usage: peak <threads> [ms]\n");
        return 2;
    }
    __builtin_cpu_init();
    struct kernel ks[] = {
        {"avx512_vnni", k_avx512_vnni, 64,
         __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512vnni")},
        {"avx512_vnni256", k_avx512_vnni256, 32,
         __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512vl") &&
             __builtin_cpu_supports("avx512vnni")},
        {"avx_vnni", k_avx_vnni, 32, __builtin_cpu_supports("avx2") && __builtin_cpu_supports("avxvnni")},
        {"avx2_int8", k_avx2_int8, 32, __builtin_cpu_supports("avx2")},
        {"avx512bw_int8", k_avx512bw_int8, 64,
         __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw")},
        {"avx512_bf16", k_avx512_bf16, 32,
         __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bf16")},
        {"fma256_f32", k_fma256, 8, __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma")},
        {"fma512_f32", k_fma512, 16, __builtin_cpu_supports("avx512f")},
        {"amx_int8", k_amx_int8, 16 * 16 * 64, amx_usable(25)},
        {"amx_bf16", k_amx_bf16, 16 * 16 * 32, amx_usable(22)},
    };
    uint64_t sink = 0;
    for (size_t i = 0; i < sizeof(ks) / sizeof(ks[0]); i++) {
        if (!ks[i].supported) continue;
        /* calibrate: grow the iteration count until one run takes ~ms/4, then best of 3 at ms/3 */
        uint64_t iters = 1;
        double dt = timed(ks[i].fn, 1, iters, &sink);
        while (dt < ms / 4000.0 && iters < (1ull << 40)) {
            iters *= 2;
            dt = timed(ks[i].fn, 1, iters, &sink);
        }
        iters = (uint64_t)((double)iters * (ms / 3000.0) / dt) + 1;
        double best = 1e30;
        for (int r = 0; r < 3; r++) {
            double t = timed(ks[i].fn, nt, iters, &sink);
            if (t < best) best = t;
        }
        double macs = (double)nt * (double)iters * INNER * CHAINS * ks[i].macs;
        printf("%s %.2f %d\n", ks[i].name, macs / best / 1e9, ks[i].macs);
    }
    fprintf(stderr, "(checksum %llu)\n", (unsigned long long)(sink & 0xff));
    return 0;
}
