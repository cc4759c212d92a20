// What the AMX kernels share (included only by files compiled with the AMX flags: gemm-qbf16-amx.cpp,
// gemm-bf16-amx.cpp, attention-amx.cpp): LDTILECFG's 64-byte operand (palette 1) and its load; tile loads and
// bf16 products whose tile numbers are template arguments.
#pragma once

#include <immintrin.h>

#include <cstddef>
#include <cstdint>

namespace gptneox {
namespace { // (internal linkage: see packed-layout.h)

struct alignas(64) tile_config {
    uint8_t palette = 1, start_row = 0;
    uint8_t reserved[14] = {};
    uint16_t colsb[16] = {}; // bytes per row of tile i
    uint8_t rows[16] = {};
};
static_assert(offsetof(tile_config, colsb) == 16 && offsetof(tile_config, rows) == 48 && sizeof(tile_config) == 64,
              "LDTILECFG's operand layout");

// (ldtilecfg's asm declares only part of its operand as read: the barrier makes every byte stored first)
inline void load_tile_config(const tile_config &c) {
    __asm__ volatile("" ::: "memory");
    _tile_loadconfig(&c);
}

// TILELOADD and TDPBF16PS with their tile numbers as template arguments (the intrinsics are macros that paste
// literal numbers into the instruction text, so a loop over tiles cannot name them). Like the intrinsics,
// tile_load's asm declares no memory input: a caller that has just stored its operand puts a compiler
// barrier (asm volatile("" ::: "memory")) between.
template <int T> inline void tile_load(const void *p, size_t stride) {
    __asm__ volatile("tileloadd (%0,%1,1), %%tmm%c2" ::"r"(p), "r"(stride), "i"(T));
}
template <int C, int A, int B> inline void tile_dpbf16ps() {
    __asm__ volatile("tdpbf16ps %%tmm%c2, %%tmm%c1, %%tmm%c0" ::"i"(C), "i"(A), "i"(B));
}

} // namespace
} // namespace gptneox
