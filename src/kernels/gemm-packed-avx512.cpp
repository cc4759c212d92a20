// Q4_0 / Q8_0 matrices repacked once at load (use_extra_bufts; loader/repack.cpp) for the AVX-512 VNNI
// kernels: the file's quants already transposed into the prompt kernels' VNNI order, 16 rows per group,
// so decode is two VPDPBUSDs per 64 bytes (Q4_0: after one AND / shift + AND) with no gathers and no
// transpose tree; the 32-row prompt tiles read Q8_0's vectors where they lie (f16 scales converted as
// read) and Q4_0's after one AND / shift into the work area. The same exact block sums and FMA sequence as
// the in-place kernels (gemm-vnni.h), so results are bit-identical.

#include "kernels/gemm-vnni.h"
#include "kernels/packed-layout.h"

namespace gptneox {
namespace {

using namespace vnni;

// The layout (packed-layout.h) in AVX-512 terms: vector v of block b is transpose_q4_bytes /
// transpose_q8's output v for the group's 16 rows, done once.
template <typename T> constexpr size_t x16_qbytes() { return gptneox::x16_qbytes<is_q4<T>()>(); }
template <typename T> size_t x16_group_bytes(int64_t n) { return gptneox::x16_group_bytes<is_q4<T>()>(n); }
template <typename T> constexpr size_t scales_at(int64_t ib) { return x16_scales_at<is_q4<T>()>(ib); }
template <typename T> constexpr size_t quants_at(int64_t ib) { return x16_quants_at<is_q4<T>()>(ib); }

// Rows [0, n_rows) of the file's matrix (n_rows % 16 == 0) -> n_rows / 16 packed groups at out, one block
// of 16 rows at a time by the prompt kernels' in-register transposes (Q4_0: the raw nibble bytes).
template <typename T> void repack_x16(int64_t n, const void *wv, size_t row_bytes, int64_t n_rows, uint8_t *out) {
    const int64_t nb = n / 32;
    const size_t gb = x16_group_bytes<T>(n);
    for (int64_t g = 0; g < n_rows / 16; g++) {
        const uint8_t *rows = static_cast<const uint8_t *>(wv) + size_t(16 * g) * row_bytes;
        uint8_t *grp = out + size_t(g) * gb;
        if (nb % 2) std::memset(grp + scales_at<T>(nb), 0, 32);
        const uint8_t *rp[16];
        for (int64_t ib = 0; ib < nb; ib++) {
            for (int r = 0; r < 16; r++) {
                rp[r] = rows + size_t(r) * row_bytes + size_t(ib) * T::size;
                std::memcpy(grp + scales_at<T>(ib) + 2 * r, rp[r], 2);
            }
            __m512i v[8];
            if constexpr (is_q4<T>()) transpose_q4_bytes(rp, v);
            else transpose_q8(rp, v);
            uint8_t *dst = grp + quants_at<T>(ib);
            constexpr int kVec = int(x16_qbytes<T>() / 64);
            #pragma GCC unroll 8
            for (int c = 0; c < kVec; c++) _mm512_store_si512(dst + 64 * c, v[c]);
        }
    }
}

// The 8 VNNI-order vectors of block ib of a packed group (what transpose_q4 / transpose_q8 give).
template <typename T> inline void unpack_x16(const uint8_t *grp, int64_t ib, __m512i out[8]) {
    const uint8_t *p = grp + quants_at<T>(ib);
    if constexpr (is_q4<T>()) {
        const __m512i lo4 = _mm512_set1_epi8(0x0F);
        #pragma GCC unroll 4
        for (int v = 0; v < 4; v++) {
            const __m512i x = _mm512_load_si512(p + 64 * v);
            out[v] = _mm512_and_si512(x, lo4);
            out[v + 4] = _mm512_and_si512(_mm512_srli_epi16(x, 4), lo4);
        }
    } else {
        #pragma GCC unroll 8
        for (int v = 0; v < 8; v++) out[v] = _mm512_load_si512(p + 64 * v);
    }
}

// decode_group over a packed group (all 16 rows valid): the same integer block sums and the same
// per-block FMA as decode_group, without its gathers and transpose tree. Vector c < 4 meets the token's
// elements 4c..4c+3 of the block, c >= 4 elements 16+4(c-4).. (act_lo / act_hi: both types' prep order).
// A range of groups is one run of memory, which the hardware prefetchers follow; on top, each block asks
// (into L2) for the bytes kDecodePrefetch ahead of it, which kept more of the run in flight on a Xeon
// (rinna-3.6B generation, interleaved phase profiles: q8_0 6.2-6.7 -> 7.2-7.8 tok/s at 1-3 KiB ahead, q4_0
// 10.3-11.8 -> 12.7-13.9 at 2-3 KiB; 512 bytes gained half that, 4 KiB less, NTA hints halved the rate).
// (On Zen 4, the former two-run layout's prefetch of the next group at this one's pace held one thread to
// 21-23 GB/s against 27.7-31.5 without: that scheme, not this one, was measured there.)
constexpr size_t kDecodePrefetch = 2048;

template <typename T> void decode_group_x16(int64_t nb, const uint8_t *grp, const act_row &a, float *y) {
    __m512 acc = _mm512_setzero_ps();
    for (int64_t ib = 0; ib < nb; ib++) {
        // (past the range's last group this touches the next rows or nothing: a prefetch never faults)
        const char *pf = reinterpret_cast<const char *>(grp + quants_at<T>(ib)) + kDecodePrefetch;
        for (size_t b = 0; b < x16_qbytes<T>() + 32; b += 64) _mm_prefetch(pf + b, _MM_HINT_T1);
        const int8_t *alo = a.q + act_lo<T>(ib, nb), *ahi = alo + act_hi<T>(ib, nb);
        __m512i s0 = _mm512_set1_epi32(a.corr[ib]), s1 = _mm512_setzero_si512(); // two chains, exact sums
        if constexpr (is_q4<T>()) {
            // Q4_0: the high nibbles are taken in place (16 h), their sum divided by 16 after (exact): one AND
            // per nibble half instead of unpack_x16's AND, shift, AND
            const uint8_t *p = grp + quants_at<T>(ib);
            const __m512i lo4 = _mm512_set1_epi8(0x0F), hi4 = _mm512_set1_epi8(static_cast<char>(0xF0));
            #pragma GCC unroll 4
            for (int v = 0; v < 4; v++) {
                int32_t l4, h4;
                std::memcpy(&l4, alo + 4 * v, 4);
                std::memcpy(&h4, ahi + 4 * v, 4);
                const __m512i x = _mm512_load_si512(p + 64 * v);
                s0 = _mm512_dpbusd_epi32(s0, _mm512_and_si512(x, lo4), _mm512_set1_epi32(l4));
                s1 = _mm512_dpbusd_epi32(s1, _mm512_and_si512(x, hi4), _mm512_set1_epi32(h4));
            }
            s1 = _mm512_srai_epi32(s1, 4);
        } else {
            __m512i q[8];
            unpack_x16<T>(grp, ib, q);
            #pragma GCC unroll 4
            for (int v = 0; v < 4; v++) {
                int32_t l4, h4;
                std::memcpy(&l4, alo + 4 * v, 4);
                std::memcpy(&h4, ahi + 4 * v, 4);
                s0 = _mm512_dpbusd_epi32(s0, q[v], _mm512_set1_epi32(l4));
                s1 = _mm512_dpbusd_epi32(s1, q[v + 4], _mm512_set1_epi32(h4));
            }
        }
        const __m512 dw = _mm512_cvtph_ps(_mm256_load_si256(reinterpret_cast<const __m256i *>(grp + scales_at<T>(ib))));
        acc = _mm512_fmadd_ps(_mm512_cvtepi32_ps(_mm512_add_epi32(s0, s1)), _mm512_mul_ps(dw, _mm512_set1_ps(a.d[ib])), acc);
    }
    _mm512_storeu_ps(y, acc);
}

// pack_group's work layout from blocks [kb, kb + nb) of a packed group.
template <typename T> void pack_group_x16(int64_t nb, const uint8_t *grp, int64_t kb, uint8_t *work) {
    __m512i *q = reinterpret_cast<__m512i *>(work);
    __m512 *d = reinterpret_cast<__m512 *>(work + size_t(nb) * 8 * 64);
    for (int64_t i = 0; i < nb; i++) {
        __m512i v[8];
        unpack_x16<T>(grp, kb + i, v);
        #pragma GCC unroll 8
        for (int c = 0; c < 8; c++) _mm512_store_si512(q + i * 8 + c, v[c]);
        const uint8_t *sc = grp + scales_at<T>(kb + i);
        _mm512_store_ps(d + i, _mm512_cvtph_ps(_mm256_load_si256(reinterpret_cast<const __m256i *>(sc))));
    }
}

// gemm over packed groups (n_rows % 16 == 0, w = the first group, gb = the group stride).
template <typename T>
void gemm_x16(int64_t n, const void *wv, size_t gb, int64_t n_rows, const void *, size_t, const void *prep_v,
              size_t prep_stride, int64_t n_tok, float *y, size_t y_stride, void *work) {
    const int64_t nb = n / 32;
    const uint8_t *prep = static_cast<const uint8_t *>(prep_v);
    uint8_t *pk = align64(work);
    const int64_t kc32 = chunk32_blocks(n);
    const bool decode = n_tok < kPromptMinTokens || work == nullptr;
    for (int64_t g = 0; g < n_rows; g += 16) {
        const uint8_t *grp = static_cast<const uint8_t *>(wv) + size_t(g / 16) * gb;
        const size_t rest = size_t(n_rows - g - 16) / 16 * gb; // bytes of the groups after this one
        if (!decode && n_rows - g >= 32 && kc32 > 0) {
            const uint8_t *grp1 = grp + gb;
            const size_t after1 = rest - gb; // n_rows - g >= 32: the second group exists
            const size_t next_bytes = after1 < 2 * gb ? after1 : 2 * gb;
            if constexpr (is_q4<T>()) { // the nibbles are unpacked into the work area, a K chunk at a time
                auto pack = [&](int64_t kb, int64_t kc, uint8_t *wa, uint8_t *wb) {
                    pack_group_x16<T>(kc, grp, kb, wa);
                    pack_group_x16<T>(kc, grp1, kb, wb);
                };
                pass32<T, false>(nb, n, kc32, packed_into(pk, kc32, pack), prep, prep_stride, n_tok, y + g, y_stride,
                                 grp + 2 * gb, next_bytes);
            } else { // Q8_0's vectors are already the tile's operands: read in place, f16 scales
                auto source = [&](int64_t, int64_t) { return chunk32{grp, grp1, grp, grp1}; };
                pass32<T, true>(nb, n, kc32, source, prep, prep_stride, n_tok, y + g, y_stride, grp + 2 * gb, next_bytes);
            }
            g += 16; // the loop adds the other 16
            continue;
        }
        if (decode) {
            for (int64_t t = 0; t < n_tok; t++)
                decode_group_x16<T>(nb, grp, act_of(prep + t * prep_stride, n), y + t * y_stride + g);
            continue;
        }
        const uint8_t *next = grp + gb;
        const size_t next_bytes = rest >= gb ? gb : rest;
        pack_group_x16<T>(nb, grp, 0, pk);
        for (int64_t t0 = 0; t0 < n_tok; t0 += kTokTile) {
            const int tt = int(n_tok - t0 < kTokTile ? n_tok - t0 : kTokTile);
            tile_n<T, kTokTile>(tt, nb, n, pk, prep + t0 * prep_stride, prep_stride, y + t0 * y_stride + g, y_stride, 16,
                                next, t0 == 0 ? next_bytes : 0);
        }
    }
}

template <typename T> void fill_packed(type_traits &t) {
    t.packed_layout = is_q4<T>() ? kPackedQ4x16 : kPackedQ8x16;
    t.packed_group_bytes = x16_group_bytes<T>;
    t.repack = repack_x16<T>;
    t.gemm_packed = gemm_x16<T>;
}

} // namespace

void gemm_packed_q8_vnni(int64_t n, const void *w, size_t gb, int64_t n_rows, const void *act, size_t act_stride,
                         const void *prep, size_t prep_stride, int64_t n_tok, float *y, size_t y_stride, void *work) {
    gemm_x16<q8_traits>(n, w, gb, n_rows, act, act_stride, prep, prep_stride, n_tok, y, y_stride, work);
}

void gemm_packed_q4_vnni(int64_t n, const void *w, size_t gb, int64_t n_rows, const void *act, size_t act_stride,
                         const void *prep, size_t prep_stride, int64_t n_tok, float *y, size_t y_stride, void *work) {
    gemm_x16<q4_traits>(n, w, gb, n_rows, act, act_stride, prep, prep_stride, n_tok, y, y_stride, work);
}

void fill_packed_avx512_vnni(kernels &k) {
    fill_packed<q4_traits>(k.traits[GPTNEOX_TYPE_Q4_0]);
    fill_packed<q8_traits>(k.traits[GPTNEOX_TYPE_Q8_0]);
}

} // namespace gptneox
