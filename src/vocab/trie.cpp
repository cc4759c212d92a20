#include "vocab/trie.h"

#include "common/status.h"

namespace gptneox {

void hash_trie::insert(std::string_view key, int32_t value) {
    if (key.empty()) return;
    uint32_t node = 0;
    for (char ch : key) {
        const uint8_t b = (uint8_t)ch;
        uint32_t next = NONE;
        for (const auto &kv : kids_[node]) {
            if (kv.first == b) { next = kv.second; break; }
        }
        if (next == NONE) {
            if (values_.size() >= (1u << 24) - 1) fail(GPTNEOX_STATUS_UNSUPPORTED, "vocabulary trie too large");
            next = (uint32_t)values_.size();
            values_.push_back(-1);
            kids_.emplace_back();
            edges_.push_back(((uint64_t)node << 8) | b);
            kids_[node].emplace_back(b, next);
        }
        node = next;
    }
    if (values_[node] < 0) {
        values_[node] = value;
        ++n_keys_;
    }
    const uint8_t b0 = (uint8_t)key[0];
    first_[b0 >> 6] |= 1ull << (b0 & 63);
}

void hash_trie::finish() {
    kids_.clear();
    kids_.shrink_to_fit();
    size_t cap = 16;
    while (cap < edges_.size() * 2 + 2) cap <<= 1;
    table_.assign(cap, slot{0, 0});
    mask_ = cap - 1;
    unsigned bits = 0;
    while ((size_t(1) << bits) < cap) ++bits;
    shift_ = 64 - bits;
    for (size_t i = 0; i < edges_.size(); ++i) {
        const uint32_t k = (uint32_t)edges_[i] + 1;
        size_t h = (size_t)(((uint64_t)k * 0x9E3779B97F4A7C15ull) >> shift_);
        while (table_[h].key != 0) h = (h + 1) & mask_;
        table_[h] = slot{k, (uint32_t)(i + 1)};
    }
    edges_.clear();
    edges_.shrink_to_fit();
}

int32_t darts_view::longest(const char *s, size_t n, size_t *len) const {
    // Unit layout (darts-clone): bit 8 has_leaf; value = low 31 bits; label = bits 0-7 and bit 31;
    // offset = (unit >> 10) << ((unit & (1 << 9)) >> 6).
    auto offset = [](uint32_t u) { return (u >> 10) << ((u & (1u << 9)) >> 6); };
    auto label = [](uint32_t u) { return u & ((1u << 31) | 0xFFu); };
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
