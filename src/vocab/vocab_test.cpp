// Tokenizer unit tests on small vocabularies built in the test (vocab::load_from): unigram Viterbi
// against a brute force over every segmentation, the chunked Viterbi against a whole-text Viterbi
// written here, byte fallback and unknowns, user-defined symbols, byte-level BPE against a reference
// merge loop, the byte trie against a map, UTF-8 validation against the strict decoder, and the C API's
// buffer protocol (negative sizes) and raw byte pieces. Plain main(); prints "N passed, M failed".
#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <map>
#include <random>
#include <string>
#include <vector>

#include "common/status.h"
#include "gptneox.h"
#include "vocab/unicode.h"
#include "vocab/vocab-impl.h"
#include "vocab/vocab.h"

using namespace gptneox;

namespace {

int g_pass = 0, g_fail = 0;

void check(bool ok, const std::string &what) {
    if (ok) {
        ++g_pass;
    } else {
        ++g_fail;
        std::printf("FAIL: %s\n", what.c_str());
    }
}

std::string ids_str(const std::vector<gptneox_token> &v) {
    std::string s = "[";
    for (size_t i = 0; i < v.size(); ++i) s += (i ? " " : "") + std::to_string(v[i]);
    return s + "]";
}

const std::string SP = "\xE2\x96\x81"; // U+2581

// ---- a small sentencepiece unigram vocabulary ----------------------------------------------------------

struct unigram_vocab {
    vocab_source src;
    std::map<std::string, int32_t> id_of; // usable pieces (normal + user-defined)
    int32_t byte0 = -1;                   // id of <0x00> (bytes follow in order), -1: no byte pieces
};

// <unk> <s> </s> <NL>, optionally the 256 byte pieces, then `pieces` with `scores`.
unigram_vocab make_unigram(const std::vector<std::string> &pieces, const std::vector<float> &scores, bool bytes) {
    unigram_vocab u;
    vocab_source &s = u.src;
    s.model = "llama";
    s.sp_model_type = "unigram";
    auto add = [&](const std::string &t, float sc, int32_t type) {
        s.tokens.push_back(t);
        s.scores.push_back(sc);
        s.types.push_back(type);
        return (int32_t)s.tokens.size() - 1;
    };
    s.unk = add("<unk>", 0, SP_UNKNOWN);
    s.bos = add("<s>", 0, SP_CONTROL);
    s.eos = add("</s>", 0, SP_CONTROL);
    u.id_of["<NL>"] = add("<NL>", 0, SP_USER_DEFINED);
    if (bytes) {
        for (int b = 0; b < 256; ++b) {
            char name[8];
            std::snprintf(name, sizeof name, "<0x%02X>", b);
            const int32_t id = add(name, 0, SP_BYTE);
            if (b == 0) u.byte0 = id;
        }
    }
    for (size_t i = 0; i < pieces.size(); ++i) {
        if (u.id_of.count(pieces[i])) continue;
        u.id_of[pieces[i]] = add(pieces[i], scores[i], SP_NORMAL);
    }
    s.add_bos = 0;
    s.add_eos = 0;
    s.add_space_prefix = 0;
    s.remove_extra_whitespaces = 0;
    s.byte_fallback = bytes ? 1 : 0;
    return u;
}

std::string escape_spaces(const std::string &t) {
    std::string n;
    for (char c : t) {
        if (c == ' ') n += SP;
        else n += c;
    }
    return n;
}

// Character boundaries of a normalized string (sentencepiece steps by the lead byte's length).
std::vector<size_t> char_bounds(const std::string &s) {
    std::vector<size_t> b{0};
    for (size_t i = 0; i < s.size();) {
        i += std::min(unicode::utf8_len_lead((uint8_t)s[i]), s.size() - i);
        b.push_back(i);
    }
    return b;
}

struct seg {
    size_t begin, end;
    int32_t id; // -1: unknown
};

// Tokens of a segmentation: unknowns become byte pieces (byte fallback) or one <unk> per run.
std::vector<gptneox_token> seg_tokens(const unigram_vocab &u, const std::string &norm, const std::vector<seg> &segs) {
    std::vector<gptneox_token> out;
    bool prev_unk = false;
    for (const seg &g : segs) {
        if (g.id < 0 && u.byte0 >= 0) {
            for (size_t i = g.begin; i < g.end; ++i) out.push_back(u.byte0 + (uint8_t)norm[i]);
            prev_unk = false;
        } else if (g.id < 0) {
            if (!prev_unk) out.push_back(u.src.unk);
            prev_unk = true;
        } else {
            out.push_back(g.id);
            prev_unk = false;
        }
    }
    return out;
}

// The score sentencepiece gives a piece in the lattice.
double piece_score(const unigram_vocab &u, int32_t id, float max_score) {
    if (u.src.types[id] == SP_USER_DEFINED) return (float)((double)((float)u.src.tokens[id].size() * max_score) - 0.1);
    return u.src.scores[id];
}

float max_normal_score(const unigram_vocab &u) {
    float m = 1.17549435e-38f;
    for (size_t i = 0; i < u.src.tokens.size(); ++i)
        if (u.src.types[i] == SP_NORMAL) m = std::max(m, u.src.scores[i]);
    return m;
}
float min_normal_score(const unigram_vocab &u) {
    float m = 3.4e38f;
    for (size_t i = 0; i < u.src.tokens.size(); ++i)
        if (u.src.types[i] == SP_NORMAL) m = std::min(m, u.src.scores[i]);
    return m;
}

// Edges leaving character boundary `at`: every piece that matches there, and an unknown edge over one
// character when no piece covers exactly that character.
void edges(const unigram_vocab &u, const std::string &norm, const std::vector<size_t> &bounds, size_t k,
           std::vector<seg> &out) {
    out.clear();
    const size_t at = bounds[k];
    bool single = false;
    for (size_t e = k + 1; e < bounds.size() && e <= k + 8; ++e) { // pieces here are <= 8 characters
        const auto it = u.id_of.find(norm.substr(at, bounds[e] - at));
        if (it == u.id_of.end()) continue;
        out.push_back(seg{at, bounds[e], it->second});
        if (e == k + 1) single = true;
    }
    if (!single) out.push_back(seg{at, bounds[k + 1], -1});
}

// Brute force: every segmentation, scored in double. Returns false when the best is not unique by a
// clear margin (the test then skips the string: ties are decided by float rounding and order).
bool brute_force(const unigram_vocab &u, const std::string &norm, std::vector<seg> &best) {
    const std::vector<size_t> bounds = char_bounds(norm);
    const float mx = max_normal_score(u), unk = min_normal_score(u) - 10.0f;
    double best_score = -1e300, second = -1e300;
    std::vector<seg> cur;
    std::vector<std::vector<seg>> edge_cache(bounds.size());
    for (size_t k = 0; k + 1 < bounds.size(); ++k) edges(u, norm, bounds, k, edge_cache[k]);
    auto rec = [&](auto &self, size_t k, double score) -> void {
        if (k + 1 == bounds.size()) {
            if (score > best_score) {
                second = best_score;
                best_score = score;
                best = cur;
            } else if (score > second) {
                second = score;
            }
            return;
        }
        for (const seg &g : edge_cache[k]) {
            const size_t next = (size_t)(std::find(bounds.begin(), bounds.end(), g.end) - bounds.begin());
            cur.push_back(g);
            self(self, next, score + (g.id < 0 ? (double)unk : piece_score(u, g.id, mx)));
            cur.pop_back();
        }
    };
    rec(rec, 0, 0.0);
    return best_score - second > 1e-3;
}

// Whole-text Viterbi as sentencepiece publishes it (float sums, first best kept), written here
// independently of the engine's chunked one.
std::vector<seg> whole_viterbi(const unigram_vocab &u, const std::string &norm) {
    const std::vector<size_t> bounds = char_bounds(norm);
    const float mx = max_normal_score(u), unk = min_normal_score(u) - 10.0f;
    std::vector<float> score(norm.size() + 1, 0.0f);
    std::vector<seg> back(norm.size() + 1, seg{0, 0, -2});
    std::vector<seg> es;
    for (size_t k = 0; k + 1 < bounds.size(); ++k) {
        edges(u, norm, bounds, k, es);
        for (const seg &g : es) {
            const float c = score[g.begin] + (g.id < 0 ? unk : (float)piece_score(u, g.id, mx));
            if (back[g.end].id == -2 || c > score[g.end]) {
                score[g.end] = c;
                back[g.end] = g;
            }
        }
    }
    std::vector<seg> out;
    for (size_t e = norm.size(); e > 0; e = back[e].begin) out.push_back(back[e]);
    std::reverse(out.begin(), out.end());
    return out;
}

std::vector<gptneox_token> encode(const vocab &v, const std::string &text, bool parse_special = false) {
    std::vector<gptneox_token> out;
    v.tokenize(text, false, parse_special, out);
    return out;
}

// ---- tests ---------------------------------------------------------------------------------------------

void test_unigram_brute_force() {
    std::mt19937 rng(1234);
    const std::vector<std::string> alphabet = {"a", "b", "c", SP, "\xE3\x81\x82" /* あ */};
    for (int round = 0; round < 40; ++round) {
        std::vector<std::string> pieces;
        std::vector<float> scores;
        std::uniform_real_distribution<float> sc(-12.0f, -1.0f);
        for (int i = 0; i < 30; ++i) {
            std::string p;
            const int len = 1 + (int)(rng() % 4);
            for (int k = 0; k < len; ++k) p += alphabet[rng() % alphabet.size()];
            pieces.push_back(p);
            scores.push_back(sc(rng));
        }
        for (int bytes = 0; bytes < 2; ++bytes) {
            unigram_vocab u = make_unigram(pieces, scores, bytes != 0);
            vocab v;
            vocab_source src = u.src;
            v.load_from(std::move(src));
            int checked = 0;
            for (int t = 0; t < 60; ++t) {
                std::string text;
                const int len = 1 + (int)(rng() % 9);
                for (int k = 0; k < len; ++k) {
                    const int r = (int)(rng() % 12);
                    if (r < 3) text += "abc"[r];
                    else if (r < 5) text += ' ';
                    else if (r < 7) text += "\xE3\x81\x82";
                    else if (r == 7) text += 'x';                // no piece: unknown
                    else if (r == 8) text += "\xC3\xA9";         // é: unknown, two bytes
                    else if (r == 9) text += "<NL>";             // user-defined
                    else text += "ab"[rng() % 2];
                }
                const std::string norm = escape_spaces(text);
                std::vector<seg> best;
                if (!brute_force(u, norm, best)) continue;
                ++checked;
                const auto want = seg_tokens(u, norm, best);
                const auto got = encode(v, text);
                check(got == want, "unigram brute force round " + std::to_string(round) + " bytes=" +
                                       std::to_string(bytes) + " '" + text + "': got " + ids_str(got) +
                                       " want " + ids_str(want));
            }
            check(checked > 20, "unigram brute force: enough strings without near-ties");
        }
    }
}

void test_unigram_chunks_match_whole_viterbi() {
    // Pieces hold U+2581 only at their start and never '\n': the engine cuts long lattices before
    // either. Long texts must come out exactly as the whole-text Viterbi has them.
    std::mt19937 rng(99);
    const std::vector<std::string> alphabet = {"a", "b", "c", "d", "\xE3\x81\x82"};
    std::vector<std::string> pieces;
    std::vector<float> scores;
    std::uniform_real_distribution<float> sc(-12.0f, -1.0f);
    for (int i = 0; i < 120; ++i) {
        std::string p = (rng() % 3 == 0) ? SP : "";
        const int len = 1 + (int)(rng() % 4);
        for (int k = 0; k < len; ++k) p += alphabet[rng() % alphabet.size()];
        pieces.push_back(p);
        scores.push_back(sc(rng));
    }
    for (int variant = 0; variant < 2; ++variant) {
        if (variant == 1) { // a piece with U+2581 inside: spaces are no longer cut points
            pieces.push_back("a" + SP + "b");
            scores.push_back(-3.0f);
        }
        unigram_vocab u = make_unigram(pieces, scores, true);
        vocab v;
        vocab_source src = u.src;
        v.load_from(std::move(src));
        for (int t = 0; t < 12; ++t) {
            std::string text;
            const size_t len = 3000 + rng() % 20000;
            while (text.size() < len) {
                const int r = (int)(rng() % 16);
                if (r < 8) text += "abcd"[r % 4];
                else if (r < 11) text += ' ';
                else if (r < 13) text += "\xE3\x81\x82";
                else if (r == 13) text += '\n';
                else if (r == 14) text += 'x';
                else text += "<NL>";
            }
            const std::string norm = escape_spaces(text);
            const auto want = seg_tokens(u, norm, whole_viterbi(u, norm));
            const auto got = encode(v, text);
            size_t i = 0;
            while (i < got.size() && i < want.size() && got[i] == want[i]) ++i;
            check(got == want, "chunked Viterbi variant " + std::to_string(variant) + " text " + std::to_string(t) +
                                   " (" + std::to_string(text.size()) + " bytes): first difference at token " +
                                   std::to_string(i));
        }
    }
}

void test_byte_fallback_and_unknown() {
    unigram_vocab with = make_unigram({"a", "b", SP + "a"}, {-1.0f, -2.0f, -1.5f}, true);
    unigram_vocab without = make_unigram({"a", "b", SP + "a"}, {-1.0f, -2.0f, -1.5f}, false);
    vocab vb, vu;
    vocab_source s1 = with.src, s2 = without.src;
    vb.load_from(std::move(s1));
    vu.load_from(std::move(s2));
    const int32_t b0 = with.byte0, a = with.id_of["a"];
    // 'x' and U+00E9 have no piece: their bytes (byte fallback) or one <unk> per run
    check(encode(vb, "axb") == std::vector<gptneox_token>{a, b0 + 'x', with.id_of["b"]}, "byte fallback: ASCII");
    check(encode(vb, "\xC3\xA9") == std::vector<gptneox_token>{b0 + 0xC3, b0 + 0xA9}, "byte fallback: 2-byte char");
    check(encode(vu, "axyb") == std::vector<gptneox_token>{without.id_of["a"], without.src.unk, without.id_of["b"]},
          "no byte pieces: a run of unknowns is one <unk>");
    // invalid UTF-8 becomes U+FFFD (EF BF BD) in the normalizer, then bytes
    check(encode(vb, std::string("a\xFF", 2)) == std::vector<gptneox_token>{a, b0 + 0xEF, b0 + 0xBF, b0 + 0xBD},
          "invalid byte -> U+FFFD -> byte pieces");
    check(encode(vb, std::string("\xE3\x81", 2)) == std::vector<gptneox_token>{b0 + 0xEF, b0 + 0xBF, b0 + 0xBD, b0 + 0xEF, b0 + 0xBF, b0 + 0xBD},
          "truncated 3-byte sequence: each byte -> U+FFFD");
    // decoding byte pieces gives the raw bytes back
    check(vb.detokenize(std::vector<gptneox_token>{b0 + 0xC3, b0 + 0xA9}.data(), 2, false, false) == "\xC3\xA9",
          "detokenize byte pieces");
    // random bytes never crash and give in-range ids
    std::mt19937 rng(5);
    bool ok = true;
    for (int t = 0; t < 2000; ++t) {
        std::string s;
        const int len = (int)(rng() % 40);
        for (int k = 0; k < len; ++k) s += (char)(rng() & 0xFF);
        for (const vocab *v : {&vb, &vu}) {
            for (gptneox_token id : encode(*v, s, true)) ok = ok && id >= 0 && id < v->n_tokens();
        }
    }
    check(ok, "random bytes: ids in range");
}

void test_user_defined() {
    // "<", "N", "L", ">" and "<N" are cheap pieces, yet <NL> (user-defined) is always one token
    unigram_vocab u = make_unigram({"<", "N", "L", ">", "<N", "L>", "a"}, {-0.5f, -0.5f, -0.5f, -0.5f, -0.1f, -0.1f, -1.0f}, true);
    vocab v;
    vocab_source s = u.src;
    v.load_from(std::move(s));
    const int32_t nl = u.id_of["<NL>"], a = u.id_of["a"];
    check(encode(v, "a<NL>a") == std::vector<gptneox_token>{a, nl, a}, "user-defined <NL> matched whole");
    check(encode(v, "<NL><NL>") == std::vector<gptneox_token>{nl, nl}, "user-defined twice");
    check(encode(v, "<N") == std::vector<gptneox_token>{u.id_of["<N"]}, "prefix of a user-defined symbol");
    check(v.nl() == nl, "nl() is <NL>");
    // control tokens: text unless parse_special
    const auto plain = encode(v, "</s>");
    check(std::find(plain.begin(), plain.end(), u.src.eos) == plain.end(), "</s> is text without parse_special");
    check(encode(v, "a</s>", true) == std::vector<gptneox_token>{a, u.src.eos}, "</s> parsed with parse_special");
}

// GPT-2's byte <-> symbol mapping: printable bytes map to themselves, the others to U+0100 onwards.
std::string byte_symbol(int b) {
    static const auto table = [] {
        std::vector<uint32_t> cps(256);
        int k = 0;
        for (int c = 0; c < 256; ++c) {
            const bool keep = (c >= 0x21 && c <= 0x7E) || (c >= 0xA1 && c <= 0xAC) || (c >= 0xAE && c <= 0xFF);
            cps[c] = keep ? (uint32_t)c : 0x100u + (uint32_t)k++;
        }
        return cps;
    }();
    std::string s;
    unicode::append_utf8(s, table[b]);
    return s;
}

void test_bpe_merges_by_rank() {
    std::mt19937 rng(42);
    for (int round = 0; round < 30; ++round) {
        vocab_source s;
        s.model = "gpt2";
        std::map<std::string, int32_t> id;
        auto add = [&](const std::string &t) {
            if (!id.count(t)) {
                id[t] = (int32_t)s.tokens.size();
                s.tokens.push_back(t);
            }
        };
        add("<|endoftext|>");
        for (int b = 0; b < 256; ++b) add(byte_symbol(b));
        s.types.assign(s.tokens.size(), SP_NORMAL);
        s.types[0] = SP_CONTROL;
        // random merges over a small alphabet; a merge's parts exist before it
        std::vector<std::string> toks = {"a", "b", "c", "d"};
        std::map<std::pair<std::string, std::string>, int> rank;
        for (int r = 0; r < 40; ++r) {
            const std::string x = toks[rng() % toks.size()], y = toks[rng() % toks.size()];
            if (rank.count({x, y})) continue;
            rank[{x, y}] = (int)s.merges.size();
            s.merges.push_back(x + " " + y);
            if (!id.count(x + y)) {
                add(x + y);
                s.types.push_back(SP_NORMAL);
                toks.push_back(x + y);
            }
        }
        s.bos = s.eos = 0;
        vocab v;
        vocab_source copy = s;
        v.load_from(std::move(copy));
        for (int t = 0; t < 50; ++t) {
            std::string word;
            const int len = 1 + (int)(rng() % 14);
            for (int k = 0; k < len; ++k) word += "abcd"[rng() % 4];
            // reference: merge the lowest-ranked adjacent pair, leftmost first, until none is left
            std::vector<std::string> sym;
            for (char c : word) sym.emplace_back(1, c);
            for (;;) {
                int best = -1, best_rank = 1 << 30;
                for (size_t i = 0; i + 1 < sym.size(); ++i) {
                    const auto it = rank.find({sym[i], sym[i + 1]});
                    if (it != rank.end() && it->second < best_rank) {
                        best_rank = it->second;
                        best = (int)i;
                    }
                }
                if (best < 0) break;
                sym[best] += sym[best + 1];
                sym.erase(sym.begin() + best + 1);
            }
            std::vector<gptneox_token> want;
            for (const std::string &x : sym) want.push_back(id[x]);
            const auto got = encode(v, word);
            check(got == want, "bpe round " + std::to_string(round) + " '" + word + "': got " + ids_str(got) +
                                   " want " + ids_str(want));
        }
        // a leading space is the symbol of byte 0x20 glued to the word by the pre-tokenizer
        const auto sp = encode(v, " a");
        const std::vector<gptneox_token> want_sp = {id[byte_symbol(' ')], id["a"]};
        check(sp == want_sp, "bpe: ' a' is the space symbol and 'a' (no merge with it)");
    }
}

void test_byte_trie() {
    std::mt19937 rng(7);
    std::map<std::string, int32_t> ref;
    byte_trie t;
    for (int i = 0; i < 3000; ++i) {
        std::string k;
        const int len = 1 + (int)(rng() % 6);
        for (int j = 0; j < len; ++j) k += (char)("ab\xE3\x81\x82\xFF"[rng() % 6]);
        if (!ref.count(k)) ref[k] = i;
        t.insert(k, i, (float)i);
    }
    t.finish();
    bool ok = true;
    for (const auto &kv : ref) ok = ok && t.find(kv.first) == kv.second;
    check(ok, "byte_trie: find every key");
    check(t.find("zz") == -1 && t.find(std::string("a\x01", 2)) == -1, "byte_trie: absent keys");
    for (int q = 0; q < 2000 && ok; ++q) {
        std::string s;
        const int len = (int)(rng() % 10);
        for (int j = 0; j < len; ++j) s += (char)("ab\xE3\x81\x82\xFF\x00"[rng() % 7]);
        std::vector<std::pair<size_t, int32_t>> want, got;
        for (size_t l = 1; l <= s.size(); ++l) {
            const auto it = ref.find(s.substr(0, l));
            if (it != ref.end()) want.emplace_back(l, it->second);
        }
        t.prefixes(s.data(), s.size(), [&](size_t l, int32_t v, float aux) {
            got.emplace_back(l, v);
            ok = ok && aux == (float)v;
        });
        ok = ok && got == want;
    }
    check(ok, "byte_trie: prefixes() == brute force, aux carried");
    byte_trie empty;
    empty.finish();
    size_t len = 0;
    check(empty.empty() && empty.find("a") == -1 && empty.longest("abc", 3, &len) == -1, "byte_trie: empty");
}

void test_utf8_validation() {
    auto agree = [](const char *s, size_t n) {
        size_t len = 0;
        bool ok = false;
        unicode::decode_utf8(s, n, &len, &ok);
        const size_t v = unicode::utf8_valid_len(s, n);
        return ok ? v == len : v == 0;
    };
    bool ok = true;
    char buf[4];
    for (uint32_t x = 0; x < (1u << 24) && ok; ++x) { // every 1-3 byte prefix, at every length
        buf[0] = (char)(x >> 16);
        buf[1] = (char)(x >> 8);
        buf[2] = (char)x;
        for (size_t n = 1; n <= 3; ++n) ok = ok && agree(buf, n);
    }
    std::mt19937 rng(3);
    for (int i = 0; i < 2000000 && ok; ++i) {
        const uint32_t r = rng();
        buf[0] = (char)(0xF0 + (r & 7));
        buf[1] = (char)(r >> 8);
        buf[2] = (char)(r >> 16);
        buf[3] = (char)(r >> 24);
        if (i & 1) { // mostly-valid continuation bytes
            for (int k = 1; k < 4; ++k) buf[k] = (char)(0x80 | (buf[k] & 0x3F));
        }
        ok = ok && agree(buf, 4) && agree(buf, 3);
    }
    check(ok, "utf8_valid_len agrees with decode_utf8 (all 1-3 byte inputs, random 4-byte ones)");
}

void test_c_api_pieces() {
    unigram_vocab u = make_unigram({"a", SP + "ab", "\xE3\x81\x82"}, {-1.0f, -1.0f, -1.0f}, true);
    vocab v;
    vocab_source s = u.src;
    v.load_from(std::move(s));
    gptneox_vocab cv{&v};
    char buf[16];
    const int32_t ab = u.id_of[SP + "ab"];
    // " ab": 3 bytes; too small a buffer gives -(bytes needed) and writes nothing
    std::memset(buf, '#', sizeof buf);
    check(gptneox_token_to_piece(&cv, ab, buf, 0, 0, false) == -3, "token_to_piece: size 0 -> -3");
    check(gptneox_token_to_piece(&cv, ab, buf, 2, 0, false) == -3 && buf[0] == '#', "token_to_piece: size 2 -> -3, untouched");
    check(gptneox_token_to_piece(&cv, ab, buf, 3, 0, false) == 3 && std::memcmp(buf, " ab", 3) == 0, "token_to_piece: exact fit");
    check(gptneox_token_to_piece(&cv, ab, buf, 16, 1, false) == 2 && std::memcmp(buf, "ab", 2) == 0, "token_to_piece: lstrip");
    // byte pieces give their raw byte: a partial UTF-8 sequence, for the caller to assemble
    const char ja[] = "\xE3\x81\x84"; // い: no piece, three byte pieces
    const auto ids = encode(v, ja);
    check(ids.size() == 3, "い is three byte pieces");
    std::string joined;
    for (gptneox_token id : ids) {
        const int32_t n = gptneox_token_to_piece(&cv, id, buf, 16, 0, false);
        check(n == 1, "byte piece is one byte");
        if (n > 0) joined.append(buf, (size_t)n);
    }
    check(joined == ja, "byte pieces concatenate to the character");
    // control tokens: nothing unless special
    check(gptneox_token_to_piece(&cv, u.src.eos, buf, 16, 0, false) == 0, "control piece hidden");
    check(gptneox_token_to_piece(&cv, u.src.eos, buf, 16, 0, true) == 4 && std::memcmp(buf, "</s>", 4) == 0, "control piece shown");
    check(gptneox_token_to_piece(&cv, -1, buf, 16, 0, false) <= 0 && gptneox_token_to_piece(&cv, 1 << 30, buf, 16, 0, false) <= 0,
          "out-of-range token: no bytes");
    // tokenize: too small an output gives -(tokens needed)
    gptneox_token toks[8];
    const char *text = "a ab\xE3\x81\x82";
    const int32_t need = gptneox_vocab_tokenize(&cv, text, (int32_t)std::strlen(text), toks, 1, false, false);
    check(need == -3, "tokenize: -(tokens needed), got " + std::to_string(need));
    check(gptneox_vocab_tokenize(&cv, text, (int32_t)std::strlen(text), toks, 8, false, false) == 3, "tokenize: fits");
    char out[32];
    const int32_t dn = gptneox_detokenize(&cv, toks, 3, out, 2, false, false);
    check(dn == -(int32_t)std::strlen(text), "detokenize: -(bytes needed)");
    check(gptneox_detokenize(&cv, toks, 3, out, 32, false, false) == (int32_t)std::strlen(text) &&
              std::memcmp(out, text, std::strlen(text)) == 0,
          "detokenize: round trip");
    check(gptneox_token_to_piece(nullptr, 0, buf, 16, 0, false) < 0, "NULL vocab: error code, no crash");
}

} // namespace

int main() {
    test_byte_trie();
    test_utf8_validation();
    test_unigram_brute_force();
    test_unigram_chunks_match_whole_viterbi();
    test_byte_fallback_and_unknown();
    test_user_defined();
    test_bpe_merges_by_rank();
    test_c_api_pieces();
    std::printf("%d passed, %d failed\n", g_pass, g_fail);
    return g_fail == 0 ? 0 : 1;
}
