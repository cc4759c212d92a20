/* Which float operations compete with VPDPBUSD for the CPU's execution ports (not a test; x86-64 with
 * AVX-512 VNNI only). Each loop is register-only inline assembly: 12 independent VPDPBUSD chains, plus
 * per 4 of them one FMA, MUL or int->float convert (or all three) on independent registers. If an
 * operation shares VPDPBUSD's ports, the VPDPBUSD rate drops by 4 / (4 + 1) per such operation.
 *
 * Why it matters: the Q8_0 prompt kernels (gemm-vnni.h, tile32) spend 1 convert + 1 MUL + 1 FMA per 16 rows,
 * token and 32-element block, against 8 VPDPBUSD: in the 32-row x 6-token tile, 12 + 12 + 12 per 96.
 * Measured on AMD EPYC Zen 4: FMA and MUL each cost 0.80x, the convert nothing, so that tile is capped at
 * 96 / 120 = 80% of the VNNI peak.
 *
 * Build and run: gcc -O2 -mavx512f -mavx512vnni -o build/ports bench/ports.c && build/ports
 */
#include <stdio.h>
#include <time.h>

static double now(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return t.tv_sec + t.tv_nsec * 1e-9;
}

#define ITERS 20000000L
#define DP(r) "vpdpbusd %%zmm30, %%zmm31, %%zmm" #r "\n\t"
#define D DP(0) DP(1) DP(2) DP(3) DP(4) DP(5) DP(6) DP(7) DP(8) DP(9) DP(10) DP(11)
#define F "vfmadd231ps %%zmm28, %%zmm29, %%zmm20\n\tvfmadd231ps %%zmm28, %%zmm29, %%zmm21\n\tvfmadd231ps %%zmm28, %%zmm29, %%zmm22\n\t"
#define M "vmulps %%zmm28, %%zmm29, %%zmm23\n\tvmulps %%zmm28, %%zmm29, %%zmm24\n\tvmulps %%zmm28, %%zmm29, %%zmm25\n\t"
#define C "vcvtdq2ps %%zmm29, %%zmm26\n\tvcvtdq2ps %%zmm29, %%zmm27\n\tvcvtdq2ps %%zmm29, %%zmm19\n\t"
#define CLOBBER "xmm0", "xmm1", "xmm2", "xmm3", "xmm4", "xmm5", "xmm6", "xmm7", "xmm8", "xmm9", "xmm10", "xmm11", \
                "xmm19", "xmm20", "xmm21", "xmm22", "xmm23", "xmm24", "xmm25", "xmm26", "xmm27"
#define RUN(name, body)                                                                                        \
    do {                                                                                                       \
        double t0 = now();                                                                                     \
        for (long i = 0; i < ITERS; i++) __asm__ volatile(body body body body ::: CLOBBER);                     \
        double rate = ITERS * 48.0 / (now() - t0) / 1e9;                                                      \
        if (base == 0) base = rate;                                                                            \
        printf("%-34s %6.2f G vpdpbusd/s  %.2fx\n", name, rate, rate / base);                                 \
    } while (0)

int main(void) {
    for (int rep = 0; rep < 2; rep++) {
        double base = 0;
        RUN("vpdpbusd alone", D);
        RUN("+ 1 vfmadd231ps per 4", D F);
        RUN("+ 1 vmulps per 4", D M);
        RUN("+ 1 vcvtdq2ps per 4", D C);
        RUN("+ 1 fma + 1 mul + 1 cvt per 4", D F M C);
    }
    return 0;
}
