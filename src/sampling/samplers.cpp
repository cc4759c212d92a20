// Stateless (or RNG-only) samplers: greedy, dist, top-k, top-p, min-p, typical, temp, temp_ext, xtc,
// top-n-sigma, logit bias. Semantics: gptneox.h, "Sampling".
#include <algorithm>
#include <cmath>
#include <limits>
#include <numeric>

#include "common/status.h"
#include "sampling/sampling.h"

namespace gptneox::sampling {

namespace {

constexpr float NEG_INF = -std::numeric_limits<float>::infinity();

class greedy final : public cloneable<greedy> {
public:
    const char *name() const override { return "greedy"; }
    void apply(gptneox_token_data_array *cur) override {
        if (cur->size == 0) return;
        int64_t best = 0;
        for (size_t i = 1; i < cur->size; ++i)
            if (cur->data[i].logit > cur->data[best].logit) best = (int64_t)i;
        cur->selected = best;
    }
};

class dist final : public cloneable<dist> {
public:
    explicit dist(uint32_t seed) : rng_(seed) {}
    const char *name() const override { return "dist"; }
    void apply(gptneox_token_data_array *cur) override {
        if (cur->size == 0) {
            cur->selected = -1;
            return;
        }
        softmax(cur, false);
        cur->selected = draw(cur, rng_.uniform());
    }
    void reset() override { rng_.reseed(rng_.requested()); }
    bool seed(uint32_t &out) const override {
        out = rng_.seed();
        return true;
    }

private:
    rng rng_;
};

class top_k final : public cloneable<top_k> {
public:
    explicit top_k(int32_t k) : k_(k) {}
    const char *name() const override { return "top-k"; }
    void apply(gptneox_token_data_array *cur) override {
        if (k_ <= 0) return;
        keep_top_k(cur, k_);
    }

private:
    int32_t k_;
};

class top_p final : public cloneable<top_p> {
public:
    top_p(float p, size_t min_keep) : p_(p), min_keep_(min_keep) {}
    const char *name() const override { return "top-p"; }
    void apply(gptneox_token_data_array *cur) override {
        if (p_ >= 1.0f || cur->size == 0) return;
        softmax(cur, true);
        float cum = 0.0f;
        size_t last = cur->size;
        for (size_t i = 0; i < cur->size; ++i) {
            cum += cur->data[i].p;
            if (cum >= p_ && i + 1 >= min_keep_) {
                last = i + 1;
                break;
            }
        }
        cur->size = last;
    }

private:
    float p_;
    size_t min_keep_;
};

class min_p final : public cloneable<min_p> {
public:
    min_p(float p, size_t min_keep) : p_(p), min_keep_(min_keep) {}
    const char *name() const override { return "min-p"; }
    void apply(gptneox_token_data_array *cur) override {
        if (p_ <= 0.0f || cur->size == 0) return;
        if (!cur->sorted) {
            // Filter in place, keeping the order, when enough tokens pass.
            float max_l = cur->data[0].logit;
            for (size_t i = 1; i < cur->size; ++i) max_l = std::max(max_l, cur->data[i].logit);
            const float min_l = max_l + std::log(p_);
            size_t kept = 0;
            for (size_t i = 0; i < cur->size; ++i) kept += cur->data[i].logit >= min_l;
            if (kept >= min_keep_) {
                size_t w = 0;
                for (size_t i = 0; i < cur->size; ++i)
                    if (cur->data[i].logit >= min_l) cur->data[w++] = cur->data[i];
                cur->size = w;
                return;
            }
        }
        sort_desc(cur);
        const float min_l = cur->data[0].logit + std::log(p_);
        size_t i = 1;
        for (; i < cur->size; ++i)
            if (cur->data[i].logit < min_l && i >= min_keep_) break;
        cur->size = i;
    }

private:
    float p_;
    size_t min_keep_;
};

class typical final : public cloneable<typical> {
public:
    typical(float p, size_t min_keep) : p_(p), min_keep_(min_keep) {}
    const char *name() const override { return "typical"; }
    void apply(gptneox_token_data_array *cur) override {
        if (p_ >= 1.0f || cur->size == 0) return;
        softmax(cur, true);
        const size_t n = cur->size;
        float entropy = 0.0f;
        for (size_t i = 0; i < n; ++i) {
            const float p = cur->data[i].p;
            if (p > 0.0f) entropy -= p * std::log(p);
        }
        shifted_.resize(n);
        order_.resize(n);
        tmp_.resize(n);
        for (size_t i = 0; i < n; ++i) shifted_[i] = std::fabs(-std::log(cur->data[i].p) - entropy);
        std::iota(order_.begin(), order_.end(), size_t(0));
        std::sort(order_.begin(), order_.end(), [&](size_t a, size_t b) {
            return shifted_[a] < shifted_[b] || (shifted_[a] == shifted_[b] && a < b);
        });
        float cum = 0.0f;
        size_t last = n;
        for (size_t i = 0; i < n; ++i) {
            cum += cur->data[order_[i]].p;
            if (cum > p_ && (min_keep_ == 0 || i + 1 >= min_keep_)) {
                last = i + 1;
                break;
            }
        }
        for (size_t i = 0; i < last; ++i) tmp_[i] = cur->data[order_[i]];
        std::copy(tmp_.begin(), tmp_.begin() + (ptrdiff_t)last, cur->data);
        cur->size = last;
        cur->sorted = false;
    }

private:
    float p_;
    size_t min_keep_;
    std::vector<float> shifted_;           // scratch, kept between calls
    std::vector<size_t> order_;            // scratch
    std::vector<gptneox_token_data> tmp_;  // scratch
};

void apply_temp(gptneox_token_data_array *cur, float t) {
    if (cur->size == 0) return;
    if (t <= 0.0f) {
        size_t best = 0;
        for (size_t i = 1; i < cur->size; ++i)
            if (cur->data[i].logit > cur->data[best].logit) best = i;
        for (size_t i = 0; i < cur->size; ++i)
            if (i != best) cur->data[i].logit = NEG_INF;
        return;
    }
    for (size_t i = 0; i < cur->size; ++i) cur->data[i].logit /= t;
}

class temp final : public cloneable<temp> {
public:
    explicit temp(float t) : t_(t) {}
    const char *name() const override { return "temp"; }
    void apply(gptneox_token_data_array *cur) override { apply_temp(cur, t_); }

private:
    float t_;
};

class temp_ext final : public cloneable<temp_ext> {
public:
    temp_ext(float t, float delta, float exponent) : t_(t), delta_(delta), exponent_(exponent) {}
    const char *name() const override { return "temp-ext"; }
    void apply(gptneox_token_data_array *cur) override {
        if (delta_ <= 0.0f) {
            apply_temp(cur, t_);
            return;
        }
        if (cur->size <= 1) return;
        const float min_t = std::max(0.0f, t_ - delta_), max_t = t_ + delta_;
        const float max_entropy = -std::log(1.0f / float(cur->size));
        softmax(cur, true);
        float entropy = 0.0f;
        for (size_t i = 0; i < cur->size; ++i) {
            const float p = cur->data[i].p;
            if (p > 0.0f) entropy -= p * std::log(p);
        }
        const float normalized = entropy / max_entropy;
        const float dyn_t = min_t + (max_t - min_t) * std::pow(normalized, exponent_);
        for (size_t i = 0; i < cur->size; ++i) cur->data[i].logit /= dyn_t;
        softmax(cur, false); // still sorted: dividing by a positive number keeps the order
    }

private:
    float t_, delta_, exponent_;
};

class xtc final : public cloneable<xtc> {
public:
    xtc(float p, float t, size_t min_keep, uint32_t seed) : p_(p), t_(t), min_keep_(min_keep), rng_(seed) {}
    const char *name() const override { return "xtc"; }
    void apply(gptneox_token_data_array *cur) override {
        if (p_ <= 0.0f || t_ > 0.5f || cur->size < 2) return;
        const double chance = rng_.uniform();
        if (chance > p_) return;
        softmax(cur, true);
        size_t pos_last = 0;
        for (size_t i = 0; i < cur->size; ++i) {
            if (cur->data[i].p >= t_) pos_last = i;
            else break;
        }
        if (cur->size - pos_last >= min_keep_ && pos_last > 0) {
            cur->data += pos_last;
            cur->size -= pos_last;
        }
    }
    void reset() override { rng_.reseed(rng_.requested()); }
    bool seed(uint32_t &out) const override {
        out = rng_.seed();
        return true;
    }

private:
    float p_, t_;
    size_t min_keep_;
    rng rng_;
};

class top_n_sigma final : public cloneable<top_n_sigma> {
public:
    explicit top_n_sigma(float n) : n_(n) {}
    const char *name() const override { return "top-n-sigma"; }
    void apply(gptneox_token_data_array *cur) override {
        if (n_ <= 0.0f || cur->size <= 1) return;
        float max_l = NEG_INF;
        double sum = 0.0;
        size_t valid = 0;
        for (size_t i = 0; i < cur->size; ++i) {
            const float l = cur->data[i].logit;
            if (std::isfinite(l)) {
                max_l = std::max(max_l, l);
                sum += l;
                ++valid;
            }
        }
        if (valid == 0) return;
        const double mean = sum / double(valid);
        double acc = 0.0;
        for (size_t i = 0; i < cur->size; ++i) {
            const float l = cur->data[i].logit;
            if (std::isfinite(l)) acc += (l - mean) * (l - mean);
        }
        const float sigma = (float)std::sqrt(acc / double(valid));
        const float cut = max_l - n_ * sigma;
        for (size_t i = 0; i < cur->size; ++i)
            if (cur->data[i].logit < cut) cur->data[i].logit = NEG_INF;
    }

private:
    float n_;
};

class logit_bias final : public cloneable<logit_bias> {
public:
    logit_bias(int32_t n_vocab, std::vector<gptneox_logit_bias> bias) : n_vocab_(n_vocab), bias_(std::move(bias)) {
        pending_.reserve(bias_.size());
    }
    const char *name() const override { return "logit-bias"; }
    void apply(gptneox_token_data_array *cur) override {
        if (bias_.empty()) return;
        pending_.clear(); // capacity kept: no allocation
        // Fast path: candidates still in id order (data[id].id == id).
        for (const gptneox_logit_bias &b : bias_) {
            if (b.token >= 0 && (size_t)b.token < cur->size && cur->data[b.token].id == b.token)
                cur->data[b.token].logit += b.bias;
            else
                pending_.push_back(b);
        }
        if (pending_.empty()) return;
        for (size_t i = 0; i < cur->size; ++i)
            for (const gptneox_logit_bias &b : pending_)
                if (cur->data[i].id == b.token) {
                    cur->data[i].logit += b.bias;
                    break;
                }
    }

private:
    int32_t n_vocab_;
    std::vector<gptneox_logit_bias> bias_;
    std::vector<gptneox_logit_bias> pending_;
};

} // namespace

std::unique_ptr<sampler_base> make_greedy() { return std::make_unique<greedy>(); }
std::unique_ptr<sampler_base> make_dist(uint32_t seed) { return std::make_unique<dist>(seed); }
std::unique_ptr<sampler_base> make_top_k(int32_t k) { return std::make_unique<top_k>(k); }
std::unique_ptr<sampler_base> make_top_p(float p, size_t min_keep) { return std::make_unique<top_p>(p, min_keep); }
std::unique_ptr<sampler_base> make_min_p(float p, size_t min_keep) { return std::make_unique<min_p>(p, min_keep); }
std::unique_ptr<sampler_base> make_typical(float p, size_t min_keep) {
    return std::make_unique<typical>(p, min_keep);
}
std::unique_ptr<sampler_base> make_temp(float t) { return std::make_unique<temp>(t); }
std::unique_ptr<sampler_base> make_temp_ext(float t, float delta, float exponent) {
    return std::make_unique<temp_ext>(t, delta, exponent);
}
std::unique_ptr<sampler_base> make_xtc(float p, float t, size_t min_keep, uint32_t seed) {
    return std::make_unique<xtc>(p, t, min_keep, seed);
}
std::unique_ptr<sampler_base> make_top_n_sigma(float n) { return std::make_unique<top_n_sigma>(n); }
std::unique_ptr<sampler_base> make_logit_bias(int32_t n_vocab, int32_t n, const gptneox_logit_bias *bias) {
    if (n < 0) fail(GPTNEOX_STATUS_INVALID_ARGUMENT, "n_logit_bias is negative (%d)", n);
    if (n > 0 && !bias) fail(GPTNEOX_STATUS_INVALID_ARGUMENT, "logit_bias is NULL");
    std::vector<gptneox_logit_bias> v(bias, bias + n);
    return std::make_unique<logit_bias>(n_vocab, std::move(v));
}

} // namespace gptneox::sampling
