// Blocked F16 / BF16-weight products with f32 activations for AVX2 + FMA + F16C (the `gemm` entries of
// kernels.h for GPTNEOX_TYPE_F16 / _BF16 on GPTNEOX_KERNELS_AVX2), compiled with those flags and reached
// only through dispatch.cpp. Internal linkage only (see kernels-avx2.cpp for why).
//
// The same scheme as gemm-f16-avx512.cpp with 8 lanes. Every output gets the same arithmetic whatever
// its tile (batch size never changes a token's result):
//   acc[l] = fma(w[8j + l], a[8j + l], acc[l]) for j = 0, 1, ... in order (lane l < 8; the last,
//   partial vector zero-filled), then s4[i] = acc[i] + acc[i+4], s2[i] = s4[i] + s4[i+2],
//   sum = s2[0] + s2[1].
// Register tile for prompts: 2 rows x 6 tokens (12 ymm accumulators + 2 converted weight vectors + 1
// activation vector: 16 registers, 8 loads per 12 FMAs); decode: 4 rows x 1 token, prefetching the
// next 4 rows front to back into L2 (see gemm-f16-avx512.cpp). The sums of a row pair for two tokens
// (or of a row quad for one) are one transpose-add.
#include <immintrin.h>

#include <cstring>

#include "kernels/kernels-impl.h"

namespace gptneox {
namespace {

constexpr int kTokTile = 6; // prompts: kTokRows rows x kTokTile tokens of accumulators
constexpr int kTokRows = 2;
constexpr size_t kActBlockBytes = 192 * 1024;

template <bool BF> inline __m256 wcvt(__m128i h) {
    if constexpr (BF) return _mm256_castsi256_ps(_mm256_slli_epi32(_mm256_cvtepu16_epi32(h), 16));
    else return _mm256_cvtph_ps(h);
}
template <bool BF> inline __m256 wload(const uint16_t *p) {
    return wcvt<BF>(_mm_loadu_si128(reinterpret_cast<const __m128i *>(p)));
}
// the last r < 8 elements, zero-filled
template <bool BF> inline __m256 wload_tail(const uint16_t *p, int64_t r) {
    uint16_t h[8] = {0, 0, 0, 0, 0, 0, 0, 0};
    std::memcpy(h, p, static_cast<size_t>(r) * 2);
    return wcvt<BF>(_mm_loadu_si128(reinterpret_cast<const __m128i *>(h)));
}
inline __m256i tail_mask(int64_t r) {
    return _mm256_cmpgt_epi32(_mm256_set1_epi32(static_cast<int>(r)), _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7));
}

// The lane sums of v0..v3 (the tree in the header), as [sum v0, sum v1, sum v2, sum v3].
inline __m128 reduce4(__m256 v0, __m256 v1, __m256 v2, __m256 v3) {
    // [s4 of v0 | s4 of v1], [s4 of v2 | s4 of v3]
    const __m256 x01 = _mm256_add_ps(_mm256_permute2f128_ps(v0, v1, 0x20), _mm256_permute2f128_ps(v0, v1, 0x31));
    const __m256 x23 = _mm256_add_ps(_mm256_permute2f128_ps(v2, v3, 0x20), _mm256_permute2f128_ps(v2, v3, 0x31));
    // [s2 of v0, s2 of v2 | s2 of v1, s2 of v3]
    const __m256 s2 = _mm256_add_ps(_mm256_shuffle_ps(x01, x23, _MM_SHUFFLE(1, 0, 1, 0)),
                                    _mm256_shuffle_ps(x01, x23, _MM_SHUFFLE(3, 2, 3, 2)));
    // [v0, v2, v0, v2 | v1, v3, v1, v3]
    const __m256 s1 = _mm256_hadd_ps(s2, s2);
    return _mm_unpacklo_ps(_mm256_castps256_ps128(s1), _mm256_extractf128_ps(s1, 1));
}

// R rows (2 or 4) x T tokens. w[r]: weight rows; a[t]: activation rows; y[t]: where row 0's output
// for token t goes (rows consecutive). Only the first `nv` rows are stored. PF: prefetch the 2Rn
// bytes from pf on (the next group of rows) while reading these.
template <int R> inline void store_rows(float *y, __m128 s, int lane0, int nv) {
    float tmp[4];
    _mm_storeu_ps(tmp, s);
    for (int r = 0; r < R && r < nv; r++) y[r] = tmp[lane0 + r];
}
template <bool BF, int R, int T, bool PF>
inline void tile(int64_t n, const uint16_t *const *w, const float *const *a, float *const *y, int nv,
                 const char *pf = nullptr) {
    __m256 acc[R][T];
    #pragma GCC unroll 8
    for (int r = 0; r < R; r++)
        #pragma GCC unroll 8
        for (int t = 0; t < T; t++) acc[r][t] = _mm256_setzero_ps();
    int64_t i = 0;
    for (; i + 8 <= n; i += 8) {
        __m256 wv[R];
        if constexpr (PF) { // 16R bytes of the next group per 16R bytes read here
            #pragma GCC unroll 4
            for (int r = 0; r < R; r += 4) _mm_prefetch(pf + 16 * r, _MM_HINT_T1);
            pf += 16 * R;
        }
        #pragma GCC unroll 8
        for (int r = 0; r < R; r++) wv[r] = wload<BF>(w[r] + i);
        #pragma GCC unroll 8
        for (int t = 0; t < T; t++) {
            __m256 av = _mm256_loadu_ps(a[t] + i);
            // keep av in a register: GCC would otherwise fold the load into each of the R FMAs (R loads
            // instead of one, and the loads then bound the loop)
            __asm__("" : "+x"(av));
            #pragma GCC unroll 8
            for (int r = 0; r < R; r++) acc[r][t] = _mm256_fmadd_ps(wv[r], av, acc[r][t]);
        }
    }
    if (i < n) {
        const __m256i m = tail_mask(n - i);
        __m256 wv[R];
        #pragma GCC unroll 8
        for (int r = 0; r < R; r++) wv[r] = wload_tail<BF>(w[r] + i, n - i);
        #pragma GCC unroll 8
        for (int t = 0; t < T; t++) {
            const __m256 av = _mm256_maskload_ps(a[t] + i, m);
            #pragma GCC unroll 8
            for (int r = 0; r < R; r++) acc[r][t] = _mm256_fmadd_ps(wv[r], av, acc[r][t]);
        }
    }
    if constexpr (R == 4) {
        #pragma GCC unroll 8
        for (int t = 0; t < T; t++) {
            const __m128 s = reduce4(acc[0][t], acc[1][t], acc[2][t], acc[3][t]);
            if (nv >= 4) _mm_storeu_ps(y[t], s);
            else store_rows<4>(y[t], s, 0, nv);
        }
    } else { // two tokens' row pairs per reduce4
        #pragma GCC unroll 8
        for (int t = 0; t < T; t += 2) {
            const int t1 = t + 1 < T ? t + 1 : t;
            const __m128 s = reduce4(acc[0][t], acc[1][t], acc[0][t1], acc[1][t1]);
            if (nv >= 2) {
                _mm_storel_pi(reinterpret_cast<__m64 *>(y[t]), s);
                if (t + 1 < T) _mm_storeh_pi(reinterpret_cast<__m64 *>(y[t1]), s);
            } else {
                store_rows<2>(y[t], s, 0, nv);
                if (t + 1 < T) store_rows<2>(y[t1], s, 2, nv);
            }
        }
    }
}

// tile<BF, kTokRows, tt> for a run-time tt in 1..TT
template <bool BF, int TT>
inline void tile_n(int tt, int64_t n, const uint16_t *const *w, const float *const *a, float *const *y, int nv) {
    if constexpr (TT > 0) {
        if (tt == TT) return tile<BF, kTokRows, TT, false>(n, w, a, y, nv);
        tile_n<BF, TT - 1>(tt, n, w, a, y, nv);
    }
}

// Row pointers of rows g..g+R-1 (rows past n_rows repeat row g, their outputs are not stored).
template <int R>
inline int rows_at(const uint8_t *w, size_t row_bytes, int64_t n_rows, int64_t g, const uint16_t **wr) {
    const int nv = int(n_rows - g < R ? n_rows - g : R);
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
        for (int64_t g = 0; g < n_rows; g += 4) {
            const uint16_t *wr[4];
            const int nv = rows_at<4>(w, row_bytes, n_rows, g, wr);
            float *yo[1] = {y + g};
            // the next group's bytes (rows are contiguous but for padding), front to back; none past
            // the rows this call was given (another thread may be reading those)
            if (g + 8 <= n_rows)
                tile<BF, 4, 1, true>(n, wr, a, yo, nv, reinterpret_cast<const char *>(wr[0]) + 4 * row_bytes);
            else
                tile<BF, 4, 1, false>(n, wr, a, yo, nv);
        }
        return;
    }
    int64_t tb = static_cast<int64_t>(kActBlockBytes / (static_cast<size_t>(n) * sizeof(float)));
    tb = tb < kTokTile ? kTokTile : tb / kTokTile * kTokTile;
    for (int64_t t0 = 0; t0 < n_tok; t0 += tb) {
        const int64_t t1 = t0 + tb < n_tok ? t0 + tb : n_tok;
        for (int64_t g = 0; g < n_rows; g += kTokRows) {
            const uint16_t *wr[kTokRows];
            const int nv = rows_at<kTokRows>(w, row_bytes, n_rows, g, wr);
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

void fill_gemm_f16_avx2(kernels &k) {
    k.traits[GPTNEOX_TYPE_F16].gemm = gemm<false>;
    k.traits[GPTNEOX_TYPE_BF16].gemm = gemm<true>;
}

} // namespace gptneox
