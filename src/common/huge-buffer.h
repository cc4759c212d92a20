// Large buffers on transparent huge pages: 2 MB-aligned allocations advised with MADV_HUGEPAGE (the
// advice may be ignored: harmless). For memory that is filled at once and then streamed through (the
// repacked weights): fewer TLB misses and ~500x fewer page faults. Not for memory filled a little at a
// time in many places (the KV cache): its first touches would zero whole 2 MB pages.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>

namespace gptneox {

struct free_deleter {
    void operator()(void *p) const;
};
using huge_buffer = std::unique_ptr<uint8_t, free_deleter>;

// bytes rounded up to whole 2 MB pages; nullptr if the allocation fails (the caller reports it).
// Not zeroed (the pages come lazily, zeroed by the kernel on first touch).
huge_buffer huge_alloc(size_t bytes);

} // namespace gptneox
