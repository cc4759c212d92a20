// The x16 layouts of Q4_0 / Q8_0 (and, for AMX, BF16; for AVX-512, F16) matrices repacked at load
// (use_extra_bufts, loader/repack.cpp), shared by the kernel paths that read them: gemm-packed-avx512.cpp
// (16 rows per 64-byte vector), gemm-qbf16-amx.cpp (dequantizes them to bf16 tiles), gemm-avx2.cpp (Q4_0: rows
// 0-7 / 8-15 as the low / high 32 bytes of each vector); the 16-bit pairs layout: gemm-bf16-amx.cpp (BF16)
// and gemm-f16-packed-avx512.cpp (F16). A path declares the
// layout it reads in type_traits::packed_layout; a copy made by one path is read by every path that
// declares the same layout.
//
// A group of 16 rows: its blocks in pairs, pair p = [block 2p's 16 f16 row scales (32 B), block 2p+1's
// (32 B)][block 2p's Q bytes][block 2p+1's Q bytes]; an odd last block's pair has zeros for the missing
// scales and no quant bytes. Block b's weights are 64-byte vectors, dword r of vector v = row r's quant
// bytes 4v..4v+3 (the same bytes per weight as the file). A group is one run of memory read front to back:
// measured on Zen 4, one thread streams such a run at the sequential rate (26-29 GB/s), while the former
// layout (all scales, then all quants: two runs at once, one 8 or 16 times slower than the other) streamed
// at 16 GB/s (20-22 with a software prefetch of the next group); every vector stays 64-byte aligned.
// Q4_0 (Q = 256, 4 vectors): the file's nibble bytes, so the low nibbles of vector v are elements
// 4v..4v+3 of the 16 rows and the high nibbles elements 16+4v..16+4v+3. Q8_0 (Q = 512, 8 vectors):
// vector v is elements 4v..4v+3, made unsigned (sign bit flipped).
#pragma once

#include <cstddef>
#include <cstdint>
#include <cstring>

#include "kernels/kernels.h"

namespace gptneox {
// Internal linkage on purpose: this header is compiled into files built with different ISA flags (and
// into plain ones), and the linker keeps one copy of an inline function or template instantiation with
// external linkage, which could be an AVX-512 build of it reached from the AVX2 or scalar path.
namespace {

constexpr uint32_t kPackedQ4x16 = 1, kPackedQ8x16 = 2, kPackedPairs16x16 = 3;

inline int64_t x16_even_blocks(int64_t nb) { return (nb + 1) & ~int64_t(1); }
template <bool Q4> constexpr size_t x16_qbytes() { return Q4 ? 256 : 512; }
template <bool Q4> size_t x16_group_bytes(int64_t n) {
    return size_t(32 * x16_even_blocks(n / 32)) + x16_qbytes<Q4>() * size_t(n / 32);
}
template <bool Q4> constexpr size_t x16_pair_bytes() { return 64 + 2 * x16_qbytes<Q4>(); }
// Offsets in a group of block ib's 16 f16 row scales and of its first quant vector.
template <bool Q4> constexpr size_t x16_scales_at(int64_t ib) {
    return size_t(ib >> 1) * x16_pair_bytes<Q4>() + 32 * size_t(ib & 1);
}
template <bool Q4> constexpr size_t x16_quants_at(int64_t ib) {
    return size_t(ib >> 1) * x16_pair_bytes<Q4>() + 64 + x16_qbytes<Q4>() * size_t(ib & 1);
}

// The layout stated element by element (any CPU): rows [0, n_rows) (n_rows % 16 == 0, row_bytes apart)
// -> n_rows / 16 groups at out. The SIMD paths may fill it faster; packed_test checks they agree.
template <bool Q4> void repack_x16_ref(int64_t n, const void *wv, size_t row_bytes, int64_t n_rows, uint8_t *out) {
    constexpr size_t block = Q4 ? sizeof(block_q4_0) : sizeof(block_q8_0);
    constexpr int kVec = int(x16_qbytes<Q4>() / 64);
    const int64_t nb = n / 32;
    const size_t gb = x16_group_bytes<Q4>(n);
    for (int64_t g = 0; g < n_rows / 16; g++) {
        uint8_t *grp = out + size_t(g) * gb;
        if (nb % 2) std::memset(grp + x16_scales_at<Q4>(nb), 0, 32);
        for (int64_t ib = 0; ib < nb; ib++) {
            uint8_t *sc = grp + x16_scales_at<Q4>(ib), *qv = grp + x16_quants_at<Q4>(ib);
            for (int r = 0; r < 16; r++) {
                const uint8_t *blk = static_cast<const uint8_t *>(wv) + size_t(16 * g + r) * row_bytes + size_t(ib) * block;
                std::memcpy(sc + 2 * r, blk, 2);
                for (int v = 0; v < kVec; v++)
                    for (int e = 0; e < 4; e++) qv[64 * v + 4 * r + e] = uint8_t(blk[2 + 4 * v + e] ^ (Q4 ? 0 : 0x80));
            }
        }
    }
}

// 16-bit elements in pairs, AMX-BF16's B layout (BF16: gemm-bf16-amx.cpp; F16: gemm-f16-packed-avx512.cpp,
// whose lines are 8 rows x 2 elements per 32 bytes). A group of 16 rows, per block of 32 elements 1 KiB: 16
// lines (element pairs p) of 16 rows x 2 elements, i.e. row r's element 32b + 2p + i at byte 1024b + 64p +
// 4r + 2i; so pair j's line is at byte 64j. Rows of n % 32 != 0 elements are not repacked (group bytes 0).
inline size_t pairs16x16_group_bytes(int64_t n) { return n % 32 ? 0 : 32 * size_t(n); }
inline void repack_pairs16x16_ref(int64_t n, const void *wv, size_t row_bytes, int64_t n_rows, uint8_t *out) {
    const size_t gb = pairs16x16_group_bytes(n);
    for (int64_t g = 0; g < n_rows / 16; g++) {
        uint32_t *grp = reinterpret_cast<uint32_t *>(out + size_t(g) * gb);
        for (int r = 0; r < 16; r++) {
            const uint8_t *row = static_cast<const uint8_t *>(wv) + size_t(16 * g + r) * row_bytes;
            for (int64_t j = 0; j < n / 2; j++) {
                uint32_t pair; // elements 2j, 2j + 1
                std::memcpy(&pair, row + 4 * j, 4);
                grp[256 * (j / 16) + 16 * (j % 16) + r] = pair;
            }
        }
    }
}

// A path's type that reads the pairs layout: its declaration, group size and repack (the layout's own
// statement, element by element: load time only).
inline void use_pairs16x16(type_traits &t) {
    t.packed_layout = kPackedPairs16x16;
    t.packed_group_bytes = pairs16x16_group_bytes;
    t.repack = repack_pairs16x16_ref;
}

} // namespace
} // namespace gptneox
