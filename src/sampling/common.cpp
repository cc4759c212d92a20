// The engine sampler interface, generic sampler operations, the RNG and candidate-array helpers.
#include <algorithm>
#include <cmath>
#include <limits>

#include "common/status.h"
#include "sampling/sampling.h"

namespace gptneox::sampling {

// ---------------------------------------------------------------------------------------------------
// RNG

void rng::reseed(uint32_t seed) {
    seed_req_ = seed;
    if (seed == GPTNEOX_DEFAULT_SEED) {
        std::random_device rd;
        seed_cur_ = rd();
    } else {
        seed_cur_ = seed;
    }
    gen_.seed(seed_cur_);
}

double rng::uniform() {
    const uint64_t a = gen_() >> 5, b = gen_() >> 6; // 27 + 26 bits
    return double(a * 67108864u + b) * (1.0 / 9007199254740992.0);
}

// ---------------------------------------------------------------------------------------------------
// Interface of engine samplers

namespace {

sampler_base &state_of(const gptneox_sampler *s) { return *static_cast<sampler_base *>(s->ctx); }

const char *t_name(const gptneox_sampler *s) { return state_of(s).name(); }
void t_accept(gptneox_sampler *s, gptneox_token token) { state_of(s).accept(token); }
void t_apply(gptneox_sampler *s, gptneox_token_data_array *cur) { state_of(s).apply(cur); }
void t_reset(gptneox_sampler *s) { state_of(s).reset(); }
gptneox_sampler *t_clone(const gptneox_sampler *s) { return wrap(state_of(s).clone()); }
void t_free(gptneox_sampler *s) {
    delete static_cast<sampler_base *>(s->ctx);
    s->ctx = nullptr;
}

} // namespace

const gptneox_sampler_i engine_iface = {t_name, t_accept, t_apply, t_reset, t_clone, t_free, {}};

gptneox_sampler *wrap(std::unique_ptr<sampler_base> s) {
    auto out = std::make_unique<gptneox_sampler>();
    out->iface = &engine_iface;
    out->ctx = s.release();
    return out.release();
}

sampler_base *engine_state(const gptneox_sampler *smpl) {
    return smpl && smpl->iface == &engine_iface ? static_cast<sampler_base *>(smpl->ctx) : nullptr;
}

chain *as_chain(const gptneox_sampler *smpl) { return dynamic_cast<chain *>(engine_state(smpl)); }

void do_accept(gptneox_sampler *smpl, gptneox_token token) {
    if (smpl->iface && smpl->iface->accept) smpl->iface->accept(smpl, token);
}

void do_apply(gptneox_sampler *smpl, gptneox_token_data_array *cur) {
    if (smpl->iface && smpl->iface->apply) smpl->iface->apply(smpl, cur);
}

void do_reset(gptneox_sampler *smpl) {
    if (smpl->iface && smpl->iface->reset) smpl->iface->reset(smpl);
}

gptneox_sampler *do_clone(const gptneox_sampler *smpl) {
    if (smpl->iface && smpl->iface->clone) {
        gptneox_sampler *c = smpl->iface->clone(smpl);
        if (!c) fail(GPTNEOX_STATUS_INTERNAL, "the sampler's clone returned NULL");
        return c;
    }
    if (smpl->ctx) fail(GPTNEOX_STATUS_UNSUPPORTED, "the sampler has a context but no clone function");
    auto out = std::make_unique<gptneox_sampler>();
    out->iface = smpl->iface;
    out->ctx = nullptr;
    return out.release();
}

void do_free(gptneox_sampler *smpl) noexcept {
    if (!smpl) return;
    if (smpl->iface && smpl->iface->free) smpl->iface->free(smpl);
    delete smpl;
}

// ---------------------------------------------------------------------------------------------------
// Candidate arrays

void sort_desc(gptneox_token_data_array *cur) {
    if (cur->sorted) return;
    std::sort(cur->data, cur->data + cur->size, before);
    cur->sorted = true;
}

void softmax(gptneox_token_data_array *cur, bool do_sort) {
    if (cur->size == 0) return;
    if (do_sort) sort_desc(cur);
    float max_l = cur->data[0].logit;
    if (!cur->sorted)
        for (size_t i = 1; i < cur->size; ++i) max_l = std::max(max_l, cur->data[i].logit);
    float sum = 0.0f;
    for (size_t i = 0; i < cur->size; ++i) {
        const float p = std::exp(cur->data[i].logit - max_l);
        cur->data[i].p = p;
        sum += p;
    }
    for (size_t i = 0; i < cur->size; ++i) cur->data[i].p /= sum;
}

void keep_top_k(gptneox_token_data_array *cur, int64_t k) {
    if (cur->size == 0) return;
    k = std::max<int64_t>(1, std::min<int64_t>(k, (int64_t)cur->size));
    if (!cur->sorted) {
        std::partial_sort(cur->data, cur->data + k, cur->data + cur->size, before);
        cur->sorted = true;
    }
    cur->size = (size_t)k;
}

int64_t draw(const gptneox_token_data_array *cur, double u) {
    if (cur->size == 0) return -1;
    double total = 0.0;
    for (size_t i = 0; i < cur->size; ++i) total += cur->data[i].p;
    const double target = u * total;
    double run = 0.0;
    int64_t last_nonzero = 0;
    for (size_t i = 0; i < cur->size; ++i) {
        if (cur->data[i].p <= 0.0f) continue;
        run += cur->data[i].p;
        last_nonzero = (int64_t)i;
        if (run > target) return (int64_t)i;
    }
    return last_nonzero; // rounding: u * total landed on the sum
}

// ---------------------------------------------------------------------------------------------------
// Chains

chain::~chain() {
    for (gptneox_sampler *s : samplers) do_free(s);
}

void chain::accept(gptneox_token token) {
    for (gptneox_sampler *s : samplers) do_accept(s, token);
}

void chain::apply(gptneox_token_data_array *c) {
    for (gptneox_sampler *s : samplers) do_apply(s, c);
}

void chain::reset() {
    for (gptneox_sampler *s : samplers) do_reset(s);
}

std::unique_ptr<sampler_base> chain::clone() const {
    auto out = std::make_unique<chain>();
    out->samplers.reserve(samplers.size());
    for (const gptneox_sampler *s : samplers) out->samplers.push_back(do_clone(s));
    return out;
}

bool chain::seed(uint32_t &out) const {
    for (auto it = samplers.rbegin(); it != samplers.rend(); ++it) {
        const sampler_base *st = engine_state(*it);
        if (st && st->seed(out) && out != GPTNEOX_DEFAULT_SEED) return true;
    }
    return false;
}

} // namespace gptneox::sampling
