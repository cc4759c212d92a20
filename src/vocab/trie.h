// Byte tries for the tokenizers: a hash-addressed trie (children found through one open-addressing
// table keyed by (node, byte)) for the vocabulary and special tokens, and a reader for the Darts
// double-array that sentencepiece's precompiled_charsmap holds.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string_view>
#include <vector>

namespace gptneox {

class hash_trie {
public:
    // Insert `key` with `value` (>= 0); an existing key keeps its first value.
    void insert(std::string_view key, int32_t value);
    // Build the lookup table after the last insert (insert() may not be called afterwards).
    void finish();
    bool empty() const { return n_keys_ == 0; }
    bool has_first_byte(uint8_t b) const { return (first_[b >> 6] >> (b & 63)) & 1; }

    // Call f(length, value) for every key that is a prefix of s[0..n), shortest first.
    template <typename F> void prefixes(const char *s, size_t n, F &&f) const {
        uint32_t node = 0;
        for (size_t i = 0; i < n; ++i) {
            node = child(node, (uint8_t)s[i]);
            if (node == NONE) return;
            const int32_t v = values_[node];
            if (v >= 0) f(i + 1, v);
        }
    }
    // Longest key that is a prefix of s[0..n): its value and *len, or -1.
    int32_t longest(const char *s, size_t n, size_t *len) const {
        int32_t best = -1;
        *len = 0;
        prefixes(s, n, [&](size_t l, int32_t v) { best = v; *len = l; });
        return best;
    }
    // Value of exactly `key`, or -1.
    int32_t find(std::string_view key) const {
        uint32_t node = 0;
        for (char c : key) {
            node = child(node, (uint8_t)c);
            if (node == NONE) return -1;
        }
        return values_[node];
    }

private:
    static constexpr uint32_t NONE = 0xFFFFFFFFu;
    struct slot {
        uint32_t key; // (node << 8 | byte) + 1; 0 = empty (nodes < 2^24)
        uint32_t child;
    };
    uint32_t child(uint32_t node, uint8_t b) const {
        if (table_.empty()) return NONE;
        const uint32_t k = ((node << 8) | b) + 1;
        size_t h = (size_t)(((uint64_t)k * 0x9E3779B97F4A7C15ull) >> shift_);
        for (;;) {
            const slot &s = table_[h];
            if (s.key == k) return s.child;
            if (s.key == 0) return NONE;
            h = (h + 1) & mask_;
        }
    }
    std::vector<int32_t> values_ = {-1};      // per node
    std::vector<uint64_t> edges_;             // build: (parent << 8 | byte) per node (index = child - 1)
    std::vector<slot> table_;
    size_t mask_ = 0;
    unsigned shift_ = 64;
    size_t n_keys_ = 0;
    uint64_t first_[4] = {0, 0, 0, 0};
    // build-time map (node,byte) -> child; cleared by finish()
    std::vector<std::vector<std::pair<uint8_t, uint32_t>>> kids_ = {{}};
};

// Read-only view of a Darts-clone double array (sentencepiece precompiled_charsmap).
class darts_view {
public:
    darts_view() = default;
    darts_view(const uint32_t *units, size_t n) : units_(units), n_(n) {}
    bool empty() const { return n_ == 0; }
    // Longest key that is a prefix of s[0..n): its value and *len; -1 if none (or a corrupt array).
    int32_t longest(const char *s, size_t n, size_t *len) const;

private:
    const uint32_t *units_ = nullptr;
    size_t n_ = 0;
};

} // namespace gptneox
