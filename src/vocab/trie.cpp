#include "vocab/trie.h"

#include <algorithm>

#include "common/status.h"

namespace gptneox {

void byte_trie::insert(std::string_view key, int32_t value, float aux) {
    if (key.empty() || value < 0) return;
    uint32_t node = 0;
    for (char ch : key) {
        const uint8_t b = (uint8_t)ch;
        uint32_t next = NONE;
        for (const auto &kv : build_[node].kids) {
            if (kv.first == b) { next = kv.second; break; }
        }
        if (next == NONE) {
            if (build_.size() >= (1u << 30)) fail(GPTNEOX_STATUS_UNSUPPORTED, "vocabulary trie too large");
            next = (uint32_t)build_.size();
            build_.emplace_back();
            build_[node].kids.emplace_back(b, next);
        }
        node = next;
    }
    if (build_[node].value < 0) {
        build_[node].value = value;
        build_[node].aux = aux;
        ++n_keys_;
    }
    const uint8_t b0 = (uint8_t)key[0];
    first_[b0 >> 6] |= 1ull << (b0 & 63);
}

void byte_trie::finish() {
    units_.clear();
    if (n_keys_ == 0) {
        build_.assign(1, build_node());
        return;
    }
    // Breadth first: place each node's children at base + byte. Candidate bases come from the list of
    // free units (doubly linked, in index order); after MAX_TRIES misfits the children go past the last
    // used unit, where everything is free. Units never freed, so the list stays sorted.
    constexpr int MAX_TRIES = 32;
    std::vector<uint32_t> nxt, prv; // free list over unit indices; NONE ends it
    std::vector<uint8_t> used;
    uint32_t head = NONE, tail = NONE;
    auto grow = [&](size_t n) {
        if (n <= units_.size()) return;
        size_t cap = units_.empty() ? 1024 : units_.size();
        while (cap < n) cap *= 2;
        if (cap > 0x7FFFFF00u) fail(GPTNEOX_STATUS_UNSUPPORTED, "vocabulary trie too large");
        const size_t old = units_.size();
        units_.resize(cap, unit{NONE, 0, -1, 0.0f});
        nxt.resize(cap, NONE);
        prv.resize(cap, NONE);
        used.resize(cap, 0);
        for (size_t i = old; i < cap; ++i) {
            prv[i] = tail;
            if (tail != NONE) nxt[tail] = (uint32_t)i;
            else head = (uint32_t)i;
            tail = (uint32_t)i;
        }
    };
    auto is_free = [&](size_t i) { return i >= used.size() || !used[i]; };
    auto take = [&](uint32_t i) {
        if (prv[i] != NONE) nxt[prv[i]] = nxt[i];
        else head = nxt[i];
        if (nxt[i] != NONE) prv[nxt[i]] = prv[i];
        else tail = prv[i];
        nxt[i] = prv[i] = NONE;
        used[i] = 1;
    };
    grow(1024);
    take(0);
    units_[0] = unit{NONE, 0, build_[0].value, build_[0].aux};
    size_t top = 1; // one past the highest used unit
    std::vector<std::pair<uint32_t, uint32_t>> queue; // (build node, unit index)
    queue.emplace_back(0, 0);
    for (size_t qi = 0; qi < queue.size(); ++qi) {
        const uint32_t bn = queue[qi].first, at = queue[qi].second;
        auto &kids = build_[bn].kids;
        if (kids.empty()) continue;
        std::sort(kids.begin(), kids.end());
        const size_t lo = kids.front().first;
        size_t b = 0;
        int tries = 0;
        for (uint32_t f = head; f != NONE && tries < MAX_TRIES; f = nxt[f], ++tries) {
            if (f <= lo) continue;
            const size_t cand = f - lo;
            bool ok = true;
            for (const auto &kv : kids) {
                if (!is_free(cand + kv.first)) { ok = false; break; }
            }
            if (ok) { b = cand; break; }
        }
        if (b == 0) b = top > lo ? top - lo : 1;
        grow(b + 256 + 1);
        units_[at].base = (uint32_t)b;
        for (const auto &kv : kids) {
            const uint32_t t = (uint32_t)(b + kv.first);
            take(t);
            const build_node &c = build_[kv.second];
            units_[t] = unit{at, 0, c.value, c.aux};
            top = std::max(top, (size_t)t + 1);
            queue.emplace_back(kv.second, t);
        }
        std::vector<std::pair<uint8_t, uint32_t>>().swap(kids);
    }
    units_.resize(top + 256, unit{NONE, 0, -1, 0.0f});
    units_.shrink_to_fit();
    build_.assign(1, build_node());
    build_.shrink_to_fit();
}

namespace {
// Darts-clone unit layout: bit 8 has_leaf; value = low 31 bits; label = bits 0-7 and bit 31;
// offset = (unit >> 10) << ((unit & (1 << 9)) >> 6).
inline uint32_t da_offset(uint32_t u) { return (u >> 10) << ((u & (1u << 9)) >> 6); }
inline uint32_t da_label(uint32_t u) { return u & ((1u << 31) | 0xFFu); }
} // namespace

darts_view::darts_view(const uint32_t *units, size_t n) : units_(units), n_(n) {
    if (n_ == 0) return;
    // a key may start with b iff the root has a child labelled b (bytes with no child fail at once)
    const size_t root = da_offset(units_[0]);
    for (unsigned b = 0; b < 256; ++b) {
        const size_t pos = root ^ b;
        if (pos < n_ && da_label(units_[pos]) == b) first_[b >> 6] |= 1ull << (b & 63);
    }
}

int32_t darts_view::longest(const char *s, size_t n, size_t *len) const {
    auto offset = da_offset;
    auto label = da_label;
    auto has_leaf = [](uint32_t u) { return ((u >> 8) & 1u) != 0; };
    int32_t best = -1;
    *len = 0;
    if (n_ == 0) return -1;
    size_t pos = offset(units_[0]);
    for (size_t i = 0; i < n; ++i) {
        const uint8_t b = (uint8_t)s[i];
        pos ^= b;
        if (pos >= n_) return best;
        const uint32_t u = units_[pos];
        if (label(u) != b) return best;
        pos ^= offset(u);
        if (pos >= n_) return best;
        if (has_leaf(u)) {
            best = (int32_t)(units_[pos] & 0x7FFFFFFFu);
            *len = i + 1;
        }
    }
    return best;
}

} // namespace gptneox
