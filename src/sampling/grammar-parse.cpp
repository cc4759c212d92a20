// GBNF text -> grammar (see grammar.h). Syntax: rules `name ::= alternatives`, `|`, sequences, groups
// `( )`, postfix `* + ?` and `{m}` `{m,}` `{m,n}`, string literals, character classes `[a-z]` / `[^...]`,
// `.` (any code point), `#` comments. Newlines end a rule except inside groups or after `::=` / `|`.
#include <algorithm>
#include <functional>
#include <map>

#include "common/status.h"
#include "sampling/grammar.h"

namespace gptneox::sampling {

namespace {

constexpr uint32_t MAX_REPEAT = 10000;
constexpr int MAX_DEPTH = 256; // nesting of groups (the parser recurses)

class parser {
public:
    parser(const std::string &text, grammar &g) : s_(text), g_(g) {}

    void run() {
        skip(true);
        while (p_ < s_.size()) {
            const std::string name = parse_name();
            skip(false);
            if (s_.compare(p_, 3, "::=") != 0) err("expected '::='");
            p_ += 3;
            skip(true);
            const uint32_t id = rule_id(name);
            if (defined_.size() <= id) defined_.resize(id + 1, false);
            if (defined_[id]) err("rule '" + name + "' is defined twice");
            defined_[id] = true;
            parse_alternates(id, false);
            if (p_ < s_.size() && s_[p_] != '\n' && s_[p_] != '\r') err("expected a newline or the end");
            skip(true);
        }
        for (uint32_t i = 0; i < g_.names.size(); ++i)
            if (i >= defined_.size() || !defined_[i]) {
                p_ = first_use_[i];
                err("undefined rule '" + g_.names[i] + "'");
            }
    }

private:
    [[noreturn]] void err(const std::string &msg) const {
        size_t line = 1, col = 1;
        for (size_t i = 0; i < p_ && i < s_.size(); ++i) {
            if (s_[i] == '\n') {
                ++line;
                col = 1;
            } else {
                ++col;
            }
        }
        fail(GPTNEOX_STATUS_INVALID_ARGUMENT, "grammar parse error at line %zu, column %zu: %s", line, col,
             msg.c_str());
    }

    static bool name_char(char c) {
        return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '-' || c == '_';
    }

    void skip(bool newlines) {
        while (p_ < s_.size()) {
            const char c = s_[p_];
            if (c == ' ' || c == '\t') ++p_;
            else if (c == '#') {
                while (p_ < s_.size() && s_[p_] != '\n' && s_[p_] != '\r') ++p_;
            } else if (newlines && (c == '\n' || c == '\r')) ++p_;
            else break;
        }
    }

    std::string parse_name() {
        const size_t b = p_;
        while (p_ < s_.size() && name_char(s_[p_])) ++p_;
        if (p_ == b) err("expected a rule name");
        return s_.substr(b, p_ - b);
    }

    uint32_t rule_id(const std::string &name) {
        auto it = ids_.find(name);
        if (it != ids_.end()) return it->second;
        const uint32_t id = (uint32_t)g_.names.size();
        ids_[name] = id;
        g_.names.push_back(name);
        g_.rules.emplace_back();
        first_use_.push_back(p_ >= name.size() ? p_ - name.size() : 0);
        return id;
    }

    uint32_t new_rule(uint32_t parent) {
        const std::string name = g_.names[parent] + "_" + std::to_string(g_.names.size());
        const uint32_t id = rule_id(name);
        if (defined_.size() <= id) defined_.resize(id + 1, false);
        defined_[id] = true;
        return id;
    }

    // Decodes one UTF-8 code point of the grammar text.
    uint32_t utf8() {
        const unsigned char c = (unsigned char)s_[p_];
        int n = c < 0x80 ? 0 : (c >> 5) == 6 ? 1 : (c >> 4) == 14 ? 2 : (c >> 3) == 30 ? 3 : -1;
        if (n < 0) err("invalid UTF-8");
        uint32_t cp = n == 0 ? c : (c & (0x3F >> n));
        ++p_;
        for (int i = 0; i < n; ++i, ++p_) {
            if (p_ >= s_.size() || ((unsigned char)s_[p_] & 0xC0) != 0x80) err("invalid UTF-8");
            cp = (cp << 6) | ((unsigned char)s_[p_] & 0x3F);
        }
        return cp;
    }

    uint32_t hex(int digits) {
        uint32_t v = 0;
        for (int i = 0; i < digits; ++i, ++p_) {
            if (p_ >= s_.size()) err("incomplete escape");
            const char c = s_[p_];
            int d = c >= '0' && c <= '9' ? c - '0' : c >= 'a' && c <= 'f' ? c - 'a' + 10 : c >= 'A' && c <= 'F' ? c - 'A' + 10 : -1;
            if (d < 0) err("expected a hex digit");
            v = v * 16 + (uint32_t)d;
        }
        return v;
    }

    // One (possibly escaped) character of a literal or class.
    uint32_t parse_char() {
        if (p_ >= s_.size()) err("unexpected end of grammar");
        if (s_[p_] != '\\') return utf8();
        ++p_;
        if (p_ >= s_.size()) err("unexpected end of grammar after '\\'");
        const char c = s_[p_++];
        switch (c) {
        case 'n': return '\n';
        case 'r': return '\r';
        case 't': return '\t';
        case '\\': case '"': case '[': case ']': case '-': case '\'': case '^': return (uint32_t)c;
        case 'x': return hex(2);
        case 'u': return hex(4);
        case 'U': return hex(8);
        default: --p_; err(std::string("unknown escape '\\") + c + "'");
        }
    }

    using seq = std::vector<grammar::elem>;

    void add_alt(uint32_t rule, const seq &s) {
        g_.rules[rule].push_back((uint32_t)g_.elems.size());
        g_.elems.insert(g_.elems.end(), s.begin(), s.end());
        g_.elems.push_back(grammar::elem{});
    }

    static grammar::elem ref(uint32_t rule) {
        grammar::elem e;
        e.k = grammar::REF;
        e.a = rule;
        return e;
    }

    void parse_alternates(uint32_t rule, bool nested) {
        // Alternatives are built into a local list first: nested groups add rules and elements meanwhile.
        std::vector<seq> alts;
        alts.push_back(parse_sequence(rule, nested));
        while (p_ < s_.size() && s_[p_] == '|') {
            ++p_;
            skip(true);
            alts.push_back(parse_sequence(rule, nested));
        }
        for (const seq &a : alts) add_alt(rule, a);
    }

    seq parse_sequence(uint32_t rule, bool nested) {
        seq out;
        size_t last = 0; // start of the last item in out
        bool have_last = false;
        while (p_ < s_.size()) {
            const char c = s_[p_];
            if (c == '"') {
                ++p_;
                last = out.size();
                have_last = true;
                while (p_ < s_.size() && s_[p_] != '"') {
                    const uint32_t cp = parse_char();
                    grammar::elem e;
                    e.k = grammar::CHARS;
                    e.a = (uint32_t)g_.ranges.size();
                    e.n = 1;
                    g_.ranges.emplace_back(cp, cp);
                    out.push_back(e);
                }
                if (p_ >= s_.size()) err("unterminated string literal");
                ++p_;
            } else if (c == '[') {
                ++p_;
                grammar::elem e;
                e.k = grammar::CHARS;
                e.a = (uint32_t)g_.ranges.size();
                if (p_ < s_.size() && s_[p_] == '^') {
                    e.negated = true;
                    ++p_;
                }
                while (p_ < s_.size() && s_[p_] != ']') {
                    const uint32_t lo = parse_char();
                    uint32_t hi = lo;
                    if (p_ + 1 < s_.size() && s_[p_] == '-' && s_[p_ + 1] != ']') {
                        ++p_;
                        hi = parse_char();
                        if (hi < lo) err("character range is reversed");
                    }
                    g_.ranges.emplace_back(lo, hi);
                    ++e.n;
                }
                if (p_ >= s_.size()) err("unterminated character class");
                ++p_;
                last = out.size();
                have_last = true;
                out.push_back(e);
            } else if (c == '.') {
                ++p_;
                grammar::elem e;
                e.k = grammar::CHARS;
                e.negated = true; // not in the empty set
                e.a = (uint32_t)g_.ranges.size();
                last = out.size();
                have_last = true;
                out.push_back(e);
            } else if (c == '(') {
                if (++depth_ > MAX_DEPTH) err("groups nested too deeply");
                ++p_;
                skip(true);
                const uint32_t sub = new_rule(rule);
                parse_alternates(sub, true);
                if (p_ >= s_.size() || s_[p_] != ')') err("expected ')'");
                ++p_;
                --depth_;
                last = out.size();
                have_last = true;
                out.push_back(ref(sub));
            } else if (name_char(c)) {
                const size_t at = p_;
                const std::string name = parse_name();
                size_t q = p_;
                while (q < s_.size() && (s_[q] == ' ' || s_[q] == '\t')) ++q;
                if (s_.compare(q, 3, "::=") == 0) {
                    p_ = at; // the next rule starts here (no newline before it)
                    err("expected a newline before the next rule");
                }
                last = out.size();
                have_last = true;
                out.push_back(ref(rule_id(name)));
            } else if (c == '*' || c == '+' || c == '?' || c == '{') {
                if (!have_last) err(std::string("'") + c + "' without a preceding item");
                uint32_t lo = 0, hi = 0;
                bool unbounded = false;
                ++p_;
                if (c == '*') unbounded = true;
                else if (c == '+') {
                    lo = 1;
                    unbounded = true;
                } else if (c == '?') hi = 1;
                else {
                    skip(false);
                    lo = parse_int();
                    skip(false);
                    if (p_ < s_.size() && s_[p_] == ',') {
                        ++p_;
                        skip(false);
                        if (p_ < s_.size() && s_[p_] >= '0' && s_[p_] <= '9') hi = parse_int();
                        else unbounded = true;
                    } else {
                        hi = lo;
                    }
                    skip(false);
                    if (p_ >= s_.size() || s_[p_] != '}') err("expected '}'");
                    ++p_;
                    if (!unbounded && hi < lo) err("repetition maximum is below the minimum");
                }
                repeat(rule, out, last, lo, hi, unbounded);
                have_last = false;
            } else {
                break;
            }
            skip(nested);
        }
        return out;
    }

    uint32_t parse_int() {
        const size_t b = p_;
        uint32_t v = 0;
        while (p_ < s_.size() && s_[p_] >= '0' && s_[p_] <= '9') {
            v = v * 10 + (uint32_t)(s_[p_] - '0');
            if (v > MAX_REPEAT) err("repetition count too large");
            ++p_;
        }
        if (p_ == b) err("expected a number");
        return v;
    }

    // Replaces out[last..] (one item) by lo copies then (hi - lo) optional copies, or a star if unbounded.
    void repeat(uint32_t rule, seq &out, size_t last, uint32_t lo, uint32_t hi, bool unbounded) {
        const seq item(out.begin() + (ptrdiff_t)last, out.end());
        out.resize(last);
        for (uint32_t i = 0; i < lo; ++i) out.insert(out.end(), item.begin(), item.end());
        if (unbounded) {
            const uint32_t star = new_rule(rule); // star ::= item star | <empty>
            seq a = item;
            a.push_back(ref(star));
            add_alt(star, a);
            add_alt(star, seq{});
            out.push_back(ref(star));
        } else if (hi > lo) {
            // opt_k ::= item opt_{k-1} | <empty>, built innermost first
            uint32_t inner = UINT32_MAX;
            for (uint32_t i = lo; i < hi; ++i) {
                const uint32_t r = new_rule(rule);
                seq a = item;
                if (inner != UINT32_MAX) a.push_back(ref(inner));
                add_alt(r, a);
                add_alt(r, seq{});
                inner = r;
            }
            out.push_back(ref(inner));
        }
    }

    const std::string &s_;
    grammar &g_;
    size_t p_ = 0;
    int depth_ = 0;
    std::map<std::string, uint32_t> ids_;
    std::vector<bool> defined_;
    std::vector<size_t> first_use_;

public:
    bool has(const std::string &name, uint32_t &id) const {
        auto it = ids_.find(name);
        if (it == ids_.end()) return false;
        id = it->second;
        return true;
    }
};

// Rejects left recursion (it would make the matcher's expansion loop).
void check_left_recursion(const grammar &g) {
    const size_t n = g.rules.size();
    std::vector<bool> nullable(n, false);
    for (bool changed = true; changed;) {
        changed = false;
        for (size_t r = 0; r < n; ++r) {
            if (nullable[r]) continue;
            for (uint32_t a : g.rules[r]) {
                uint32_t i = a;
                while (g.elems[i].k == grammar::REF && nullable[g.elems[i].a]) ++i;
                if (g.elems[i].k == grammar::END) {
                    nullable[r] = changed = true;
                    break;
                }
            }
        }
    }
    // left[r]: rules that can start r
    std::vector<int> state(n, 0); // 0 new, 1 on path, 2 done
    std::function<void(uint32_t)> visit = [&](uint32_t r) {
        state[r] = 1;
        for (uint32_t a : g.rules[r]) {
            for (uint32_t i = a; g.elems[i].k == grammar::REF; ++i) {
                const uint32_t t = g.elems[i].a;
                if (state[t] == 1)
                    fail(GPTNEOX_STATUS_INVALID_ARGUMENT, "grammar error: rule '%s' is left-recursive",
                         g.names[t].c_str());
                if (state[t] == 0) visit(t);
                if (!nullable[t]) break;
            }
        }
        state[r] = 2;
    };
    for (uint32_t r = 0; r < n; ++r)
        if (state[r] == 0) visit(r);
}

} // namespace

bool grammar::class_meets(const elem &e, uint32_t lo, uint32_t hi) const {
    if (!e.negated) {
        for (uint32_t i = 0; i < e.n; ++i)
            if (ranges[e.a + i].first <= hi && ranges[e.a + i].second >= lo) return true;
        return false;
    }
    // Negated: some point of [lo, hi] outside every range. Walk up from lo past covering ranges.
    uint32_t x = lo;
    for (bool moved = true; moved;) {
        moved = false;
        for (uint32_t i = 0; i < e.n; ++i)
            if (ranges[e.a + i].first <= x && ranges[e.a + i].second >= x) {
                if (ranges[e.a + i].second >= hi) return false;
                x = ranges[e.a + i].second + 1;
                moved = true;
            }
    }
    return x <= hi;
}

std::shared_ptr<const grammar> parse_grammar(const std::string &text, const std::string &root) {
    auto g = std::make_shared<grammar>();
    parser p(text, *g);
    p.run();
    if (g->rules.empty()) fail(GPTNEOX_STATUS_INVALID_ARGUMENT, "grammar error: the grammar has no rules");
    uint32_t id = 0;
    if (!p.has(root, id)) fail(GPTNEOX_STATUS_INVALID_ARGUMENT, "grammar error: no root rule '%s'", root.c_str());
    g->root = id;
    check_left_recursion(*g);
    return g;
}

} // namespace gptneox::sampling
