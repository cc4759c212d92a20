// std::vector whose storage starts on a 64-byte boundary (a cache line, a zmm register, an AMX tile row).
// For the forward pass's activation buffers, which the matmul kernels write in 64-byte rows (AMX: a tile
// row per token): glibc's malloc gives large blocks 16 bytes past a page start, so every such row would
// straddle two cache lines.
#pragma once

#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <new>
#include <vector>

namespace gptneox {

template <typename T> struct line_aligned_allocator {
    using value_type = T;
    static constexpr size_t kAlign = 64;
    line_aligned_allocator() = default;
    template <typename U> line_aligned_allocator(const line_aligned_allocator<U> &) {}
    T *allocate(size_t n) {
        if (n > (SIZE_MAX - kAlign) / sizeof(T)) throw std::bad_alloc();
        const size_t bytes = (n * sizeof(T) + kAlign - 1) / kAlign * kAlign; // aligned_alloc wants a multiple
        void *p = std::aligned_alloc(kAlign, bytes ? bytes : kAlign);
        if (!p) throw std::bad_alloc();
        return static_cast<T *>(p);
    }
    void deallocate(T *p, size_t) { std::free(p); }
    template <typename U> bool operator==(const line_aligned_allocator<U> &) const { return true; }
    template <typename U> bool operator!=(const line_aligned_allocator<U> &) const { return false; }
};

template <typename T> using aligned_vector = std::vector<T, line_aligned_allocator<T>>;

} // namespace gptneox
