// Grammar tests (no model needed): GBNF parse errors (with line/column), and the matcher against a brute
// force reference. For each grammar, the test enumerates every string of up to L units over a small
// alphabet that std::regex (an equivalent regular expression) accepts; after any accepted token history,
// a vocabulary token must be allowed iff history + token text is a byte prefix of one of those strings,
// and the matcher must be complete iff the history itself is one. The vocabulary has multi-token
// words, a two-byte UTF-8 character and its two bytes as separate (partial) tokens.
// Prints "N passed, M failed"; exits 1 on failure.
#include <cstdio>
#include <random>
#include <regex>
#include <set>
#include <string>
#include <vector>

#include "common/status.h"
#include "sampling/grammar.h"

using gptneox::sampling::grammar_matcher;
using gptneox::sampling::parse_grammar;

namespace {

int g_pass = 0, g_fail = 0;

void check(bool ok, const std::string &what) {
    if (ok) {
        g_pass++;
        return;
    }
    g_fail++;
    if (g_fail <= 30) std::printf("FAIL %s\n", what.c_str());
}

std::string parse_error(const std::string &text, const std::string &root = "root") {
    try {
        parse_grammar(text, root);
    } catch (const gptneox::error &e) {
        return e.what();
    }
    return "";
}

// é, U+0A69 and U+29A69 (so that 3- and 4-byte lead bytes have a continuation in "." / "[^b]")
const std::vector<std::string> ALPHABET = {"a", "b", "c", "x", "y", "\xC3\xA9", "\xE0\xA9\xA9", "\xF0\xA9\xA9\xA9"};
const std::vector<std::string> VOCAB = {"a", "b", "c", "x", "ab", "ax", "xx", "bx", "cx", "abx", "\xC3\xA9",
                                        "b\xC3\xA9", "\xC3\xA9x", "\xC3", "\xA9", "\xA9x", "y", "ca", "\xC0", "\xF0", "\xE0"};
constexpr int MAX_UNITS = 6;

size_t units(const std::string &s) { // code points (a lone lead byte counts as one)
    size_t n = 0;
    for (unsigned char c : s) n += (c & 0xC0) != 0x80;
    return n;
}

void enumerate(const std::regex &re, std::string &cur, int depth, std::set<std::string> &lang) {
    if (std::regex_match(cur, re)) lang.insert(cur);
    if (depth == MAX_UNITS) return;
    for (const std::string &u : ALPHABET) {
        const size_t n = cur.size();
        cur += u;
        enumerate(re, cur, depth + 1, lang);
        cur.resize(n);
    }
}

bool is_prefix(const std::set<std::string> &lang, const std::string &p) {
    auto it = lang.lower_bound(p);
    return it != lang.end() && it->compare(0, p.size(), p) == 0;
}

void check_grammar(const char *name, const std::string &gbnf, const std::string &regex) {
    std::set<std::string> lang;
    std::string cur;
    enumerate(std::regex(regex), cur, 0, lang);
    check(!lang.empty(), std::string(name) + ": reference language is empty");
    grammar_matcher proto(parse_grammar(gbnf, "root"));
    // Histories: up to 2 tokens; only checked while history + token fits well inside MAX_UNITS (3 units of
    // slack: every grammar here can finish a word within 3 more units).
    std::vector<std::string> histories = {""};
    for (const std::string &a : VOCAB) {
        histories.push_back(a);
        for (const std::string &b : VOCAB) histories.push_back(a + "|" + b);
    }
    for (const std::string &h : histories) {
        grammar_matcher m = proto;
        std::string text;
        bool ok = true;
        size_t start = 0;
        while (ok && !h.empty()) {
            const size_t bar = h.find('|', start);
            const std::string tok = h.substr(start, bar == std::string::npos ? std::string::npos : bar - start);
            const bool want = is_prefix(lang, text + tok);
            const bool got = m.feed(tok.data(), tok.size());
            check(got == want, std::string(name) + ": feed '" + text + "' + '" + tok + "'");
            if (!got) ok = false;
            text += tok;
            if (bar == std::string::npos) break;
            start = bar + 1;
        }
        if (!ok || units(text) > MAX_UNITS - 3) continue;
        check(m.complete() == (lang.count(text) > 0), std::string(name) + ": complete after '" + text + "'");
        for (const std::string &t : VOCAB) {
            if (units(text + t) > MAX_UNITS - 3) continue;
            const bool want = is_prefix(lang, text + t);
            check(m.can_feed(t.data(), t.size()) == want,
                  std::string(name) + ": allowed '" + t + "' after '" + text + "' want " + (want ? "yes" : "no"));
        }
    }
}

} // namespace

int main() {
    // Parse errors: message names the line and column.
    {
        std::string e = parse_error("root ::= \"a\"\nfoo ::= [b");
        check(e.find("line 2") != std::string::npos && e.find("unterminated character class") != std::string::npos,
              "unterminated class: " + e);
        e = parse_error("root ::= \"abc");
        check(e.find("line 1") != std::string::npos && e.find("unterminated string") != std::string::npos,
              "unterminated string: " + e);
        e = parse_error("root ::= foo");
        check(e.find("undefined rule 'foo'") != std::string::npos && e.find("column 10") != std::string::npos,
              "undefined rule: " + e);
        e = parse_error("root = \"a\"");
        check(e.find("'::='") != std::string::npos, "missing ::=: " + e);
        e = parse_error("root ::= \"a\" )");
        check(e.find("newline") != std::string::npos, "stray ): " + e);
        e = parse_error("root ::= (\"a\" | \"b\"\n");
        check(e.find("')'") != std::string::npos, "unclosed group: " + e);
        e = parse_error("root ::= \"\\q\"");
        check(e.find("escape") != std::string::npos, "bad escape: " + e);
        e = parse_error("root ::= \"a\"{3,1}");
        check(e.find("minimum") != std::string::npos, "bad repetition: " + e);
        e = parse_error("root ::= * \"a\"");
        check(e.find("preceding") != std::string::npos, "dangling *: " + e);
        e = parse_error("root ::= root \"a\" | \"b\"");
        check(e.find("left-recursive") != std::string::npos, "left recursion: " + e);
        e = parse_error("root ::= x\nx ::= \"c\"? root");
        check(e.find("left-recursive") != std::string::npos, "indirect left recursion: " + e);
        e = parse_error("main ::= \"a\"", "root");
        check(e.find("no root rule 'root'") != std::string::npos, "missing root: " + e);
        e = parse_error("root ::= " + std::string(100000, '(') + "\"a\"" + std::string(100000, ')'));
        check(e.find("nested too deeply") != std::string::npos, "deep nesting: " + e);
        e = parse_error("root ::= \"a\"\nroot ::= \"b\"");
        check(e.find("defined twice") != std::string::npos, "duplicate rule: " + e);
        check(parse_error("# only a comment\nroot ::= \"a\" # c\n\n  # c2\nmain ::= (\n  \"b\" |\n  \"c\"\n)\n",
                          "main") == "",
              "valid grammar with comments and multi-line groups");
        check(parse_error("root ::= [^\\]\\-\\x41] . \"\\u00e9\\U0001F600\\n\\t\\\\\"") == "", "escapes");
    }

    check_grammar("alt", "root ::= (\"ab\" | \"a\" [cd]) \"x\"{1,2}", "(ab|a[cd])x{1,2}");
    check_grammar("plus", "root ::= (w \"x\")+\nw ::= \"a\" | \"b\" \"\xC3\xA9\"?", "((a|b(\xC3\xA9)?)x)+");
    check_grammar("neg-any", "root ::= [^b] . \"x\"?", "(a|c|x|y|\xC3\xA9|\xE0\xA9\xA9|\xF0\xA9\xA9\xA9)(a|b|c|x|y|\xC3\xA9|\xE0\xA9\xA9|\xF0\xA9\xA9\xA9)x?");
    check_grammar("star", "# c\nroot ::= \"a\" ( \"b\" | c-rule )* # t\nc-rule ::= \"c\" |\n  \"x\" \"x\"",
                  "a(b|c|xx)*");
    check_grammar("range", "root ::= [a-c\xC3\xA9]{2} | \"x\"{0,1} \"\xC3\xA9\"", "(a|b|c|\xC3\xA9){2}|x?\xC3\xA9");
    check_grammar("empty-alt", "root ::= \"a\" opt \"b\"\nopt ::= | \"c\" | \"xc\"", "a(c|xc)?b");

    // Matcher state: feed rejects leave the state unchanged; reset returns to the start.
    {
        grammar_matcher m(parse_grammar("root ::= \"ab\"", "root"));
        check(!m.feed("b", 1), "reject b");
        check(m.feed("a", 1), "accept a after reject");
        check(!m.complete(), "not complete after a");
        check(m.feed("b", 1) && m.complete(), "complete after ab");
        m.reset();
        check(!m.complete() && m.can_feed("ab", 2), "reset");
    }

    // Random mutations of a valid grammar: parse or throw gptneox::error, never crash (run under ASan).
    {
        const std::string base = "root ::= (\"a\" | [b-d]{1,3} item)* \"\\x41\" .\nitem ::= [^x\\]]+ | \"e\"?\n";
        std::mt19937 rng(7);
        const std::string junk = "()[]{}|*+?\"\\:=#\n -^.,0123456789ax";
        int ok = 0, errs = 0;
        for (int i = 0; i < 3000; ++i) {
            std::string g = base;
            for (int k = 0; k < 1 + (int)(rng() % 3); ++k) {
                const size_t at = rng() % (g.size() + 1);
                if (rng() % 2 && at < g.size()) g.erase(at, 1);
                else g.insert(at, 1, junk[rng() % junk.size()]);
            }
            try {
                grammar_matcher m(parse_grammar(g, "root"));
                m.can_feed("abca", 4);
                ++ok;
            } catch (const gptneox::error &) {
                ++errs;
            }
        }
        check(ok > 0 && errs > 0, "mutated grammars: some parse, some fail");
    }

    std::printf("%d passed, %d failed\n", g_pass, g_fail);
    return g_fail ? 1 : 0;
}
