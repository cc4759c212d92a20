// The grammar matcher and sampler (see grammar.h).
//
// The matcher keeps the set of parse stacks reachable after the accepted text. Text is fed as UTF-8: each
// complete code point advances every stack whose top class holds it; an incomplete trailing sequence is
// kept pending and only checked for whether some top class holds a code point it could still become.
// Stack sets are interned as automaton states with memoized transitions (grammar.h), so tokens sharing a
// first character share that step and a token whose first code point has no transition is rejected at
// once. The sampler precomputes each token's text once; apply() sets -inf on every candidate whose text
// cannot continue, and on end-of-generation tokens unless some stack is complete.
#include <algorithm>
#include <cmath>
#include <limits>
#include <optional>
#include <regex>

#include "common/status.h"
#include "sampling/grammar.h"

namespace gptneox::sampling {

namespace {

// Decodes one code point from s[i..n). Returns 1 and the code point, 0 for an incomplete (but so far
// valid) sequence with [lo, hi] the code points it could become, or -1 for invalid bytes.
int decode(const unsigned char *s, size_t n, size_t &i, uint32_t &cp, uint32_t &lo, uint32_t &hi) {
    const unsigned char c = s[i];
    int len = c < 0x80 ? 1 : (c >> 5) == 6 ? 2 : (c >> 4) == 14 ? 3 : (c >> 3) == 30 ? 4 : 0;
    if (len == 0) return -1;
    uint32_t v = len == 1 ? c : (uint32_t)(c & (0x7F >> len));
    int got = 1;
    for (; got < len && i + (size_t)got < n; ++got) {
        const unsigned char d = s[i + (size_t)got];
        if ((d & 0xC0) != 0x80) return -1;
        v = (v << 6) | (d & 0x3F);
    }
    static const uint32_t min_cp[5] = {0, 0, 0x80, 0x800, 0x10000}; // shortest form of each length
    if (got < len) {
        const int rest = len - got;
        lo = std::max(v << (6 * rest), min_cp[len]);
        hi = std::min((v << (6 * rest)) | ((1u << (6 * rest)) - 1), 0x10FFFFu);
        if (lo > hi) return -1;
        i = n;
        return 0;
    }
    if (v < min_cp[len] || v > 0x10FFFF) return -1; // overlong or out of range
    cp = v;
    i += (size_t)len;
    return 1;
}

} // namespace

grammar_matcher::grammar_matcher(std::shared_ptr<const grammar> g) : g_(std::move(g)) { reset(); }

void grammar_matcher::reset() {
    pending_.clear();
    stack_set start;
    stack st;
    // Start: one stack per alternative of the root.
    for (uint32_t a : g_->rules[g_->root]) {
        st.assign(1, a);
        expand(st, start);
    }
    dedupe(start);
    states_.clear();
    ids_.clear();
    trans_.clear();
    cur_id_ = intern(start);
}

// st's top may be END or REF: pop finished alternatives and expand references until every resulting
// stack has a CHARS top (or is empty = complete); appends them to out.
void grammar_matcher::expand(stack &st, stack_set &out) const {
    while (!st.empty()) {
        const grammar::elem &e = g_->elems[st.back()];
        if (e.k == grammar::END) {
            st.pop_back();
            continue;
        }
        if (e.k == grammar::CHARS) break;
        // REF: continuation then each alternative
        st.back() += 1;
        for (uint32_t a : g_->rules[e.a]) {
            stack s2 = st;
            s2.push_back(a);
            expand(s2, out);
        }
        return;
    }
    out.push_back(st);
}

void grammar_matcher::dedupe(stack_set &v) {
    if (v.size() < 2) return;
    std::sort(v.begin(), v.end());
    v.erase(std::unique(v.begin(), v.end()), v.end());
}

void grammar_matcher::step(const stack_set &in, uint32_t cp, stack_set &out) const {
    out.clear();
    for (const stack &st : in) {
        if (st.empty() || !g_->class_has(g_->elems[st.back()], cp)) continue;
        stack s2 = st;
        s2.back() += 1;
        expand(s2, out);
    }
    dedupe(out);
}

uint32_t grammar_matcher::intern(const stack_set &set) {
    auto it = ids_.find(set);
    if (it != ids_.end()) return it->second;
    const uint32_t id = (uint32_t)states_.size();
    states_.push_back(set);
    ids_.emplace(set, id);
    return id;
}

uint32_t grammar_matcher::next(uint32_t state, uint32_t cp) {
    const uint64_t key = ((uint64_t)state << 21) | cp;
    auto it = trans_.find(key);
    if (it != trans_.end()) return it->second;
    step(states_[state], cp, tmp_);
    const uint32_t to = tmp_.empty() ? DEAD : intern(tmp_);
    trans_.emplace(key, to);
    return to;
}

bool grammar_matcher::partial_ok(uint32_t state, uint32_t lo, uint32_t hi) const {
    for (const stack &st : states_[state])
        if (!st.empty() && g_->class_meets(g_->elems[st.back()], lo, hi)) return true;
    return false;
}

uint32_t grammar_matcher::run(uint32_t state, const unsigned char *u, size_t len, size_t *pend_at) {
    size_t i = 0;
    while (i < len) {
        uint32_t cp = 0, lo = 0, hi = 0;
        const size_t at = i;
        const int r = decode(u, len, i, cp, lo, hi);
        if (r < 0) return DEAD;
        if (r == 0) {
            if (!partial_ok(state, lo, hi)) return DEAD;
            if (pend_at) *pend_at = at;
            return state;
        }
        state = next(state, cp);
        if (state == DEAD) return DEAD;
    }
    if (pend_at) *pend_at = len;
    return state;
}

void grammar_matcher::flush_if_large() {
    if (states_.size() <= MAX_STATES) return;
    const stack_set keep = states_[cur_id_];
    states_.clear();
    ids_.clear();
    trans_.clear();
    cur_id_ = intern(keep);
}

bool grammar_matcher::feed(const char *s, size_t n) {
    work_text_.assign(pending_);
    work_text_.append(s, n);
    size_t pend_at = 0;
    const uint32_t to =
        run(cur_id_, (const unsigned char *)work_text_.data(), work_text_.size(), &pend_at);
    if (to == DEAD) return false;
    cur_id_ = to;
    pending_.assign(work_text_, pend_at, std::string::npos);
    flush_if_large();
    return true;
}

bool grammar_matcher::can_feed(const char *s, size_t n) {
    if (pending_.empty()) return run(cur_id_, (const unsigned char *)s, n, nullptr) != DEAD;
    work_text_.assign(pending_);
    work_text_.append(s, n);
    return run(cur_id_, (const unsigned char *)work_text_.data(), work_text_.size(), nullptr) != DEAD;
}

bool grammar_matcher::complete() const {
    if (!pending_.empty()) return false;
    for (const stack &st : states_[cur_id_])
        if (st.empty()) return true;
    return false;
}

// ---------------------------------------------------------------------------------------------------
// The sampler

namespace {

struct token_text {
    std::vector<char> bytes;          // all token texts, concatenated
    std::vector<uint32_t> off;        // token i: bytes[off[i] .. off[i+1])
    std::vector<uint8_t> eog;         // 1 for end-of-generation tokens
};

// What wakes a lazy grammar: trigger tokens (sorted) and patterns matched against the whole text so far.
struct lazy_triggers {
    std::vector<gptneox_token> tokens;
    std::vector<std::regex> patterns;
};

class grammar_sampler final : public cloneable<grammar_sampler> {
public:
    // g may be null (an empty grammar text): the sampler then changes nothing, as llama.cpp's does.
    // With `lazy`, nothing is constrained until a trigger fires (see gptneox.h).
    grammar_sampler(std::shared_ptr<const grammar> g, std::shared_ptr<const token_text> t,
                    std::shared_ptr<const lazy_triggers> lazy = nullptr)
        : t_(std::move(t)), lazy_(std::move(lazy)), awaiting_(lazy_ != nullptr) {
        if (g) m_.emplace(std::move(g));
    }
    const char *name() const override { return "grammar"; }

    void apply(gptneox_token_data_array *cur) override {
        if (!m_ || awaiting_) return; // empty grammar or lazy and not yet triggered: no constraint
        const float ninf = -std::numeric_limits<float>::infinity();
        const bool done = m_->complete();
        const int32_t n_tok = (int32_t)t_->eog.size();
        for (size_t i = 0; i < cur->size; ++i) {
            gptneox_token_data &d = cur->data[i];
            if (d.logit == ninf) continue;
            if (d.id < 0 || d.id >= n_tok) {
                d.logit = ninf;
                continue;
            }
            if (t_->eog[(size_t)d.id]) {
                if (!done) d.logit = ninf;
                continue;
            }
            const char *s = t_->bytes.data() + t_->off[(size_t)d.id];
            const size_t n = t_->off[(size_t)d.id + 1] - t_->off[(size_t)d.id];
            if (n == 0 || !m_->can_feed(s, n)) d.logit = ninf; // ASCII first bytes: cached first step
        }
    }

    void accept(gptneox_token token) override {
        const int32_t n_tok = (int32_t)t_->eog.size();
        if (token < 0 || token >= n_tok) fail(GPTNEOX_STATUS_INVALID_ARGUMENT, "grammar: token %d out of range", token);
        if (!m_) return;
        const char *s = t_->bytes.data() + t_->off[(size_t)token];
        const size_t n = t_->off[(size_t)token + 1] - t_->off[(size_t)token];
        if (awaiting_) {
            wait(token, s, n);
            return;
        }
        if (t_->eog[(size_t)token]) return;
        if (!m_->feed(s, n))
            fail(GPTNEOX_STATUS_INVALID_ARGUMENT, "grammar: token %d does not continue the grammar", token);
    }

    void reset() override {
        if (m_) m_->reset();
        awaiting_ = lazy_ != nullptr;
        buffer_.clear();
    }

private:
    // Lazy and not triggered: a trigger token starts the grammar on its own text; otherwise the text so far
    // is matched against each pattern, and a match starts it on the text from the first capturing group that
    // took part in the match (else from the match start).
    void wait(gptneox_token token, const char *s, size_t n) {
        if (std::binary_search(lazy_->tokens.begin(), lazy_->tokens.end(), token)) {
            start(s, n);
            return;
        }
        buffer_.append(s, n);
        for (const std::regex &re : lazy_->patterns) {
            std::smatch m;
            if (!std::regex_match(buffer_, m, re)) continue;
            size_t at = (size_t)m.position(0);
            for (size_t i = 1; i < m.size(); ++i)
                if (m[i].matched) {
                    at = (size_t)m.position(i);
                    break;
                }
            std::string text = buffer_.substr(at);
            start(text.data(), text.size());
            return;
        }
    }
    void start(const char *s, size_t n) {
        awaiting_ = false;
        buffer_.clear();
        m_->reset();
        if (n > 0 && !m_->feed(s, n))
            fail(GPTNEOX_STATUS_INVALID_ARGUMENT, "grammar: the trigger text does not continue the grammar");
    }

    std::optional<grammar_matcher> m_;
    std::shared_ptr<const token_text> t_;
    std::shared_ptr<const lazy_triggers> lazy_; // null: not lazy
    bool awaiting_ = false;
    std::string buffer_; // text accepted while awaiting a trigger
};

// The text of every token of the vocabulary.
std::shared_ptr<const token_text> vocab_text(const gptneox_vocab *vocab, const char *what) {
    auto t = std::make_shared<token_text>();
    const int32_t n = gptneox_vocab_n_tokens(vocab);
    if (n <= 0) fail(GPTNEOX_STATUS_INVALID_ARGUMENT, "%s: empty vocabulary", what);
    t->off.reserve((size_t)n + 1);
    t->eog.resize((size_t)n);
    std::vector<char> buf(256);
    for (int32_t i = 0; i < n; ++i) {
        t->off.push_back((uint32_t)t->bytes.size());
        t->eog[(size_t)i] = gptneox_vocab_is_eog(vocab, i) ? 1 : 0;
        int32_t k = gptneox_token_to_piece(vocab, i, buf.data(), (int32_t)buf.size(), 0, false);
        if (k < 0) {
            buf.resize((size_t)-k);
            k = gptneox_token_to_piece(vocab, i, buf.data(), (int32_t)buf.size(), 0, false);
        }
        if (k > 0) t->bytes.insert(t->bytes.end(), buf.data(), buf.data() + k);
    }
    t->off.push_back((uint32_t)t->bytes.size());
    return t;
}

} // namespace

std::unique_ptr<sampler_base> make_grammar(const gptneox_vocab *vocab, const char *grammar_str,
                                           const char *grammar_root) {
    static const char *what = "gptneox_sampler_init_grammar";
    if (!vocab) fail(GPTNEOX_STATUS_INVALID_ARGUMENT, "%s: vocab is NULL", what);
    if (!grammar_str) fail(GPTNEOX_STATUS_INVALID_ARGUMENT, "%s: grammar_str is NULL", what);
    std::shared_ptr<const grammar> g;
    if (*grammar_str) g = parse_grammar(grammar_str, grammar_root && *grammar_root ? grammar_root : "root");
    return std::make_unique<grammar_sampler>(std::move(g), vocab_text(vocab, what));
}

std::unique_ptr<sampler_base> make_grammar_lazy(const gptneox_vocab *vocab, const char *grammar_str,
                                                const char *grammar_root, const char **trigger_patterns,
                                                size_t num_trigger_patterns, const gptneox_token *trigger_tokens,
                                                size_t num_trigger_tokens) {
    static const char *what = "gptneox_sampler_init_grammar_lazy_patterns";
    if (!vocab) fail(GPTNEOX_STATUS_INVALID_ARGUMENT, "%s: vocab is NULL", what);
    if (!grammar_str) fail(GPTNEOX_STATUS_INVALID_ARGUMENT, "%s: grammar_str is NULL", what);
    if (num_trigger_patterns > 0 && !trigger_patterns)
        fail(GPTNEOX_STATUS_INVALID_ARGUMENT, "%s: trigger_patterns is NULL", what);
    if (num_trigger_tokens > 0 && !trigger_tokens)
        fail(GPTNEOX_STATUS_INVALID_ARGUMENT, "%s: trigger_tokens is NULL", what);
    std::shared_ptr<const grammar> g;
    if (*grammar_str) g = parse_grammar(grammar_str, grammar_root && *grammar_root ? grammar_root : "root");
    auto lazy = std::make_shared<lazy_triggers>();
    const int32_t n_vocab = gptneox_vocab_n_tokens(vocab);
    for (size_t i = 0; i < num_trigger_tokens; ++i) {
        if (trigger_tokens[i] < 0 || trigger_tokens[i] >= n_vocab)
            fail(GPTNEOX_STATUS_INVALID_ARGUMENT, "%s: trigger token %d out of range", what, trigger_tokens[i]);
        lazy->tokens.push_back(trigger_tokens[i]);
    }
    std::sort(lazy->tokens.begin(), lazy->tokens.end());
    for (size_t i = 0; i < num_trigger_patterns; ++i) {
        if (!trigger_patterns[i]) fail(GPTNEOX_STATUS_INVALID_ARGUMENT, "%s: trigger pattern %zu is NULL", what, i);
        try {
            lazy->patterns.emplace_back(trigger_patterns[i], std::regex::ECMAScript);
        } catch (const std::regex_error &e) {
            fail(GPTNEOX_STATUS_INVALID_ARGUMENT, "%s: bad trigger pattern %zu (%s): %s", what, i, trigger_patterns[i],
                 e.what());
        }
    }
    return std::make_unique<grammar_sampler>(std::move(g), vocab_text(vocab, what), std::move(lazy));
}

} // namespace gptneox::sampling
