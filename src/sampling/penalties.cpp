// Samplers with a token history: repetition penalties (repeat / frequency / presence) and DRY.
#include <algorithm>
#include <cmath>
#include <cstring>
#include <string>
#include <unordered_map>

#include "common/status.h"
#include "sampling/sampling.h"

namespace gptneox::sampling {

namespace {

// Token ids at or above this are not tracked (they cannot come from a real vocabulary).
constexpr int32_t MAX_TRACKED_ID = 1 << 24;

// The last `cap` tokens, oldest first; rat(i) is the i-th most recent.
class ring {
public:
    explicit ring(size_t cap = 0) : cap_(cap) {}
    size_t size() const { return buf_.size(); }
    size_t cap() const { return cap_; }
    // Push; returns true and the dropped token when the ring was full.
    bool push(gptneox_token t, gptneox_token &dropped) {
        if (cap_ == 0) return false;
        if (buf_.size() < cap_) {
            buf_.push_back(t);
            return false;
        }
        dropped = buf_[head_];
        buf_[head_] = t;
        head_ = (head_ + 1) % cap_;
        return true;
    }
    gptneox_token rat(size_t i) const { // i < size()
        const size_t n = buf_.size();
        const size_t newest = buf_.size() < cap_ ? n - 1 : (head_ + cap_ - 1) % cap_;
        return buf_[(newest + n - i) % n];
    }
    void clear() {
        buf_.clear();
        head_ = 0;
    }

private:
    size_t cap_;
    size_t head_ = 0; // oldest element once full
    std::vector<gptneox_token> buf_;
};

class penalties final : public cloneable<penalties> {
public:
    penalties(int32_t last_n, float repeat, float freq, float present)
        : last_n_(std::max(last_n, 0)), repeat_(repeat), freq_(freq), present_(present), hist_((size_t)last_n_) {}
    const char *name() const override { return "penalties"; }
    void accept(gptneox_token token) override {
        if (last_n_ == 0) return;
        gptneox_token dropped = 0;
        if (hist_.push(token, dropped)) count(dropped, -1);
        count(token, +1);
    }
    void apply(gptneox_token_data_array *cur) override {
        if (last_n_ == 0 || (repeat_ == 1.0f && freq_ == 0.0f && present_ == 0.0f)) return;
        for (size_t i = 0; i < cur->size; ++i) {
            const gptneox_token id = cur->data[i].id;
            if (id < 0 || (size_t)id >= counts_.size() || counts_[id] == 0) continue;
            const int32_t c = counts_[id];
            float &l = cur->data[i].logit;
            if (l <= 0.0f) l *= repeat_;
            else l /= repeat_;
            l -= float(c) * freq_ + present_;
        }
        cur->sorted = false;
    }
    void reset() override {
        hist_.clear();
        std::fill(counts_.begin(), counts_.end(), 0);
    }

private:
    void count(gptneox_token t, int32_t delta) {
        if (t < 0 || t >= MAX_TRACKED_ID) return;
        if ((size_t)t >= counts_.size()) counts_.resize((size_t)t + 1, 0); // grows only past the largest id
        counts_[t] += delta;
    }

    int32_t last_n_;
    float repeat_, freq_, present_;
    ring hist_;
    std::vector<int32_t> counts_; // occurrences in hist_, by token id
};

// DRY ("Don't Repeat Yourself", p-e-w's sampler as in llama.cpp).
class dry final : public cloneable<dry> {
public:
    dry(float multiplier, float base, int32_t allowed_length, int32_t last_n, size_t cap,
        std::unordered_multimap<gptneox_token, std::vector<gptneox_token>> breakers)
        : multiplier_(multiplier), base_(base), allowed_(allowed_length), last_n_(last_n), hist_(cap),
          breakers_(std::move(breakers)) {}
    const char *name() const override { return "dry"; }
    void accept(gptneox_token token) override {
        if (!enabled()) return;
        gptneox_token dropped;
        hist_.push(token, dropped);
    }
    void reset() override { hist_.clear(); }
    void apply(gptneox_token_data_array *cur) override {
        if (!enabled()) return;
        const int64_t n_hist = (int64_t)std::min(hist_.size(), hist_.cap());
        if (n_hist <= allowed_) return;
        const int64_t n = n_hist;

        // 1. The most recent sequence breaker limits how far back a repeat may reach.
        int64_t rep_limit = n;
        for (int64_t i = 0; i < n; ++i) {
            auto range = breakers_.equal_range(hist_.rat((size_t)i));
            int64_t longest = -1;
            for (auto it = range.first; it != range.second; ++it) {
                const int64_t len = (int64_t)it->second.size(); // tail after the head token
                if (len <= longest || len > i) continue;
                bool match = true;
                for (int64_t o = 0; o < len && match; ++o) match = it->second[o] == hist_.rat((size_t)(i - o - 1));
                if (match) longest = len;
            }
            if (longest >= 0) {
                rep_limit = i - longest;
                break;
            }
        }
        if (rep_limit < allowed_) return;

        // 2. Z-function of the history read backwards: z[k] = length of the common suffix of the history
        //    and the history without its last k tokens.
        rev_.resize((size_t)n);
        z_.assign((size_t)n, 0);
        for (int64_t i = 0; i < n; ++i) rev_[i] = hist_.rat((size_t)i);
        z_[0] = n;
        for (int64_t k = 1, l = 0, r = 0; k < n; ++k) {
            int64_t zk = 0;
            if (k < r) zk = std::min(r - k, z_[k - l]);
            while (k + zk < n && rev_[zk] == rev_[k + zk]) ++zk;
            z_[k] = zk;
            if (k + zk > r) {
                l = k;
                r = k + zk;
            }
        }

        // 3. The token after each such repeat would extend it: keep the longest repeat per token.
        touched_.clear();
        for (int64_t k = 1; k < n; ++k) {
            const int64_t len = std::min(z_[k], rep_limit);
            if (len < allowed_) continue;
            const gptneox_token next = rev_[k - 1];
            if (next < 0 || next >= MAX_TRACKED_ID) continue;
            if ((size_t)next >= max_rep_.size()) max_rep_.resize((size_t)next + 1, -1);
            if (max_rep_[next] < 0) touched_.push_back(next);
            max_rep_[next] = std::max<int64_t>(max_rep_[next], len);
        }
        if (touched_.empty()) return;

        // 4. Penalize (single-token breakers never are). base^exp is capped below float overflow.
        int64_t max_exp = 0;
        if (base_ > 1.000001f) max_exp = (int64_t)(88.7228391f / std::log(base_));
        for (size_t i = 0; i < cur->size; ++i) {
            const gptneox_token id = cur->data[i].id;
            if (id < 0 || (size_t)id >= max_rep_.size() || max_rep_[id] < 0) continue;
            bool single_breaker = false;
            auto range = breakers_.equal_range(id);
            for (auto it = range.first; it != range.second && !single_breaker; ++it)
                single_breaker = it->second.empty();
            if (single_breaker) continue;
            int64_t e = max_rep_[id] - allowed_;
            if (max_exp > 0 && e > max_exp) e = max_exp;
            cur->data[i].logit -= multiplier_ * std::pow(base_, (float)e);
        }
        for (gptneox_token t : touched_) max_rep_[t] = -1;
        cur->sorted = false;
    }

private:
    bool enabled() const { return multiplier_ != 0.0f && base_ >= 1.0f && last_n_ != 0; }

    float multiplier_, base_;
    int32_t allowed_, last_n_;
    ring hist_;
    std::unordered_multimap<gptneox_token, std::vector<gptneox_token>> breakers_; // head -> tail
    // scratch, kept between calls
    std::vector<gptneox_token> rev_;
    std::vector<int64_t> z_;
    std::vector<int64_t> max_rep_; // by token id, -1 = none
    std::vector<gptneox_token> touched_;
};

// Every way `str` can start inside a token: a token containing all of str is a single-token breaker
// (empty tail); a token ending with a proper prefix of str is a head whose tail is the tokenization of
// the rest of str (cut to max_tail tokens).
void add_breaker(const gptneox_vocab *vocab, const std::string &str, size_t max_tail,
                 std::unordered_multimap<gptneox_token, std::vector<gptneox_token>> &out) {
    const int32_t n_vocab = gptneox_vocab_n_tokens(vocab);
    std::vector<char> buf(256);
    std::vector<gptneox_token> toks;
    for (gptneox_token id = 0; id < n_vocab; ++id) {
        int32_t len = gptneox_token_to_piece(vocab, id, buf.data(), (int32_t)buf.size(), 0, true);
        if (len < 0) {
            buf.resize((size_t)-len);
            len = gptneox_token_to_piece(vocab, id, buf.data(), (int32_t)buf.size(), 0, true);
            if (len < 0) continue;
        }
        const std::string word(buf.data(), (size_t)len);
        if (word.find(str) != std::string::npos) {
            out.emplace(id, std::vector<gptneox_token>());
            continue;
        }
        for (size_t pos = word.find(str[0]); pos != std::string::npos; pos = word.find(str[0], pos + 1)) {
            // word[pos:] must be a prefix of str (it is shorter than str, or find() above would have hit)
            const size_t m = word.size() - pos;
            if (m >= str.size() || word.compare(pos, m, str, 0, m) != 0) continue;
            const std::string rest = str.substr(m);
            int32_t nt = gptneox_vocab_tokenize(vocab, rest.data(), (int32_t)rest.size(), nullptr, 0, false, false);
            toks.assign((size_t)(nt < 0 ? -nt : nt), 0);
            if (!toks.empty())
                nt = gptneox_vocab_tokenize(vocab, rest.data(), (int32_t)rest.size(), toks.data(),
                                            (int32_t)toks.size(), false, false);
            if (nt < 0) continue;
            toks.resize(std::min((size_t)nt, max_tail));
            bool dup = false;
            auto range = out.equal_range(id);
            for (auto it = range.first; it != range.second && !dup; ++it) dup = it->second == toks;
            if (!dup) out.emplace(id, toks);
        }
    }
}

} // namespace

std::unique_ptr<sampler_base> make_penalties(int32_t last_n, float repeat, float freq, float present) {
    if (!std::isfinite(repeat) || !std::isfinite(freq) || !std::isfinite(present))
        fail(GPTNEOX_STATUS_INVALID_ARGUMENT, "penalties must be finite");
    return std::make_unique<penalties>(last_n, repeat, freq, present);
}

std::unique_ptr<sampler_base> make_dry(const gptneox_vocab *vocab, int32_t n_ctx_train, float multiplier, float base,
                                       int32_t allowed_length, int32_t penalty_last_n, const char **breakers,
                                       size_t n_breakers) {
    constexpr size_t MAX_CHARS = 40, MAX_TAIL = 20;
    const bool enabled = multiplier != 0.0f && base >= 1.0f && penalty_last_n != 0;
    std::unordered_multimap<gptneox_token, std::vector<gptneox_token>> processed;
    size_t cap = 0;
    if (enabled) {
        if (n_breakers > 0 && !breakers) fail(GPTNEOX_STATUS_INVALID_ARGUMENT, "dry: seq_breakers is NULL");
        if (n_breakers > 0 && !vocab) fail(GPTNEOX_STATUS_INVALID_ARGUMENT, "dry: sequence breakers need a vocab");
        const int32_t ctx_size = n_ctx_train > 0 ? n_ctx_train : 4096;
        cap = penalty_last_n < 0 ? (size_t)ctx_size : (size_t)penalty_last_n;
        for (size_t i = 0; i < n_breakers; ++i) {
            if (!breakers[i] || !breakers[i][0]) {
                log(GPTNEOX_LOG_LEVEL_WARN, "dry: ignoring an empty sequence breaker\n");
                continue;
            }
            std::string s(breakers[i]);
            if (s.size() > MAX_CHARS) s.resize(MAX_CHARS);
            add_breaker(vocab, s, MAX_TAIL, processed);
        }
    }
    return std::make_unique<dry>(multiplier, base, allowed_length, penalty_last_n, cap, std::move(processed));
}

} // namespace gptneox::sampling
