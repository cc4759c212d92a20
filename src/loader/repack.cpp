// use_extra_bufts: weights the best kernel path of this CPU reads faster in its own layout (type_traits::
// repack) are copied into it once, at load, into memory the model owns; the file's pages of those
// tensors are then released (madvise DONTNEED on the read-only private mapping: they are not lost, a
// context on another kernel path that reads weight.data faults them in from the file again). So the
// packed copy replaces the mapped one in RSS instead of doubling it. Only for mapped files (a copy read
// into memory cannot give its pages back) and matrices of whole 16-row groups.
#include <sys/mman.h>
#include <unistd.h>

#include <cstdint>
#include <cstdlib>
#include <new>

#include "common/status.h"
#include "kernels/kernels.h"
#include "loader/model.h"

namespace gptneox {

void free_deleter::operator()(void *p) const { std::free(p); }

namespace {

// Give the whole pages of [p, p + n) back to the file.
void release_pages(const void *p, size_t n) {
    const uintptr_t page = uintptr_t(sysconf(_SC_PAGESIZE));
    const uintptr_t b = (reinterpret_cast<uintptr_t>(p) + page - 1) & ~(page - 1);
    const uintptr_t e = (reinterpret_cast<uintptr_t>(p) + n) & ~(page - 1);
    if (e > b) madvise(reinterpret_cast<void *>(b), e - b, MADV_DONTNEED); // advice: a failure is harmless
}

// Returns the bytes repacked (0: left in place).
size_t repack_one(model &m, const kernels &k, weight &w) {
    const type_traits *tr = k.get(w.type);
    if (!tr || !tr->repack || !w.data || w.ne1 % 16 != 0 || w.ne0 % tr->blck != 0) return 0;
    const size_t gb = tr->packed_group_bytes(w.ne0);
    const size_t bytes = gb * size_t(w.ne1 / 16);
    void *mem = std::aligned_alloc(64, (bytes + 63) / 64 * 64);
    if (!mem) fail(GPTNEOX_STATUS_NO_MEMORY, "tensor '%s': no memory for its repacked copy (%zu bytes)", w.name, bytes);
    m.packed_mem.emplace_back(static_cast<uint8_t *>(mem));
    tr->repack(w.ne0, w.data, w.row_bytes, w.ne1, static_cast<uint8_t *>(mem));
    w.packed = static_cast<const uint8_t *>(mem);
    w.packed_layout = tr->packed_layout;
    w.packed_group_bytes = gb;
    release_pages(w.data, w.row_bytes * size_t(w.ne1));
    return bytes;
}

} // namespace

void repack_weights(model &m, const char *path) {
    if (!m.file || !m.file->mapped()) return;
    const kernels *k = get_kernels(GPTNEOX_KERNELS_AUTO);
    if (!k) return;
    int n = 0;
    size_t bytes = 0;
    auto one = [&](weight &w) {
        const size_t b = repack_one(m, *k, w);
        n += b ? 1 : 0;
        bytes += b;
    };
    for (layer_weights &l : m.layers) {
        for (weight *w : {&l.qkv_w, &l.out_w, &l.up_w, &l.down_w}) one(*w);
    }
    one(m.output);
    if (n) {
        log(GPTNEOX_LOG_LEVEL_INFO, "%s: %d matrices (%.1f MB) repacked for the %s kernels (use_extra_bufts)\n", path, n,
            double(bytes) / 1e6, gptneox_kernel_path_name(k->path));
    }
}

} // namespace gptneox
