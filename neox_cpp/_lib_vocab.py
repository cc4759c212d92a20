"""ctypes bindings of gptneox.h's "Vocabulary and tokenization" section, one per C function, declared as in
neox_cpp/_lib.py (which re-exports them: use them as ``_lib.gptneox_vocab_*``)."""

from __future__ import annotations

import ctypes
from typing import Any, Optional

from neox_cpp._lib import _bind, _token_p, gptneox_token


# enum gptneox_vocab_type gptneox_vocab_type(const struct gptneox_vocab *vocab);
@_bind("gptneox_vocab_type", [ctypes.c_void_p], ctypes.c_int)
def gptneox_vocab_type(vocab: Optional[int], /) -> int: ...


# int32_t gptneox_vocab_n_tokens(const struct gptneox_vocab *vocab);
@_bind("gptneox_vocab_n_tokens", [ctypes.c_void_p], ctypes.c_int32)
def gptneox_vocab_n_tokens(vocab: Optional[int], /) -> int: ...


# const char *gptneox_vocab_get_text(const struct gptneox_vocab *vocab, gptneox_token token);
@_bind("gptneox_vocab_get_text", [ctypes.c_void_p, gptneox_token], ctypes.c_char_p)
def gptneox_vocab_get_text(vocab: Optional[int], token: int, /) -> Optional[bytes]: ...


# float gptneox_vocab_get_score(const struct gptneox_vocab *vocab, gptneox_token token);
@_bind("gptneox_vocab_get_score", [ctypes.c_void_p, gptneox_token], ctypes.c_float)
def gptneox_vocab_get_score(vocab: Optional[int], token: int, /) -> float: ...


# enum gptneox_token_attr gptneox_vocab_get_attr(const struct gptneox_vocab *vocab, gptneox_token token);
@_bind("gptneox_vocab_get_attr", [ctypes.c_void_p, gptneox_token], ctypes.c_int)
def gptneox_vocab_get_attr(vocab: Optional[int], token: int, /) -> int: ...


# bool gptneox_vocab_is_eog(const struct gptneox_vocab *vocab, gptneox_token token);
@_bind("gptneox_vocab_is_eog", [ctypes.c_void_p, gptneox_token], ctypes.c_bool)
def gptneox_vocab_is_eog(vocab: Optional[int], token: int, /) -> bool: ...


# bool gptneox_vocab_is_control(const struct gptneox_vocab *vocab, gptneox_token token);
@_bind("gptneox_vocab_is_control", [ctypes.c_void_p, gptneox_token], ctypes.c_bool)
def gptneox_vocab_is_control(vocab: Optional[int], token: int, /) -> bool: ...


# gptneox_token gptneox_vocab_bos(const struct gptneox_vocab *vocab);
@_bind("gptneox_vocab_bos", [ctypes.c_void_p], gptneox_token)
def gptneox_vocab_bos(vocab: Optional[int], /) -> int: ...


# gptneox_token gptneox_vocab_eos(const struct gptneox_vocab *vocab);
@_bind("gptneox_vocab_eos", [ctypes.c_void_p], gptneox_token)
def gptneox_vocab_eos(vocab: Optional[int], /) -> int: ...


# gptneox_token gptneox_vocab_eot(const struct gptneox_vocab *vocab);
@_bind("gptneox_vocab_eot", [ctypes.c_void_p], gptneox_token)
def gptneox_vocab_eot(vocab: Optional[int], /) -> int: ...


# gptneox_token gptneox_vocab_sep(const struct gptneox_vocab *vocab);
@_bind("gptneox_vocab_sep", [ctypes.c_void_p], gptneox_token)
def gptneox_vocab_sep(vocab: Optional[int], /) -> int: ...


# gptneox_token gptneox_vocab_pad(const struct gptneox_vocab *vocab);
@_bind("gptneox_vocab_pad", [ctypes.c_void_p], gptneox_token)
def gptneox_vocab_pad(vocab: Optional[int], /) -> int: ...


# gptneox_token gptneox_vocab_unk(const struct gptneox_vocab *vocab);
@_bind("gptneox_vocab_unk", [ctypes.c_void_p], gptneox_token)
def gptneox_vocab_unk(vocab: Optional[int], /) -> int: ...


# gptneox_token gptneox_vocab_nl(const struct gptneox_vocab *vocab);
@_bind("gptneox_vocab_nl", [ctypes.c_void_p], gptneox_token)
def gptneox_vocab_nl(vocab: Optional[int], /) -> int: ...


# bool gptneox_vocab_get_add_bos(const struct gptneox_vocab *vocab);
@_bind("gptneox_vocab_get_add_bos", [ctypes.c_void_p], ctypes.c_bool)
def gptneox_vocab_get_add_bos(vocab: Optional[int], /) -> bool: ...


# bool gptneox_vocab_get_add_eos(const struct gptneox_vocab *vocab);
@_bind("gptneox_vocab_get_add_eos", [ctypes.c_void_p], ctypes.c_bool)
def gptneox_vocab_get_add_eos(vocab: Optional[int], /) -> bool: ...


# gptneox_token gptneox_token_nl(const struct gptneox_context *ctx);
@_bind("gptneox_token_nl", [ctypes.c_void_p], gptneox_token)
def gptneox_token_nl(ctx: Optional[int], /) -> int: ...


# int32_t gptneox_vocab_tokenize(const struct gptneox_vocab *vocab, const char *text, int32_t text_len,
#     gptneox_token *tokens, int32_t n_tokens_max, bool add_special, bool parse_special);
@_bind(
    "gptneox_vocab_tokenize",
    [
        ctypes.c_void_p,
        ctypes.c_char_p,
        ctypes.c_int32,
        _token_p,
        ctypes.c_int32,
        ctypes.c_bool,
        ctypes.c_bool,
    ],
    ctypes.c_int32,
)
def gptneox_vocab_tokenize(
    vocab: Optional[int],
    text: Optional[bytes],
    text_len: int,
    tokens: Any,
    n_tokens_max: int,
    add_special: bool,
    parse_special: bool,
    /,
) -> int: ...


# int32_t gptneox_token_to_piece(const struct gptneox_vocab *vocab, gptneox_token token, char *buf,
#     int32_t length, int32_t lstrip, bool special);
@_bind(
    "gptneox_token_to_piece",
    [ctypes.c_void_p, gptneox_token, ctypes.c_char_p, ctypes.c_int32, ctypes.c_int32, ctypes.c_bool],
    ctypes.c_int32,
)
def gptneox_token_to_piece(
    vocab: Optional[int], token: int, buf: Optional[bytes], length: int, lstrip: int, special: bool, /
) -> int: ...


# int32_t gptneox_detokenize(const struct gptneox_vocab *vocab, const gptneox_token *tokens,
#     int32_t n_tokens, char *text, int32_t text_len_max, bool remove_special, bool unparse_special);
@_bind(
    "gptneox_detokenize",
    [
        ctypes.c_void_p,
        _token_p,
        ctypes.c_int32,
        ctypes.c_char_p,
        ctypes.c_int32,
        ctypes.c_bool,
        ctypes.c_bool,
    ],
    ctypes.c_int32,
)
def gptneox_detokenize(
    vocab: Optional[int],
    tokens: Any,
    n_tokens: int,
    text: Optional[bytes],
    text_len_max: int,
    remove_special: bool,
    unparse_special: bool,
    /,
) -> int: ...


# Everything bound here is re-exported by neox_cpp._lib (``from neox_cpp._lib_vocab import *``).
__all__ = [name for name in list(globals()) if name.startswith("gptneox_")]
