// gptneox::vocab: loading the tokenizer.* keys, token attributes, special tokens, and the shared parts
// of tokenize / detokenize. The algorithms are in spm.cpp (sentencepiece) and bpe.cpp (byte-level BPE).
#include "vocab/vocab.h"

#include <cstring>
#include <limits>

#include "common/status.h"
#include "gguf/gguf.h"
#include "vocab/unicode.h"
#include "vocab/vocab-impl.h"

namespace gptneox {

namespace {

constexpr const char *SPACE_SYMBOL = "\xE2\x96\x81";

int32_t attr_of_type(int32_t t) {
    switch (t) {
    case SP_NORMAL: return GPTNEOX_TOKEN_ATTR_NORMAL;
    case SP_UNKNOWN: return GPTNEOX_TOKEN_ATTR_UNKNOWN;
    case SP_CONTROL: return GPTNEOX_TOKEN_ATTR_CONTROL;
    case SP_USER_DEFINED: return GPTNEOX_TOKEN_ATTR_USER_DEFINED;
    case SP_UNUSED: return GPTNEOX_TOKEN_ATTR_UNUSED;
    case SP_BYTE: return GPTNEOX_TOKEN_ATTR_BYTE;
    default: return GPTNEOX_TOKEN_ATTR_UNDEFINED;
    }
}

int8_t opt_bool(const gguf_file &f, const std::string &key) {
    if (!f.find(key)) return -1;
    return f.get_bool(key) ? 1 : 0;
}

int32_t opt_id(const gguf_file &f, const std::string &key) {
    const gguf_kv *kv = f.find(key);
    if (!kv) return -1;
    switch (kv->value.type) {
    case gguf_type::u8: case gguf_type::u16: case gguf_type::u32: case gguf_type::u64:
        return kv->value.num.u > 0x7FFFFFFF ? -1 : (int32_t)kv->value.num.u;
    case gguf_type::i8: case gguf_type::i16: case gguf_type::i32: case gguf_type::i64:
        return (kv->value.num.i < 0 || kv->value.num.i > 0x7FFFFFFF) ? -1 : (int32_t)kv->value.num.i;
    default:
        fail(GPTNEOX_STATUS_FORMAT, "%s: key %s is not an integer", f.path().c_str(), key.c_str());
    }
}

bool is_pad_name(const std::string &s, int32_t id) {
    // "[PAD123]" at id 123: the filler llama.cpp's converter writes past the tokenizer's size
    return s.size() > 6 && s.compare(0, 4, "[PAD") == 0 && s.back() == ']' && s.substr(4, s.size() - 5) == std::to_string(id);
}

void build(vocab_impl &v, vocab_source &src) {
    const size_t n = src.tokens.size();
    if (src.model.empty() || src.model == "none" || src.model == "no_vocab") {
        v.type = GPTNEOX_VOCAB_TYPE_NONE;
        v.algo = vocab_algo::none;
        return;
    }
    if (src.model == "llama") {
        v.type = GPTNEOX_VOCAB_TYPE_SPM;
        if (src.sp_model_type.empty() || src.sp_model_type == "bpe") v.algo = vocab_algo::sp_bpe;
        else if (src.sp_model_type == "unigram") v.algo = vocab_algo::sp_unigram;
        else fail(GPTNEOX_STATUS_UNSUPPORTED, "sentencepiece model type '%s' is not supported", src.sp_model_type.c_str());
    } else if (src.model == "gpt2") {
        v.type = GPTNEOX_VOCAB_TYPE_BPE;
        v.algo = vocab_algo::byte_bpe;
    } else {
        fail(GPTNEOX_STATUS_UNSUPPORTED, "tokenizer model '%s' is not supported", src.model.c_str());
    }
    if (n == 0) fail(GPTNEOX_STATUS_FORMAT, "tokenizer.ggml.tokens is missing or empty");
    if (n > 0x7FFFFFF0u) fail(GPTNEOX_STATUS_FORMAT, "too many tokens");
    if (!src.scores.empty() && src.scores.size() != n)
        fail(GPTNEOX_STATUS_FORMAT, "tokenizer.ggml.scores has %zu entries for %zu tokens", src.scores.size(), n);
    if (!src.types.empty() && src.types.size() != n)
        fail(GPTNEOX_STATUS_FORMAT, "tokenizer.ggml.token_type has %zu entries for %zu tokens", src.types.size(), n);
    v.tok_text = std::move(src.tokens);
    v.scores = src.scores.empty() ? std::vector<float>(n, 0.0f) : std::move(src.scores);
    v.types = src.types.empty() ? std::vector<int32_t>(n, SP_NORMAL) : std::move(src.types);
    for (int32_t &t : v.types) {
        if (t < SP_NORMAL || t > SP_BYTE) t = SP_NORMAL;
    }
    if (v.type == GPTNEOX_VOCAB_TYPE_BPE) {
        for (size_t i = 0; i < n; ++i) {
            if (v.types[i] == SP_USER_DEFINED && is_pad_name(v.tok_text[i], (int32_t)i)) v.types[i] = SP_UNUSED;
        }
    }
    v.attrs.resize(n);
    for (size_t i = 0; i < n; ++i) v.attrs[i] = attr_of_type(v.types[i]);

    auto check_id = [&](int32_t id, const char *what) -> gptneox_token {
        if (id < 0) return GPTNEOX_TOKEN_NULL;
        if ((size_t)id >= n) {
            log(GPTNEOX_LOG_LEVEL_WARN, "tokenizer: %s id %d is out of range (%zu tokens); ignored", what, id, n);
            return GPTNEOX_TOKEN_NULL;
        }
        return id;
    };
    v.bos = check_id(src.bos, "bos");
    v.eos = check_id(src.eos, "eos");
    v.eot = check_id(src.eot, "eot");
    v.unk = check_id(src.unk, "unknown");
    v.pad = check_id(src.pad, "padding");
    v.sep = check_id(src.sep, "separator");
    v.add_bos = src.add_bos == 1;
    v.add_eos = src.add_eos == 1;
    if (v.type == GPTNEOX_VOCAB_TYPE_SPM && src.add_bos == -1) v.add_bos = true; // llama.cpp's SPM default

    // Special tokens matched in text (parse_special): control and unknown tokens.
    for (size_t i = 0; i < n; ++i) {
        const int32_t t = v.types[i];
        if (t == SP_CONTROL || t == SP_UNKNOWN) v.control_trie.insert(v.tok_text[i], (int32_t)i);
    }
    v.control_trie.finish();

    if (v.type == GPTNEOX_VOCAB_TYPE_SPM) {
        v.add_dummy_prefix = src.add_space_prefix != 0;
        v.remove_extra_ws = src.remove_extra_whitespaces == 1;
        v.escape_ws = src.escape_whitespaces != 0;
        v.ws_suffix = src.treat_whitespace_as_suffix == 1;
        if (!src.unk_surface.empty()) v.unk_surface = src.unk_surface;
        std::fill(std::begin(v.byte_piece), std::end(v.byte_piece), -1);
        bool have_normal = false;
        v.min_score = 0;
        v.max_score = 1.17549435e-38f; // FLT_MIN, as sentencepiece initializes it
        float min_s = 3.4e38f;
        for (size_t i = 0; i < n; ++i) {
            const int32_t t = v.types[i];
            const std::string &s = v.tok_text[i];
            if (t == SP_NORMAL) {
                have_normal = true;
                min_s = std::min(min_s, v.scores[i]);
                v.max_score = std::max(v.max_score, v.scores[i]);
            }
            if (t == SP_BYTE && s.size() == 6 && s.compare(0, 3, "<0x") == 0 && s[5] == '>') {
                const int b = (int)std::strtol(s.substr(3, 2).c_str(), nullptr, 16);
                if (b >= 0 && b < 256 && v.byte_piece[b] < 0) v.byte_piece[b] = (int32_t)i;
            }
            if (t == SP_UNKNOWN && v.unk == GPTNEOX_TOKEN_NULL) v.unk = (int32_t)i;
        }
        v.min_score = have_normal ? min_s : 0.0f;
        // Pieces with their Viterbi score (user-defined: by length, as sentencepiece scores them; unused:
        // NaN, never taken). Bytes that occur inside a usable piece (not at its start) tell where the
        // lattice can be cut (see split_ascii).
        bool interior[256] = {};
        bool space_interior = false;
        for (size_t i = 0; i < n; ++i) {
            const int32_t t = v.types[i];
            const std::string &s = v.tok_text[i];
            if (t == SP_UNUSED && is_pad_name(s, (int32_t)i)) continue; // converter filler past the tokenizer's size
            if (t != SP_NORMAL && t != SP_USER_DEFINED && t != SP_UNUSED) {
                v.reserved.emplace(s, (int32_t)i);
                continue;
            }
            float sc = v.scores[i];
            if (t == SP_UNUSED) sc = std::numeric_limits<float>::quiet_NaN();
            else if (t == SP_USER_DEFINED) sc = (float)((double)((float)s.size() * v.max_score) - 0.1);
            v.pieces.insert(s, (int32_t)i, sc);
            if (t == SP_USER_DEFINED) v.user_defined.insert(s, (int32_t)i);
            if (t == SP_UNUSED || s.empty()) continue;
            v.max_piece_len = std::max(v.max_piece_len, s.size());
            for (size_t k = 1; k < s.size(); ++k) {
                interior[(uint8_t)s[k]] = true;
                // U+2581 (E2 96 81) starting at k, or a piece ending inside such a sequence
                const std::string_view tail(s.data() + k, std::min<size_t>(3, s.size() - k));
                if (std::string_view(SPACE_SYMBOL).substr(0, tail.size()) == tail) space_interior = true;
            }
        }
        for (int b = 0; b < 128; ++b) v.split_ascii[b] = !interior[b];
        v.split_space = !space_interior;
        v.pieces.finish();
        v.user_defined.finish();
        bool all_bytes = true;
        for (int b = 0; b < 256; ++b) all_bytes = all_bytes && v.byte_piece[b] >= 0;
        v.byte_fallback = src.byte_fallback == -1 ? all_bytes : (src.byte_fallback == 1 && all_bytes);
        // precompiled charsmap: u32 trie size, the trie, then NUL-terminated replacement strings
        v.charsmap_blob = std::move(src.charsmap);
        if (!v.charsmap_blob.empty()) {
            if (v.charsmap_blob.size() < 4) fail(GPTNEOX_STATUS_FORMAT, "precompiled_charsmap is truncated");
            uint32_t trie_size;
            std::memcpy(&trie_size, v.charsmap_blob.data(), 4);
            if (trie_size % 4 != 0 || (uint64_t)trie_size + 4 > v.charsmap_blob.size())
                fail(GPTNEOX_STATUS_FORMAT, "precompiled_charsmap: bad trie size %u", trie_size);
            // the blob is a std::vector<uint8_t> (new'd storage, suitably aligned); +4 keeps 4-byte alignment
            v.charsmap = darts_view(reinterpret_cast<const uint32_t *>(v.charsmap_blob.data() + 4), trie_size / 4);
            v.charsmap_pool = reinterpret_cast<const char *>(v.charsmap_blob.data() + 4 + trie_size);
            v.charsmap_pool_size = v.charsmap_blob.size() - 4 - trie_size;
        }
        // newline: <NL> if the vocabulary has it, else the piece for "\n", else its byte piece
        const int32_t nl_piece = v.pieces.find("<NL>");
        if (nl_piece >= 0) v.nl = nl_piece;
        else if (v.pieces.find("\n") >= 0) v.nl = v.pieces.find("\n");
        else if (v.byte_piece['\n'] >= 0) v.nl = v.byte_piece['\n'];
    } else {
        v.nfc = src.nfc != 0;
        v.add_prefix_space = src.add_prefix_space == 1;
        std::unordered_map<std::string_view, int32_t> by_text;
        by_text.reserve(n * 2);
        for (size_t i = 0; i < n; ++i) {
            if (v.types[i] == SP_NORMAL || v.types[i] == SP_BYTE || v.types[i] == SP_UNKNOWN) by_text.emplace(v.tok_text[i], (int32_t)i);
        }
        for (size_t i = 0; i < n; ++i) {
            if (v.types[i] == SP_USER_DEFINED) v.added_trie.insert(v.tok_text[i], (int32_t)i);
        }
        v.added_trie.finish();
        // byte symbols: byte b <-> one code point (GPT-2's bytes_to_unicode)
        int k = 0;
        for (int b = 0; b < 256; ++b) {
            uint32_t cp;
            if ((b >= 0x21 && b <= 0x7E) || (b >= 0xA1 && b <= 0xAC) || (b >= 0xAE && b <= 0xFF)) cp = (uint32_t)b;
            else cp = 0x100 + (uint32_t)k++;
            std::string sym;
            unicode::append_utf8(sym, cp);
            const auto it = by_text.find(sym);
            v.byte_sym[b] = it != by_text.end() ? it->second : (v.unk >= 0 ? v.unk : 0);
        }
        v.merges.reserve(src.merges.size());
        std::string joined;
        for (size_t r = 0; r < src.merges.size(); ++r) {
            const std::string &m = src.merges[r];
            const size_t sp = m.find(' ', 1);
            if (sp == std::string::npos) fail(GPTNEOX_STATUS_FORMAT, "tokenizer.ggml.merges[%zu] is not \"a b\"", r);
            const std::string_view a(m.data(), sp), b(m.data() + sp + 1, m.size() - sp - 1);
            const auto ia = by_text.find(a), ib = by_text.find(b);
            joined.assign(a);
            joined.append(b);
            const auto ic = by_text.find(joined);
            if (ia == by_text.end() || ib == by_text.end() || ic == by_text.end()) continue;
            v.merges.insert(ia->second, ib->second, (int32_t)r, ic->second);
        }
        const auto it = by_text.find("\xC4\x8A"); // U+010A, the symbol of '\n'
        if (it != by_text.end()) v.nl = it->second;
    }
}

} // namespace

vocab::vocab() : impl_(new vocab_impl()) {}
vocab::~vocab() = default;
vocab::vocab(vocab &&) noexcept = default;
vocab &vocab::operator=(vocab &&) noexcept = default;

void vocab::load(const gguf_file &f) {
    vocab_source src;
    src.model = f.get_str_or("tokenizer.ggml.model", "");
    if (src.model.empty() || src.model == "none" || src.model == "no_vocab") {
        load_from(std::move(src));
        return;
    }
    for (std::string_view s : f.get_str_array("tokenizer.ggml.tokens")) src.tokens.emplace_back(s);
    if (f.find("tokenizer.ggml.scores")) src.scores = f.get_f32_array("tokenizer.ggml.scores");
    if (f.find("tokenizer.ggml.token_type")) src.types = f.get_i32_array("tokenizer.ggml.token_type");
    if (f.find("tokenizer.ggml.merges")) {
        for (std::string_view s : f.get_str_array("tokenizer.ggml.merges")) src.merges.emplace_back(s);
    }
    src.bos = opt_id(f, "tokenizer.ggml.bos_token_id");
    src.eos = opt_id(f, "tokenizer.ggml.eos_token_id");
    src.eot = opt_id(f, "tokenizer.ggml.eot_token_id");
    src.unk = opt_id(f, "tokenizer.ggml.unknown_token_id");
    src.pad = opt_id(f, "tokenizer.ggml.padding_token_id");
    src.sep = opt_id(f, "tokenizer.ggml.seperator_token_id");
    src.add_bos = opt_bool(f, "tokenizer.ggml.add_bos_token");
    src.add_eos = opt_bool(f, "tokenizer.ggml.add_eos_token");
    src.add_space_prefix = opt_bool(f, "tokenizer.ggml.add_space_prefix");
    src.remove_extra_whitespaces = opt_bool(f, "tokenizer.ggml.remove_extra_whitespaces");
    if (f.find("tokenizer.ggml.precompiled_charsmap")) src.charsmap = f.get_u8_array("tokenizer.ggml.precompiled_charsmap");
    src.sp_model_type = f.get_str_or("neox_cpp.tokenizer.sp_model_type", "");
    src.normalizer = f.get_str_or("neox_cpp.tokenizer.normalizer", "");
    src.unk_surface = f.get_str_or("neox_cpp.tokenizer.unk_surface", "");
    src.byte_fallback = opt_bool(f, "neox_cpp.tokenizer.byte_fallback");
    src.escape_whitespaces = opt_bool(f, "neox_cpp.tokenizer.escape_whitespaces");
    src.treat_whitespace_as_suffix = opt_bool(f, "neox_cpp.tokenizer.treat_whitespace_as_suffix");
    src.nfc = opt_bool(f, "neox_cpp.tokenizer.nfc");
    src.add_prefix_space = opt_bool(f, "neox_cpp.tokenizer.add_prefix_space");
    try {
        load_from(std::move(src));
    } catch (const error &e) {
        fail(e.status(), "%s: %s", f.path().c_str(), e.what());
    }
}

void vocab::load_from(vocab_source &&src) {
    auto v = std::make_unique<vocab_impl>();
    build(*v, src);
    impl_ = std::move(v);
}

enum gptneox_vocab_type vocab::type() const { return impl_->type; }
int32_t vocab::n_tokens() const { return (int32_t)impl_->tok_text.size(); }

const char *vocab::text(gptneox_token id) const {
    return (id >= 0 && id < n_tokens()) ? impl_->tok_text[id].c_str() : nullptr;
}
float vocab::score(gptneox_token id) const { return (id >= 0 && id < n_tokens()) ? impl_->scores[id] : 0.0f; }
int32_t vocab::attr(gptneox_token id) const {
    return (id >= 0 && id < n_tokens()) ? impl_->attrs[id] : (int32_t)GPTNEOX_TOKEN_ATTR_UNDEFINED;
}
bool vocab::is_eog(gptneox_token id) const {
    return id != GPTNEOX_TOKEN_NULL && (id == impl_->eos || id == impl_->eot);
}
bool vocab::is_control(gptneox_token id) const {
    return id >= 0 && id < n_tokens() && impl_->types[id] == SP_CONTROL;
}
gptneox_token vocab::bos() const { return impl_->bos; }
gptneox_token vocab::eos() const { return impl_->eos; }
gptneox_token vocab::eot() const { return impl_->eot; }
gptneox_token vocab::sep() const { return impl_->sep; }
gptneox_token vocab::pad() const { return impl_->pad; }
gptneox_token vocab::unk() const { return impl_->unk; }
gptneox_token vocab::nl() const { return impl_->nl; }
bool vocab::add_bos() const { return impl_->add_bos; }
bool vocab::add_eos() const { return impl_->add_eos; }

void vocab::tokenize(std::string_view text_in, bool add_special, bool parse_special, std::vector<gptneox_token> &out) const {
    const vocab_impl &v = *impl_;
    if (v.algo == vocab_algo::none) return;
    if (add_special && v.add_bos && v.bos >= 0) out.push_back(v.bos);
    auto encode = [&](std::string_view frag) {
        if (frag.empty()) return;
        if (v.algo == vocab_algo::byte_bpe) v.bpe_encode(frag, out);
        else v.sp_encode(frag, out);
    };
    if (parse_special && !v.control_trie.empty()) {
        size_t start = 0, i = 0;
        while (i < text_in.size()) {
            size_t len = 0;
            const int32_t id = v.control_trie.has_first_byte((uint8_t)text_in[i])
                                   ? v.control_trie.longest(text_in.data() + i, text_in.size() - i, &len) : -1;
            if (id < 0) {
                ++i;
                continue;
            }
            encode(text_in.substr(start, i - start));
            out.push_back(id);
            i += len;
            start = i;
        }
        encode(text_in.substr(start));
    } else {
        encode(text_in);
    }
    if (add_special && v.add_eos && v.eos >= 0) out.push_back(v.eos);
}

void vocab::append_piece(gptneox_token id, bool special, std::string &out) const {
    const vocab_impl &v = *impl_;
    if (id < 0 || id >= n_tokens()) return;
    const int32_t t = v.types[id];
    const std::string &s = v.tok_text[id];
    if (t == SP_CONTROL) {
        if (special) out.append(s);
        return;
    }
    if (v.type == GPTNEOX_VOCAB_TYPE_BPE) {
        v.bpe_piece(id, out);
        return;
    }
    if (t == SP_UNKNOWN) {
        out.append(special ? s : v.unk_surface);
        return;
    }
    if (t == SP_BYTE) {
        if (s.size() == 6 && s.compare(0, 3, "<0x") == 0) {
            out.push_back((char)std::strtol(s.substr(3, 2).c_str(), nullptr, 16));
            return;
        }
    }
    // U+2581 -> ' '
    for (size_t i = 0; i < s.size();) {
        if (s.compare(i, 3, SPACE_SYMBOL) == 0) {
            out.push_back(' ');
            i += 3;
        } else {
            out.push_back(s[i++]);
        }
    }
}

std::string vocab::piece(gptneox_token id, bool special) const {
    std::string out;
    append_piece(id, special, out);
    return out;
}

std::string vocab::detokenize(const gptneox_token *ids, int32_t n, bool remove_special, bool unparse_special) const {
    const vocab_impl &v = *impl_;
    std::string out;
    if (n <= 0 || !ids) return out;
    int32_t b = 0, e = n;
    if (remove_special) {
        if (v.add_bos && v.bos >= 0 && ids[0] == v.bos) ++b;
        if (v.add_eos && v.eos >= 0 && e > b && ids[e - 1] == v.eos) --e;
    }
    // sentencepiece drops the dummy-prefix space of the first visible piece where the model adds one
    bool first = v.type == GPTNEOX_VOCAB_TYPE_SPM && (v.add_dummy_prefix || v.remove_extra_ws) && !v.ws_suffix;
    for (int32_t i = b; i < e; ++i) {
        const size_t before = out.size();
        append_piece(ids[i], unparse_special, out);
        if (first && out.size() > before) {
            const int32_t t = (ids[i] >= 0 && ids[i] < n_tokens()) ? v.types[ids[i]] : SP_CONTROL;
            if ((t == SP_NORMAL || t == SP_USER_DEFINED || t == SP_UNUSED) && out[before] == ' ') out.erase(before, 1);
            first = false;
        }
    }
    return out;
}

} // namespace gptneox
