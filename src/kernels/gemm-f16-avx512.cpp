// Blocked F16 / BF16-weight products with f32 activations for AVX-512 (the `gemm` entries of
// kernels.h for GPTNEOX_TYPE_F16 / _BF16), compiled with the AVX-512 flags and reached only through
// dispatch.cpp. Internal linkage only (see kernels-avx2.cpp for why).
//
// Arithmetic, the same for every output whatever the tile it is computed in (so a token's result
// never depends on how many tokens were multiplied together, decode or prompt):
//   acc[l] = fma(w[16j + l], a[16j + l], acc[l]) for j = 0, 1, ... in order (lane l < 16; the last,
//   partial vector zero-filled), then the 16 lanes are summed by one fixed tree:
//   s8[i] = acc[i] + acc[i+8], s4[i] = s8[i] + s8[i+4], s2[i] = s4[i] + s4[i+2], sum = s2[0] + s2[1].
// Weights are converted to f32 as they are loaded (vcvtph2ps; bf16: zero-extend + shift), so the
// products are exact f32 products of the stored values and the sums are f32 FMA chains, no rounding of
// the activations.
//
// Register tile: R rows x T tokens of accumulators (4 x 6 = 24 zmm for prompts); per 16 elements, R
// weight vectors and T activation vectors feed R*T FMAs. Rows come in quads (a short last quad repeats
// a valid row and does not store it); the quad's 4 sums per token are one transpose-add and one 16-byte
// store. Prompts: a block of tokens (<= ~256 KiB of activations, kept in L2) meets every row quad of
// the chunk before the next block. Decode (1 token): 8 rows at a time; 8 row streams are more than the
// hardware prefetchers follow well, so the tile prefetches the next 8 rows front to back (into L2) at
// the pace it reads the current ones (measured faster than prefetching each row ahead, or none).
// Tried and dropped: converting a row quad to an f32 buffer once per token block (the brief's first
// idea) was ~15% slower on Zen 4: the f32 quad doubles the tile's L1 footprint, and vcvtph2ps from
// memory costs less than the extra L1/L2 traffic.
#include <immintrin.h>

#pragma GCC diagnostic ignored "-Wuninitialized" // GCC 12 AVX-512 headers, see kernels-avx512.cpp
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
// -O2 does not unroll loops, and a rolled loop over a register tile keeps the tile in memory: the
// small fixed loops below carry unroll pragmas.

#include "kernels/kernels-impl.h"

namespace gptneox {
namespace {

constexpr int kTokTile = 6;                  // tokens per register tile (prompts)
constexpr size_t kActBlockBytes = 256 * 1024; // activations per token block (L2-resident)
constexpr int kDecodeRows = 8;               // rows per decode tile (8 x 1 token)

inline __mmask16 tail_mask(int64_t r) { return static_cast<__mmask16>((1u << r) - 1); }

template <bool BF> inline __m512 wload(const uint16_t *p) {
    const __m256i h = _mm256_loadu_si256(reinterpret_cast<const __m256i *>(p));
    if constexpr (BF) return _mm512_castsi512_ps(_mm512_slli_epi32(_mm512_cvtepu16_epi32(h), 16));
    else return _mm512_cvtph_ps(h);
}
template <bool BF> inline __m512 wload_tail(const uint16_t *p, __mmask16 m) {
    const __m256i h = _mm256_maskz_loadu_epi16(m, p);
    if constexpr (BF) return _mm512_castsi512_ps(_mm512_slli_epi32(_mm512_cvtepu16_epi32(h), 16));
    else return _mm512_cvtph_ps(h);
}

// The lane sums of v0..v3 (the tree in the header), as [sum v0, sum v1, sum v2, sum v3].
inline __m128 reduce4(__m512 v0, __m512 v1, __m512 v2, __m512 v3) {
    // 128-bit lanes [a0+a2, a1+a3, b0+b2, b1+b3]: s8 of a in lanes 0-1, of b in lanes 2-3
    const __m512 p01 = _mm512_add_ps(_mm512_shuffle_f32x4(v0, v1, _MM_SHUFFLE(1, 0, 1, 0)),
                                     _mm512_shuffle_f32x4(v0, v1, _MM_SHUFFLE(3, 2, 3, 2)));
    const __m512 p23 = _mm512_add_ps(_mm512_shuffle_f32x4(v2, v3, _MM_SHUFFLE(1, 0, 1, 0)),
                                     _mm512_shuffle_f32x4(v2, v3, _MM_SHUFFLE(3, 2, 3, 2)));
    // lane j = s4 of v_j
    __m512 q = _mm512_add_ps(_mm512_shuffle_f32x4(p01, p23, _MM_SHUFFLE(2, 0, 2, 0)),
                             _mm512_shuffle_f32x4(p01, p23, _MM_SHUFFLE(3, 1, 3, 1)));
    q = _mm512_add_ps(q, _mm512_permute_ps(q, _MM_SHUFFLE(1, 0, 3, 2))); // s2 in elements 0, 1
    q = _mm512_add_ps(q, _mm512_permute_ps(q, _MM_SHUFFLE(2, 3, 0, 1))); // the sum in element 0
    return _mm512_castps512_ps128(_mm512_permutexvar_ps(_mm512_setr_epi32(0, 4, 8, 12, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0), q));
}

// R rows (R % 4 == 0) x T tokens. w[r]: weight rows; a[t]: activation rows; y[t]: where row 0's
// output for token t goes (rows consecutive). Only the first `nv` rows are stored. PF: prefetch into
// L2, front to back, the R * 2n bytes from pf on (the next group of rows) while reading these.
template <bool BF, int R, int T, bool PF>
inline void tile(int64_t n, const uint16_t *const *w, const float *const *a, float *const *y, int nv, const char *pf = nullptr) {
    __m512 acc[R][T];
    #pragma GCC unroll 8
    for (int r = 0; r < R; r++)
        #pragma GCC unroll 8
        for (int t = 0; t < T; t++) acc[r][t] = _mm512_setzero_ps();
    int64_t i = 0;
    for (; i + 16 <= n; i += 16) {
        __m512 wv[R];
        if constexpr (PF) { // R * 32 bytes of the next group per R * 32 bytes read here
            #pragma GCC unroll 8
            for (int r = 0; r < R; r += 2) _mm_prefetch(pf + 32 * r, _MM_HINT_T1);
            pf += 32 * R;
        }
        #pragma GCC unroll 8
        for (int r = 0; r < R; r++) wv[r] = wload<BF>(w[r] + i);
        #pragma GCC unroll 8
        for (int t = 0; t < T; t++) {
            const __m512 av = _mm512_loadu_ps(a[t] + i);
            #pragma GCC unroll 8
            for (int r = 0; r < R; r++) acc[r][t] = _mm512_fmadd_ps(wv[r], av, acc[r][t]);
        }
    }
    if (i < n) {
        const __mmask16 m = tail_mask(n - i);
        __m512 wv[R];
        #pragma GCC unroll 8
        for (int r = 0; r < R; r++) wv[r] = wload_tail<BF>(w[r] + i, m);
        #pragma GCC unroll 8
        for (int t = 0; t < T; t++) {
            const __m512 av = _mm512_maskz_loadu_ps(m, a[t] + i);
            #pragma GCC unroll 8
            for (int r = 0; r < R; r++) acc[r][t] = _mm512_fmadd_ps(wv[r], av, acc[r][t]);
        }
    }
    #pragma GCC unroll 8
    for (int q = 0; q < R / 4; q++) {
        const int left = nv - 4 * q;
        if (left <= 0) break;
        const __mmask8 sm = static_cast<__mmask8>(left >= 4 ? 0xF : (1u << left) - 1);
        #pragma GCC unroll 8
        for (int t = 0; t < T; t++)
            _mm_mask_storeu_ps(y[t] + 4 * q, sm, reduce4(acc[4 * q][t], acc[4 * q + 1][t], acc[4 * q + 2][t], acc[4 * q + 3][t]));
    }
}

// tile<BF, 4, tt> for a run-time tt in 1..TT
template <bool BF, int TT>
inline void tile_n(int tt, int64_t n, const uint16_t *const *w, const float *const *a, float *const *y, int nv) {
    if constexpr (TT > 0) {
        if (tt == TT) return tile<BF, 4, TT, false>(n, w, a, y, nv);
        tile_n<BF, TT - 1>(tt, n, w, a, y, nv);
    }
}

// Row pointers of rows g..g+R-1 (rows past n_rows repeat row g, their outputs are not stored).
template <int R>
inline int rows_at(const uint8_t *w, size_t row_bytes, int64_t n_rows, int64_t g, const uint16_t **wr) {
    const int nv = int(n_rows - g < R ? n_rows - g : R);
    #pragma GCC unroll 16
    for (int r = 0; r < R; r++) wr[r] = reinterpret_cast<const uint16_t *>(w + size_t(g + (r < nv ? r : 0)) * row_bytes);
    return nv;
}

template <bool BF>
void gemm(int64_t n, const void *wv, size_t row_bytes, int64_t n_rows, const void *act, size_t act_stride,
          const void *, size_t, int64_t n_tok, float *y, size_t y_stride, void *) {
    const uint8_t *w = static_cast<const uint8_t *>(wv);
    const uint8_t *ab = static_cast<const uint8_t *>(act);
    if (n_tok == 1) {
        const float *a[1] = {reinterpret_cast<const float *>(ab)};
        for (int64_t g = 0; g < n_rows; g += kDecodeRows) {
            const uint16_t *wr[kDecodeRows];
            const int nv = rows_at<kDecodeRows>(w, row_bytes, n_rows, g, wr);
            float *yo[1] = {y + g};
            // the next group's bytes (rows are contiguous but for padding), front to back; none past
            // the rows this call was given (another thread may be reading those)
            if (g + 2 * kDecodeRows <= n_rows)
                tile<BF, kDecodeRows, 1, true>(n, wr, a, yo, nv, reinterpret_cast<const char *>(wr[0]) + kDecodeRows * row_bytes);
            else
                tile<BF, kDecodeRows, 1, false>(n, wr, a, yo, nv);
        }
        return;
    }
    int64_t tb = static_cast<int64_t>(kActBlockBytes / (static_cast<size_t>(n) * sizeof(float)));
    tb = tb < kTokTile ? kTokTile : tb / kTokTile * kTokTile;
    for (int64_t t0 = 0; t0 < n_tok; t0 += tb) {
        const int64_t t1 = t0 + tb < n_tok ? t0 + tb : n_tok;
        for (int64_t g = 0; g < n_rows; g += 4) {
            const uint16_t *wr[4];
            const int nv = rows_at<4>(w, row_bytes, n_rows, g, wr);
            for (int64_t t = t0; t < t1; t += kTokTile) {
                const int tt = int(t1 - t < kTokTile ? t1 - t : kTokTile);
                const float *a[kTokTile];
                float *yo[kTokTile];
                for (int j = 0; j < tt; j++) {
                    a[j] = reinterpret_cast<const float *>(ab + size_t(t + j) * act_stride);
                    yo[j] = y + size_t(t + j) * y_stride + g;
                }
                tile_n<BF, kTokTile>(tt, n, wr, a, yo, nv);
            }
        }
    }
}

} // namespace

void fill_gemm_f16_avx512(kernels &k) {
    k.traits[GPTNEOX_TYPE_F16].gemm = gemm<false>;
    k.traits[GPTNEOX_TYPE_BF16].gemm = gemm<true>;
}

} // namespace gptneox
