// GBNF grammar sampler (gptneox_sampler_init_grammar). The grammar syntax is llama.cpp's GBNF
// (grammars/README.md); the parser and matcher are our own.
//
// A parsed grammar is a flat array of elements. Each rule is a list of alternatives; each alternative is
// a run of elements ending with END. Groups and repetitions become synthetic rules, so only three
// element kinds remain: CHARS (a code-point class), REF (a rule) and END.
#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <unordered_map>
#include <vector>

#include "gptneox.h"
#include "sampling/sampling.h"

namespace gptneox::sampling {

struct grammar {
    enum kind : uint8_t { END, CHARS, REF };
    struct elem {
        kind k = END;
        bool negated = false; // CHARS: matches code points NOT in the ranges
        uint32_t a = 0;       // CHARS: first range index; REF: rule id
        uint32_t n = 0;       // CHARS: number of ranges
    };
    std::vector<elem> elems;
    std::vector<std::pair<uint32_t, uint32_t>> ranges; // inclusive [lo, hi]
    std::vector<std::vector<uint32_t>> rules;          // rule id -> start index of each alternative
    std::vector<std::string> names;                    // rule id -> name (synthetic: "name_N")
    uint32_t root = 0;

    bool class_has(const elem &e, uint32_t cp) const {
        bool in = false;
        for (uint32_t i = 0; i < e.n && !in; ++i) in = cp >= ranges[e.a + i].first && cp <= ranges[e.a + i].second;
        return in != e.negated;
    }
    // Whether any code point in [lo, hi] is in the class.
    bool class_meets(const elem &e, uint32_t lo, uint32_t hi) const;
};

// Parses GBNF text; throws gptneox::error (INVALID_ARGUMENT, "line L, column C: ...") on a bad grammar,
// an undefined rule, a missing root or left recursion.
std::shared_ptr<const grammar> parse_grammar(const std::string &text, const std::string &root);

// The matcher over a parsed grammar: the set of parse stacks reachable after the accepted text.
// Stacks hold element indices (top = back), each top a CHARS element; an empty stack is complete.
// Distinct stack sets are interned as states of a lazily built automaton whose transitions (state, code
// point) are memoized, so checking a whole vocabulary is mostly hash lookups once warm.
class grammar_matcher {
public:
    explicit grammar_matcher(std::shared_ptr<const grammar> g);
    void reset();
    // Feeds bytes (UTF-8, possibly ending in a partial sequence carried to the next call). Returns false,
    // leaving the state unchanged, if the bytes cannot continue any stack.
    bool feed(const char *s, size_t n);
    // Whether the bytes could be fed (no state change).
    bool can_feed(const char *s, size_t n);
    bool complete() const; // some stack is complete and no partial UTF-8 is pending
    size_t n_stacks() const { return states_[cur_id_].size(); }

private:
    using stack = std::vector<uint32_t>;
    using stack_set = std::vector<stack>; // sorted, no duplicates
    static constexpr uint32_t DEAD = UINT32_MAX;
    static constexpr size_t MAX_STATES = 20000; // cache size that triggers a flush (between tokens)

    void expand(stack &st, stack_set &out) const; // normalize: top must be CHARS or empty
    void step(const stack_set &in, uint32_t cp, stack_set &out) const;
    static void dedupe(stack_set &v);
    // The lazily built automaton: each distinct stack set seen is a state; transitions are memoized.
    uint32_t intern(const stack_set &set);
    uint32_t next(uint32_t state, uint32_t cp);
    bool partial_ok(uint32_t state, uint32_t lo, uint32_t hi) const;
    // Runs bytes from `state`; DEAD if they cannot continue. *pend_at: start of a trailing partial sequence.
    uint32_t run(uint32_t state, const unsigned char *u, size_t len, size_t *pend_at);
    void flush_if_large();

    std::shared_ptr<const grammar> g_;
    uint32_t cur_id_ = 0;
    std::string pending_; // bytes of an incomplete UTF-8 sequence
    std::vector<stack_set> states_;
    std::map<stack_set, uint32_t> ids_;
    std::unordered_map<uint64_t, uint32_t> trans_; // (state << 21 | cp) -> state or DEAD
    stack_set tmp_;
    std::string work_text_;
};

std::unique_ptr<sampler_base> make_grammar(const gptneox_vocab *vocab, const char *grammar_str,
                                           const char *grammar_root);
// The lazy grammar of gptneox_sampler_init_grammar_lazy_patterns (gptneox.h).
std::unique_ptr<sampler_base> make_grammar_lazy(const gptneox_vocab *vocab, const char *grammar_str,
                                                const char *grammar_root, const char **trigger_patterns,
                                                size_t num_trigger_patterns, const gptneox_token *trigger_tokens,
                                                size_t num_trigger_tokens);

} // namespace gptneox::sampling
