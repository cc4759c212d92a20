// Sentencepiece as the sentencepiece library computes it: the normalizer (user-defined symbols first,
// then the precompiled charsmap, whitespace handling, U+2581 escaping), the unigram model (Viterbi over
// piece scores, unknown penalty, ties kept by the earlier candidate), the BPE model (merges by piece
// score, user-defined symbols frozen, unused pieces re-segmented) and byte fallback for unknowns.
#include <algorithm>
#include <cstring>
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
    // `out` is written through a cursor into storage grown ahead of it (trimmed at the end).
    size_t w = out.size();
    auto room = [&](size_t k) {
        if (w + k > out.size()) out.resize(std::max(out.size() * 2, w + k + 64));
        return &out[w];
    };
    auto put = [&](const char *p, size_t k) {
        std::memcpy(room(k), p, k);
        w += k;
    };
    auto add_ws = [&]() {
        if (escape_ws) put(SPACE_SYMBOL, 3);
        else put(" ", 1);
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
    room(rest.size() + rest.size() / 2 + 16);
    bool prev_space = remove_extra_ws;
    if (!ws_suffix && add_dummy_prefix) add_ws();
    const char *s = rest.data();
    const size_t n = rest.size();
    const bool have_ud = !user_defined.empty();
    for (size_t i = 0; i < n;) {
        // Fast path: runs of characters that map to themselves (valid UTF-8, no user-defined symbol and
        // no charsmap entry starting with their first byte), and plain spaces.
        size_t j = i;
        while (j < n) {
            const uint8_t b = (uint8_t)s[j];
            if ((have_ud && user_defined.has_first_byte(b)) || charsmap.has_first_byte(b)) break;
            if (b == ' ') {
                if (j > i) {
                    put(s + i, j - i);
                    prev_space = false;
                }
                if (!prev_space) add_ws();
                prev_space = remove_extra_ws;
                i = ++j;
                continue;
            }
            const size_t len = unicode::utf8_valid_len(s + j, n - j);
            if (len == 0) break;
            j += len;
        }
        if (j > i) {
            put(s + i, j - i);
            prev_space = false;
            i = j;
            continue;
        }
        if (i >= n) break;
        const size_t m = prefix(std::string_view(s + i, n - i), &rep);
        std::string_view sp = rep;
        if (prev_space) {
            while (!sp.empty() && sp[0] == ' ') sp.remove_prefix(1);
        }
        if (!sp.empty()) {
            if (escape_ws && sp.find(' ') != std::string_view::npos) {
                for (char c : sp) {
                    if (c == ' ') put(SPACE_SYMBOL, 3);
                    else put(&c, 1);
                }
            } else {
                put(sp.data(), sp.size());
            }
            prev_space = sp.back() == ' ';
        }
        i += m;
        if (!remove_extra_ws) prev_space = false;
    }
    out.resize(w);
    if (remove_extra_ws) {
        const std::string_view space = escape_ws ? std::string_view(SPACE_SYMBOL) : std::string_view(" ");
        while (out.size() >= space.size() && std::string_view(out).substr(out.size() - space.size()) == space)
            out.resize(out.size() - space.size());
    }
    if (ws_suffix && add_dummy_prefix) {
        w = out.size();
        add_ws();
        out.resize(w);
    }
}

namespace {

// Turns pieces into tokens: unknown pieces become byte pieces (byte fallback) or one unknown token per
// run of unknowns, as sentencepiece does.
struct piece_emitter {
    const vocab_impl &v;
    std::string_view norm;
    std::vector<gptneox_token> &out;
    bool prev_unk = false;

    void operator()(size_t begin, size_t end, int32_t id) {
        const bool is_unk = id < 0 || id == v.unk;
        if (is_unk && v.byte_fallback) {
            for (size_t i = begin; i < end; ++i) {
                const int32_t b = v.byte_piece[(uint8_t)norm[i]];
                out.push_back(b >= 0 ? b : v.unk);
            }
            prev_unk = false;
        } else if (is_unk) {
            if (!prev_unk && v.unk >= 0) out.push_back(v.unk);
            prev_unk = true;
        } else {
            out.push_back(id);
            prev_unk = false;
        }
    }
};

// Unigram: the best-scoring segmentation (sentencepiece's optimized Viterbi: per character position,
// every piece starting there, an unknown edge when no piece covers exactly that character; ties keep
// the earlier candidate). The lattice is solved in chunks cut where no piece can span the cut (see
// vocab_impl::split_ascii): the chunk after a cut starts from the score of the path up to it, so every
// sum and comparison is the one the whole-text Viterbi makes, and the scratch stays small.
void unigram_viterbi(const vocab_impl &v, std::string_view s, piece_emitter &emit) {
    struct node {
        float score;
        int32_t from; // chunk-relative start + 1; 0: unset (so an unset node is all zero bytes)
        int32_t id;   // -1: unknown
    };
    constexpr size_t CHUNK = 2048;
    const size_t n = s.size();
    const float unk_score = v.min_score - UNK_PENALTY;
    const node unset{0.0f, 0, 0};
    std::vector<node> best(std::min(n, CHUNK + v.max_piece_len) + 8, unset);
    std::vector<uint32_t> path;
    size_t base = 0, touched = 0; // chunk start; highest chunk-relative index written
    auto finish_chunk = [&](size_t end) {
        path.clear();
        for (size_t k = end - base; k > 0; k = (size_t)best[k].from - 1) path.push_back((uint32_t)k);
        for (size_t i = path.size(); i-- > 0;) {
            const node &nd = best[path[i]];
            emit(base + (size_t)nd.from - 1, base + path[i], nd.id);
        }
        const float carry = best[end - base].score;
        std::memset((void *)best.data(), 0, (touched + 1) * sizeof(node));
        best[0].score = carry;
        base = end;
        touched = 0;
    };
    const uint8_t *u = (const uint8_t *)s.data();
    for (size_t pos = 0; pos < n;) {
        const uint8_t b0 = u[pos];
        if (pos - base >= CHUNK &&
            (b0 < 0x80 ? v.split_ascii[b0]
                       : (b0 == 0xE2 && v.split_space && pos + 2 < n && u[pos + 1] == 0x96 && u[pos + 2] == 0x81)))
            finish_chunk(pos);
        const size_t rel = pos - base;
        const size_t clen = std::min(unicode::utf8_len_lead(b0), n - pos);
        if (rel + std::max(v.max_piece_len, clen) + 1 >= best.size())
            best.resize(std::max(best.size() * 2, rel + std::max(v.max_piece_len, clen) + 2), unset);
        node *bp = best.data() + rel;
        const float here = bp->score;
        bool have_single = false;
        size_t reach = clen;
        v.pieces.prefixes(s.data() + pos, n - pos, [&](size_t len, int32_t id, float sc) {
            // sentencepiece: float sums and comparisons (user-defined pieces: length * max_score - 0.1,
            // rounded to float once, at load)
            if (sc != sc) return; // NaN: unused piece
            const float cand = here + sc;
            node &dst = bp[len];
            if (dst.from == 0 || cand > dst.score) dst = node{cand, (int32_t)rel + 1, id};
            have_single |= len == clen;
            reach = len;
        });
        if (!have_single) {
            const float cand = here + unk_score;
            node &dst = bp[clen];
            if (dst.from == 0 || cand > dst.score) dst = node{cand, (int32_t)rel + 1, -1};
        }
        touched = std::max(touched, rel + std::max(reach, clen));
        pos += clen;
    }
    if (n > base) finish_chunk(n);
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
    out.reserve(out.size() + norm.size() / 4 + 16);
    piece_emitter emit{*this, norm, out};
    if (algo == vocab_algo::sp_bpe) {
        std::vector<sp_piece> res;
        res.reserve(norm.size() / 2 + 4);
        sp_bpe(*this, norm, res);
        for (const sp_piece &p : res) emit(p.begin, p.end, p.id);
    } else {
        unigram_viterbi(*this, norm, emit);
    }
}

} // namespace gptneox
