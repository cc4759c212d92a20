// F16 weights repacked at load (packed-layout.h's pairs layout, kPackedPairs16x16: per element pair j of a
// 16-row group one 64-byte line, row r's elements 2j, 2j+1 at bytes 4r, 4r+2) x f32 activations read in
// place, AVX-512: the `gemm_packed` entry of F16 on the AVX-512 and AMX tables. Compiled with the AVX-512
// flags, reached only through dispatch.cpp; internal linkage only (see kernels-avx2.cpp for why).
//
// Arithmetic of one output (row r, token t), the same whatever the batch (so batching never changes a
// token's logits): two f32 FMA chains from +0, acc_i = fma(w[2j+i], a[2j+i], acc_i) for j = 0 .. n/2-1 in
// order (i = 0, 1; weights converted to f32 exactly), then out = acc_0 + acc_1. (Not the row-major kernel's
// 16-lane sums, gemm-f16-tile.h: a matrix the loader did not repack gives other roundings, as exact.)
// packed_test checks it bit for bit against that statement in scalar code.
//
// Why this shape: the row-major kernel gives each output 16 lanes over k, so each FMA needs its own weight
// and activation vectors (4 conversions and 10 loads per 24 FMAs): ~50% of the FMA peak on a Xeon. Here a
// line's lanes are 8 rows x 2 elements, one converted line serves every token of the tile, and a token's
// activation pair is one 8-byte broadcast: per step 2 conversions, kTok broadcasts, 2 kTok FMAs (measured
// 2816 x 11264 and 4096 x 1024, one thread: 150-170 vs 107-120 GFLOP/s, 65-73% of the peak; a
// register-only loop of this mix reaches ~75%, vcvtph2ps taking FMA port time). Tried: converting a group
// to f32 once per token block (+5%, not kept); one 32-byte column of 16 rows per element with a 4-byte
// broadcast per FMA (more loads per FMA: 110-130). Decode (1 token) reads the group front to back, asking
// for the bytes kDecodePrefetch ahead.
#include <immintrin.h>

#include <cstring>

#pragma GCC diagnostic ignored "-Wuninitialized" // GCC 12 AVX-512 headers, see kernels-avx512.cpp
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"

#include "kernels/kernels-impl.h"
#include "kernels/packed-layout.h"

namespace gptneox {
namespace {

constexpr int kTok = 12;                      // tokens per register tile (2 kTok accumulators)
constexpr size_t kActBlockBytes = 512 * 1024; // activations per token block (L2-resident)
// Decode streams the groups front to back; asking for the bytes 4 KiB ahead (into L2) kept more of the run
// in flight on a Xeon (pythia-410m f16 generation, interleaved phase profiles: 35.2-36.4 -> 41.8-45.0 tok/s;
// 1 KiB ahead gained nothing, 2 KiB half, 6-8 KiB the same as 4).
constexpr size_t kDecodePrefetch = 4096;

// Lanes 2r + i of acc0 (rows 0-7) and acc1 (rows 8-15) -> row r's acc_0 + acc_1, rows 0-15 in order.
inline __m512 pair_sums(__m512 acc0, __m512 acc1) {
    const __m512i even = _mm512_setr_epi32(0, 2, 4, 6, 8, 10, 12, 14, 16, 18, 20, 22, 24, 26, 28, 30);
    const __m512i odd = _mm512_add_epi32(even, _mm512_set1_epi32(1));
    return _mm512_add_ps(_mm512_permutex2var_ps(acc0, even, acc1), _mm512_permutex2var_ps(acc0, odd, acc1));
}

// One group's 16 rows x T tokens: a[t] the f32 activation rows, y[t] where the 16 outputs go.
template <int T>
inline void tile(const uint8_t *grp, int64_t n_pairs, const float *const *a, float *const *y) {
    __m512 acc0[T], acc1[T];
    #pragma GCC unroll 16
    for (int t = 0; t < T; t++) acc0[t] = acc1[t] = _mm512_setzero_ps();
    for (int64_t j = 0; j < n_pairs; j++) {
        const uint8_t *line = grp + 64 * j;
        // decode: the line kDecodePrefetch bytes ahead into L2 (past the range's end: the next rows or
        // nothing, a prefetch never faults)
        if constexpr (T == 1) _mm_prefetch(reinterpret_cast<const char *>(line) + kDecodePrefetch, _MM_HINT_T1);
        const __m512 w0 = _mm512_cvtph_ps(_mm256_load_si256(reinterpret_cast<const __m256i *>(line)));
        const __m512 w1 = _mm512_cvtph_ps(_mm256_load_si256(reinterpret_cast<const __m256i *>(line + 32)));
        #pragma GCC unroll 16
        for (int t = 0; t < T; t++) {
            double pair; // a[2j], a[2j+1] as one 8-byte broadcast
            std::memcpy(&pair, a[t] + 2 * j, 8);
            const __m512 av = _mm512_castpd_ps(_mm512_set1_pd(pair));
            acc0[t] = _mm512_fmadd_ps(w0, av, acc0[t]);
            acc1[t] = _mm512_fmadd_ps(w1, av, acc1[t]);
        }
    }
    #pragma GCC unroll 16
    for (int t = 0; t < T; t++) _mm512_storeu_ps(y[t], pair_sums(acc0[t], acc1[t]));
}

// tile<tt> for a run-time tt in 1..TT
template <int TT>
inline void tile_n(int tt, const uint8_t *grp, int64_t n_pairs, const float *const *a, float *const *y) {
    if constexpr (TT > 0) {
        if (tt == TT) return tile<TT>(grp, n_pairs, a, y);
        tile_n<TT - 1>(tt, grp, n_pairs, a, y);
    }
}

void gemm(int64_t n, const void *wv, size_t gb, int64_t n_rows, const void *act, size_t act_stride, const void *,
          size_t, int64_t n_tok, float *y, size_t y_stride, void *) {
    const uint8_t *w = static_cast<const uint8_t *>(wv), *ab = static_cast<const uint8_t *>(act);
    const int64_t groups = n_rows / 16, n_pairs = n / 2;
    int64_t tb = int64_t(kActBlockBytes / (size_t(n) * sizeof(float)));
    tb = tb < kTok ? kTok : tb / kTok * kTok;
    for (int64_t t0 = 0; t0 < n_tok; t0 += tb) {
        const int64_t t1 = t0 + tb < n_tok ? t0 + tb : n_tok;
        for (int64_t g = 0; g < groups; g++) {
            for (int64_t t = t0; t < t1; t += kTok) {
                const int tt = int(t1 - t < kTok ? t1 - t : kTok);
                const float *a[kTok];
                float *yo[kTok];
                for (int j = 0; j < tt; j++) {
                    a[j] = reinterpret_cast<const float *>(ab + size_t(t + j) * act_stride);
                    yo[j] = y + size_t(t + j) * y_stride + 16 * g;
                }
                tile_n<kTok>(tt, w + size_t(g) * gb, n_pairs, a, yo);
            }
        }
    }
}

} // namespace

void fill_gemm_f16_packed_avx512(kernels &k) {
    use_pairs16x16(k.traits[GPTNEOX_TYPE_F16]);
    k.traits[GPTNEOX_TYPE_F16].gemm_packed = gemm;
}

} // namespace gptneox
