// Exported vocabulary and tokenization functions (gptneox.h, "Vocabulary and tokenization").
#include <climits>
#include <cstring>

#include "common/status.h"
#include "gptneox.h"
#include "vocab/vocab.h"

using gptneox::fail;
using gptneox::guard;

namespace {

const gptneox::vocab &get(const gptneox_vocab *v) {
    if (!v || !v->v) fail(GPTNEOX_STATUS_INVALID_ARGUMENT, "vocab is NULL");
    return *v->v;
}

// Copy `s` into buf (no NUL) when it fits; llama.h convention otherwise.
int32_t emit(const std::string &s, char *buf, int32_t len) {
    if (s.size() > (size_t)INT32_MAX) fail(GPTNEOX_STATUS_INVALID_ARGUMENT, "output too large");
    const int32_t n = (int32_t)s.size();
    if (len < 0) len = 0;
    if (n > len) return -n;
    if (n > 0) {
        if (!buf) fail(GPTNEOX_STATUS_INVALID_ARGUMENT, "output buffer is NULL");
        std::memcpy(buf, s.data(), (size_t)n);
    }
    return n;
}

} // namespace

extern "C" {

GPTNEOX_API enum gptneox_vocab_type gptneox_vocab_type(const struct gptneox_vocab *vocab) {
    return guard(GPTNEOX_VOCAB_TYPE_NONE, [&] { return get(vocab).type(); });
}

GPTNEOX_API int32_t gptneox_vocab_n_tokens(const struct gptneox_vocab *vocab) {
    return guard((int32_t)0, [&] { return get(vocab).n_tokens(); });
}

GPTNEOX_API const char *gptneox_vocab_get_text(const struct gptneox_vocab *vocab, gptneox_token token) {
    return guard((const char *)nullptr, [&] { return get(vocab).text(token); });
}

GPTNEOX_API float gptneox_vocab_get_score(const struct gptneox_vocab *vocab, gptneox_token token) {
    return guard(0.0f, [&] { return get(vocab).score(token); });
}

GPTNEOX_API enum gptneox_token_attr gptneox_vocab_get_attr(const struct gptneox_vocab *vocab, gptneox_token token) {
    return guard(GPTNEOX_TOKEN_ATTR_UNDEFINED, [&] { return (enum gptneox_token_attr)get(vocab).attr(token); });
}

GPTNEOX_API bool gptneox_vocab_is_eog(const struct gptneox_vocab *vocab, gptneox_token token) {
    return guard(false, [&] { return get(vocab).is_eog(token); });
}

GPTNEOX_API bool gptneox_vocab_is_control(const struct gptneox_vocab *vocab, gptneox_token token) {
    return guard(false, [&] { return get(vocab).is_control(token); });
}

#define GPTNEOX_VOCAB_ID(name)                                                                       \
    GPTNEOX_API gptneox_token gptneox_vocab_##name(const struct gptneox_vocab *vocab) {              \
        return guard((gptneox_token)GPTNEOX_TOKEN_NULL, [&] { return get(vocab).name(); });          \
    }
GPTNEOX_VOCAB_ID(bos)
GPTNEOX_VOCAB_ID(eos)
GPTNEOX_VOCAB_ID(eot)
GPTNEOX_VOCAB_ID(sep)
GPTNEOX_VOCAB_ID(pad)
GPTNEOX_VOCAB_ID(unk)
GPTNEOX_VOCAB_ID(nl)
#undef GPTNEOX_VOCAB_ID

GPTNEOX_API bool gptneox_vocab_get_add_bos(const struct gptneox_vocab *vocab) {
    return guard(false, [&] { return get(vocab).add_bos(); });
}

GPTNEOX_API bool gptneox_vocab_get_add_eos(const struct gptneox_vocab *vocab) {
    return guard(false, [&] { return get(vocab).add_eos(); });
}

GPTNEOX_API int32_t gptneox_vocab_tokenize(const struct gptneox_vocab *vocab, const char *text, int32_t text_len,
                                           gptneox_token *tokens, int32_t n_tokens_max, bool add_special,
                                           bool parse_special) {
    return guard((int32_t)GPTNEOX_STATUS_INVALID_ARGUMENT, [&]() -> int32_t {
        const gptneox::vocab &v = get(vocab);
        if (text_len < 0) fail(GPTNEOX_STATUS_INVALID_ARGUMENT, "text_len %d is negative", text_len);
        if (text_len > 0 && !text) fail(GPTNEOX_STATUS_INVALID_ARGUMENT, "text is NULL");
        if (n_tokens_max < 0) n_tokens_max = 0;
        std::vector<gptneox_token> out;
        v.tokenize(std::string_view(text ? text : "", (size_t)text_len), add_special, parse_special, out);
        if (out.size() > (size_t)INT32_MAX) return INT32_MIN;
        const int32_t n = (int32_t)out.size();
        if (n > n_tokens_max) return -n;
        if (n > 0) {
            if (!tokens) fail(GPTNEOX_STATUS_INVALID_ARGUMENT, "tokens is NULL");
            std::memcpy(tokens, out.data(), (size_t)n * sizeof(gptneox_token));
        }
        return n;
    });
}

GPTNEOX_API int32_t gptneox_token_to_piece(const struct gptneox_vocab *vocab, gptneox_token token, char *buf,
                                           int32_t length, int32_t lstrip, bool special) {
    return guard((int32_t)GPTNEOX_STATUS_INVALID_ARGUMENT, [&]() -> int32_t {
        const gptneox::vocab &v = get(vocab);
        std::string s = v.piece(token, special);
        size_t skip = 0;
        while (lstrip > 0 && skip < s.size() && s[skip] == ' ') {
            ++skip;
            --lstrip;
        }
        if (skip) s.erase(0, skip);
        return emit(s, buf, length);
    });
}

GPTNEOX_API int32_t gptneox_detokenize(const struct gptneox_vocab *vocab, const gptneox_token *tokens,
                                       int32_t n_tokens, char *text, int32_t text_len_max, bool remove_special,
                                       bool unparse_special) {
    return guard((int32_t)GPTNEOX_STATUS_INVALID_ARGUMENT, [&]() -> int32_t {
        const gptneox::vocab &v = get(vocab);
        if (n_tokens < 0) fail(GPTNEOX_STATUS_INVALID_ARGUMENT, "n_tokens %d is negative", n_tokens);
        if (n_tokens > 0 && !tokens) fail(GPTNEOX_STATUS_INVALID_ARGUMENT, "tokens is NULL");
        return emit(v.detokenize(tokens, n_tokens, remove_special, unparse_special), text, text_len_max);
    });
}

} // extern "C"
