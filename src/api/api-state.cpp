// Exported state (save/restore) and timing functions (gptneox.h, "State" and "Timings").
//
// State blob, version GPTNEOX_STATE_VERSION, host byte order (little-endian on x86-64):
//   u32 magic 'GNXS', u32 version, u32 n_ctx, n_embd, n_layer, n_vocab, type_k, type_v, n_seq_max, n_cells
//   n_cells x { u32 cell index, i32 pos, u64 sequence mask }           the non-empty cells, ascending
//   K rows: per layer, per listed cell, k_row_bytes; then V rows likewise
//   u32 n_batch_last, i32 output_ids[n_batch_last]                      batch index -> output row
//   u32 n_outputs, u8 has_logits, u8 has_embd, u8 has_pooled, u8 0
//   f32 logits[n_outputs][n_vocab] if has_logits; f32 embd[n_outputs][n_embd] if has_embd
//   u8 pooled_ok[n_seq_max], f32 pooled[n_seq_max][n_embd] if has_pooled
// gptneox_state_set_data checks every field against the context and consumes exactly `size` bytes,
// or changes nothing.
#include <algorithm>
#include <cstring>
#include <iterator>
#include <vector>

#include "api/context.h"
#include "common/status.h"

using gptneox::fail;
using gptneox::guard;

namespace {

constexpr uint32_t kMagic = 0x53584E47u; // "GNXS"

class writer {
public:
    writer(uint8_t *dst, size_t cap) : dst_(dst), cap_(cap) {}
    void put(const void *p, size_t n) {
        if (dst_) {
            if (n > cap_ - off_) fail(GPTNEOX_STATUS_INVALID_ARGUMENT, "state buffer too small");
            std::memcpy(dst_ + off_, p, n);
        }
        off_ += n;
    }
    template <typename T> void put(T v) { put(&v, sizeof v); }
    size_t size() const { return off_; }

private:
    uint8_t *dst_; // NULL: only count
    size_t cap_, off_ = 0;
};

class reader {
public:
    reader(const uint8_t *src, size_t size) : src_(src), size_(size) {}
    const uint8_t *take(size_t n, const char *what) {
        if (n > size_ - off_) fail(GPTNEOX_STATUS_FORMAT, "state data truncated (reading %s)", what);
        const uint8_t *p = src_ + off_;
        off_ += n;
        return p;
    }
    template <typename T> T get(const char *what) {
        T v;
        std::memcpy(&v, take(sizeof v, what), sizeof v);
        return v;
    }
    size_t offset() const { return off_; }

private:
    const uint8_t *src_;
    size_t size_, off_ = 0;
};

// Write the state (or only count its bytes when w has no buffer).
void write_state(const gptneox_context &c, writer &w) {
    const auto &hp = c.model->hp;
    const auto &kv = c.cache;
    w.put(kMagic);
    w.put(uint32_t(GPTNEOX_STATE_VERSION));
    w.put(uint32_t(c.params.n_ctx));
    w.put(uint32_t(hp.n_embd));
    w.put(uint32_t(hp.n_layer));
    w.put(uint32_t(hp.n_vocab));
    w.put(uint32_t(kv.type_k()));
    w.put(uint32_t(kv.type_v()));
    w.put(uint32_t(c.params.n_seq_max));
    w.put(uint32_t(kv.n_used()));
    for (uint32_t i = 0; i < kv.size(); i++) {
        if (kv.cell(i).empty()) continue;
        w.put(i);
        w.put(int32_t(kv.cell(i).pos));
        w.put(uint64_t(kv.cell(i).seq));
    }
    // (rows of all heads, whatever the cache's own layout)
    std::vector<uint8_t> row(std::max(kv.k_row_bytes(), kv.v_row_bytes()));
    for (int32_t l = 0; l < hp.n_layer; l++) {
        for (uint32_t i = 0; i < kv.size(); i++) {
            if (kv.cell(i).empty()) continue;
            kv.read_k_row(l, i, row.data());
            w.put(row.data(), kv.k_row_bytes());
        }
    }
    for (int32_t l = 0; l < hp.n_layer; l++) {
        for (uint32_t i = 0; i < kv.size(); i++) {
            if (kv.cell(i).empty()) continue;
            kv.read_v_row(l, i, row.data());
            w.put(row.data(), kv.v_row_bytes());
        }
    }
    w.put(uint32_t(c.n_batch_last));
    w.put(c.output_ids.data(), size_t(c.n_batch_last) * sizeof(int32_t));
    const bool has_logits = c.has_logits && c.n_outputs > 0;
    const bool has_embd = c.params.embeddings && c.n_outputs > 0;
    const bool has_pooled = !c.embd_seq.empty();
    w.put(uint32_t(c.n_outputs));
    w.put(uint8_t(has_logits));
    w.put(uint8_t(has_embd));
    w.put(uint8_t(has_pooled));
    w.put(uint8_t(0));
    if (has_logits) w.put(c.logits.data(), size_t(c.n_outputs) * hp.n_vocab * sizeof(float));
    if (has_embd) w.put(c.embd.data(), size_t(c.n_outputs) * hp.n_embd * sizeof(float));
    if (has_pooled) {
        w.put(c.embd_seq_ok.data(), c.embd_seq_ok.size());
        w.put(c.embd_seq.data(), c.embd_seq.size() * sizeof(float));
    }
}

void expect(uint32_t got, uint32_t want, const char *what) {
    if (got != want) fail(GPTNEOX_STATUS_INVALID_ARGUMENT, "state %s is %u, this context has %u", what, got, want);
}

// Parse the blob; with apply = false only validate (nothing changes), with apply = true load it.
size_t read_state(gptneox_context &c, const uint8_t *src, size_t size, bool apply) {
    const auto &hp = c.model->hp;
    auto &kv = c.cache;
    reader r(src, size);
    if (r.get<uint32_t>("magic") != kMagic) fail(GPTNEOX_STATUS_FORMAT, "not a gptneox state blob (bad magic)");
    expect(r.get<uint32_t>("version"), GPTNEOX_STATE_VERSION, "version");
    expect(r.get<uint32_t>("n_ctx"), c.params.n_ctx, "n_ctx");
    expect(r.get<uint32_t>("n_embd"), uint32_t(hp.n_embd), "n_embd");
    expect(r.get<uint32_t>("n_layer"), uint32_t(hp.n_layer), "n_layer");
    expect(r.get<uint32_t>("n_vocab"), uint32_t(hp.n_vocab), "n_vocab");
    expect(r.get<uint32_t>("type_k"), kv.type_k(), "type_k");
    expect(r.get<uint32_t>("type_v"), kv.type_v(), "type_v");
    const uint32_t n_seq_max = r.get<uint32_t>("n_seq_max");
    if (n_seq_max < 1 || n_seq_max > uint32_t(gptneox::kMaxSeq)) fail(GPTNEOX_STATUS_FORMAT, "state n_seq_max bad");
    const uint32_t n_cells = r.get<uint32_t>("n_cells");
    if (n_cells > kv.size()) fail(GPTNEOX_STATUS_INVALID_ARGUMENT, "state holds %u cells > n_ctx", n_cells);

    const uint8_t *cells = r.take(size_t(n_cells) * 16, "cells");
    const uint64_t allowed = c.params.n_seq_max >= 64 ? ~uint64_t(0) : (uint64_t(1) << c.params.n_seq_max) - 1;
    int64_t prev = -1;
    for (uint32_t j = 0; j < n_cells; j++) {
        uint32_t idx;
        int32_t pos;
        uint64_t seq;
        std::memcpy(&idx, cells + j * 16, 4);
        std::memcpy(&pos, cells + j * 16 + 4, 4);
        std::memcpy(&seq, cells + j * 16 + 8, 8);
        if (int64_t(idx) <= prev || idx >= kv.size() || pos < 0 || seq == 0 || (seq & ~allowed)) {
            fail(GPTNEOX_STATUS_INVALID_ARGUMENT, "state cell %u is invalid for this context (index %u, pos %d)", j,
                 idx, pos);
        }
        prev = idx;
    }
    const uint8_t *k = r.take(size_t(n_cells) * hp.n_layer * kv.k_row_bytes(), "K");
    const uint8_t *v = r.take(size_t(n_cells) * hp.n_layer * kv.v_row_bytes(), "V");

    const uint32_t n_batch_last = r.get<uint32_t>("n_batch_last");
    if (n_batch_last > c.params.n_batch) fail(GPTNEOX_STATUS_INVALID_ARGUMENT, "state batch larger than n_batch");
    const uint8_t *ids = r.take(size_t(n_batch_last) * 4, "output ids");
    const uint32_t n_outputs = r.get<uint32_t>("n_outputs");
    const uint8_t has_logits = r.get<uint8_t>("flags"), has_embd = r.get<uint8_t>("flags");
    const uint8_t has_pooled = r.get<uint8_t>("flags");
    r.get<uint8_t>("flags");
    if (n_outputs > n_batch_last || has_logits > 1 || has_embd > 1 || has_pooled > 1 ||
        (has_embd && !c.params.embeddings) || (has_pooled && (c.embd_seq.empty() || n_seq_max != c.params.n_seq_max))) {
        fail(GPTNEOX_STATUS_INVALID_ARGUMENT, "state outputs do not fit this context");
    }
    for (uint32_t i = 0; i < n_batch_last; i++) {
        int32_t id;
        std::memcpy(&id, ids + i * 4, 4);
        if (id < -1 || id >= int32_t(n_outputs)) fail(GPTNEOX_STATUS_FORMAT, "state output id %d out of range", id);
    }
    const uint8_t *logits = has_logits ? r.take(size_t(n_outputs) * hp.n_vocab * 4, "logits") : nullptr;
    const uint8_t *embd = has_embd ? r.take(size_t(n_outputs) * hp.n_embd * 4, "embeddings") : nullptr;
    const uint8_t *pooled_ok = has_pooled ? r.take(n_seq_max, "pooled flags") : nullptr;
    const uint8_t *pooled = has_pooled ? r.take(size_t(n_seq_max) * hp.n_embd * 4, "pooled") : nullptr;
    if (r.offset() != size) {
        fail(GPTNEOX_STATUS_FORMAT, "state data has %zu bytes after its end", size - r.offset());
    }
    if (!apply) return r.offset();

    // ---- apply (validated above; only allocation can fail, before anything is changed)
    if (has_logits && c.logits.size() < size_t(n_outputs) * hp.n_vocab) c.logits.resize(size_t(n_outputs) * hp.n_vocab);
    if (has_embd && c.embd.size() < size_t(n_outputs) * hp.n_embd) c.embd.resize(size_t(n_outputs) * hp.n_embd);
    kv.clear();
    for (uint32_t j = 0; j < n_cells; j++) {
        uint32_t idx;
        int32_t pos;
        uint64_t seq;
        std::memcpy(&idx, cells + j * 16, 4);
        std::memcpy(&pos, cells + j * 16 + 4, 4);
        std::memcpy(&seq, cells + j * 16 + 8, 8);
        kv.assign(idx, pos, seq);
        for (int32_t l = 0; l < hp.n_layer; l++) {
            kv.write_k_row(l, idx, k + (size_t(l) * n_cells + j) * kv.k_row_bytes());
            kv.write_v_row(l, idx, v + (size_t(l) * n_cells + j) * kv.v_row_bytes());
        }
    }
    c.n_batch_last = int32_t(n_batch_last);
    std::memcpy(c.output_ids.data(), ids, size_t(n_batch_last) * 4);
    c.n_outputs = int32_t(n_outputs);
    c.has_logits = has_logits || n_outputs == 0;
    if (logits) std::memcpy(c.logits.data(), logits, size_t(n_outputs) * hp.n_vocab * 4);
    if (embd) std::memcpy(c.embd.data(), embd, size_t(n_outputs) * hp.n_embd * 4);
    if (has_pooled) {
        std::memcpy(c.embd_seq_ok.data(), pooled_ok, n_seq_max);
        std::memcpy(c.embd_seq.data(), pooled, size_t(n_seq_max) * hp.n_embd * 4);
    }
    return r.offset();
}

} // namespace

extern "C" {

GPTNEOX_API size_t gptneox_state_get_size(gptneox_context *ctx) {
    return guard<size_t>(0, [&] {
        writer w(nullptr, 0);
        write_state(gptneox::get_synced(ctx), w);
        return w.size();
    });
}

GPTNEOX_API size_t gptneox_state_get_data(gptneox_context *ctx, uint8_t *dst, size_t size) {
    return guard<size_t>(0, [&] {
        const gptneox_context &c = gptneox::get_synced(ctx);
        if (!dst) fail(GPTNEOX_STATUS_INVALID_ARGUMENT, "dst is NULL");
        writer count(nullptr, 0);
        write_state(c, count);
        if (count.size() > size) {
            fail(GPTNEOX_STATUS_INVALID_ARGUMENT, "state needs %zu bytes, buffer has %zu", count.size(), size);
        }
        writer w(dst, size);
        write_state(c, w);
        return w.size();
    });
}

GPTNEOX_API size_t gptneox_state_set_data(gptneox_context *ctx, const uint8_t *src, size_t size) {
    return guard<size_t>(0, [&] {
        gptneox_context &c = gptneox::get_synced(ctx);
        if (!src) fail(GPTNEOX_STATUS_INVALID_ARGUMENT, "src is NULL");
        read_state(c, src, size, false);
        return read_state(c, src, size, true);
    });
}

GPTNEOX_API gptneox_perf_data gptneox_perf_context(const gptneox_context *ctx) {
    gptneox_perf_data d;
    std::memset(&d, 0, sizeof d);
    return guard<gptneox_perf_data>(d, [&] {
        const gptneox_context &c = gptneox::get_synced(ctx);
        gptneox_perf_data r;
        std::memset(&r, 0, sizeof r);
        r.t_start_ms = double(c.t_start_us) / 1e3;
        r.t_load_ms = c.model->t_load_ms;
        r.t_p_eval_ms = double(c.t_p_eval_us) / 1e3;
        r.t_eval_ms = double(c.t_eval_us) / 1e3;
        r.n_p_eval = c.n_p_eval;
        r.n_eval = c.n_eval;
        r.n_reused = 0;
        return r;
    });
}

GPTNEOX_API void gptneox_perf_context_reset(gptneox_context *ctx) {
    guard<int>(0, [&] {
        gptneox_context &c = gptneox::get_synced(ctx);
        c.t_start_us = gptneox_time_us();
        c.t_p_eval_us = c.t_eval_us = 0;
        c.n_p_eval = c.n_eval = 0;
        for (auto &per_kind : c.phase_s) std::fill(std::begin(per_kind), std::end(per_kind), 0.0);
        return 0;
    });
}

GPTNEOX_API int32_t gptneox_perf_phases(const gptneox_context *ctx, bool batch, double *ms, int32_t n) {
    return guard<int32_t>(-1, [&] {
        const gptneox_context &c = gptneox::get_synced(ctx);
        if (n < 0 || (n > 0 && !ms)) fail(GPTNEOX_STATUS_INVALID_ARGUMENT, "ms is NULL or n < 0");
        for (int32_t i = 0; i < n && i < GPTNEOX_PHASE_COUNT; i++) ms[i] = c.phase_s[batch ? 1 : 0][i] * 1e3;
        return int32_t(GPTNEOX_PHASE_COUNT);
    });
}

GPTNEOX_API const char *gptneox_perf_phase_name(int32_t phase) {
    static const char *const names[GPTNEOX_PHASE_COUNT] = {"embed",    "norm",     "qkv",      "rope_kv",  "attention",
                                                           "attn_out", "ffn_up",   "ffn_down", "residual", "output"};
    return phase >= 0 && phase < GPTNEOX_PHASE_COUNT ? names[phase] : nullptr;
}

} // extern "C"
