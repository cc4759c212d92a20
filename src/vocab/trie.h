// Byte tries for the tokenizers: a double-array trie (one load and one compare per byte) for the
// vocabulary and special tokens, and a reader for the Darts double-array that sentencepiece's
// precompiled_charsmap holds.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string_view>
#include <vector>

namespace gptneox {

class byte_trie {
public:
    // Insert `key` with `value` (>= 0) and an extra float `aux` handed back by prefixes(); an existing
    // key keeps its first value.
    void insert(std::string_view key, int32_t value, float aux = 0.0f);
    // Build the double array after the last insert (insert() may not be called afterwards).
    void finish();
    bool empty() const { return n_keys_ == 0; }
    bool has_first_byte(uint8_t b) const { return (first_[b >> 6] >> (b & 63)) & 1; }

    // Call f(length, value, aux) for every key that is a prefix of s[0..n), shortest first.
    template <typename F> void prefixes(const char *s, size_t n, F &&f) const {
        if (units_.empty()) return;
        const unit *u = units_.data();
        uint32_t node = 0;
        for (size_t i = 0; i < n; ++i) {
            const uint32_t t = u[node].base + (uint8_t)s[i];
            if (u[t].check != node) return;
            node = t;
            if (u[node].value >= 0) f(i + 1, u[node].value, u[node].aux);
        }
    }
    // Longest key that is a prefix of s[0..n): its value and *len, or -1.
    int32_t longest(const char *s, size_t n, size_t *len) const {
        int32_t best = -1;
        *len = 0;
        prefixes(s, n, [&](size_t l, int32_t v, float) { best = v; *len = l; });
        return best;
    }
    // Value of exactly `key`, or -1.
    int32_t find(std::string_view key) const {
        if (units_.empty()) return -1;
        uint32_t node = 0;
        for (char c : key) {
            const uint32_t t = units_[node].base + (uint8_t)c;
            if (units_[t].check != node) return -1;
            node = t;
        }
        return units_[node].value;
    }

private:
    static constexpr uint32_t NONE = 0xFFFFFFFFu;
    // Double array: the child of `node` by byte b is t = base[node] + b when check[t] == node. The array
    // has 256 spare units past the last used one, so t never needs a bounds check.
    struct unit {
        uint32_t check; // parent; NONE for free units and the root
        uint32_t base;
        int32_t value;  // -1: no key ends here
        float aux;
    };
    std::vector<unit> units_;
    size_t n_keys_ = 0;
    uint64_t first_[4] = {0, 0, 0, 0};
    // build-time trie: children (byte, node) per node, value and aux per node; cleared by finish()
    struct build_node {
        std::vector<std::pair<uint8_t, uint32_t>> kids;
        int32_t value = -1;
        float aux = 0.0f;
    };
    std::vector<build_node> build_ = std::vector<build_node>(1);
};

// Read-only view of a Darts-clone double array (sentencepiece precompiled_charsmap).
class darts_view {
public:
    darts_view() = default;
    darts_view(const uint32_t *units, size_t n);
    bool empty() const { return n_ == 0; }
    // True if some key starts with byte b.
    bool has_first_byte(uint8_t b) const { return (first_[b >> 6] >> (b & 63)) & 1; }
    // Longest key that is a prefix of s[0..n): its value and *len; -1 if none (or a corrupt array).
    int32_t longest(const char *s, size_t n, size_t *len) const;

private:
    const uint32_t *units_ = nullptr;
    size_t n_ = 0;
    uint64_t first_[4] = {0, 0, 0, 0};
};

} // namespace gptneox
