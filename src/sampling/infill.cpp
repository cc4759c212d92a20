// The infill sampler (gptneox_sampler_init_infill; llama.cpp's llama_sampler_init_infill), for
// fill-in-the-middle generation, meant to run after top-k / top-p:
//
//  1. softmax (sorted). If 3 * P(EOG) * n > P(text) (P summed over the end-of-generation candidates and
//     over the others, n candidates), keep only the EOG candidates, p renormalized over them.
//  2. Otherwise merge candidates whose text is a prefix of another's ("hel" of "hello"): for each ordered
//     pair (i0, i1) with a non-empty text(i0) that is a prefix of text(i1), both logits finite, the more
//     probable one (i0 on ties) takes the other's p, and the other gets p = 0, logit = -inf.
//  3. Keep the EOG candidates and those with p >= 0.2; if no non-EOG one is left, the array becomes the
//     single candidate {EOT (else EOS), logit 1} (p as it was). Else renormalize, then keep the EOG ones
//     and those with p >= 1 / (n_non_eog + 1), and renormalize again.
//
// Texts are token pieces without special tokens (control tokens have empty text), read from the
// vocabulary at init: the sampler does not refer to the model afterwards.
#include <cmath>
#include <cstring>
#include <limits>
#include <memory>
#include <string>
#include <vector>

#include "common/status.h"
#include "sampling/sampling.h"

namespace gptneox::sampling {

namespace {

// What the sampler needs of the vocabulary, copied at init and shared by clones.
struct infill_vocab {
    std::string bytes;          // all pieces back to back
    std::vector<uint32_t> off;  // [n + 1] piece i is bytes[off[i], off[i+1])
    std::vector<uint8_t> eog;   // [n]
    gptneox_token eot = GPTNEOX_TOKEN_NULL, eos = GPTNEOX_TOKEN_NULL;

    int32_t n() const { return (int32_t)eog.size(); }
    bool is_eog(gptneox_token t) const { return t >= 0 && t < n() && eog[(size_t)t]; }
    // Piece of `t` (empty for ids out of range, as token_to_piece writes nothing for them).
    const char *piece(gptneox_token t, size_t &len) const {
        if (t < 0 || t >= n()) {
            len = 0;
            return bytes.data();
        }
        len = off[(size_t)t + 1] - off[(size_t)t];
        return bytes.data() + off[(size_t)t];
    }
};

std::shared_ptr<const infill_vocab> read_vocab(const gptneox_vocab *vocab) {
    static const char *what = "gptneox_sampler_init_infill";
    if (!vocab) fail(GPTNEOX_STATUS_INVALID_ARGUMENT, "%s: vocab is NULL", what);
    const int32_t n = gptneox_vocab_n_tokens(vocab);
    if (n <= 0) fail(GPTNEOX_STATUS_INVALID_ARGUMENT, "%s: empty vocabulary", what);
    auto v = std::make_shared<infill_vocab>();
    v->off.reserve((size_t)n + 1);
    v->eog.resize((size_t)n);
    std::vector<char> buf(256);
    for (int32_t i = 0; i < n; ++i) {
        v->off.push_back((uint32_t)v->bytes.size());
        v->eog[(size_t)i] = gptneox_vocab_is_eog(vocab, i) ? 1 : 0;
        int32_t k = gptneox_token_to_piece(vocab, i, buf.data(), (int32_t)buf.size(), 0, false);
        if (k < 0) {
            buf.resize((size_t)-k);
            k = gptneox_token_to_piece(vocab, i, buf.data(), (int32_t)buf.size(), 0, false);
        }
        if (k > 0) v->bytes.append(buf.data(), (size_t)k);
    }
    v->off.push_back((uint32_t)v->bytes.size());
    v->eot = gptneox_vocab_eot(vocab);
    v->eos = gptneox_vocab_eos(vocab);
    return v;
}

class infill final : public cloneable<infill> {
public:
    explicit infill(std::shared_ptr<const infill_vocab> v) : v_(std::move(v)) {}
    const char *name() const override { return "infill"; }
    void apply(gptneox_token_data_array *cur) override;

private:
    // Keep EOG candidates and those with p >= thold; returns the kept p sum, counts kept non-EOG ones.
    float keep_above(gptneox_token_data_array *cur, float thold, size_t &n_non_eog) const;
    static void normalize(gptneox_token_data_array *cur, float sum) {
        for (size_t i = 0; i < cur->size; ++i) cur->data[i].p /= sum;
    }
    void merge_prefixes(gptneox_token_data_array *cur) const;

    std::shared_ptr<const infill_vocab> v_;
};

float infill::keep_above(gptneox_token_data_array *cur, float thold, size_t &n_non_eog) const {
    const size_t n = cur->size;
    float sum = 0.0f;
    n_non_eog = 0;
    cur->size = 0;
    for (size_t i = 0; i < n; ++i) {
        const bool eog = v_->is_eog(cur->data[i].id);
        if (!eog && cur->data[i].p < thold) continue;
        if (!eog) ++n_non_eog;
        sum += cur->data[i].p;
        cur->data[cur->size++] = cur->data[i];
    }
    return sum;
}

void infill::merge_prefixes(gptneox_token_data_array *cur) const {
    constexpr float NEG_INF = -std::numeric_limits<float>::infinity();
    gptneox_token_data *d = cur->data;
    for (size_t i0 = 0; i0 < cur->size; ++i0) {
        for (size_t i1 = 0; i1 < cur->size; ++i1) {
            if (d[i0].logit == NEG_INF) break; // i0 was merged into another candidate
            if (i0 == i1 || d[i1].logit == NEG_INF) continue;
            size_t len0 = 0, len1 = 0;
            const char *s0 = v_->piece(d[i0].id, len0);
            const char *s1 = v_->piece(d[i1].id, len1);
            if (len0 == 0 || len0 > len1 || std::memcmp(s0, s1, len0) != 0) continue;
            size_t dst = i0, src = i1; // merge into the more probable one
            if (d[i1].p > d[i0].p) std::swap(dst, src);
            d[dst].p += d[src].p;
            d[src].logit = NEG_INF;
            d[src].p = 0.0f;
        }
    }
}

void infill::apply(gptneox_token_data_array *cur) {
    if (cur->size == 0) return;
    softmax(cur, true);

    float p_txt = 0.0f, p_eog = 0.0f;
    for (size_t i = 0; i < cur->size; ++i) (v_->is_eog(cur->data[i].id) ? p_eog : p_txt) += cur->data[i].p;

    size_t n_non_eog = 0;
    if (3.0f * p_eog * (float)cur->size > p_txt) { // text too unlikely: end here
        const float sum = keep_above(cur, std::numeric_limits<float>::infinity(), n_non_eog);
        normalize(cur, sum);
        return;
    }

    merge_prefixes(cur);

    float sum = keep_above(cur, 0.2f, n_non_eog);
    if (n_non_eog == 0) { // nothing but EOG is likely: a single end-of-text candidate
        gptneox_token t = v_->eot != GPTNEOX_TOKEN_NULL ? v_->eot : v_->eos;
        if (t == GPTNEOX_TOKEN_NULL)
            fail(GPTNEOX_STATUS_INVALID_ARGUMENT, "infill: the vocabulary has no EOT/EOS token");
        cur->size = 1;
        cur->data[0].id = t;
        cur->data[0].logit = 1.0f;
        return;
    }
    normalize(cur, sum);

    sum = keep_above(cur, (float)(1.0 / double(n_non_eog + 1)), n_non_eog);
    normalize(cur, sum);
}

} // namespace

std::unique_ptr<sampler_base> make_infill(const gptneox_vocab *vocab) {
    return std::make_unique<infill>(read_vocab(vocab));
}

} // namespace gptneox::sampling
