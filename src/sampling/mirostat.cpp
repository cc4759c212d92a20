// Mirostat v1 and v2 (Basu et al., "Mirostat: A Neural Text Decoding Algorithm that Directly Controls
// Perplexity"): adaptive truncation steering the observed surprise towards tau.
#include <algorithm>
#include <cmath>
#include <climits>

#include "common/status.h"
#include "sampling/sampling.h"

namespace gptneox::sampling {

namespace {

// What v1 and v2 share: the target surprise tau, learning rate eta, the running truncation mu, and the
// draw from the truncated distribution that updates mu by the observed surprise.
struct mirostat_state {
    float tau, eta, mu;
    rng gen;
    mirostat_state(uint32_t seed, float t, float e) : tau(t), eta(e), mu(2.0f * t), gen(seed) {}
    void draw_and_update(gptneox_token_data_array *cur) {
        softmax(cur, true);
        const int64_t idx = draw(cur, gen.uniform());
        cur->selected = idx;
        const float surprise = -std::log2(cur->data[idx].p);
        mu -= eta * (surprise - tau);
    }
    void reset() {
        mu = 2.0f * tau;
        gen.reseed(gen.requested());
    }
};

class mirostat final : public cloneable<mirostat> {
public:
    mirostat(int32_t n_vocab, uint32_t seed, float tau, float eta, int32_t m)
        : n_vocab_(n_vocab), m_(m), st_(seed, tau, eta) {}
    const char *name() const override { return "mirostat"; }
    void apply(gptneox_token_data_array *cur) override {
        if (cur->size == 0) {
            cur->selected = -1;
            return;
        }
        softmax(cur, true);
        // Zipf exponent from the m most probable tokens (least squares through the origin).
        float sum_tb = 0.0f, sum_tt = 0.0f;
        for (size_t i = 0; i + 1 < (size_t)m_ && i + 1 < cur->size; ++i) {
            const float t = std::log(float(i + 2) / float(i + 1));
            const float b = std::log(cur->data[i].p / cur->data[i + 1].p);
            sum_tb += t * b;
            sum_tt += t * t;
        }
        double k = 1.0;
        if (sum_tt > 0.0f) {
            const float s_hat = sum_tb / sum_tt;
            const float eps = s_hat - 1.0f;
            k = std::pow((eps * std::pow(2.0f, st_.mu)) / (1.0f - std::pow((float)n_vocab_, -eps)), 1.0f / s_hat);
        }
        if (!(k >= 1.0)) k = 1.0; // NaN or < 1
        keep_top_k(cur, k >= double(INT_MAX) ? INT_MAX : (int64_t)k);
        st_.draw_and_update(cur);
    }
    void reset() override { st_.reset(); }
    bool seed(uint32_t &out) const override {
        out = st_.gen.seed();
        return true;
    }

private:
    int32_t n_vocab_;
    int32_t m_;
    mirostat_state st_;
};

class mirostat_v2 final : public cloneable<mirostat_v2> {
public:
    mirostat_v2(uint32_t seed, float tau, float eta) : st_(seed, tau, eta) {}
    const char *name() const override { return "mirostat-v2"; }
    void apply(gptneox_token_data_array *cur) override {
        if (cur->size == 0) {
            cur->selected = -1;
            return;
        }
        softmax(cur, true);
        size_t keep = 0;
        while (keep < cur->size && !(-std::log2(cur->data[keep].p) > st_.mu)) ++keep;
        cur->size = std::max<size_t>(keep, 1);
        st_.draw_and_update(cur);
    }
    void reset() override { st_.reset(); }
    bool seed(uint32_t &out) const override {
        out = st_.gen.seed();
        return true;
    }

private:
    mirostat_state st_;
};

} // namespace

std::unique_ptr<sampler_base> make_mirostat(int32_t n_vocab, uint32_t seed, float tau, float eta, int32_t m) {
    if (n_vocab <= 0) fail(GPTNEOX_STATUS_INVALID_ARGUMENT, "mirostat: n_vocab must be positive (%d)", n_vocab);
    if (m < 1) fail(GPTNEOX_STATUS_INVALID_ARGUMENT, "mirostat: m must be at least 1 (%d)", m);
    return std::make_unique<mirostat>(n_vocab, seed, tau, eta, m);
}

std::unique_ptr<sampler_base> make_mirostat_v2(uint32_t seed, float tau, float eta) {
    return std::make_unique<mirostat_v2>(seed, tau, eta);
}

} // namespace gptneox::sampling
