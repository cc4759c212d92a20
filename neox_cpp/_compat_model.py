"""llama_compat, part 1: system, logging, model loading, model queries, vocabulary and tokenization.

Each function keeps the name and parameters of llama-cpp-python 0.3.36's binding and follows llama.h's
return conventions; handles (model, vocab) are libgptneox pointers as Python ints, like llama-cpp-python's
``c_void_p`` results. Parameters with no meaning for this CPU-only engine are accepted and ignored, as
llama.cpp's CPU build does.
"""

from __future__ import annotations

import ctypes
import sys
import warnings
from typing import Any, Optional

from neox_cpp import _lib as _n
from neox_cpp._compat_types import (
    LLAMA_LOAD_MODE_AUTO,
    LLAMA_LOAD_MODE_MLOCK,
    LLAMA_LOAD_MODE_MMAP,
    LLAMA_LOAD_MODE_MMAP_MLOCK,
    LLAMA_ROPE_TYPE_NEOX,
    LLAMA_SPLIT_MODE_LAYER,
    LLAMA_TOKEN_NULL,
    llama_model_params,
)

# llama.cpp's values for a CPU build.
MAX_DEVICES = 16
# Sequence ids the engine's KV cache can hold (gptneox_ctx_params.n_seq_max is 1..64).
MAX_PARALLEL_SEQUENCES = 64

GGML_LOG_LEVEL_INFO = 1
GGML_LOG_LEVEL_WARN = 2
GGML_LOG_LEVEL_ERROR = 3


def _warn_deprecated(symbol: str, hint: str) -> None:
    warnings.warn(f"{symbol} is deprecated; {hint}", DeprecationWarning, stacklevel=3)


# ---------------------------------------------------------------------------------------------------
# Logging: the callback set with llama_log_set receives the engine's log lines and ours.


class _LogSink:
    """The llama_log_set callback (kept alive here) and its user data."""

    callback: Any = None
    user_data: Any = None


def _log(level: int, text: str) -> None:
    """Send a line through the llama_log_set callback, or to stderr if none is set."""
    data = text.encode("utf-8")
    cb = _LogSink.callback
    if cb is not None:
        cb(level, data, _LogSink.user_data)
    else:
        sys.stderr.write(text)


def _log_last_error(what: str) -> None:
    err = _n.last_error(what)
    _log(GGML_LOG_LEVEL_ERROR, f"{what}: {err} (status {err.status_name})\n")


def llama_log_set(log_callback: Any, user_data: Any, /) -> None:
    if log_callback is None or not ctypes.cast(log_callback, ctypes.c_void_p).value:
        _LogSink.callback = None
        _LogSink.user_data = None
        _n.gptneox_log_set(_n.gptneox_log_callback(), None)
        return
    cb = log_callback
    if not isinstance(cb, _n.gptneox_log_callback):  # same C signature, another ctypes class
        cb = _n.gptneox_log_callback(ctypes.cast(log_callback, ctypes.c_void_p).value)
    _LogSink.callback = cb
    _LogSink.user_data = user_data
    _n.gptneox_log_set(cb, user_data)


# ---------------------------------------------------------------------------------------------------
# System


def llama_backend_init() -> None:
    return None


def llama_backend_free() -> None:
    return None


def llama_numa_init(numa: Any, /) -> None:
    return None


def llama_time_us() -> int:
    return int(_n.gptneox_time_us())


def llama_max_devices() -> int:
    return MAX_DEVICES


def llama_max_parallel_sequences() -> int:
    return MAX_PARALLEL_SEQUENCES


def llama_supports_mmap() -> bool:
    return bool(_n.gptneox_supports_mmap())


def llama_supports_mlock() -> bool:
    return bool(_n.gptneox_supports_mlock())


def llama_supports_gpu_offload() -> bool:
    return False


def llama_supports_rpc() -> bool:
    return False


def llama_print_system_info() -> bytes:
    return _n.gptneox_print_system_info() or b""


# ---------------------------------------------------------------------------------------------------
# Model


def llama_model_default_params() -> llama_model_params:
    p = llama_model_params()
    p.n_gpu_layers = 0
    p.split_mode = LLAMA_SPLIT_MODE_LAYER
    p.load_mode = LLAMA_LOAD_MODE_MMAP if llama_supports_mmap() else 0
    p.main_gpu = 0
    p.vocab_only = False
    p.check_tensors = False
    p.use_extra_bufts = True
    return p


def _kv_overrides(params: llama_model_params) -> Optional[ctypes.Array[_n.gptneox_model_kv_override]]:
    """llama_model_params.kv_overrides (terminated by an empty key) as a gptneox array, or None."""
    ov = params.kv_overrides
    if not ov:
        return None
    items = []
    i = 0
    while ov[i].key[:1] not in (b"", b"\0"):
        items.append(ov[i])
        i += 1
    if not items:
        return None
    out = (_n.gptneox_model_kv_override * (len(items) + 1))()  # zeroed: the last entry terminates
    for dst, src in zip(out, items):
        # Same layout as llama.h's struct: copy the 128-byte key and the union as raw bytes (a 128-byte
        # val_str need not be NUL-terminated).
        dst.tag = int(src.tag)
        ctypes.memmove(
            ctypes.addressof(dst) + _n.gptneox_model_kv_override.key.offset,
            ctypes.addressof(src) + type(src).key.offset,
            128,
        )
        ctypes.memmove(
            ctypes.addressof(dst) + _n.gptneox_model_kv_override.value.offset,
            ctypes.addressof(src) + type(src).value.offset,
            128,
        )
    return out


def llama_model_load_from_file(path_model: Any, params: Any, /) -> Optional[int]:
    if isinstance(path_model, str):
        path_model = path_model.encode("utf-8")
    overrides = _kv_overrides(params)
    p = _n.gptneox_model_default_params()
    if overrides is not None:
        p.kv_overrides = ctypes.cast(overrides, ctypes.POINTER(_n.gptneox_model_kv_override))
    mode = int(params.load_mode)
    p.use_mmap = mode in (LLAMA_LOAD_MODE_AUTO, LLAMA_LOAD_MODE_MMAP, LLAMA_LOAD_MODE_MMAP_MLOCK)
    p.use_mlock = mode in (LLAMA_LOAD_MODE_MLOCK, LLAMA_LOAD_MODE_MMAP_MLOCK)
    p.vocab_only = bool(params.vocab_only)
    p.check_tensors = bool(params.check_tensors)
    p.use_extra_bufts = bool(params.use_extra_bufts)
    if params.progress_callback:
        address = ctypes.cast(params.progress_callback, ctypes.c_void_p).value
        p.progress_callback = _n.gptneox_progress_callback(address)
        p.progress_callback_user_data = params.progress_callback_user_data
    _n.gptneox_clear_error()
    model = _n.gptneox_model_load_from_file(path_model, p)
    if not model:
        _log_last_error("llama_model_load_from_file")
        return None
    return int(model)


def llama_load_model_from_file(path_model: Any, params: Any, /) -> Optional[int]:
    _warn_deprecated("llama_load_model_from_file", "use llama_model_load_from_file instead")
    return llama_model_load_from_file(path_model, params)


def llama_model_free(model: Any, /) -> None:
    _n.gptneox_model_free(model)


def llama_free_model(model: Any, /) -> None:
    _warn_deprecated("llama_free_model", "use llama_model_free instead")
    _n.gptneox_model_free(model)


def llama_model_get_vocab(model: Any, /) -> Optional[int]:
    return _n.gptneox_model_get_vocab(model)


def llama_model_rope_type(model: Any, /) -> int:
    return LLAMA_ROPE_TYPE_NEOX


def llama_model_n_ctx_train(model: Any, /) -> int:
    return int(_n.gptneox_model_n_ctx_train(model))


def llama_model_n_embd(model: Any, /) -> int:
    return int(_n.gptneox_model_n_embd(model))


def llama_model_n_embd_inp(model: Any, /) -> int:
    return int(_n.gptneox_model_n_embd(model))


def llama_model_n_embd_out(model: Any, /) -> int:
    return int(_n.gptneox_model_n_embd(model))


def llama_model_n_layer(model: Any, /) -> int:
    return int(_n.gptneox_model_n_layer(model))


def llama_model_n_layer_nextn(model: Any, /) -> int:
    return 0


def llama_model_n_head(model: Any, /) -> int:
    return int(_n.gptneox_model_n_head(model))


def llama_model_n_head_kv(model: Any, /) -> int:
    return int(_n.gptneox_model_n_head(model))  # GPT-NeoX: no grouped-query attention


def llama_model_n_swa(model: Any, /) -> int:
    return 0


def llama_model_rope_freq_scale_train(model: Any, /) -> float:
    return float(_n.gptneox_model_rope_freq_scale_train(model))


def llama_model_n_cls_out(model: Any, /) -> int:
    return 0


def llama_model_cls_label(model: Any, i: Any, /) -> Optional[bytes]:
    return None


def llama_model_meta_val_str(model: Any, key: Any, buf: Any, buf_size: Any, /) -> int:
    return int(_n.gptneox_model_meta_val_str(model, key, buf, buf_size))


def llama_model_meta_count(model: Any, /) -> int:
    return int(_n.gptneox_model_meta_count(model))


def llama_model_meta_key_by_index(model: Any, i: Any, buf: Any, buf_size: Any, /) -> int:
    return int(_n.gptneox_model_meta_key_by_index(model, i, buf, buf_size))


def llama_model_meta_val_str_by_index(model: Any, i: Any, buf: Any, buf_size: Any, /) -> int:
    return int(_n.gptneox_model_meta_val_str_by_index(model, i, buf, buf_size))


def llama_model_desc(model: Any, buf: Any, buf_size: Any, /) -> int:
    return int(_n.gptneox_model_desc(model, buf, buf_size))


def llama_model_chat_template(model: Any, name: Any, /) -> Optional[bytes]:
    return _n.gptneox_model_chat_template(model, name)


def llama_model_ftype(model: Any, /) -> int:
    return int(_n.gptneox_model_ftype(model))


def llama_model_size(model: Any, /) -> int:
    return int(_n.gptneox_model_size(model))


def llama_model_n_params(model: Any, /) -> int:
    return int(_n.gptneox_model_n_params(model))


def llama_model_has_encoder(model: Any, /) -> bool:
    return False


def llama_model_has_decoder(model: Any, /) -> bool:
    return True


def llama_model_decoder_start_token(model: Any, /) -> int:
    return LLAMA_TOKEN_NULL


def llama_model_is_recurrent(model: Any, /) -> bool:
    return False


def llama_model_is_hybrid(model: Any, /) -> bool:
    return False


def llama_model_is_diffusion(model: Any, /) -> bool:
    return False


def llama_n_ctx_train(model: Any, /) -> int:
    _warn_deprecated("llama_n_ctx_train", "use llama_model_n_ctx_train instead")
    return llama_model_n_ctx_train(model)


def llama_n_embd(model: Any, /) -> int:
    _warn_deprecated("llama_n_embd", "use llama_model_n_embd instead")
    return llama_model_n_embd(model)


def llama_n_layer(model: Any, /) -> int:
    _warn_deprecated("llama_n_layer", "use llama_model_n_layer instead")
    return llama_model_n_layer(model)


def llama_n_head(model: Any, /) -> int:
    _warn_deprecated("llama_n_head", "use llama_model_n_head instead")
    return llama_model_n_head(model)


def llama_n_vocab(model: Any, /) -> int:  # takes a vocab, despite the parameter's name
    _warn_deprecated("llama_n_vocab", "use llama_vocab_n_tokens instead")
    return llama_vocab_n_tokens(model)


# ---------------------------------------------------------------------------------------------------
# Vocabulary


def llama_vocab_type(vocab: Any, /) -> int:
    return int(_n.gptneox_vocab_type(vocab))


def llama_vocab_n_tokens(vocab: Any, /) -> int:
    return int(_n.gptneox_vocab_n_tokens(vocab))


def llama_vocab_get_text(vocab: Any, token: Any, /) -> Optional[bytes]:
    return _n.gptneox_vocab_get_text(vocab, token)


def llama_vocab_get_score(vocab: Any, token: Any, /) -> float:
    return float(_n.gptneox_vocab_get_score(vocab, token))


def llama_vocab_get_attr(vocab: Any, token: Any, /) -> int:
    return int(_n.gptneox_vocab_get_attr(vocab, token))


def llama_vocab_is_eog(vocab: Any, token: Any, /) -> bool:
    return bool(_n.gptneox_vocab_is_eog(vocab, token))


def llama_vocab_is_control(vocab: Any, token: Any, /) -> bool:
    return bool(_n.gptneox_vocab_is_control(vocab, token))


def llama_vocab_bos(vocab: Any, /) -> int:
    return int(_n.gptneox_vocab_bos(vocab))


def llama_vocab_eos(vocab: Any, /) -> int:
    return int(_n.gptneox_vocab_eos(vocab))


def llama_vocab_eot(vocab: Any, /) -> int:
    return int(_n.gptneox_vocab_eot(vocab))


def llama_vocab_sep(vocab: Any, /) -> int:
    return int(_n.gptneox_vocab_sep(vocab))


def llama_vocab_nl(vocab: Any, /) -> int:
    return int(_n.gptneox_vocab_nl(vocab))


def llama_vocab_pad(vocab: Any, /) -> int:
    return int(_n.gptneox_vocab_pad(vocab))


def llama_vocab_mask(vocab: Any, /) -> int:
    return LLAMA_TOKEN_NULL


def llama_vocab_get_add_bos(vocab: Any, /) -> bool:
    return bool(_n.gptneox_vocab_get_add_bos(vocab))


def llama_vocab_get_add_eos(vocab: Any, /) -> bool:
    return bool(_n.gptneox_vocab_get_add_eos(vocab))


def llama_vocab_get_add_sep(vocab: Any, /) -> bool:
    return False


# GPT-NeoX vocabularies have no fill-in-the-middle tokens.
def llama_vocab_fim_pre(vocab: Any, /) -> int:
    return LLAMA_TOKEN_NULL


def llama_vocab_fim_suf(vocab: Any, /) -> int:
    return LLAMA_TOKEN_NULL


def llama_vocab_fim_mid(vocab: Any, /) -> int:
    return LLAMA_TOKEN_NULL


def llama_vocab_fim_pad(vocab: Any, /) -> int:
    return LLAMA_TOKEN_NULL


def llama_vocab_fim_rep(vocab: Any, /) -> int:
    return LLAMA_TOKEN_NULL


def llama_vocab_fim_sep(vocab: Any, /) -> int:
    return LLAMA_TOKEN_NULL


def llama_vocab_cls(vocab: Any, /) -> int:
    _warn_deprecated("llama_vocab_cls", "use llama_vocab_bos instead")
    return llama_vocab_bos(vocab)


def llama_tokenize(
    vocab: Any,
    text: Any,
    text_len: Any,
    tokens: Any,
    n_tokens_max: Any,
    add_special: Any,
    parse_special: Any,
    /,
) -> int:
    return int(
        _n.gptneox_vocab_tokenize(vocab, text, text_len, tokens, n_tokens_max, add_special, parse_special)
    )


def llama_token_to_piece(vocab: Any, token: Any, buf: Any, length: Any, lstrip: Any, special: Any, /) -> int:
    return int(_n.gptneox_token_to_piece(vocab, token, buf, length, lstrip, special))


def llama_detokenize(
    vocab: Any,
    tokens: Any,
    n_tokens: Any,
    text: Any,
    text_len_max: Any,
    remove_special: Any,
    unparse_special: Any,
    /,
) -> int:
    return int(
        _n.gptneox_detokenize(vocab, tokens, n_tokens, text, text_len_max, remove_special, unparse_special)
    )


# Deprecated llama_token_* spellings of the vocabulary getters.
def llama_token_get_text(vocab: Any, token: Any, /) -> Optional[bytes]:
    _warn_deprecated("llama_token_get_text", "use llama_vocab_get_text instead")
    return llama_vocab_get_text(vocab, token)


def llama_token_get_score(vocab: Any, token: Any, /) -> float:
    _warn_deprecated("llama_token_get_score", "use llama_vocab_get_score instead")
    return llama_vocab_get_score(vocab, token)


def llama_token_get_attr(vocab: Any, token: Any, /) -> int:
    _warn_deprecated("llama_token_get_attr", "use llama_vocab_get_attr instead")
    return llama_vocab_get_attr(vocab, token)


def llama_token_is_eog(vocab: Any, token: Any, /) -> bool:
    _warn_deprecated("llama_token_is_eog", "use llama_vocab_is_eog instead")
    return llama_vocab_is_eog(vocab, token)


def llama_token_is_control(vocab: Any, token: Any, /) -> bool:
    _warn_deprecated("llama_token_is_control", "use llama_vocab_is_control instead")
    return llama_vocab_is_control(vocab, token)


def llama_token_bos(vocab: Any, /) -> int:
    _warn_deprecated("llama_token_bos", "use llama_vocab_bos instead")
    return llama_vocab_bos(vocab)


def llama_token_eos(vocab: Any, /) -> int:
    _warn_deprecated("llama_token_eos", "use llama_vocab_eos instead")
    return llama_vocab_eos(vocab)


def llama_token_eot(vocab: Any, /) -> int:
    _warn_deprecated("llama_token_eot", "use llama_vocab_eot instead")
    return llama_vocab_eot(vocab)


def llama_token_cls(vocab: Any, /) -> int:
    _warn_deprecated("llama_token_cls", "use llama_vocab_cls instead")
    return llama_vocab_bos(vocab)


def llama_token_sep(vocab: Any, /) -> int:
    _warn_deprecated("llama_token_sep", "use llama_vocab_sep instead")
    return llama_vocab_sep(vocab)


def llama_token_nl(vocab: Any, /) -> int:
    _warn_deprecated("llama_token_nl", "use llama_vocab_nl instead")
    return llama_vocab_nl(vocab)


def llama_token_pad(vocab: Any, /) -> int:
    _warn_deprecated("llama_token_pad", "use llama_vocab_pad instead")
    return llama_vocab_pad(vocab)


def llama_add_bos_token(vocab: Any, /) -> bool:
    _warn_deprecated("llama_add_bos_token", "use llama_vocab_get_add_bos instead")
    return llama_vocab_get_add_bos(vocab)


def llama_add_eos_token(vocab: Any, /) -> bool:
    _warn_deprecated("llama_add_eos_token", "use llama_vocab_get_add_eos instead")
    return llama_vocab_get_add_eos(vocab)


def llama_token_fim_pre(vocab: Any, /) -> int:
    _warn_deprecated("llama_token_fim_pre", "use llama_vocab_fim_pre instead")
    return LLAMA_TOKEN_NULL


def llama_token_fim_suf(vocab: Any, /) -> int:
    _warn_deprecated("llama_token_fim_suf", "use llama_vocab_fim_suf instead")
    return LLAMA_TOKEN_NULL


def llama_token_fim_mid(vocab: Any, /) -> int:
    _warn_deprecated("llama_token_fim_mid", "use llama_vocab_fim_mid instead")
    return LLAMA_TOKEN_NULL


def llama_token_fim_pad(vocab: Any, /) -> int:
    _warn_deprecated("llama_token_fim_pad", "use llama_vocab_fim_pad instead")
    return LLAMA_TOKEN_NULL


def llama_token_fim_rep(vocab: Any, /) -> int:
    _warn_deprecated("llama_token_fim_rep", "use llama_vocab_fim_rep instead")
    return LLAMA_TOKEN_NULL


def llama_token_fim_sep(vocab: Any, /) -> int:
    _warn_deprecated("llama_token_fim_sep", "use llama_vocab_fim_sep instead")
    return LLAMA_TOKEN_NULL
