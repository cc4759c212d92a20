// Samplers behind the gptneox_sampler_* API (include/gptneox.h, "Sampling").
//
// Every engine sampler is a gptneox_sampler {&engine_iface, ctx} whose ctx is a sampler_base object; the
// interface functions forward to its virtual methods. A chain holds gptneox_sampler pointers, so it can
// also hold samplers with a foreign interface (llama.h-shaped, e.g. from Python). Semantics follow
// llama.cpp's llama-sampling.cpp as documented in gptneox.h; the code is our own.
#pragma once

#include <cstdint>
#include <memory>
#include <random>
#include <vector>

#include "gptneox.h"

namespace gptneox::sampling {

// Seeded RNG: std::mt19937 (its output sequence is fixed by the C++ standard) and our own conversion to
// doubles, so the same seed gives the same draws with any standard library.
class rng {
public:
    explicit rng(uint32_t seed) { reseed(seed); }
    // GPTNEOX_DEFAULT_SEED picks a random seed (std::random_device); seed() then reports it.
    void reseed(uint32_t seed);
    uint32_t seed() const { return seed_cur_; }
    uint32_t requested() const { return seed_req_; }
    double uniform(); // [0, 1), 53 random bits

private:
    std::mt19937 gen_;
    uint32_t seed_req_ = 0, seed_cur_ = 0;
};

class sampler_base {
public:
    virtual ~sampler_base() = default;
    virtual const char *name() const = 0;
    virtual void accept(gptneox_token) {}
    virtual void apply(gptneox_token_data_array *cur) = 0;
    virtual void reset() {}
    virtual std::unique_ptr<sampler_base> clone() const = 0;
    // The seed in use, for seeded samplers.
    virtual bool seed(uint32_t &out) const {
        (void)out;
        return false;
    }
};

template <class T> class cloneable : public sampler_base {
public:
    std::unique_ptr<sampler_base> clone() const override {
        return std::make_unique<T>(static_cast<const T &>(*this));
    }
};

// The interface of engine samplers (immutable).
extern const gptneox_sampler_i engine_iface;

// A new gptneox_sampler owning `s`.
gptneox_sampler *wrap(std::unique_ptr<sampler_base> s);
// ctx of an engine sampler, nullptr for a foreign one.
sampler_base *engine_state(const gptneox_sampler *smpl);

// Generic operations through the interface (NULL slots skipped), used by chains and the API.
void do_accept(gptneox_sampler *smpl, gptneox_token token);
void do_apply(gptneox_sampler *smpl, gptneox_token_data_array *cur);
void do_reset(gptneox_sampler *smpl);
gptneox_sampler *do_clone(const gptneox_sampler *smpl); // throws when it cannot be cloned
void do_free(gptneox_sampler *smpl) noexcept;

// Helpers on candidate arrays.
// Order: logit descending, then id ascending (a total order, so results do not depend on the sort).
inline bool before(const gptneox_token_data &a, const gptneox_token_data &b) {
    return a.logit > b.logit || (a.logit == b.logit && a.id < b.id);
}
void sort_desc(gptneox_token_data_array *cur);
// p = softmax(logit) over the candidates; sorts first when do_sort.
void softmax(gptneox_token_data_array *cur, bool do_sort);
// Keep the k largest (k clamped to [1, size]); sorts them.
void keep_top_k(gptneox_token_data_array *cur, int64_t k);
// Index of a candidate drawn with probability p[i] / sum(p) using u in [0, 1).
int64_t draw(const gptneox_token_data_array *cur, double u);

// Factories (parameters as in gptneox.h).
std::unique_ptr<sampler_base> make_greedy();
std::unique_ptr<sampler_base> make_dist(uint32_t seed);
std::unique_ptr<sampler_base> make_top_k(int32_t k);
std::unique_ptr<sampler_base> make_top_p(float p, size_t min_keep);
std::unique_ptr<sampler_base> make_min_p(float p, size_t min_keep);
std::unique_ptr<sampler_base> make_typical(float p, size_t min_keep);
std::unique_ptr<sampler_base> make_temp(float t);
std::unique_ptr<sampler_base> make_temp_ext(float t, float delta, float exponent);
std::unique_ptr<sampler_base> make_xtc(float p, float t, size_t min_keep, uint32_t seed);
std::unique_ptr<sampler_base> make_top_n_sigma(float n);
std::unique_ptr<sampler_base> make_logit_bias(int32_t n_vocab, int32_t n, const gptneox_logit_bias *bias);
std::unique_ptr<sampler_base> make_mirostat(int32_t n_vocab, uint32_t seed, float tau, float eta, int32_t m);
std::unique_ptr<sampler_base> make_mirostat_v2(uint32_t seed, float tau, float eta);
std::unique_ptr<sampler_base> make_penalties(int32_t last_n, float repeat, float freq, float present);
std::unique_ptr<sampler_base> make_dry(const gptneox_vocab *vocab, int32_t n_ctx_train, float multiplier, float base,
                                       int32_t allowed_length, int32_t penalty_last_n, const char **breakers,
                                       size_t n_breakers);
// src/sampling/infill.cpp
std::unique_ptr<sampler_base> make_infill(const gptneox_vocab *vocab);

// Chains.
class chain final : public sampler_base {
public:
    chain() = default;
    ~chain() override;
    chain(const chain &) = delete;
    chain &operator=(const chain &) = delete;

    const char *name() const override { return "chain"; }
    void accept(gptneox_token token) override;
    void apply(gptneox_token_data_array *cur) override;
    void reset() override;
    std::unique_ptr<sampler_base> clone() const override;
    bool seed(uint32_t &out) const override;

    std::vector<gptneox_sampler *> samplers; // owned
    std::vector<gptneox_token_data> cur;     // candidate buffer of gptneox_sampler_sample
};
chain *as_chain(const gptneox_sampler *smpl); // nullptr if not a chain

} // namespace gptneox::sampling
