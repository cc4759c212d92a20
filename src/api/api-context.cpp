// Exported context functions (gptneox.h, "Context" and "Batches and decoding"): parameters, creation,
// getters, batches, gptneox_decode and its outputs (logits, embeddings).
#include <algorithm>
#include <climits>
#include <cmath>
#include <cstring>
#include <new>
#include <thread>

#include "api/context.h"
#include "common/status.h"
#include "kernels/matmul.h"

using gptneox::fail;
using gptneox::guard;

namespace gptneox {

gptneox_context &get_ctx(const gptneox_context *ctx) {
    if (!ctx) fail(GPTNEOX_STATUS_INVALID_ARGUMENT, "context is NULL");
    return *const_cast<gptneox_context *>(ctx);
}

} // namespace gptneox

namespace {

constexpr uint32_t kMaxCtx = 1u << 24;   // positions; a sanity bound on allocation sizes
constexpr int32_t kMaxThreads = 512;

bool is_cache_type(int32_t t) { return t == GPTNEOX_TYPE_F16 || t == GPTNEOX_TYPE_F32; }

// Check what the forward pass relies on; the loader checks shapes, this checks the compute types.
void check_model(const gptneox::model &m, const gptneox::kernels &k) {
    const gptneox::hparams &hp = m.hp;
    if (m.layers.empty() || !m.tok_embd.data) {
        fail(GPTNEOX_STATUS_INVALID_ARGUMENT, "the model has no weights (loaded with vocab_only?)");
    }
    if (hp.n_embd <= 0 || hp.n_head <= 0 || hp.head_dim * hp.n_head != hp.n_embd || hp.n_rot < 0 ||
        hp.n_rot > hp.head_dim || hp.n_rot % 2 != 0 || hp.n_ff <= 0 || hp.n_vocab <= 0 ||
        size_t(hp.n_layer) != m.layers.size()) {
        fail(GPTNEOX_STATUS_FORMAT, "inconsistent hyper-parameters (n_embd %d, n_head %d, n_rot %d)", hp.n_embd,
             hp.n_head, hp.n_rot);
    }
    auto matrix = [&](const gptneox::weight &w) {
        if (!k.get(w.type)) {
            fail(GPTNEOX_STATUS_UNSUPPORTED, "tensor %s: type %u is not supported by the %s kernels", w.name,
                 w.type, gptneox_kernel_path_name(k.path));
        }
    };
    auto vec = [&](const gptneox::weight &w, int64_t n) {
        if (w.data && (w.type != GPTNEOX_TYPE_F32 || w.ne0 != n)) {
            fail(GPTNEOX_STATUS_UNSUPPORTED, "tensor %s: expected %lld f32 values", w.name, (long long)n);
        }
    };
    const int64_t n = hp.n_embd;
    matrix(m.tok_embd);
    matrix(m.output);
    vec(m.out_norm_w, n);
    vec(m.out_norm_b, n);
    for (const auto &l : m.layers) {
        matrix(l.qkv_w);
        matrix(l.out_w);
        matrix(l.up_w);
        matrix(l.down_w);
        vec(l.attn_norm_w, n);
        vec(l.attn_norm_b, n);
        vec(l.qkv_b, 3 * n);
        vec(l.out_b, n);
        vec(l.ffn_norm_w, n);
        vec(l.ffn_norm_b, n);
        vec(l.up_b, hp.n_ff);
        vec(l.down_b, n);
    }
}

// Make room for n_out output rows (grows only past the largest count seen so far).
void reserve_outputs(gptneox_context &c, int32_t n_out, bool logits) {
    const auto &hp = c.model->hp;
    if (logits && c.logits.size() < size_t(n_out) * size_t(hp.n_vocab)) c.logits.resize(size_t(n_out) * hp.n_vocab);
    if (c.params.embeddings && c.embd.size() < size_t(n_out) * size_t(hp.n_embd)) {
        c.embd.resize(size_t(n_out) * hp.n_embd);
    }
}

// Validate a batch and fill c.pos / c.seq_first / c.seq_mask. Throws; changes no visible state.
void check_batch(gptneox_context &c, const gptneox_batch &b) {
    const auto &hp = c.model->hp;
    const int32_t n_seq_max = int32_t(c.params.n_seq_max);
    if (b.n_tokens < 1 || uint32_t(b.n_tokens) > c.params.n_batch) {
        fail(GPTNEOX_STATUS_INVALID_ARGUMENT, "batch has %d tokens; must be 1..n_batch (%u)", b.n_tokens,
             c.params.n_batch);
    }
    if (b.embd) fail(GPTNEOX_STATUS_INVALID_ARGUMENT, "batches of embeddings (batch.embd) are not supported");
    if (!b.token) fail(GPTNEOX_STATUS_INVALID_ARGUMENT, "batch.token is NULL");
    if (b.seq_id && !b.n_seq_id) fail(GPTNEOX_STATUS_INVALID_ARGUMENT, "batch.seq_id set but batch.n_seq_id is NULL");
    if (!b.pos) {
        for (int32_t s = 0; s < n_seq_max; s++) c.seq_next[size_t(s)] = c.cache.seq_pos_max(s) + 1;
    }
    for (int32_t i = 0; i < b.n_tokens; i++) {
        if (b.token[i] < 0 || b.token[i] >= hp.n_vocab) {
            fail(GPTNEOX_STATUS_INVALID_ARGUMENT, "batch token %d: id %d out of range [0, %d)", i, b.token[i],
                 hp.n_vocab);
        }
        uint64_t mask = 0;
        int32_t first = 0;
        if (b.seq_id) {
            const int32_t ns = b.n_seq_id[i];
            if (ns < 1 || ns > n_seq_max || !b.seq_id[i]) {
                fail(GPTNEOX_STATUS_INVALID_ARGUMENT, "batch token %d: n_seq_id %d must be 1..n_seq_max (%d)", i, ns,
                     n_seq_max);
            }
            for (int32_t j = 0; j < ns; j++) {
                const int32_t s = b.seq_id[i][j];
                if (s < 0 || s >= n_seq_max) {
                    fail(GPTNEOX_STATUS_INVALID_ARGUMENT, "batch token %d: seq_id %d out of range [0, %d)", i, s,
                         n_seq_max);
                }
                mask |= uint64_t(1) << s;
            }
            first = b.seq_id[i][0];
        } else {
            mask = 1; // sequence 0
        }
        int32_t p;
        if (b.pos) {
            p = b.pos[i];
            if (p < 0) fail(GPTNEOX_STATUS_INVALID_ARGUMENT, "batch token %d: position %d is negative", i, p);
        } else {
            p = c.seq_next[size_t(first)]++;
        }
        c.pos[size_t(i)] = p;
        c.seq_first[size_t(i)] = first;
        c.seq_mask[size_t(i)] = mask;
    }
}

// Pool the per-token hidden states (all tokens are outputs, rows in batch order) per sequence.
void pool_embeddings(gptneox_context &c, int32_t n_tokens) {
    const size_t n = size_t(c.model->hp.n_embd);
    std::fill(c.embd_seq.begin(), c.embd_seq.end(), 0.0f);
    std::fill(c.embd_seq_ok.begin(), c.embd_seq_ok.end(), uint8_t(0));
    std::fill(c.seq_count.begin(), c.seq_count.end(), 0);
    for (int32_t i = 0; i < n_tokens; i++) {
        const float *row = c.embd.data() + size_t(c.output_ids[size_t(i)]) * n;
        for (uint32_t s = 0; s < c.params.n_seq_max; s++) {
            if (!((c.seq_mask[size_t(i)] >> s) & 1u)) continue;
            float *dst = c.embd_seq.data() + size_t(s) * n;
            if (c.params.pooling_type == GPTNEOX_POOLING_TYPE_LAST) {
                std::memcpy(dst, row, n * sizeof(float)); // the last token of the batch wins
            } else {
                for (size_t j = 0; j < n; j++) dst[j] += row[j];
            }
            c.seq_count[s]++;
            c.embd_seq_ok[s] = 1;
        }
    }
    if (c.params.pooling_type == GPTNEOX_POOLING_TYPE_MEAN) {
        for (uint32_t s = 0; s < c.params.n_seq_max; s++) {
            if (!c.seq_count[s]) continue;
            const float inv = 1.0f / float(c.seq_count[s]);
            float *dst = c.embd_seq.data() + size_t(s) * n;
            for (size_t j = 0; j < n; j++) dst[j] *= inv;
        }
    }
}

// Pooled runs: the forward pass gave the final-norm hidden state of every token of the ubatch [b0, b0+nt)
// (output row = batch index); compute logits = Wout h for each run of consecutive tokens that want them,
// straight into their rows, and zero the rows of the others.
template <typename WantsLogits>
void pooled_logits(gptneox_context &c, int32_t n_threads, int32_t b0, int32_t nt, const WantsLogits &wants_logits) {
    const auto &hp = c.model->hp;
    const size_t nv = size_t(hp.n_vocab), n = size_t(hp.n_embd);
    int32_t i = b0;
    while (i < b0 + nt) {
        const int32_t row = c.output_ids[size_t(i)];
        if (!wants_logits(i)) {
            std::fill_n(c.logits.data() + size_t(row) * nv, nv, 0.0f);
            i++;
            continue;
        }
        int32_t j = i + 1;
        while (j < b0 + nt && wants_logits(j)) j++;
        gptneox::matmul(*c.kern, *c.pool, n_threads, c.model->output, nullptr, c.embd.data() + size_t(row) * n, j - i,
                        int64_t(n), c.logits.data() + size_t(row) * nv, int64_t(nv), c.rs.mm_scratch);
        i = j;
    }
}

int32_t decode(gptneox_context &c, const gptneox_batch &b) {
    const int64_t t0 = gptneox_time_us();
    check_batch(c, b);
    const int32_t T = b.n_tokens;
    if (!c.cache.find_slots(uint32_t(T), c.cells.data())) return 1; // no room: nothing changed

    // Which tokens produce an output. Pooled embeddings need the hidden state of every token, so then every
    // token is an output row, but logits are computed only for the tokens asking for them (wants_logits);
    // the logits rows of the others hold zeros.
    const bool pooled = c.params.embeddings && c.params.pooling_type != GPTNEOX_POOLING_TYPE_NONE;
    auto wants_logits = [&](int32_t i) { return b.logits ? b.logits[i] != 0 : (c.params.embeddings || i == T - 1); };
    int32_t n_out = 0, n_logits = 0;
    for (int32_t i = 0; i < T; i++) {
        const bool lg = wants_logits(i);
        n_logits += lg ? 1 : 0;
        c.output_ids[size_t(i)] = pooled || lg ? n_out++ : -1;
    }
    reserve_outputs(c, n_out, true);
    c.n_outputs = 0;
    c.n_batch_last = T;
    c.has_logits = !pooled || n_logits > 0;

    const auto &hp = c.model->hp;
    gptneox::run_config cfg;
    cfg.n_threads = T == 1 ? c.params.n_threads : c.params.n_threads_batch;
    cfg.freq_scale = c.params.rope_freq_scale;
    cfg.abort_cb = c.params.abort_callback;
    cfg.abort_data = c.params.abort_callback_data;

    const int32_t U = int32_t(c.params.n_ubatch);
    int32_t out_base = 0;
    for (int32_t b0 = 0; b0 < T; b0 += U) {
        const int32_t nt = std::min(U, T - b0);
        // the cells of this ubatch become visible now (not earlier: later ubatches hold no data yet)
        for (int32_t i = b0; i < b0 + nt; i++) {
            c.cache.assign(uint32_t(c.cells[size_t(i)]), c.pos[size_t(i)], c.seq_mask[size_t(i)]);
        }
        int32_t n_ub_out = 0;
        for (int32_t i = b0; i < b0 + nt; i++) {
            if (c.output_ids[size_t(i)] >= 0) c.out_rows[size_t(n_ub_out++)] = i - b0;
        }
        gptneox::ubatch ub;
        ub.n_tokens = nt;
        ub.token = b.token + b0;
        ub.pos = c.pos.data() + b0;
        ub.seq = c.seq_first.data() + b0;
        ub.cell = c.cells.data() + b0;
        ub.n_outputs = n_ub_out;
        ub.out_rows = c.out_rows.data();
        ub.logits = pooled ? nullptr : c.logits.data() + size_t(out_base) * hp.n_vocab;
        ub.hidden = c.params.embeddings ? c.embd.data() + size_t(out_base) * hp.n_embd : nullptr;
        bool ok = false;
        try {
            ok = gptneox::forward(*c.model, *c.kern, *c.pool, c.cache, c.rs, cfg, ub);
            if (ok && pooled) pooled_logits(c, cfg.n_threads, b0, nt, wants_logits);
        } catch (...) {
            for (int32_t i = 0; i < b0 + nt; i++) c.cache.release(uint32_t(c.cells[size_t(i)]));
            c.n_batch_last = 0;
            throw;
        }
        if (!ok) {
            // forget this decode's cells: the cache is as before the call
            for (int32_t i = 0; i < b0 + nt; i++) c.cache.release(uint32_t(c.cells[size_t(i)]));
            c.n_batch_last = 0;
            fail(GPTNEOX_STATUS_ABORTED, "decode aborted by the abort callback");
        }
        out_base += n_ub_out;
    }
    c.n_outputs = n_out;
    if (pooled) pool_embeddings(c, T);

    if (!c.params.no_perf) {
        const int64_t dt = gptneox_time_us() - t0;
        if (T == 1) {
            c.t_eval_us += dt;
            c.n_eval++;
        } else {
            c.t_p_eval_us += dt;
            c.n_p_eval += T;
        }
    }
    return 0;
}

// Output row for index i (i >= 0: batch index of a token that has an output; i < 0: from the end).
int32_t output_row(const gptneox_context &c, int32_t i) {
    if (i < 0) {
        const int32_t j = c.n_outputs + i;
        if (j < 0) fail(GPTNEOX_STATUS_INVALID_ARGUMENT, "output index %d out of range (%d outputs)", i, c.n_outputs);
        return j;
    }
    if (i >= c.n_batch_last || c.output_ids[size_t(i)] < 0) {
        fail(GPTNEOX_STATUS_INVALID_ARGUMENT, "batch token %d has no output in the last decode", i);
    }
    return c.output_ids[size_t(i)];
}

} // namespace

extern "C" {

GPTNEOX_API gptneox_ctx_params gptneox_ctx_default_params(void) {
    gptneox_ctx_params p;
    std::memset(&p, 0, sizeof p);
    p.n_ctx = 512;
    p.n_batch = 2048;
    p.n_ubatch = 512;
    p.n_seq_max = 1;
    const unsigned hc = std::thread::hardware_concurrency();
    p.n_threads = int32_t(std::max(1u, std::min(4u, hc ? hc : 1u)));
    p.n_threads_batch = p.n_threads;
    p.type_k = GPTNEOX_TYPE_F16;
    p.type_v = GPTNEOX_TYPE_F16;
    p.pooling_type = GPTNEOX_POOLING_TYPE_UNSPECIFIED;
    p.kernel_path = GPTNEOX_KERNELS_AUTO;
    p.rope_freq_base = 0.0f;
    p.rope_freq_scale = 0.0f;
    p.abort_callback = nullptr;
    p.abort_callback_data = nullptr;
    p.embeddings = false;
    p.no_perf = false;
    return p;
}

GPTNEOX_API gptneox_context *gptneox_init_from_model(gptneox_model *model, gptneox_ctx_params params) {
    return guard<gptneox_context *>(nullptr, [&]() -> gptneox_context * {
        if (!model || !model->m) fail(GPTNEOX_STATUS_INVALID_ARGUMENT, "model is NULL");
        const gptneox::model &m = *model->m;
        const gptneox::hparams &hp = m.hp;
        gptneox_ctx_params p = params;

        if (p.n_ctx == 0) {
            if (hp.n_ctx_train <= 0) fail(GPTNEOX_STATUS_INVALID_ARGUMENT, "n_ctx 0 but the model has no n_ctx_train");
            p.n_ctx = uint32_t(hp.n_ctx_train);
        }
        if (p.n_ctx > kMaxCtx) fail(GPTNEOX_STATUS_INVALID_ARGUMENT, "n_ctx %u is too large (max %u)", p.n_ctx, kMaxCtx);
        if (p.n_batch < 1) fail(GPTNEOX_STATUS_INVALID_ARGUMENT, "n_batch must be >= 1");
        if (p.n_ubatch < 1) fail(GPTNEOX_STATUS_INVALID_ARGUMENT, "n_ubatch must be >= 1");
        p.n_batch = std::min(p.n_batch, p.n_ctx); // a causal decode never fits more than n_ctx tokens
        p.n_ubatch = std::min(p.n_ubatch, p.n_batch);
        if (p.n_seq_max < 1 || p.n_seq_max > uint32_t(gptneox::kMaxSeq)) {
            fail(GPTNEOX_STATUS_INVALID_ARGUMENT, "n_seq_max %u must be 1..%d", p.n_seq_max, gptneox::kMaxSeq);
        }
        if (p.n_threads < 1 || p.n_threads_batch < 1 || p.n_threads > kMaxThreads || p.n_threads_batch > kMaxThreads) {
            fail(GPTNEOX_STATUS_INVALID_ARGUMENT, "n_threads %d / n_threads_batch %d must be 1..%d", p.n_threads,
                 p.n_threads_batch, kMaxThreads);
        }
        if (!is_cache_type(p.type_k) || !is_cache_type(p.type_v)) {
            fail(GPTNEOX_STATUS_INVALID_ARGUMENT, "type_k %d / type_v %d must be F16 (1) or F32 (0)", p.type_k,
                 p.type_v);
        }
        if (p.pooling_type == GPTNEOX_POOLING_TYPE_UNSPECIFIED) p.pooling_type = GPTNEOX_POOLING_TYPE_NONE;
        if (p.pooling_type != GPTNEOX_POOLING_TYPE_NONE && p.pooling_type != GPTNEOX_POOLING_TYPE_MEAN &&
            p.pooling_type != GPTNEOX_POOLING_TYPE_LAST) {
            fail(GPTNEOX_STATUS_INVALID_ARGUMENT, "pooling_type %d is not supported (NONE, MEAN, LAST)", p.pooling_type);
        }
        if (p.kernel_path < GPTNEOX_KERNELS_AUTO || p.kernel_path > GPTNEOX_KERNELS_AVX512) {
            fail(GPTNEOX_STATUS_INVALID_ARGUMENT, "kernel_path %d is not a gptneox_kernel_path", p.kernel_path);
        }
        if (!(p.rope_freq_base >= 0.0f) || !std::isfinite(p.rope_freq_base) || !(p.rope_freq_scale >= 0.0f) ||
            !std::isfinite(p.rope_freq_scale)) {
            fail(GPTNEOX_STATUS_INVALID_ARGUMENT, "rope_freq_base / rope_freq_scale must be finite and >= 0");
        }
        if (p.rope_freq_base == 0.0f) p.rope_freq_base = hp.rope_freq_base;
        if (p.rope_freq_scale == 0.0f) p.rope_freq_scale = hp.rope_freq_scale > 0 ? hp.rope_freq_scale : 1.0f;

        const gptneox::kernels *k = gptneox::get_kernels(static_cast<enum gptneox_kernel_path>(p.kernel_path));
        if (!k) {
            fail(GPTNEOX_STATUS_UNSUPPORTED, "kernel path %s is not available on this CPU / build",
                 gptneox_kernel_path_name(static_cast<enum gptneox_kernel_path>(p.kernel_path)));
        }
        p.kernel_path = k->path;
        check_model(m, *k);

        auto c = std::make_unique<gptneox_context>();
        c->model_handle = model;
        c->model = &m;
        c->params = p;
        c->kern = k;
        const int32_t n_threads = std::max(p.n_threads, p.n_threads_batch);
        c->pool = std::make_unique<gptneox::thread_pool>(n_threads);
        c->cache.init(p.n_ctx, hp.n_layer, hp.n_embd, uint32_t(p.type_k), uint32_t(p.type_v));
        c->rs.init(hp, int32_t(p.n_ubatch), p.n_ctx, n_threads, p.rope_freq_base);
        c->cells.assign(p.n_batch, 0);
        c->seq_first.assign(p.n_batch, 0);
        c->seq_mask.assign(p.n_batch, 0);
        c->pos.assign(p.n_batch, 0);
        c->seq_next.assign(p.n_seq_max, 0);
        c->out_rows.assign(p.n_ubatch, 0);
        c->output_ids.assign(p.n_batch, -1);
        reserve_outputs(*c, int32_t(p.n_seq_max), true);
        if (p.embeddings) {
            c->embd_seq.assign(size_t(p.n_seq_max) * hp.n_embd, 0.0f);
            c->embd_seq_ok.assign(p.n_seq_max, 0);
            c->seq_count.assign(p.n_seq_max, 0);
        }
        c->t_start_us = gptneox_time_us();
        c->memory.ctx = c.get();
        return c.release();
    });
}

GPTNEOX_API void gptneox_free(gptneox_context *ctx) { delete ctx; }

GPTNEOX_API const gptneox_model *gptneox_get_model(const gptneox_context *ctx) {
    return guard<const gptneox_model *>(nullptr, [&] { return gptneox::get_ctx(ctx).model_handle; });
}
GPTNEOX_API uint32_t gptneox_n_ctx(const gptneox_context *ctx) {
    return guard<uint32_t>(0, [&] { return gptneox::get_ctx(ctx).params.n_ctx; });
}
GPTNEOX_API uint32_t gptneox_n_batch(const gptneox_context *ctx) {
    return guard<uint32_t>(0, [&] { return gptneox::get_ctx(ctx).params.n_batch; });
}
GPTNEOX_API uint32_t gptneox_n_ubatch(const gptneox_context *ctx) {
    return guard<uint32_t>(0, [&] { return gptneox::get_ctx(ctx).params.n_ubatch; });
}
GPTNEOX_API uint32_t gptneox_n_seq_max(const gptneox_context *ctx) {
    return guard<uint32_t>(0, [&] { return gptneox::get_ctx(ctx).params.n_seq_max; });
}
GPTNEOX_API int32_t gptneox_n_threads(const gptneox_context *ctx) {
    return guard<int32_t>(0, [&] { return gptneox::get_ctx(ctx).params.n_threads; });
}
GPTNEOX_API int32_t gptneox_n_threads_batch(const gptneox_context *ctx) {
    return guard<int32_t>(0, [&] { return gptneox::get_ctx(ctx).params.n_threads_batch; });
}

GPTNEOX_API int32_t gptneox_set_n_threads(gptneox_context *ctx, int32_t n_threads, int32_t n_threads_batch) {
    constexpr int32_t kFailed = INT32_MIN;
    const int32_t r = guard<int32_t>(kFailed, [&] {
        gptneox_context &c = gptneox::get_ctx(ctx);
        if (n_threads < 1 || n_threads_batch < 1 || n_threads > kMaxThreads || n_threads_batch > kMaxThreads) {
            fail(GPTNEOX_STATUS_INVALID_ARGUMENT, "n_threads %d / n_threads_batch %d must be 1..%d", n_threads,
                 n_threads_batch, kMaxThreads);
        }
        const int32_t need = std::max(n_threads, n_threads_batch);
        if (need > c.pool->size()) {
            // a bigger pool and one attention row per thread; allocate first so a failure changes nothing
            std::vector<float> scores(size_t(need) * c.params.n_ctx, 0.0f);
            auto pool = std::make_unique<gptneox::thread_pool>(need);
            c.rs.scores.swap(scores);
            c.pool = std::move(pool);
        }
        c.params.n_threads = n_threads;
        c.params.n_threads_batch = n_threads_batch;
        return int32_t(GPTNEOX_STATUS_OK);
    });
    return r == kFailed ? gptneox_last_status() : r;
}

GPTNEOX_API enum gptneox_pooling_type gptneox_pooling_type(const gptneox_context *ctx) {
    return guard<enum gptneox_pooling_type>(GPTNEOX_POOLING_TYPE_UNSPECIFIED, [&] {
        return static_cast<enum gptneox_pooling_type>(gptneox::get_ctx(ctx).params.pooling_type);
    });
}
GPTNEOX_API enum gptneox_kernel_path gptneox_kernel_path(const gptneox_context *ctx) {
    return guard<enum gptneox_kernel_path>(GPTNEOX_KERNELS_AUTO, [&] {
        return static_cast<enum gptneox_kernel_path>(gptneox::get_ctx(ctx).params.kernel_path);
    });
}

GPTNEOX_API gptneox_token gptneox_token_nl(const gptneox_context *ctx) {
    return guard<gptneox_token>(GPTNEOX_TOKEN_NULL, [&] { return gptneox::get_ctx(ctx).model->voc.nl(); });
}

// ---- batches ----

GPTNEOX_API gptneox_batch gptneox_batch_init(int32_t n_tokens, int32_t embd, int32_t n_seq_max) {
    gptneox_batch b;
    std::memset(&b, 0, sizeof b);
    return guard<gptneox_batch>(b, [&] {
        if (n_tokens < 1 || embd != 0 || n_seq_max < 1 || n_seq_max > gptneox::kMaxSeq) {
            fail(GPTNEOX_STATUS_INVALID_ARGUMENT, "batch_init: n_tokens %d must be >= 1, embd %d must be 0, n_seq_max %d "
                 "must be 1..%d", n_tokens, embd, n_seq_max, gptneox::kMaxSeq);
        }
        gptneox_batch r;
        std::memset(&r, 0, sizeof r);
        const size_t n = size_t(n_tokens);
        r.token = new (std::nothrow) gptneox_token[n]();
        r.pos = new (std::nothrow) gptneox_pos[n]();
        r.n_seq_id = new (std::nothrow) int32_t[n]();
        r.logits = new (std::nothrow) int8_t[n]();
        r.seq_id = new (std::nothrow) gptneox_seq_id *[n + 1](); // NULL-terminated, as llama.h's
        bool ok = r.token && r.pos && r.n_seq_id && r.logits && r.seq_id;
        for (size_t i = 0; ok && i < n; i++) {
            r.seq_id[i] = new (std::nothrow) gptneox_seq_id[size_t(n_seq_max)]();
            ok = r.seq_id[i] != nullptr;
        }
        if (!ok) {
            gptneox_batch_free(r);
            fail(GPTNEOX_STATUS_NO_MEMORY, "batch_init: out of memory");
        }
        return r;
    });
}

GPTNEOX_API void gptneox_batch_free(gptneox_batch batch) {
    delete[] batch.token;
    delete[] batch.pos;
    delete[] batch.n_seq_id;
    delete[] batch.logits;
    if (batch.seq_id) {
        for (size_t i = 0; batch.seq_id[i]; i++) delete[] batch.seq_id[i];
        delete[] batch.seq_id;
    }
}

// ---- decoding and outputs ----

GPTNEOX_API int32_t gptneox_decode(gptneox_context *ctx, gptneox_batch batch) {
    constexpr int32_t kFailed = INT32_MIN; // guard() recorded the error: return its status
    const int32_t r = guard<int32_t>(kFailed, [&] { return decode(gptneox::get_ctx(ctx), batch); });
    return r == kFailed ? gptneox_last_status() : r;
}

GPTNEOX_API int32_t gptneox_encode(gptneox_context *ctx, gptneox_batch batch) {
    // llama.cpp runs an encoder graph here (non-causal, no KV cache); a GPT-NeoX model has none.
    guard(0, [&] {
        gptneox::get_ctx(ctx);
        if (batch.n_tokens <= 0 || (!batch.token && !batch.embd))
            fail(GPTNEOX_STATUS_INVALID_ARGUMENT, "gptneox_encode: the batch is empty");
        fail(GPTNEOX_STATUS_UNSUPPORTED, "gptneox_encode: GPT-NeoX models have no encoder (use gptneox_decode)");
        return 0;
    });
    return gptneox_last_status();
}

GPTNEOX_API float *gptneox_get_logits(gptneox_context *ctx) {
    return guard<float *>(nullptr, [&]() -> float * {
        gptneox_context &c = gptneox::get_ctx(ctx);
        return c.has_logits && c.n_outputs > 0 ? c.logits.data() : nullptr;
    });
}

GPTNEOX_API float *gptneox_get_logits_ith(gptneox_context *ctx, int32_t i) {
    return guard<float *>(nullptr, [&]() -> float * {
        gptneox_context &c = gptneox::get_ctx(ctx);
        if (!c.has_logits) fail(GPTNEOX_STATUS_INVALID_ARGUMENT, "the last decode produced no logits");
        return c.logits.data() + size_t(output_row(c, i)) * c.model->hp.n_vocab;
    });
}

GPTNEOX_API int32_t gptneox_n_outputs(const gptneox_context *ctx) {
    return guard<int32_t>(0, [&] { return gptneox::get_ctx(ctx).n_outputs; });
}

GPTNEOX_API float *gptneox_get_embeddings(gptneox_context *ctx) {
    return guard<float *>(nullptr, [&]() -> float * {
        gptneox_context &c = gptneox::get_ctx(ctx);
        return c.params.embeddings && c.n_outputs > 0 ? c.embd.data() : nullptr;
    });
}

GPTNEOX_API float *gptneox_get_embeddings_ith(gptneox_context *ctx, int32_t i) {
    return guard<float *>(nullptr, [&]() -> float * {
        gptneox_context &c = gptneox::get_ctx(ctx);
        if (!c.params.embeddings) fail(GPTNEOX_STATUS_INVALID_ARGUMENT, "the context was made without embeddings");
        return c.embd.data() + size_t(output_row(c, i)) * c.model->hp.n_embd;
    });
}

GPTNEOX_API float *gptneox_get_embeddings_seq(gptneox_context *ctx, gptneox_seq_id seq_id) {
    return guard<float *>(nullptr, [&]() -> float * {
        gptneox_context &c = gptneox::get_ctx(ctx);
        if (!c.params.embeddings || c.params.pooling_type == GPTNEOX_POOLING_TYPE_NONE) {
            fail(GPTNEOX_STATUS_INVALID_ARGUMENT, "no pooled embeddings (needs embeddings and pooling MEAN or LAST)");
        }
        if (seq_id < 0 || uint32_t(seq_id) >= c.params.n_seq_max || !c.embd_seq_ok[size_t(seq_id)]) {
            fail(GPTNEOX_STATUS_INVALID_ARGUMENT, "sequence %d has no pooled embedding in the last decode", seq_id);
        }
        return c.embd_seq.data() + size_t(seq_id) * c.model->hp.n_embd;
    });
}

} // extern "C"
