// Exported sampler functions (gptneox.h, "Sampling"). The samplers live in src/sampling/.
#include <algorithm>

#include "api/context.h"
#include "common/status.h"
#include "gptneox.h"
#include "sampling/grammar.h"
#include "sampling/sampling.h"

using gptneox::fail;
using gptneox::guard;
namespace smp = gptneox::sampling;

namespace {

gptneox_sampler *check(gptneox_sampler *s, const char *what) {
    if (!s) fail(GPTNEOX_STATUS_INVALID_ARGUMENT, "%s: sampler is NULL", what);
    return s;
}
const gptneox_sampler *check(const gptneox_sampler *s, const char *what) {
    if (!s) fail(GPTNEOX_STATUS_INVALID_ARGUMENT, "%s: sampler is NULL", what);
    return s;
}

smp::chain &get_chain(const gptneox_sampler *s, const char *what) {
    smp::chain *c = smp::as_chain(check(s, what));
    if (!c) fail(GPTNEOX_STATUS_INVALID_ARGUMENT, "%s: the sampler is not a chain", what);
    return *c;
}

template <typename F> gptneox_sampler *make(F &&f) {
    return guard((gptneox_sampler *)nullptr, [&] { return smp::wrap(f()); });
}

} // namespace

extern "C" {

GPTNEOX_API struct gptneox_sampler *gptneox_sampler_init(const struct gptneox_sampler_i *iface,
                                                         gptneox_sampler_context_t ctx) {
    return guard((gptneox_sampler *)nullptr, [&] {
        if (!iface) fail(GPTNEOX_STATUS_INVALID_ARGUMENT, "gptneox_sampler_init: iface is NULL");
        auto *s = new gptneox_sampler;
        s->iface = iface;
        s->ctx = ctx;
        return s;
    });
}

GPTNEOX_API const char *gptneox_sampler_name(const struct gptneox_sampler *smpl) {
    return guard("?", [&]() -> const char * {
        check(smpl, "gptneox_sampler_name");
        if (!smpl->iface || !smpl->iface->name) return "?";
        const char *n = smpl->iface->name(smpl);
        return n ? n : "?";
    });
}

GPTNEOX_API void gptneox_sampler_accept(struct gptneox_sampler *smpl, gptneox_token token) {
    guard(0, [&] {
        smp::do_accept(check(smpl, "gptneox_sampler_accept"), token);
        return 0;
    });
}

GPTNEOX_API void gptneox_sampler_apply(struct gptneox_sampler *smpl, gptneox_token_data_array *cur_p) {
    guard(0, [&] {
        if (!cur_p || (cur_p->size > 0 && !cur_p->data))
            fail(GPTNEOX_STATUS_INVALID_ARGUMENT, "gptneox_sampler_apply: no candidates");
        smp::do_apply(check(smpl, "gptneox_sampler_apply"), cur_p);
        return 0;
    });
}

GPTNEOX_API void gptneox_sampler_reset(struct gptneox_sampler *smpl) {
    guard(0, [&] {
        smp::do_reset(check(smpl, "gptneox_sampler_reset"));
        return 0;
    });
}

GPTNEOX_API struct gptneox_sampler *gptneox_sampler_clone(const struct gptneox_sampler *smpl) {
    return guard((gptneox_sampler *)nullptr, [&] { return smp::do_clone(check(smpl, "gptneox_sampler_clone")); });
}

GPTNEOX_API void gptneox_sampler_free(struct gptneox_sampler *smpl) { smp::do_free(smpl); }

GPTNEOX_API uint32_t gptneox_sampler_get_seed(const struct gptneox_sampler *smpl) {
    return guard((uint32_t)GPTNEOX_DEFAULT_SEED, [&] {
        uint32_t seed = GPTNEOX_DEFAULT_SEED;
        const smp::sampler_base *st = smp::engine_state(check(smpl, "gptneox_sampler_get_seed"));
        if (st && st->seed(seed)) return seed;
        return (uint32_t)GPTNEOX_DEFAULT_SEED;
    });
}

GPTNEOX_API gptneox_token gptneox_sampler_sample(struct gptneox_sampler *smpl, struct gptneox_context *ctx,
                                                 int32_t idx) {
    return guard((gptneox_token)GPTNEOX_TOKEN_NULL, [&] {
        check(smpl, "gptneox_sampler_sample");
        gptneox_context &c = gptneox::get_ctx(ctx);
        const float *logits = gptneox_get_logits_ith(ctx, idx);
        if (!logits) fail((gptneox_status)gptneox_last_status(), "gptneox_sampler_sample: %s", gptneox_last_error());
        // Candidates: the tokenizer's tokens (the output may have padding rows beyond them).
        const int32_t n_rows = c.model->hp.n_vocab;
        const int32_t n_tok = gptneox_vocab_n_tokens(gptneox_model_get_vocab(c.model_handle));
        const size_t n = (size_t)(n_tok > 0 && n_tok <= n_rows ? n_tok : n_rows);

        std::vector<gptneox_token_data> local;
        smp::chain *ch = smp::as_chain(smpl);
        std::vector<gptneox_token_data> &buf = ch ? ch->cur : local; // a chain keeps its buffer
        buf.resize(n);
        for (size_t i = 0; i < n; ++i) buf[i] = gptneox_token_data{(gptneox_token)i, logits[i], 0.0f};
        gptneox_token_data_array cur{buf.data(), n, -1, false};
        smp::do_apply(smpl, &cur);
        if (cur.selected < 0 || (size_t)cur.selected >= cur.size)
            fail(GPTNEOX_STATUS_INVALID_ARGUMENT,
                 "gptneox_sampler_sample: no sampler selected a token (the chain needs greedy, dist or mirostat "
                 "last)");
        const gptneox_token token = cur.data[cur.selected].id;
        smp::do_accept(smpl, token);
        return token;
    });
}

GPTNEOX_API struct gptneox_sampler_chain_params gptneox_sampler_chain_default_params(void) {
    gptneox_sampler_chain_params p;
    p.no_perf = true;
    return p;
}

GPTNEOX_API struct gptneox_sampler *gptneox_sampler_chain_init(struct gptneox_sampler_chain_params params) {
    (void)params;
    return make([] { return std::make_unique<smp::chain>(); });
}

GPTNEOX_API int32_t gptneox_sampler_chain_add(struct gptneox_sampler *chain, struct gptneox_sampler *smpl) {
    return guard((int32_t)GPTNEOX_STATUS_INVALID_ARGUMENT, [&] {
        smp::chain &c = get_chain(chain, "gptneox_sampler_chain_add");
        check(smpl, "gptneox_sampler_chain_add");
        if (smpl == chain) fail(GPTNEOX_STATUS_INVALID_ARGUMENT, "gptneox_sampler_chain_add: a chain cannot hold itself");
        c.samplers.push_back(smpl);
        return (int32_t)0;
    });
}

GPTNEOX_API struct gptneox_sampler *gptneox_sampler_chain_get(const struct gptneox_sampler *chain, int32_t i) {
    return guard((gptneox_sampler *)nullptr, [&] {
        smp::chain &c = get_chain(chain, "gptneox_sampler_chain_get");
        if (i < 0 || (size_t)i >= c.samplers.size())
            fail(GPTNEOX_STATUS_INVALID_ARGUMENT, "gptneox_sampler_chain_get: index %d out of range", i);
        return c.samplers[(size_t)i];
    });
}

GPTNEOX_API int32_t gptneox_sampler_chain_n(const struct gptneox_sampler *chain) {
    return guard((int32_t)0, [&] { return (int32_t)get_chain(chain, "gptneox_sampler_chain_n").samplers.size(); });
}

GPTNEOX_API struct gptneox_sampler *gptneox_sampler_chain_remove(struct gptneox_sampler *chain, int32_t i) {
    return guard((gptneox_sampler *)nullptr, [&] {
        smp::chain &c = get_chain(chain, "gptneox_sampler_chain_remove");
        if (i < 0 || (size_t)i >= c.samplers.size())
            fail(GPTNEOX_STATUS_INVALID_ARGUMENT, "gptneox_sampler_chain_remove: index %d out of range", i);
        gptneox_sampler *s = c.samplers[(size_t)i];
        c.samplers.erase(c.samplers.begin() + i);
        return s;
    });
}

GPTNEOX_API struct gptneox_sampler *gptneox_sampler_init_greedy(void) { return make([] { return smp::make_greedy(); }); }

GPTNEOX_API struct gptneox_sampler *gptneox_sampler_init_dist(uint32_t seed) {
    return make([&] { return smp::make_dist(seed); });
}

GPTNEOX_API struct gptneox_sampler *gptneox_sampler_init_top_k(int32_t k) {
    return make([&] { return smp::make_top_k(k); });
}

GPTNEOX_API struct gptneox_sampler *gptneox_sampler_init_top_p(float p, size_t min_keep) {
    return make([&] { return smp::make_top_p(p, min_keep); });
}

GPTNEOX_API struct gptneox_sampler *gptneox_sampler_init_min_p(float p, size_t min_keep) {
    return make([&] { return smp::make_min_p(p, min_keep); });
}

GPTNEOX_API struct gptneox_sampler *gptneox_sampler_init_typical(float p, size_t min_keep) {
    return make([&] { return smp::make_typical(p, min_keep); });
}

GPTNEOX_API struct gptneox_sampler *gptneox_sampler_init_temp(float t) {
    return make([&] { return smp::make_temp(t); });
}

GPTNEOX_API struct gptneox_sampler *gptneox_sampler_init_temp_ext(float t, float delta, float exponent) {
    return make([&] { return smp::make_temp_ext(t, delta, exponent); });
}

GPTNEOX_API struct gptneox_sampler *gptneox_sampler_init_xtc(float p, float t, size_t min_keep, uint32_t seed) {
    return make([&] { return smp::make_xtc(p, t, min_keep, seed); });
}

GPTNEOX_API struct gptneox_sampler *gptneox_sampler_init_top_n_sigma(float n) {
    return make([&] { return smp::make_top_n_sigma(n); });
}

GPTNEOX_API struct gptneox_sampler *gptneox_sampler_init_mirostat(int32_t n_vocab, uint32_t seed, float tau,
                                                                  float eta, int32_t m) {
    return make([&] { return smp::make_mirostat(n_vocab, seed, tau, eta, m); });
}

GPTNEOX_API struct gptneox_sampler *gptneox_sampler_init_mirostat_v2(uint32_t seed, float tau, float eta) {
    return make([&] { return smp::make_mirostat_v2(seed, tau, eta); });
}

GPTNEOX_API struct gptneox_sampler *gptneox_sampler_init_penalties(int32_t penalty_last_n, float penalty_repeat,
                                                                   float penalty_freq, float penalty_present) {
    return make([&] { return smp::make_penalties(penalty_last_n, penalty_repeat, penalty_freq, penalty_present); });
}

GPTNEOX_API struct gptneox_sampler *gptneox_sampler_init_dry(const struct gptneox_vocab *vocab, int32_t n_ctx_train,
                                                             float dry_multiplier, float dry_base,
                                                             int32_t dry_allowed_length, int32_t dry_penalty_last_n,
                                                             const char **seq_breakers, size_t num_breakers) {
    return make([&] {
        return smp::make_dry(vocab, n_ctx_train, dry_multiplier, dry_base, dry_allowed_length, dry_penalty_last_n,
                             seq_breakers, num_breakers);
    });
}

GPTNEOX_API struct gptneox_sampler *gptneox_sampler_init_logit_bias(int32_t n_vocab, int32_t n_logit_bias,
                                                                    const gptneox_logit_bias *logit_bias) {
    return make([&] { return smp::make_logit_bias(n_vocab, n_logit_bias, logit_bias); });
}

GPTNEOX_API struct gptneox_sampler *gptneox_sampler_init_grammar(const struct gptneox_vocab *vocab,
                                                                 const char *grammar_str, const char *grammar_root) {
    return make([&] { return smp::make_grammar(vocab, grammar_str, grammar_root); });
}

GPTNEOX_API struct gptneox_sampler *
gptneox_sampler_init_grammar_lazy_patterns(const struct gptneox_vocab *vocab, const char *grammar_str,
                                           const char *grammar_root, const char **trigger_patterns,
                                           size_t num_trigger_patterns, const gptneox_token *trigger_tokens,
                                           size_t num_trigger_tokens) {
    return make([&] {
        return smp::make_grammar_lazy(vocab, grammar_str, grammar_root, trigger_patterns, num_trigger_patterns,
                                      trigger_tokens, num_trigger_tokens);
    });
}

GPTNEOX_API struct gptneox_sampler *gptneox_sampler_init_infill(const struct gptneox_vocab *vocab) {
    return make([&] { return smp::make_infill(vocab); });
}

} // extern "C"
