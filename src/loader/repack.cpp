// use_extra_bufts: weights the best kernel path of this CPU reads faster in its own layout (type_traits::
// repack) are copied into it once, at load, into memory the model owns; the file's pages of those
// tensors are then released (madvise DONTNEED on the read-only private mapping: they are not lost, a
// context on another kernel path that reads weight.data faults them in from the file again). So the
// packed copy replaces the mapped one in RSS instead of doubling it. Only for mapped files (a copy read
// into memory cannot give its pages back) and matrices of whole 16-row groups.
#include <sys/mman.h>
#include <unistd.h>

#include <atomic>
#include <cstdint>
#include <cstdlib>
#include <exception>
#include <thread>
#include <vector>

#include "common/huge-buffer.h"
#include "common/status.h"
#include "kernels/kernels.h"
#include "loader/model.h"

namespace gptneox {

namespace {

// Give the whole pages of [p, p + n) back to the file.
void release_pages(const void *p, size_t n) {
    const uintptr_t page = uintptr_t(sysconf(_SC_PAGESIZE));
    const uintptr_t b = (reinterpret_cast<uintptr_t>(p) + page - 1) & ~(page - 1);
    const uintptr_t e = (reinterpret_cast<uintptr_t>(p) + n) & ~(page - 1);
    if (e > b) madvise(reinterpret_cast<void *>(b), e - b, MADV_DONTNEED); // advice: a failure is harmless
}

// A matrix the kernel table repacks, and where its copy goes in the arena.
struct job {
    weight *w;
    const type_traits *tr;
    size_t group_bytes, offset;
};

// tr->repack over the 16-row groups of w, split in chunks among n_threads threads (the caller included;
// groups are independent, so the result is the same whatever the split).
void repack_parallel(const job &j, uint8_t *dst, unsigned n_threads) {
    const weight &w = *j.w;
    const int64_t n_groups = w.ne1 / 16;
    const int64_t per = n_groups / (2 * int64_t(n_threads)); // ~2 chunks per thread, at most 16 groups each
    const int64_t chunk = per < 1 ? 1 : per > 16 ? 16 : per;
    std::atomic<int64_t> next{0};
    auto work = [&] {
        for (int64_t g; (g = next.fetch_add(chunk)) < n_groups;) {
            const int64_t ng = n_groups - g < chunk ? n_groups - g : chunk;
            j.tr->repack(w.ne0, static_cast<const uint8_t *>(w.data) + size_t(g) * 16 * w.row_bytes, w.row_bytes,
                         16 * ng, dst + size_t(g) * j.group_bytes);
        }
    };
    std::vector<std::thread> helpers;
    try {
        helpers.reserve(n_threads); // no reallocation (which could throw) once threads are running
        for (unsigned t = 1; t < n_threads; t++) helpers.emplace_back(work);
    } catch (const std::exception &) { // no memory or no thread: the others (at least the caller) do the rest
    }
    work();
    for (std::thread &h : helpers) h.join();
}

} // namespace

void repack_weights(model &m, const char *path) {
    if (!m.file || !m.file->mapped()) return;
    const kernels *k = get_kernels(GPTNEOX_KERNELS_AUTO);
    if (!k) return;
    std::vector<job> jobs;
    size_t total = 0;
    auto consider = [&](weight &w) {
        const type_traits *tr = k->get(w.type);
        if (!tr || !tr->repack || !w.data || w.ne1 % 16 != 0 || w.ne0 % tr->blck != 0) return;
        const size_t gb = tr->packed_group_bytes(w.ne0);
        if (gb == 0) return; // a row length the layout does not take
        jobs.push_back({&w, tr, gb, total});
        total += (gb * size_t(w.ne1 / 16) + 63) / 64 * 64;
    };
    for (layer_weights &l : m.layers) {
        for (weight *w : {&l.qkv_w, &l.out_w, &l.up_w, &l.down_w}) consider(*w);
    }
    consider(m.output);
    if (jobs.empty()) return;
    // One arena on 2 MB boundaries, advised for transparent huge pages: ~500x fewer page faults while it
    // is filled, and fewer TLB misses when decode streams through it (the advice may be ignored: harmless).
    m.packed_mem = huge_alloc(total);
    if (!m.packed_mem) fail(GPTNEOX_STATUS_NO_MEMORY, "no memory for the repacked weights (%zu bytes)", total);
    const unsigned hc = std::thread::hardware_concurrency();
    const unsigned n_threads = hc == 0 ? 1 : hc > 16 ? 16 : hc;
    uint8_t *arena = m.packed_mem.get();
    for (const job &j : jobs) { // one matrix at a time, its file pages released before the next
        weight &w = *j.w;
        repack_parallel(j, arena + j.offset, n_threads);
        w.packed = arena + j.offset;
        w.packed_layout = j.tr->packed_layout;
        w.packed_group_bytes = j.group_bytes;
        release_pages(w.data, w.row_bytes * size_t(w.ne1));
    }
    log(GPTNEOX_LOG_LEVEL_INFO, "%s: %d matrices (%.1f MB) repacked for the %s kernels (use_extra_bufts)\n", path,
        int(jobs.size()), double(total) / 1e6, gptneox_kernel_path_name(k->path));
}

} // namespace gptneox
