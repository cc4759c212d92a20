// The AVX-512 register tile shared by the 16-bit-weight gemm kernels (included only by files compiled
// with the AVX-512 flags: gemm-f16-avx512.cpp, gemm-bf16dp-avx512.cpp). A policy P says how one step
// of kStep elements multiplies a weight row into an accumulator of 16 f32 lanes:
//   P::kStep                  elements per step (16: f32 FMA; 32: VDPBF16PS pairs)
//   P::act                    activation element type (float, or uint16_t bf16)
//   P::wload(p) / wload_tail(p, left)   a step of weights (tail: `left` < kStep elements, rest zero)
//   P::aload(p) / aload_tail(p, left)   a step of activations, the same way
//   P::madd(w, a, acc)        acc + the step's products, lane by lane
// Every output gets the same arithmetic whatever the tile it is computed in (so a token's result never
// depends on how many tokens were multiplied together): its 16 lanes accumulate the steps in order, then
// are summed by one fixed tree, s8[i] = l[i] + l[i+8], s4[i] = s8[i] + s8[i+4], s2[i] = s4[i] + s4[i+2],
// sum = s2[0] + s2[1].
//
// Register tile: R rows x T tokens of accumulators (4 x 6 = 24 zmm for prompts); per step, R weight
// vectors and T activation vectors feed R*T multiply-adds. Rows come in quads (a short last quad repeats
// a valid row and does not store it); the quad's 4 sums per token are one transpose-add and one 16-byte
// store. Prompts: a block of tokens (<= ~256 KiB of activations, kept in L2) meets every row quad of
// the chunk before the next block. Decode (1 token): 8 rows at a time; 8 row streams are more than the
// hardware prefetchers follow well, so the tile prefetches the next 8 rows front to back (into L2) at
// the pace it reads the current ones (measured faster than prefetching each row ahead, or none).
#pragma once

#include <immintrin.h>

#include <cstddef>
#include <cstdint>

namespace gptneox {
namespace f16tile {

constexpr int kTokTile = 6;                   // tokens per register tile (prompts)
constexpr size_t kActBlockBytes = 256 * 1024; // activations per token block (L2-resident)
constexpr int kDecodeRows = 8;                // rows per decode tile (8 x 1 token)

// The lane sums of v0..v3 (the tree above), as [sum v0, sum v1, sum v2, sum v3].
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
template <typename P, int R, int T, bool PF>
inline void tile(int64_t n, const uint16_t *const *w, const typename P::act *const *a, float *const *y, int nv,
                 const char *pf = nullptr) {
    constexpr int kStepBytes = R * 2 * P::kStep; // weight bytes read per step
    __m512 acc[R][T];
    #pragma GCC unroll 8
    for (int r = 0; r < R; r++)
        #pragma GCC unroll 8
        for (int t = 0; t < T; t++) acc[r][t] = _mm512_setzero_ps();
    int64_t i = 0;
    for (; i + P::kStep <= n; i += P::kStep) {
        typename P::wvec wv[R];
        if constexpr (PF) { // as many bytes of the next group as this step reads here
            #pragma GCC unroll 16
            for (int b = 0; b < kStepBytes; b += 64) _mm_prefetch(pf + b, _MM_HINT_T1);
            pf += kStepBytes;
        }
        #pragma GCC unroll 8
        for (int r = 0; r < R; r++) wv[r] = P::wload(w[r] + i);
        #pragma GCC unroll 8
        for (int t = 0; t < T; t++) {
            const typename P::avec av = P::aload(a[t] + i);
            #pragma GCC unroll 8
            for (int r = 0; r < R; r++) acc[r][t] = P::madd(wv[r], av, acc[r][t]);
        }
    }
    if (i < n) {
        typename P::wvec wv[R];
        #pragma GCC unroll 8
        for (int r = 0; r < R; r++) wv[r] = P::wload_tail(w[r] + i, n - i);
        #pragma GCC unroll 8
        for (int t = 0; t < T; t++) {
            const typename P::avec av = P::aload_tail(a[t] + i, n - i);
            #pragma GCC unroll 8
            for (int r = 0; r < R; r++) acc[r][t] = P::madd(wv[r], av, acc[r][t]);
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

// tile<P, 4, tt> for a run-time tt in 1..TT
template <typename P, int TT>
inline void tile_n(int tt, int64_t n, const uint16_t *const *w, const typename P::act *const *a, float *const *y,
                   int nv) {
    if constexpr (TT > 0) {
        if (tt == TT) return tile<P, 4, TT, false>(n, w, a, y, nv);
        tile_n<P, TT - 1>(tt, n, w, a, y, nv);
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

// The kernels.h gemm entry over policy P (activations: rows of P::act, act_stride bytes apart).
template <typename P>
void gemm(int64_t n, const void *wv, size_t row_bytes, int64_t n_rows, const void *act, size_t act_stride,
          const void *, size_t, int64_t n_tok, float *y, size_t y_stride, void *) {
    using A = typename P::act;
    const uint8_t *w = static_cast<const uint8_t *>(wv);
    const uint8_t *ab = static_cast<const uint8_t *>(act);
    if (n_tok == 1) {
        const A *a[1] = {reinterpret_cast<const A *>(ab)};
        for (int64_t g = 0; g < n_rows; g += kDecodeRows) {
            const uint16_t *wr[kDecodeRows];
            const int nv = rows_at<kDecodeRows>(w, row_bytes, n_rows, g, wr);
            float *yo[1] = {y + g};
            // the next group's bytes (rows are contiguous but for padding), front to back; none past
            // the rows this call was given (another thread may be reading those)
            if (g + 2 * kDecodeRows <= n_rows)
                tile<P, kDecodeRows, 1, true>(n, wr, a, yo, nv, reinterpret_cast<const char *>(wr[0]) + kDecodeRows * row_bytes);
            else
                tile<P, kDecodeRows, 1, false>(n, wr, a, yo, nv);
        }
        return;
    }
    int64_t tb = static_cast<int64_t>(kActBlockBytes / (static_cast<size_t>(n) * sizeof(A)));
    tb = tb < kTokTile ? kTokTile : tb / kTokTile * kTokTile;
    for (int64_t t0 = 0; t0 < n_tok; t0 += tb) {
        const int64_t t1 = t0 + tb < n_tok ? t0 + tb : n_tok;
        for (int64_t g = 0; g < n_rows; g += 4) {
            const uint16_t *wr[4];
            const int nv = rows_at<4>(w, row_bytes, n_rows, g, wr);
            for (int64_t t = t0; t < t1; t += kTokTile) {
                const int tt = int(t1 - t < kTokTile ? t1 - t : kTokTile);
                const A *a[kTokTile];
                float *yo[kTokTile];
                for (int j = 0; j < tt; j++) {
                    a[j] = reinterpret_cast<const A *>(ab + size_t(t + j) * act_stride);
                    yo[j] = y + size_t(t + j) * y_stride + g;
                }
                tile_n<P, kTokTile>(tt, n, wr, a, yo, nv);
            }
        }
    }
}

} // namespace f16tile
} // namespace gptneox
