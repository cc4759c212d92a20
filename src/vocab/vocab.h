// The tokenizer, built from the tokenizer.* keys of a GGUF file: sentencepiece (unigram, or BPE when
// the model says so) and byte-level BPE. Shared read-only by every context of a model.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "gptneox.h"

namespace gptneox {

class gguf_file;
struct vocab_impl;   // the algorithm-specific tables (src/vocab/*.cpp)
struct vocab_source; // a vocabulary's contents independent of the file (vocab-impl.h)

class vocab {
public:
    vocab();
    ~vocab();
    vocab(vocab &&) noexcept;
    vocab &operator=(vocab &&) noexcept;

    // Read tokenizer.ggml.* (and neox_cpp.tokenizer.*) keys; throws gptneox::error on a bad vocabulary.
    // A file without tokenizer keys gives type NONE with no tokens.
    void load(const gguf_file &file);
    // Build from already-read contents (used by load() and by unit tests).
    void load_from(vocab_source &&src);

    enum gptneox_vocab_type type() const;
    int32_t n_tokens() const;
    const char *text(gptneox_token id) const;  // nullptr if out of range
    float score(gptneox_token id) const;       // 0 if out of range
    int32_t attr(gptneox_token id) const;      // gptneox_token_attr bits; UNDEFINED if out of range
    bool is_eog(gptneox_token id) const;
    bool is_control(gptneox_token id) const;

    gptneox_token bos() const, eos() const, eot() const, sep() const, pad() const, unk() const, nl() const;
    bool add_bos() const, add_eos() const;

    // Tokenize `text`, appending to `out`. Throws only on internal errors.
    void tokenize(std::string_view text, bool add_special, bool parse_special, std::vector<gptneox_token> &out) const;
    // The bytes of one token (see gptneox_token_to_piece).
    std::string piece(gptneox_token id, bool special) const;
    void append_piece(gptneox_token id, bool special, std::string &out) const;
    // Tokens to text (see gptneox_detokenize).
    std::string detokenize(const gptneox_token *ids, int32_t n, bool remove_special, bool unparse_special) const;

private:
    std::unique_ptr<vocab_impl> impl_;
};

} // namespace gptneox

struct gptneox_vocab {
    const gptneox::vocab *v;
};
