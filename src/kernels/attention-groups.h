// The ISA-independent bookkeeping of the blocked attention kernels (attention-avx2.cpp: groups of 8 keys,
// attention-avx512.cpp: 16): a block's keys are walked in groups of G aligned to key 0.
#pragma once

#include <xmmintrin.h>

#include <cstddef>
#include <cstdint>

#include "kernels/kernels.h"

namespace gptneox {
// Internal linkage on purpose: this header is compiled into files built with different ISA flags (and
// into plain ones), and the linker keeps one copy of an inline function or template instantiation with
// external linkage, which could be an AVX-512 build of it reached from the AVX2 or scalar path.
namespace {
namespace attn_groups {

// Start loading a group's rows while the block works on the current group. (Written when the cache kept
// a cell's heads together, so one head's rows were far apart; since it is head-major they are contiguous
// and the hardware prefetcher follows them too: decode after 1900 tokens measured the same with this
// prefetch 1, 4 or 8 groups ahead.)
template <int G>
inline void prefetch(const uint8_t *base, size_t stride, int64_t g, int64_t k1, size_t row_bytes) {
    for (int m = 0; m < G && g + m < k1; m++) {
        const char *row = reinterpret_cast<const char *>(base + size_t(g + m) * stride);
        for (size_t b = 0; b < row_bytes; b += 64) _mm_prefetch(row + b, _MM_HINT_T0);
    }
}

// Bytes of one cache row of hd elements of `type` (F16 or Q8_0).
inline size_t row_bytes(uint32_t type, int64_t hd) {
    return type == GPTNEOX_TYPE_Q8_0 ? size_t(hd / QK8_0) * sizeof(block_q8_0) : size_t(hd) * 2;
}

// The visibility words of group [g, g + G) for the queries in qmask (0 outside [k0, k1)); returns their union.
template <int G>
inline uint32_t visibility(const attn_block_args &a, int64_t g, uint32_t qmask, uint32_t *w) {
    uint32_t any = 0;
    for (int m = 0; m < G; m++) {
        const int64_t j = g + m;
        w[m] = j >= a.k0 && j < a.k1 ? a.vis[j] & qmask : 0;
        any |= w[m];
    }
    return any;
}

// Bit i set for each of the block's n_q queries.
inline uint32_t query_mask(int n_q) { return n_q >= 32 ? ~uint32_t(0) : (uint32_t(1) << n_q) - 1; }

// The block's keys [k0, k1) rounded out to whole groups: [*g0, *g1).
template <int G> inline void range(const attn_block_args &a, int64_t *g0, int64_t *g1) {
    *g0 = a.k0 & ~int64_t(G - 1);
    *g1 = a.k1 <= a.k0 ? *g0 : (a.k1 + G - 1) & ~int64_t(G - 1);
}

} // namespace attn_groups
} // namespace
} // namespace gptneox
