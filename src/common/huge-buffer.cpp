#include "common/huge-buffer.h"

#include <sys/mman.h>

#include <cstdlib>

namespace gptneox {

void free_deleter::operator()(void *p) const { std::free(p); }

huge_buffer huge_alloc(size_t bytes) {
    constexpr size_t kHugePage = size_t(2) << 20;
    if (bytes == 0 || bytes > SIZE_MAX - kHugePage) return nullptr;
    const size_t n = (bytes + kHugePage - 1) / kHugePage * kHugePage;
    void *mem = std::aligned_alloc(kHugePage, n);
    if (mem) madvise(mem, n, MADV_HUGEPAGE);
    return huge_buffer(static_cast<uint8_t *>(mem));
}

} // namespace gptneox
