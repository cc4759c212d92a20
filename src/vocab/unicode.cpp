// UTF-8 decoding and NFC normalization (canonical decomposition, canonical ordering, canonical
// composition, Hangul done algorithmically) over the generated tables.
#include "vocab/unicode.h"

#include <algorithm>

namespace gptneox::unicode {

namespace {

constexpr uint32_t SBASE = 0xAC00, LBASE = 0x1100, VBASE = 0x1161, TBASE = 0x11A7;
constexpr uint32_t LCOUNT = 19, VCOUNT = 21, TCOUNT = 28, NCOUNT = VCOUNT * TCOUNT, SCOUNT = LCOUNT * NCOUNT;

inline bool trail(uint8_t b) { return (b & 0xC0) == 0x80; }
inline bool valid_cp(uint32_t c) { return c < 0xD800 || (c >= 0xE000 && c <= 0x10FFFF); }

const unicode_tables::decomp_entry *find_decomp(uint32_t cp) {
    using namespace unicode_tables;
    const decomp_entry *b = decomp_table, *e = decomp_table + decomp_count;
    const decomp_entry *it = std::lower_bound(b, e, cp, [](const decomp_entry &x, uint32_t v) { return x.cp < v; });
    return (it != e && it->cp == cp) ? it : nullptr;
}

uint32_t compose(uint32_t a, uint32_t b) {
    if (a >= LBASE && a < LBASE + LCOUNT && b >= VBASE && b < VBASE + VCOUNT)
        return SBASE + ((a - LBASE) * VCOUNT + (b - VBASE)) * TCOUNT;
    if (a >= SBASE && a < SBASE + SCOUNT && (a - SBASE) % TCOUNT == 0 && b > TBASE && b < TBASE + TCOUNT)
        return a + (b - TBASE);
    using namespace unicode_tables;
    const comp_entry *be = comp_table, *e = comp_table + comp_count;
    const comp_entry *it = std::lower_bound(be, e, std::make_pair(a, b), [](const comp_entry &x, std::pair<uint32_t, uint32_t> v) {
        return x.a < v.first || (x.a == v.first && x.b < v.second);
    });
    return (it != e && it->a == a && it->b == b) ? it->c : 0;
}

// Append the full canonical decomposition of cp.
void decompose(uint32_t cp, std::vector<uint32_t> &out) {
    if (cp >= SBASE && cp < SBASE + SCOUNT) {
        const uint32_t s = cp - SBASE;
        out.push_back(LBASE + s / NCOUNT);
        out.push_back(VBASE + (s % NCOUNT) / TCOUNT);
        if (s % TCOUNT) out.push_back(TBASE + s % TCOUNT);
        return;
    }
    if (cp >= 0xC0) {
        if (const auto *d = find_decomp(cp)) {
            out.insert(out.end(), unicode_tables::decomp_pool + d->offset, unicode_tables::decomp_pool + d->offset + d->len);
            return;
        }
    }
    out.push_back(cp);
}

// NFC of a sequence of code points (in place).
void nfc_codepoints(std::vector<uint32_t> &cps) {
    std::vector<uint32_t> d;
    d.reserve(cps.size() + 8);
    for (uint32_t c : cps) decompose(c, d);
    // canonical ordering: stable sort of each run of non-starters by combining class
    for (size_t i = 0; i < d.size();) {
        if (combining_class(d[i]) == 0) { ++i; continue; }
        size_t j = i;
        while (j < d.size() && combining_class(d[j]) != 0) ++j;
        std::stable_sort(d.begin() + i, d.begin() + j,
                         [](uint32_t x, uint32_t y) { return combining_class(x) < combining_class(y); });
        i = j;
    }
    // canonical composition: c combines with the last starter unless a character between them has a
    // combining class of 0 or >= c's
    cps.clear();
    long starter = -1; // index in cps of the last starter
    int last_cc = -1;  // class of the last character appended after that starter; -1: none yet
    for (uint32_t c : d) {
        const int cc = combining_class(c);
        if (starter >= 0 && (last_cc == -1 || (last_cc != 0 && last_cc < cc))) {
            if (const uint32_t comp = compose((uint32_t)cps[starter], c)) {
                cps[starter] = comp;
                continue;
            }
        }
        if (cc == 0) {
            starter = (long)cps.size();
            last_cc = -1;
        } else {
            last_cc = cc;
        }
        cps.push_back(c);
    }
}

} // namespace

uint32_t decode_utf8(const char *s, size_t n, size_t *len, bool *ok) {
    const uint8_t *p = (const uint8_t *)s;
    *ok = true;
    if (n == 0) { *len = 0; *ok = false; return 0xFFFD; }
    if (p[0] < 0x80) { *len = 1; return p[0]; }
    if (n >= 2 && (p[0] & 0xE0) == 0xC0 && trail(p[1])) {
        const uint32_t c = ((p[0] & 0x1Fu) << 6) | (p[1] & 0x3Fu);
        if (c >= 0x80) { *len = 2; return c; }
    } else if (n >= 3 && (p[0] & 0xF0) == 0xE0 && trail(p[1]) && trail(p[2])) {
        const uint32_t c = ((p[0] & 0x0Fu) << 12) | ((p[1] & 0x3Fu) << 6) | (p[2] & 0x3Fu);
        if (c >= 0x800 && valid_cp(c)) { *len = 3; return c; }
    } else if (n >= 4 && (p[0] & 0xF8) == 0xF0 && trail(p[1]) && trail(p[2]) && trail(p[3])) {
        const uint32_t c = ((p[0] & 0x07u) << 18) | ((p[1] & 0x3Fu) << 12) | ((p[2] & 0x3Fu) << 6) | (p[3] & 0x3Fu);
        if (c >= 0x10000 && valid_cp(c)) { *len = 4; return c; }
    }
    *len = 1;
    *ok = false;
    return 0xFFFD;
}

void append_utf8(std::string &out, uint32_t cp) {
    if (cp < 0x80) {
        out.push_back((char)cp);
    } else if (cp < 0x800) {
        out.push_back((char)(0xC0 | (cp >> 6)));
        out.push_back((char)(0x80 | (cp & 0x3F)));
    } else if (cp < 0x10000) {
        out.push_back((char)(0xE0 | (cp >> 12)));
        out.push_back((char)(0x80 | ((cp >> 6) & 0x3F)));
        out.push_back((char)(0x80 | (cp & 0x3F)));
    } else {
        out.push_back((char)(0xF0 | (cp >> 18)));
        out.push_back((char)(0x80 | ((cp >> 12) & 0x3F)));
        out.push_back((char)(0x80 | ((cp >> 6) & 0x3F)));
        out.push_back((char)(0x80 | (cp & 0x3F)));
    }
}

uint8_t combining_class(uint32_t cp) {
    if (!(flags(cp) & F_NFC)) return 0;
    using namespace unicode_tables;
    const ccc_entry *b = ccc_table, *e = ccc_table + ccc_count;
    const ccc_entry *it = std::lower_bound(b, e, cp, [](const ccc_entry &x, uint32_t v) { return x.cp < v; });
    return (it != e && it->cp == cp) ? it->ccc : 0;
}

bool nfc_quick(std::string_view in) {
    for (size_t i = 0; i < in.size();) {
        const uint8_t b = (uint8_t)in[i];
        if (b < 0x80) { ++i; continue; }
        size_t len;
        bool ok;
        const uint32_t cp = decode_utf8(in.data() + i, in.size() - i, &len, &ok);
        if (ok && (flags(cp) & F_NFC)) return false;
        i += len;
    }
    return true;
}

void nfc(std::string_view in, std::string &out) {
    if (nfc_quick(in)) {
        out.append(in);
        return;
    }
    // Normalize runs of valid UTF-8; invalid bytes pass through and break runs.
    std::vector<uint32_t> cps;
    size_t i = 0;
    while (i < in.size()) {
        cps.clear();
        while (i < in.size()) {
            size_t len;
            bool ok;
            const uint32_t cp = decode_utf8(in.data() + i, in.size() - i, &len, &ok);
            if (!ok) break;
            cps.push_back(cp);
            i += len;
        }
        nfc_codepoints(cps);
        for (uint32_t c : cps) append_utf8(out, c);
        if (i < in.size()) {
            out.push_back(in[i]); // an invalid byte
            ++i;
        }
    }
}

} // namespace gptneox::unicode
