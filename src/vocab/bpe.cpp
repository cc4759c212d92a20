// Byte-level BPE as GPT-NeoX-20B's tokenizer.json defines it: NFC normalizer, added tokens split out,
// the GPT-2 pre-tokenizer regex
//   's|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+
// written out by hand over the generated Unicode classes, bytes mapped to symbols, merges by rank
// (lowest rank first, ties leftmost, as HF tokenizers' Word::merge_all).
#include <algorithm>

#include "vocab/unicode.h"
#include "vocab/vocab-impl.h"

namespace gptneox {

void merge_map::reserve(size_t n) {
    size_t cap = 16;
    while (cap < n * 2 + 2) cap <<= 1;
    table_.assign(cap, entry{0, 0, 0});
    mask_ = cap - 1;
    unsigned bits = 0;
    while ((size_t(1) << bits) < cap) ++bits;
    shift_ = 64 - bits;
    count_ = 0;
}

void merge_map::insert(int32_t a, int32_t b, int32_t rank, int32_t id) {
    if ((count_ + 1) * 2 > table_.size()) {
        std::vector<entry> old;
        old.swap(table_);
        reserve(count_ * 2 + 16);
        for (const entry &e : old) {
            if (e.key == 0) continue;
            size_t h = (size_t)((e.key * 0x9E3779B97F4A7C15ull) >> shift_);
            while (table_[h].key != 0) h = (h + 1) & mask_;
            table_[h] = e;
            ++count_;
        }
    }
    const uint64_t k = key(a, b);
    size_t h = (size_t)((k * 0x9E3779B97F4A7C15ull) >> shift_);
    while (table_[h].key != 0) {
        if (table_[h].key == k) return;
        h = (h + 1) & mask_;
    }
    table_[h] = entry{k, rank, id};
    ++count_;
}

namespace {

enum char_class : uint8_t { C_LETTER, C_NUMBER, C_SPACE, C_OTHER };

inline char_class classify(const char *s, size_t n, size_t *len) {
    const uint8_t b = (uint8_t)s[0];
    if (b < 0x80) {
        *len = 1;
        if ((b >= 'a' && b <= 'z') || (b >= 'A' && b <= 'Z')) return C_LETTER;
        if (b >= '0' && b <= '9') return C_NUMBER;
        if (b == ' ' || (b >= 0x09 && b <= 0x0D)) return C_SPACE;
        return C_OTHER;
    }
    bool ok;
    const uint32_t cp = unicode::decode_utf8(s, n, len, &ok);
    if (!ok) return C_OTHER;
    const uint8_t f = unicode::flags(cp);
    if (f & unicode::F_LETTER) return C_LETTER;
    if (f & unicode::F_NUMBER) return C_NUMBER;
    if (f & unicode::F_SPACE) return C_SPACE;
    return C_OTHER;
}

// Length in bytes of the pre-token starting at s[0] (n > 0).
size_t next_pretoken(const char *s, size_t n) {
    if (s[0] == '\'' && n >= 2) {
        const char c1 = s[1];
        if (c1 == 's' || c1 == 't' || c1 == 'm' || c1 == 'd') return 2;
        if (n >= 3) {
            const char c2 = s[2];
            if ((c1 == 'r' && c2 == 'e') || (c1 == 'v' && c2 == 'e') || (c1 == 'l' && c2 == 'l')) return 3;
        }
    }
    size_t i = 0, len = 0;
    char_class c = classify(s, n, &len);
    if (s[0] == ' ' && n >= 2) {
        size_t len2 = 0;
        const char_class c2 = classify(s + 1, n - 1, &len2);
        if (c2 != C_SPACE) {
            i = 1;
            c = c2;
            len = len2;
        }
    }
    if (c != C_SPACE) {
        // run of class c (letters, numbers, or "other": neither space, letter nor number)
        i += len;
        while (i < n) {
            const char_class ci = classify(s + i, n - i, &len);
            if (ci != c) break;
            i += len;
        }
        return i;
    }
    // whitespace: \s+(?!\S) leaves the last whitespace character to the next token; \s+ otherwise
    size_t count = 1, last = 0;
    i = len;
    while (i < n) {
        const char_class ci = classify(s + i, n - i, &len);
        if (ci != C_SPACE) break;
        last = i;
        i += len;
        ++count;
    }
    if (i == n || count == 1) return i;
    return last;
}

struct bpe_work {
    struct sym {
        int32_t id, prev, next;
    };
    struct cand {
        int32_t rank, pos, id;
        bool operator>(const cand &o) const { return rank > o.rank || (rank == o.rank && pos > o.pos); }
    };
    std::vector<sym> syms;
    std::vector<cand> heap;
};

void bpe_word(const vocab_impl &v, const char *s, size_t n, bpe_work &w, std::vector<gptneox_token> &out) {
    if (n == 1) {
        out.push_back(v.byte_sym[(uint8_t)s[0]]);
        return;
    }
    w.syms.clear();
    w.heap.clear();
    for (size_t i = 0; i < n; ++i) w.syms.push_back({v.byte_sym[(uint8_t)s[i]], (int32_t)i - 1, i + 1 < n ? (int32_t)i + 1 : -1});
    auto greater = [](const bpe_work::cand &a, const bpe_work::cand &b) { return a > b; };
    auto push = [&](int32_t pos) {
        const int32_t nx = w.syms[pos].next;
        if (nx < 0) return;
        int32_t rank, id;
        if (v.merges.find(w.syms[pos].id, w.syms[nx].id, &rank, &id)) {
            w.heap.push_back({rank, pos, id});
            std::push_heap(w.heap.begin(), w.heap.end(), greater);
        }
    };
    for (size_t i = 0; i + 1 < n; ++i) push((int32_t)i);
    while (!w.heap.empty()) {
        std::pop_heap(w.heap.begin(), w.heap.end(), greater);
        const bpe_work::cand top = w.heap.back();
        w.heap.pop_back();
        bpe_work::sym &l = w.syms[top.pos];
        if (l.id < 0 || l.next < 0) continue;
        bpe_work::sym &r = w.syms[l.next];
        int32_t rank, id;
        if (!v.merges.find(l.id, r.id, &rank, &id) || id != top.id) continue;
        l.id = id;
        r.id = -1;
        l.next = r.next;
        if (r.next >= 0) w.syms[r.next].prev = top.pos;
        if (l.prev >= 0) push(l.prev);
        push(top.pos);
    }
    for (int32_t i = 0; i >= 0; i = w.syms[i].next) out.push_back(w.syms[i].id);
}

void pretokenize_and_merge(const vocab_impl &v, std::string_view t, bpe_work &w, std::vector<gptneox_token> &out) {
    size_t i = 0;
    while (i < t.size()) {
        const size_t len = next_pretoken(t.data() + i, t.size() - i);
        bpe_word(v, t.data() + i, len, w, out);
        i += len;
    }
}

} // namespace

void vocab_impl::bpe_encode(std::string_view input, std::vector<gptneox_token> &out) const {
    std::string buf;
    std::string_view t = input;
    if (add_prefix_space && !t.empty() && t[0] != ' ') {
        buf.reserve(t.size() + 1);
        buf.push_back(' ');
        buf.append(t);
        t = buf;
    }
    std::string normed;
    if (nfc && !unicode::nfc_quick(t)) {
        normed.reserve(t.size() + 16);
        unicode::nfc(t, normed);
        t = normed;
    }
    bpe_work w;
    if (added_trie.empty()) {
        pretokenize_and_merge(*this, t, w, out);
        return;
    }
    size_t start = 0, i = 0;
    while (i < t.size()) {
        size_t len = 0;
        const int32_t id = added_trie.has_first_byte((uint8_t)t[i]) ? added_trie.longest(t.data() + i, t.size() - i, &len) : -1;
        if (id < 0) {
            ++i;
            continue;
        }
        pretokenize_and_merge(*this, t.substr(start, i - start), w, out);
        out.push_back(id);
        i += len;
        start = i;
    }
    pretokenize_and_merge(*this, t.substr(start), w, out);
}

void vocab_impl::bpe_piece(gptneox_token id, std::string &out) const {
    // Symbols back to bytes; a token with a character outside the byte alphabet is emitted as is (as the
    // HF ByteLevel decoder does).
    const std::string &s = tok_text[id];
    const size_t start = out.size();
    for (size_t i = 0; i < s.size();) {
        size_t len;
        bool ok;
        const uint32_t cp = unicode::decode_utf8(s.data() + i, s.size() - i, &len, &ok);
        int b = -1;
        if (ok) {
            if ((cp >= 0x21 && cp <= 0x7E) || (cp >= 0xA1 && cp <= 0xAC) || (cp >= 0xAE && cp <= 0xFF)) {
                b = (int)cp;
            } else if (cp >= 0x100 && cp <= 0x143) {
                // the 68 remaining bytes, in increasing order
                int k = (int)(cp - 0x100);
                if (k <= 0x20) b = k;                       // 0x00..0x20
                else if (k <= 0x20 + 34) b = 0x7F + (k - 0x21); // 0x7F..0xA0
                else if (k == 0x43) b = 0xAD;
            }
        }
        if (b < 0) {
            out.resize(start);
            out.append(s);
            return;
        }
        out.push_back((char)b);
        i += len;
    }
}

} // namespace gptneox
