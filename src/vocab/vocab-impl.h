// The tables behind gptneox::vocab (internal to src/vocab/). vocab.cpp loads and owns them; spm.cpp runs
// sentencepiece (normalizer, unigram Viterbi, BPE by score), bpe.cpp the byte-level BPE of GPT-NeoX-20B.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "gptneox.h"
#include "vocab/trie.h"

namespace gptneox {

// Sentencepiece piece types (also the values of tokenizer.ggml.token_type).
enum sp_type : int32_t { SP_NORMAL = 1, SP_UNKNOWN = 2, SP_CONTROL = 3, SP_USER_DEFINED = 4, SP_UNUSED = 5, SP_BYTE = 6 };

// Everything a vocabulary is built from, independent of the file format (vocab::load fills it from GGUF;
// unit tests fill it directly). Optional flags use -1 for "not given".
struct vocab_source {
    std::string model; // "llama" (sentencepiece), "gpt2" (byte-level BPE), "" / "none": no vocabulary
    std::vector<std::string> tokens;
    std::vector<float> scores;     // empty or one per token
    std::vector<int32_t> types;    // empty or one per token (sp_type)
    std::vector<std::string> merges;
    int32_t bos = -1, eos = -1, eot = -1, unk = -1, pad = -1, sep = -1;
    int8_t add_bos = -1, add_eos = -1;
    int8_t add_space_prefix = -1, remove_extra_whitespaces = -1, escape_whitespaces = -1;
    int8_t treat_whitespace_as_suffix = -1, byte_fallback = -1, nfc = -1, add_prefix_space = -1;
    std::string sp_model_type; // "unigram" / "bpe" / "" (default)
    std::string normalizer;    // informational
    std::string unk_surface;   // "" = sentencepiece's default " \u2047 "
    std::vector<uint8_t> charsmap;
};

// Open-addressing map (left id, right id) -> (rank, merged id) for byte-level BPE.
class merge_map {
public:
    void reserve(size_t n);
    void insert(int32_t a, int32_t b, int32_t rank, int32_t id); // keeps the first (lowest rank) entry
    bool find(int32_t a, int32_t b, int32_t *rank, int32_t *id) const {
        if (table_.empty()) return false;
        const uint64_t k = key(a, b);
        size_t h = (size_t)((k * 0x9E3779B97F4A7C15ull) >> shift_);
        for (;;) {
            const entry &e = table_[h];
            if (e.key == k) { *rank = e.rank; *id = e.id; return true; }
            if (e.key == 0) return false;
            h = (h + 1) & mask_;
        }
    }

private:
    static uint64_t key(int32_t a, int32_t b) { return (((uint64_t)(uint32_t)a << 32) | (uint32_t)b) + 1; }
    struct entry {
        uint64_t key;
        int32_t rank, id;
    };
    std::vector<entry> table_;
    size_t mask_ = 0;
    unsigned shift_ = 64;
    size_t count_ = 0;
};

enum class vocab_algo { none, sp_unigram, sp_bpe, byte_bpe };

struct vocab_impl {
    enum gptneox_vocab_type type = GPTNEOX_VOCAB_TYPE_NONE;
    vocab_algo algo = vocab_algo::none;

    std::vector<std::string> tok_text;
    std::vector<float> scores;
    std::vector<int32_t> types; // sp_type per token
    std::vector<int32_t> attrs; // gptneox_token_attr per token

    gptneox_token bos = GPTNEOX_TOKEN_NULL, eos = GPTNEOX_TOKEN_NULL, eot = GPTNEOX_TOKEN_NULL;
    gptneox_token sep = GPTNEOX_TOKEN_NULL, pad = GPTNEOX_TOKEN_NULL, unk = GPTNEOX_TOKEN_NULL;
    gptneox_token nl = GPTNEOX_TOKEN_NULL;
    bool add_bos = false, add_eos = false;

    // Tokens matched in the text before the algorithm runs: control (and unknown) tokens when
    // parse_special is set; for byte-level BPE also user-defined (added) tokens, always.
    byte_trie control_trie;
    byte_trie added_trie; // byte-level BPE: user-defined tokens, matched after normalization

    // sentencepiece
    bool add_dummy_prefix = true, remove_extra_ws = false, escape_ws = true, ws_suffix = false;
    bool byte_fallback = false;
    std::string unk_surface = " \xE2\x81\x87 ";
    std::vector<uint8_t> charsmap_blob;
    darts_view charsmap;
    const char *charsmap_pool = nullptr;
    size_t charsmap_pool_size = 0;
    byte_trie pieces;       // NORMAL, USER_DEFINED, UNUSED pieces; aux: Viterbi score (NaN: unused)
    byte_trie user_defined; // USER_DEFINED pieces (normalizer prefix matcher)
    std::unordered_map<std::string, int32_t> reserved; // CONTROL, UNKNOWN, BYTE pieces by text
    float min_score = 0, max_score = 0;
    // Unigram lattice cuts: no usable piece holds ASCII byte b (split_ascii[b]) or U+2581 (split_space)
    // anywhere but at its start, so no piece spans a position where that character begins, and the
    // Viterbi can finish the text before it and go on from its score with identical arithmetic.
    bool split_ascii[128] = {};
    bool split_space = false;
    size_t max_piece_len = 0;
    int32_t byte_piece[256];

    // byte-level BPE
    bool nfc = true, add_prefix_space = false;
    merge_map merges;
    int32_t byte_sym[256]; // token of each single byte's symbol

    // spm.cpp
    void sp_normalize(std::string_view in, std::string &out) const;
    void sp_encode(std::string_view text, std::vector<gptneox_token> &out) const;
    // bpe.cpp
    void bpe_encode(std::string_view text, std::vector<gptneox_token> &out) const;
    void bpe_piece(gptneox_token id, std::string &out) const; // byte-level symbols back to bytes
};

} // namespace gptneox
