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

bool is_cache_type(int32_t t) { return t == GPTNEOX_TYPE_F16 || t == GPTNEOX_TYPE_F32 || t == GPTNEOX_TYPE_Q8_0; }

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
            fail(GPTNEOX_STATUS_INVALID_ARGUMENT, "type_k %d / type_v %d must be F16 (1), F32 (0) or Q8_0 (8)",
                 p.type_k, p.type_v);
        }
        if ((p.type_k == GPTNEOX_TYPE_Q8_0 && p.type_v == GPTNEOX_TYPE_F32) ||
            (p.type_k == GPTNEOX_TYPE_F32 && p.type_v == GPTNEOX_TYPE_Q8_0)) {
            fail(GPTNEOX_STATUS_INVALID_ARGUMENT, "a Q8_0 K or V cache goes with an F16 or Q8_0 other half, not F32");
        }
        if (p.pooling_type == GPTNEOX_POOLING_TYPE_UNSPECIFIED) p.pooling_type = GPTNEOX_POOLING_TYPE_NONE;
        if (p.pooling_type != GPTNEOX_POOLING_TYPE_NONE && p.pooling_type != GPTNEOX_POOLING_TYPE_MEAN &&
            p.pooling_type != GPTNEOX_POOLING_TYPE_LAST) {
            fail(GPTNEOX_STATUS_INVALID_ARGUMENT, "pooling_type %d is not supported (NONE, MEAN, LAST)", p.pooling_type);
        }
        if (p.kernel_path < GPTNEOX_KERNELS_AUTO || p.kernel_path > GPTNEOX_KERNELS_AMX) {
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
        c->cache.init(p.n_ctx, hp.n_layer, hp.n_head, hp.head_dim, uint32_t(p.type_k), uint32_t(p.type_v));
        // scratch for the larger of n_ubatch and the coalescing capacity (see decode.cpp)
        const uint32_t cap = gptneox::coalesce_capacity(p.n_ubatch, p.n_ctx);
        c->rs.init(hp, int32_t(cap), p.n_ctx, n_threads, p.rope_freq_base);
        c->cells.assign(p.n_batch, 0);
        c->seq_first.assign(p.n_batch, 0);
        c->seq_mask.assign(p.n_batch, 0);
        c->pos.assign(p.n_batch, 0);
        c->seq_next.assign(p.n_seq_max, 0);
        c->out_rows.assign(cap, 0);
        for (auto *v : {&c->pend.token, &c->pend.pos, &c->pend.seq_first, &c->pend.cell}) v->assign(cap, 0);
        c->pend.seq_mask.assign(cap, 0);
        c->pend.max_pos.assign(p.n_seq_max, -1);
        c->output_ids.assign(p.n_batch, -1);
        gptneox::reserve_outputs(*c, int32_t(p.n_seq_max), true);
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
            // a bigger pool, and attention rows and scratch for every thread (each allocates before it
            // changes anything; a failed pool leaves only unused room behind)
            auto pool = std::make_unique<gptneox::thread_pool>(need);
            c.rs.grow_threads(need, c.params.n_ctx);
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
    const int32_t r = guard<int32_t>(kFailed, [&] { return gptneox::decode(gptneox::get_ctx(ctx), batch); });
    return r == kFailed ? gptneox_last_status() : r;
}

GPTNEOX_API int32_t gptneox_n_queued(const gptneox_context *ctx) {
    return guard<int32_t>(0, [&] { return gptneox::get_ctx(ctx).pend.n; });
}

GPTNEOX_API int32_t gptneox_synchronize(gptneox_context *ctx) {
    constexpr int32_t kFailed = INT32_MIN;
    const int32_t r = guard<int32_t>(kFailed, [&] {
        gptneox::synchronize(gptneox::get_ctx(ctx));
        return int32_t(GPTNEOX_STATUS_OK);
    });
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
        gptneox::synchronize(c);
        return c.has_logits && c.n_outputs > 0 ? c.logits.data() : nullptr;
    });
}

GPTNEOX_API float *gptneox_get_logits_ith(gptneox_context *ctx, int32_t i) {
    return guard<float *>(nullptr, [&]() -> float * {
        gptneox_context &c = gptneox::get_ctx(ctx);
        gptneox::synchronize(c);
        if (!c.has_logits) fail(GPTNEOX_STATUS_INVALID_ARGUMENT, "the last decode produced no logits");
        return c.logits.data() + size_t(gptneox::output_row(c, i)) * c.model->hp.n_vocab;
    });
}

GPTNEOX_API int32_t gptneox_n_outputs(const gptneox_context *ctx) {
    return guard<int32_t>(0, [&] {
        gptneox_context &c = gptneox::get_ctx(ctx);
        gptneox::synchronize(c);
        return c.n_outputs;
    });
}

GPTNEOX_API float *gptneox_get_embeddings(gptneox_context *ctx) {
    return guard<float *>(nullptr, [&]() -> float * {
        gptneox_context &c = gptneox::get_ctx(ctx);
        gptneox::synchronize(c);
        return c.params.embeddings && c.n_outputs > 0 ? c.embd.data() : nullptr;
    });
}

GPTNEOX_API float *gptneox_get_embeddings_ith(gptneox_context *ctx, int32_t i) {
    return guard<float *>(nullptr, [&]() -> float * {
        gptneox_context &c = gptneox::get_ctx(ctx);
        gptneox::synchronize(c);
        if (!c.params.embeddings) fail(GPTNEOX_STATUS_INVALID_ARGUMENT, "the context was made without embeddings");
        return c.embd.data() + size_t(gptneox::output_row(c, i)) * c.model->hp.n_embd;
    });
}

GPTNEOX_API float *gptneox_get_embeddings_seq(gptneox_context *ctx, gptneox_seq_id seq_id) {
    return guard<float *>(nullptr, [&]() -> float * {
        gptneox_context &c = gptneox::get_ctx(ctx);
        gptneox::synchronize(c);
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
