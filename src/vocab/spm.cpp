// Sentencepiece as the sentencepiece library computes it: the normalizer (user-defined symbols first,
// then the precompiled charsmap, whitespace handling, U+2581 escaping), the unigram model (Viterbi over
// piece scores, unknown penalty, ties kept by the earlier candidate), the BPE model (merges by piece
// score, user-defined symbols frozen, unused pieces re-segmented) and byte fallback for unknowns.
#include <algorithm>
#include <queue>

#include "vocab/unicode.h"
#include "vocab/vocab-impl.h"

namespace gptneox {

namespace {

constexpr const char *SPACE_SYMBOL = "\xE2\x96\x81"; // U+2581
constexpr float UNK_PENALTY = 10.0f;

struct sp_piece {
    size_t begin, end; // in the normalized text
    int32_t id;        // -1: unknown
};

} // namespace

void vocab_impl::sp_normalize(std::string_view in, std::string &out) const {
    // One step: (replacement, bytes consumed) at the start of `s`.
    auto prefix = [&](std::string_view s, std::string_view *rep) -> size_t {
        size_t len = 0;
        if (!user_defined.empty() && user_defined.has_first_byte((uint8_t)s[0]) &&
            user_defined.longest(s.data(), s.size(), &len) >= 0) {
            *rep = s.substr(0, len);
            return len;
        }
        if (!charsmap.empty()) {
            const int32_t v = charsmap.longest(s.data(), s.size(), &len);
            if (v >= 0 && len > 0 && (size_t)v < charsmap_pool_size) {
                const char *p = charsmap_pool + v;
                size_t m = 0;
                while ((size_t)v + m < charsmap_pool_size && p[m] != '\0') ++m;
                *rep = std::string_view(p, m);
                return len;
            }
        }
        bool ok;
        unicode::decode_utf8(s.data(), s.size(), &len, &ok);
        if (!ok) {
            *rep = std::string_view("\xEF\xBF\xBD", 3);
            return 1;
        }
        *rep = s.substr(0, len);
        return len;
    };
    auto add_ws = [&]() {
        if (escape_ws) out.append(SPACE_SYMBOL);
        else out.push_back(' ');
    };

    std::string_view rest = in;
    std::string_view rep;
    if (remove_extra_ws) {
        while (!rest.empty()) {
            const size_t n = prefix(rest, &rep);
            if (rep != " ") break;
            rest.remove_prefix(n);
        }
    }
    if (rest.empty()) return;
    bool prev_space = remove_extra_ws;
    if (!ws_suffix && add_dummy_prefix) add_ws();
    while (!rest.empty()) {
        const size_t n = prefix(rest, &rep);
        std::string_view sp = rep;
        if (prev_space) {
            while (!sp.empty() && sp[0] == ' ') sp.remove_prefix(1);
        }
        if (!sp.empty()) {
            for (char c : sp) {
                if (escape_ws && c == ' ') out.append(SPACE_SYMBOL);
                else out.push_back(c);
            }
            prev_space = sp.back() == ' ';
        }
        rest.remove_prefix(n);
        if (!remove_extra_ws) prev_space = false;
    }
    if (remove_extra_ws) {
        const std::string_view space = escape_ws ? std::string_view(SPACE_SYMBOL) : std::string_view(" ");
        while (out.size() >= space.size() && std::string_view(out).substr(out.size() - space.size()) == space)
            out.resize(out.size() - space.size());
    }
    if (ws_suffix && add_dummy_prefix) add_ws();
}

namespace {

// Unigram: the best-scoring segmentation (sentencepiece's optimized Viterbi).
void unigram_viterbi(const vocab_impl &v, std::string_view s, std::vector<sp_piece> &result) {
    struct node {
        float score;
        int32_t start; // -1: unset
        int32_t id;
    };
    const size_t n = s.size();
    std::vector<node> best(n + 1, node{0.0f, -1, -1});
    const float unk_score = v.min_score - UNK_PENALTY;
    size_t pos = 0;
    while (pos < n) {
        const size_t clen = std::min(unicode::utf8_len_lead((uint8_t)s[pos]), n - pos);
        const float here = best[pos].score;
        bool have_single = false;
        v.pieces.prefixes(s.data() + pos, n - pos, [&](size_t len, int32_t id) {
            const float sc = v.viterbi_score[id];
            if (sc != sc) return; // NaN marks unused pieces
            const float cand = here + sc;
            node &dst = best[pos + len];
            if (dst.start == -1 || cand > dst.score) dst = node{cand, (int32_t)pos, id};
            if (len == clen) have_single = true;
        });
        if (!have_single) {
            const float cand = here + unk_score;
            node &dst = best[pos + clen];
            if (dst.start == -1 || cand > dst.score) dst = node{cand, (int32_t)pos, -1};
        }
        pos += clen;
    }
    const size_t first = result.size();
    for (size_t end = n; end > 0;) {
        const node &nd = best[end];
        result.push_back(sp_piece{(size_t)nd.start, end, nd.id});
        end = (size_t)nd.start;
    }
    std::reverse(result.begin() + (long)first, result.end());
}

// Sentencepiece BPE: merge the adjacent pair whose concatenation is a piece with the highest score
// (ties: leftmost); user-defined symbols are never merged; unused pieces are split back.
void sp_bpe(const vocab_impl &v, std::string_view s, std::vector<sp_piece> &result) {
    struct symbol {
        int32_t prev, next;
        size_t begin, end;
        bool freeze;
    };
    struct pair_cand {
        float score;
        int32_t left, right;
        size_t size;
    };
    struct cmp {
        bool operator()(const pair_cand &a, const pair_cand &b) const {
            return a.score < b.score || (a.score == b.score && a.left > b.left);
        }
    };
    std::vector<symbol> sym;
    for (size_t i = 0; i < s.size();) {
        size_t len = 0;
        bool freeze = false;
        if (!v.user_defined.empty() && v.user_defined.longest(s.data() + i, s.size() - i, &len) >= 0) {
            freeze = true;
        } else {
            len = std::min(unicode::utf8_len_lead((uint8_t)s[i]), s.size() - i);
        }
        const int32_t idx = (int32_t)sym.size();
        sym.push_back(symbol{idx - 1, -1, i, i + len, freeze});
        if (idx > 0) sym[idx - 1].next = idx;
        i += len;
    }
    std::priority_queue<pair_cand, std::vector<pair_cand>, cmp> agenda;
    std::unordered_map<std::string_view, std::pair<std::string_view, std::string_view>> rev_merge;
    auto maybe_add = [&](int32_t l, int32_t r) {
        if (l < 0 || r < 0 || sym[l].freeze || sym[r].freeze) return;
        const std::string_view piece = s.substr(sym[l].begin, sym[r].end - sym[l].begin);
        const int32_t id = v.pieces.find(piece);
        if (id < 0) return;
        agenda.push(pair_cand{v.scores[id], l, r, piece.size()});
        if (v.types[id] == SP_UNUSED) {
            rev_merge[piece] = {s.substr(sym[l].begin, sym[l].end - sym[l].begin),
                                s.substr(sym[r].begin, sym[r].end - sym[r].begin)};
        }
    };
    for (size_t i = 1; i < sym.size(); ++i) maybe_add((int32_t)i - 1, (int32_t)i);
    while (!agenda.empty()) {
        const pair_cand top = agenda.top();
        agenda.pop();
        symbol &l = sym[top.left];
        symbol &r = sym[top.right];
        if (l.begin == l.end || r.begin == r.end || (l.end - l.begin) + (r.end - r.begin) != top.size) continue;
        l.end = r.end;
        l.next = r.next;
        if (r.next >= 0) sym[r.next].prev = top.left;
        r.begin = r.end;
        maybe_add(l.prev, top.left);
        maybe_add(top.left, l.next);
    }
    auto id_of = [&](std::string_view piece) -> int32_t {
        const int32_t id = v.pieces.find(piece);
        if (id >= 0) return id;
        const auto it = v.reserved.find(std::string(piece));
        return it != v.reserved.end() ? it->second : -1;
    };
    auto resegment = [&](auto &self, std::string_view w) -> void {
        const int32_t id = id_of(w);
        if (id < 0 || v.types[id] != SP_UNUSED) {
            result.push_back(sp_piece{(size_t)(w.data() - s.data()), (size_t)(w.data() - s.data()) + w.size(), id});
            return;
        }
        const auto it = rev_merge.find(w);
        if (it == rev_merge.end()) {
            result.push_back(sp_piece{(size_t)(w.data() - s.data()), (size_t)(w.data() - s.data()) + w.size(), id});
            return;
        }
        self(self, it->second.first);
        self(self, it->second.second);
    };
    if (sym.empty()) return;
    for (int32_t i = 0; i != -1; i = sym[i].next) resegment(resegment, s.substr(sym[i].begin, sym[i].end - sym[i].begin));
}

} // namespace

void vocab_impl::sp_encode(std::string_view input, std::vector<gptneox_token> &out) const {
    std::string norm;
    norm.reserve(input.size() + input.size() / 2 + 8);
    sp_normalize(input, norm);
    if (norm.empty()) return;
    std::vector<sp_piece> res;
    res.reserve(norm.size() / 2 + 4);
    if (algo == vocab_algo::sp_bpe) sp_bpe(*this, norm, res);
    else unigram_viterbi(*this, norm, res);
    bool prev_unk = false;
    for (const sp_piece &p : res) {
        const bool is_unk = p.id < 0 || p.id == unk;
        if (is_unk && byte_fallback) {
            for (size_t i = p.begin; i < p.end; ++i) {
                const int32_t b = byte_piece[(uint8_t)norm[i]];
                out.push_back(b >= 0 ? b : unk);
            }
            prev_unk = false;
            continue;
        }
        if (is_unk) {
            if (!prev_unk && unk >= 0) out.push_back(unk);
            prev_unk = true;
            continue;
        }
        out.push_back(p.id);
        prev_unk = false;
    }
}

} // namespace gptneox
