// Exported KV cache functions (gptneox.h, "KV cache (memory)"). The cell bookkeeping is in
// src/kv-cache; seq_add also re-rotates the K rows of the moved cells (arch/gptneox.h rotate_k).
#include "api/context.h"
#include "common/status.h"

using gptneox::fail;
using gptneox::guard;

namespace {

gptneox_context &get_mem(const gptneox_memory *mem) {
    if (!mem || !mem->ctx) fail(GPTNEOX_STATUS_INVALID_ARGUMENT, "memory is NULL");
    gptneox::synchronize(*mem->ctx); // queued decode calls first: they hold cells
    return *mem->ctx;
}

// seq_id must name a sequence of this context.
void check_seq(const gptneox_context &c, gptneox_seq_id s) {
    if (s < 0 || uint32_t(s) >= c.params.n_seq_max) {
        fail(GPTNEOX_STATUS_INVALID_ARGUMENT, "seq_id %d out of range [0, %u)", s, c.params.n_seq_max);
    }
}

} // namespace

extern "C" {

GPTNEOX_API gptneox_memory *gptneox_get_memory(const gptneox_context *ctx) {
    return guard<gptneox_memory *>(nullptr, [&] { return &gptneox::get_ctx(ctx).memory; });
}

GPTNEOX_API void gptneox_memory_clear(gptneox_memory *mem, bool data) {
    guard<int>(0, [&] {
        gptneox_context &c = get_mem(mem);
        c.cache.clear();
        if (data) c.cache.zero_data();
        return 0;
    });
}

GPTNEOX_API bool gptneox_memory_seq_rm(gptneox_memory *mem, gptneox_seq_id seq_id, gptneox_pos p0, gptneox_pos p1) {
    return guard<bool>(false, [&] {
        gptneox_context &c = get_mem(mem);
        if (seq_id >= 0) check_seq(c, seq_id);
        c.cache.seq_rm(seq_id < 0 ? -1 : seq_id, p0 < 0 ? 0 : p0, p1 < 0 ? -1 : p1);
        return true;
    });
}

GPTNEOX_API void gptneox_memory_seq_cp(gptneox_memory *mem, gptneox_seq_id seq_id_src, gptneox_seq_id seq_id_dst,
                                       gptneox_pos p0, gptneox_pos p1) {
    guard<int>(0, [&] {
        gptneox_context &c = get_mem(mem);
        check_seq(c, seq_id_src);
        check_seq(c, seq_id_dst);
        c.cache.seq_cp(seq_id_src, seq_id_dst, p0 < 0 ? 0 : p0, p1 < 0 ? -1 : p1);
        return 0;
    });
}

GPTNEOX_API void gptneox_memory_seq_keep(gptneox_memory *mem, gptneox_seq_id seq_id) {
    guard<int>(0, [&] {
        gptneox_context &c = get_mem(mem);
        check_seq(c, seq_id);
        c.cache.seq_keep(seq_id);
        return 0;
    });
}

GPTNEOX_API void gptneox_memory_seq_add(gptneox_memory *mem, gptneox_seq_id seq_id, gptneox_pos p0, gptneox_pos p1,
                                        gptneox_pos delta) {
    guard<int>(0, [&] {
        gptneox_context &c = get_mem(mem);
        check_seq(c, seq_id);
        if (delta == 0) return 0;
        std::vector<uint32_t> moved; // not a per-token path
        c.cache.seq_add(seq_id, p0 < 0 ? 0 : p0, p1 < 0 ? -1 : p1, delta, moved);
        gptneox::rotate_k(*c.kern, c.cache, c.model->hp, c.rs.inv_freq.data(), c.params.rope_freq_scale,
                          moved.data(), moved.size(), delta);
        return 0;
    });
}

GPTNEOX_API gptneox_pos gptneox_memory_seq_pos_min(gptneox_memory *mem, gptneox_seq_id seq_id) {
    return guard<gptneox_pos>(-1, [&] {
        gptneox_context &c = get_mem(mem);
        check_seq(c, seq_id);
        return c.cache.seq_pos_min(seq_id);
    });
}

GPTNEOX_API gptneox_pos gptneox_memory_seq_pos_max(gptneox_memory *mem, gptneox_seq_id seq_id) {
    return guard<gptneox_pos>(-1, [&] {
        gptneox_context &c = get_mem(mem);
        check_seq(c, seq_id);
        return c.cache.seq_pos_max(seq_id);
    });
}

GPTNEOX_API bool gptneox_memory_can_shift(gptneox_memory *mem) {
    return guard<bool>(false, [&] {
        get_mem(mem);
        return true;
    });
}

} // extern "C"
