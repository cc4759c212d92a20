// What the AMX kernels share (included only by files compiled with the AMX flags: gemm-qbf16-amx.cpp,
// gemm-bf16-amx.cpp): LDTILECFG's 64-byte operand (palette 1) and its load.
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

} // namespace
} // namespace gptneox
