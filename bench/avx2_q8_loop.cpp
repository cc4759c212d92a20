// What holds the AVX2 Q8_0 prompt kernel (gemm-avx2.cpp) below CTranslate2-AVX2 (not a test). One
// thread, data in L1, multiply-adds per second of:
//   exact i16     gemm-avx2.cpp's inner loop (q8_block): 2 row groups x 4 tokens, per 16 multiply-adds
//                 of a (row group, token) one vpmaddwd of i16 weights by a broadcast i16 activation pair
//                 and one vpaddd (exact for any Q8_0 block)
//   exact, no bc  the same with the activation already in a register (the cost of the broadcasts)
//   u8 x s8       the oneDNN-style AVX2 int8 loop CTranslate2 runs, same tile: per 32 multiply-adds one
//                 vpmaddubsw (u8 activations x s8 weights, i16 pair sums that saturate past 32767), one
//                 vpmaddwd by ones and one vpaddd -- fewer operations per multiply-add, not exact
//   sign trick    exact with vpmaddubsw, as llama.cpp: per 32 multiply-adds one vpsignb (weights times the
//                 activations' signs), one vpmaddubsw (|activations| x those), one vpmaddwd by ones, one vpaddd
//   tile          gemm-avx2.cpp's own 2 x 4 tile over a 16-block chunk: the exact loop plus the per-block
//                 scaling (int -> float, dw x dy, FMA into the running sums)
// Intel Xeon (AVX-512/AMX host, AVX2 code), 2026-11-27, six runs: exact i16 77-82, in a register 82-88,
// u8 x s8 102-112, sign trick 75-81, tile 67-72 -- the sign trick is no faster than the i16 loop here
// (presumably as vpsignb, like vpmaddubsw and vpmaddwd, issues on ports 0 and 1 of Intel's big cores; not
// checked with bench/ports.c); not measured on an AVX2-only CPU.
// Build (from the repo root): g++ -std=c++17 -O2 -mavx2 -mfma -mf16c -Iinclude -Isrc bench/avx2_q8_loop.cpp -o build/avx2_q8_loop
#include "kernels/gemm-avx2.cpp"

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <vector>

namespace {

using clk = std::chrono::steady_clock;

alignas(64) uint8_t g_w[64 * 1024];
alignas(64) uint8_t g_a[4][4096 + 192]; // token rows 4288 bytes apart (4 KiB apart they alias in L1)
volatile int g_sink;

double seconds(clk::time_point t0) { return std::chrono::duration<double>(clk::now() - t0).count(); }

// 16 steps of 2 row groups x 4 tokens, i16 operands; Bcast: broadcast each token's pair from memory.
template <bool Bcast> double exact_i16(long iters) {
    __m256i s00{}, s01{}, s02{}, s03{}, s10{}, s11{}, s12{}, s13{}, w0, w1, ab, tp;
    const __m256i reg = _mm256_set1_epi32(0x00010002);
    const auto t0 = clk::now();
    for (long it = 0; it < iters; it++) {
        const uint8_t *w = g_w + (it & 15) * 1088, *p0 = g_a[0] + (it & 15) * 64, *p1 = g_a[1] + (it & 15) * 64,
                      *p2 = g_a[2] + (it & 15) * 64, *p3 = g_a[3] + (it & 15) * 64;
#define STEP_LOADS "vmovdqa (32 * \\c)(%[w]), %[w0]\n\tvmovdqa (0x220 + 32 * \\c)(%[w]), %[w1]\n\t"
#define MADD(A, S0, S1) \
        "vpmaddwd " A ", %[w0], %[tp]\n\tvpaddd %[tp], %[" S0 "], %[" S0 "]\n\t" \
        "vpmaddwd " A ", %[w1], %[tp]\n\tvpaddd %[tp], %[" S1 "], %[" S1 "]\n\t"
#define OUTS [s00] "+x"(s00), [s01] "+x"(s01), [s02] "+x"(s02), [s03] "+x"(s03), [s10] "+x"(s10), [s11] "+x"(s11), \
             [s12] "+x"(s12), [s13] "+x"(s13), [w0] "=&x"(w0), [w1] "=&x"(w1), [ab] "=&x"(ab), [tp] "=&x"(tp)
        if constexpr (Bcast) {
            __asm__ volatile(".irp c, 0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15\n\t" STEP_LOADS
                             "vpbroadcastd (4 * \\c)(%[p0]), %[ab]\n\t" MADD("%[ab]", "s00", "s10")
                             "vpbroadcastd (4 * \\c)(%[p1]), %[ab]\n\t" MADD("%[ab]", "s01", "s11")
                             "vpbroadcastd (4 * \\c)(%[p2]), %[ab]\n\t" MADD("%[ab]", "s02", "s12")
                             "vpbroadcastd (4 * \\c)(%[p3]), %[ab]\n\t" MADD("%[ab]", "s03", "s13") ".endr"
                             : OUTS
                             : [w] "r"(w), [p0] "r"(p0), [p1] "r"(p1), [p2] "r"(p2), [p3] "r"(p3)
                             : "memory");
        } else {
            __asm__ volatile(".irp c, 0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15\n\t" STEP_LOADS
                             MADD("%[rg]", "s00", "s10") MADD("%[rg]", "s01", "s11") MADD("%[rg]", "s02", "s12")
                             MADD("%[rg]", "s03", "s13") ".endr"
                             : OUTS
                             : [w] "r"(w), [rg] "x"(reg)
                             : "memory");
        }
    }
    const double t = seconds(t0);
    g_sink = _mm256_extract_epi32(_mm256_add_epi32(_mm256_add_epi32(s00, s13), _mm256_add_epi32(s01, s12)), 0) +
             _mm256_extract_epi32(_mm256_add_epi32(_mm256_add_epi32(s02, s11), _mm256_add_epi32(s03, s10)), 1);
    return double(iters) * 16 * 8 * 16 / t / 1e9; // 16 steps x 8 (group, token) x 16 multiply-adds
}

// 8 steps of 2 row groups x 4 tokens (a 32-element block in 8 steps): u8 activations x s8 weights, or with
// Sign llama.cpp's exact sign trick -- per 32 multiply-adds one vpsignb (the weights take the activations'
// signs) before the vpmaddubsw (|activations| x those: pair sums at most 2 x 127 x 127, no saturation while
// no weight is -128), and per token two broadcasts (the activations and their absolute values, both prepared
// once per token).
template <bool Sign> double maddubs(long iters) {
    __m256i s00{}, s01{}, s02{}, s03{}, s10{}, s11{}, s12{}, s13{}, w0, w1, ab, tp, ax, t2;
    const __m256i ones = _mm256_set1_epi16(1);
    const auto t0 = clk::now();
    for (long it = 0; it < iters; it++) {
        const uint8_t *w = g_w + (it & 15) * 576, *p0 = g_a[0] + (it & 15) * 32, *p1 = g_a[1] + (it & 15) * 32,
                      *p2 = g_a[2] + (it & 15) * 32, *p3 = g_a[3] + (it & 15) * 32;
#define W_LOADS "vmovdqa (32 * \\c)(%[w]), %[w0]\n\tvmovdqa (0x120 + 32 * \\c)(%[w]), %[w1]\n\t"
#define SUM(S) "vpmaddwd %[one], %[tp], %[tp]\n\tvpaddd %[tp], %[" S "], %[" S "]\n\t"
#define MADDUB(S0, S1) \
        "vpmaddubsw %[w0], %[ab], %[tp]\n\t" SUM(S0) "vpmaddubsw %[w1], %[ab], %[tp]\n\t" SUM(S1)
#define MADDSG(S0, S1) \
        "vpsignb %[ax], %[w0], %[t2]\n\tvpmaddubsw %[t2], %[ab], %[tp]\n\t" SUM(S0) \
        "vpsignb %[ax], %[w1], %[t2]\n\tvpmaddubsw %[t2], %[ab], %[tp]\n\t" SUM(S1)
#define BC(P) "vpbroadcastd (4 * \\c)(%[" P "]), %[ab]\n\t"
#define BC2(P) "vpbroadcastd (4 * \\c)(%[" P "]), %[ax]\n\tvpbroadcastd (2048 + 4 * \\c)(%[" P "]), %[ab]\n\t"
#define INS [w] "r"(w), [p0] "r"(p0), [p1] "r"(p1), [p2] "r"(p2), [p3] "r"(p3), [one] "x"(ones)
        if constexpr (Sign) {
            __asm__ volatile(".irp c, 0, 1, 2, 3, 4, 5, 6, 7\n\t" W_LOADS
                             BC2("p0") MADDSG("s00", "s10") BC2("p1") MADDSG("s01", "s11")
                             BC2("p2") MADDSG("s02", "s12") BC2("p3") MADDSG("s03", "s13") ".endr"
                             : OUTS, [ax] "=&x"(ax), [t2] "=&x"(t2)
                             : INS
                             : "memory");
        } else {
            __asm__ volatile(".irp c, 0, 1, 2, 3, 4, 5, 6, 7\n\t" W_LOADS
                             BC("p0") MADDUB("s00", "s10") BC("p1") MADDUB("s01", "s11")
                             BC("p2") MADDUB("s02", "s12") BC("p3") MADDUB("s03", "s13") ".endr"
                             : OUTS
                             : INS
                             : "memory");
        }
    }
    const double t = seconds(t0);
    g_sink = _mm256_extract_epi32(_mm256_add_epi32(_mm256_add_epi32(s00, s13), _mm256_add_epi32(s01, s12)), 0) +
             _mm256_extract_epi32(_mm256_add_epi32(_mm256_add_epi32(s02, s11), _mm256_add_epi32(s03, s10)), 1);
    return double(iters) * 8 * 8 * 32 / t / 1e9; // 8 steps x 8 (group, token) x 32 multiply-adds
}

// gemm-avx2.cpp's tile<q8_traits, 2, 4> over kb packed blocks, as the prompt kernel calls it.
double tile_2x4(long iters, int64_t kb) {
    using namespace gptneox;
    std::vector<uint8_t> pkv(size_t(2 * kb) * kRecQ8 + 32);
    uint8_t *pk = reinterpret_cast<uint8_t *>((reinterpret_cast<uintptr_t>(pkv.data()) + 31) & ~uintptr_t(31));
    for (size_t i = 0; i < size_t(2 * kb) * kRecQ8; i++) pk[i] = uint8_t(std::rand() & 0x3f);
    for (int64_t i = 0; i < 2 * kb; i++)
        for (int r = 0; r < 8; r++) reinterpret_cast<float *>(pk + size_t(i) * kRecQ8 + 512)[r] = 1.0f;
    const size_t stride = 6016; // a rinna-shape prep row (i16 activations + scales)
    std::vector<uint8_t> prep(stride * 4);
    for (auto &c : prep) c = uint8_t(std::rand() & 0x3f);
    std::vector<float> dyv(4 * 64, 0.5f), yv(4 * 2816, 0.0f);
    const uint8_t *a[4];
    const float *dy[4];
    float *y[4];
    for (int t = 0; t < 4; t++) {
        a[t] = prep.data() + t * stride;
        dy[t] = dyv.data() + 64 * t;
        y[t] = yv.data() + 2816 * t;
    }
    auto *volatile fn = &tile<q8_traits, 2, 4>; // through a pointer: the call is not folded into the loop
    const auto t0 = clk::now();
    for (long it = 0; it < iters; it++) {
        fn(kb, pk, a, dy, y, 16, false);
        __asm__ volatile("" ::: "memory");
    }
    const double t = seconds(t0);
    g_sink = int(yv[5]);
    return double(iters) * double(kb) * 2048 / t / 1e9; // 16 rows x 4 tokens x 32 per block
}

} // namespace

int main() {
    for (size_t i = 0; i < sizeof g_w; i++) g_w[i] = uint8_t(std::rand());
    for (auto &row : g_a)
        for (auto &c : row) c = uint8_t(std::rand() & 0x3f);
    std::printf("one thread, data in L1, GMAC/s (best of 3)\n");
    double best[5] = {0, 0, 0, 0, 0};
    for (int rep = 0; rep < 3; rep++) {
        const double r[5] = {exact_i16<true>(2000000), exact_i16<false>(2000000), maddubs<false>(4000000), tile_2x4(125000, 16),
                             maddubs<true>(4000000)};
        for (int i = 0; i < 5; i++) best[i] = r[i] > best[i] ? r[i] : best[i];
    }
    std::printf("exact i16 (gemm-avx2.cpp q8_block)   %6.1f\n", best[0]);
    std::printf("exact i16, activation in a register %6.1f\n", best[1]);
    std::printf("u8 x s8 (vpmaddubsw, saturating)     %6.1f\n", best[2]);
    std::printf("exact u8 x s8 (vpsignb, sign trick)  %6.1f\n", best[4]);
    std::printf("tile<q8, 2, 4> over 16 blocks        %6.1f\n", best[3]);
    return 0;
}
