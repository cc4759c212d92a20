"""ctypes bindings of gptneox.h's "Sampling" section, one per C function, declared as in neox_cpp/_lib.py
(which re-exports them: use them as ``_lib.gptneox_sampler_*``).

Sampler handles are ``void *`` (Python ints); struct pointers are passed as ``void *`` too, so that
llama-cpp-python's layout-identical structs (llama_token_data_array, llama_sampler_i, llama_logit_bias) can
be passed as they are.
"""

from __future__ import annotations

import ctypes
from typing import Any, Optional

from neox_cpp._lib import _bind, gptneox_token


class gptneox_token_data(ctypes.Structure):
    _fields_ = [("id", gptneox_token), ("logit", ctypes.c_float), ("p", ctypes.c_float)]


class gptneox_token_data_array(ctypes.Structure):
    _fields_ = [
        ("data", ctypes.POINTER(gptneox_token_data)),
        ("size", ctypes.c_size_t),
        ("selected", ctypes.c_int64),
        ("sorted", ctypes.c_bool),
    ]


class gptneox_logit_bias(ctypes.Structure):
    _fields_ = [("token", gptneox_token), ("bias", ctypes.c_float)]


class gptneox_sampler_chain_params(ctypes.Structure):
    _fields_ = [("no_perf", ctypes.c_bool)]


class gptneox_sampler(ctypes.Structure):
    pass


_sampler_p = ctypes.POINTER(gptneox_sampler)
_token_data_array_p = ctypes.POINTER(gptneox_token_data_array)
# const char *(*name)(const struct gptneox_sampler *smpl);
gptneox_sampler_i_name = ctypes.CFUNCTYPE(ctypes.c_char_p, _sampler_p)
# void (*accept)(struct gptneox_sampler *smpl, gptneox_token token);
gptneox_sampler_i_accept = ctypes.CFUNCTYPE(None, _sampler_p, gptneox_token)
# void (*apply)(struct gptneox_sampler *smpl, gptneox_token_data_array *cur_p);
gptneox_sampler_i_apply = ctypes.CFUNCTYPE(None, _sampler_p, _token_data_array_p)
# void (*reset)(struct gptneox_sampler *smpl);
gptneox_sampler_i_reset = ctypes.CFUNCTYPE(None, _sampler_p)
# struct gptneox_sampler *(*clone)(const struct gptneox_sampler *smpl);
gptneox_sampler_i_clone = ctypes.CFUNCTYPE(_sampler_p, _sampler_p)
# void (*free)(struct gptneox_sampler *smpl);
gptneox_sampler_i_free = ctypes.CFUNCTYPE(None, _sampler_p)


class gptneox_sampler_i(ctypes.Structure):
    _fields_ = [
        ("name", gptneox_sampler_i_name),
        ("accept", gptneox_sampler_i_accept),
        ("apply", gptneox_sampler_i_apply),
        ("reset", gptneox_sampler_i_reset),
        ("clone", gptneox_sampler_i_clone),
        ("free", gptneox_sampler_i_free),
        ("reserved", ctypes.c_void_p * 6),
    ]


gptneox_sampler._fields_ = [("iface", ctypes.POINTER(gptneox_sampler_i)), ("ctx", ctypes.c_void_p)]


# struct gptneox_sampler *gptneox_sampler_init(const struct gptneox_sampler_i *iface,
#     gptneox_sampler_context_t ctx);
@_bind("gptneox_sampler_init", [ctypes.c_void_p, ctypes.c_void_p], ctypes.c_void_p)
def gptneox_sampler_init(iface: Any, ctx: Optional[int], /) -> Optional[int]: ...


# const char *gptneox_sampler_name(const struct gptneox_sampler *smpl);
@_bind("gptneox_sampler_name", [ctypes.c_void_p], ctypes.c_char_p)
def gptneox_sampler_name(smpl: Optional[int], /) -> bytes: ...


# void gptneox_sampler_accept(struct gptneox_sampler *smpl, gptneox_token token);
@_bind("gptneox_sampler_accept", [ctypes.c_void_p, gptneox_token], None)
def gptneox_sampler_accept(smpl: Optional[int], token: int, /) -> None: ...


# void gptneox_sampler_apply(struct gptneox_sampler *smpl, gptneox_token_data_array *cur_p);
@_bind("gptneox_sampler_apply", [ctypes.c_void_p, ctypes.c_void_p], None)
def gptneox_sampler_apply(smpl: Optional[int], cur_p: Any, /) -> None: ...


# void gptneox_sampler_reset(struct gptneox_sampler *smpl);
@_bind("gptneox_sampler_reset", [ctypes.c_void_p], None)
def gptneox_sampler_reset(smpl: Optional[int], /) -> None: ...


# struct gptneox_sampler *gptneox_sampler_clone(const struct gptneox_sampler *smpl);
@_bind("gptneox_sampler_clone", [ctypes.c_void_p], ctypes.c_void_p)
def gptneox_sampler_clone(smpl: Optional[int], /) -> Optional[int]: ...


# void gptneox_sampler_free(struct gptneox_sampler *smpl);
@_bind("gptneox_sampler_free", [ctypes.c_void_p], None)
def gptneox_sampler_free(smpl: Optional[int], /) -> None: ...


# uint32_t gptneox_sampler_get_seed(const struct gptneox_sampler *smpl);
@_bind("gptneox_sampler_get_seed", [ctypes.c_void_p], ctypes.c_uint32)
def gptneox_sampler_get_seed(smpl: Optional[int], /) -> int: ...


# gptneox_token gptneox_sampler_sample(struct gptneox_sampler *smpl, struct gptneox_context *ctx,
#     int32_t idx);
@_bind("gptneox_sampler_sample", [ctypes.c_void_p, ctypes.c_void_p, ctypes.c_int32], gptneox_token)
def gptneox_sampler_sample(smpl: Optional[int], ctx: Optional[int], idx: int, /) -> int: ...


# struct gptneox_sampler_chain_params gptneox_sampler_chain_default_params(void);
@_bind("gptneox_sampler_chain_default_params", [], gptneox_sampler_chain_params)
def gptneox_sampler_chain_default_params() -> gptneox_sampler_chain_params: ...


# struct gptneox_sampler *gptneox_sampler_chain_init(struct gptneox_sampler_chain_params params);
@_bind("gptneox_sampler_chain_init", [gptneox_sampler_chain_params], ctypes.c_void_p)
def gptneox_sampler_chain_init(params: gptneox_sampler_chain_params, /) -> Optional[int]: ...


# int32_t gptneox_sampler_chain_add(struct gptneox_sampler *chain, struct gptneox_sampler *smpl);
@_bind("gptneox_sampler_chain_add", [ctypes.c_void_p, ctypes.c_void_p], ctypes.c_int32)
def gptneox_sampler_chain_add(chain: Optional[int], smpl: Optional[int], /) -> int: ...


# struct gptneox_sampler *gptneox_sampler_chain_get(const struct gptneox_sampler *chain, int32_t i);
@_bind("gptneox_sampler_chain_get", [ctypes.c_void_p, ctypes.c_int32], ctypes.c_void_p)
def gptneox_sampler_chain_get(chain: Optional[int], i: int, /) -> Optional[int]: ...


# int32_t gptneox_sampler_chain_n(const struct gptneox_sampler *chain);
@_bind("gptneox_sampler_chain_n", [ctypes.c_void_p], ctypes.c_int32)
def gptneox_sampler_chain_n(chain: Optional[int], /) -> int: ...


# struct gptneox_sampler *gptneox_sampler_chain_remove(struct gptneox_sampler *chain, int32_t i);
@_bind("gptneox_sampler_chain_remove", [ctypes.c_void_p, ctypes.c_int32], ctypes.c_void_p)
def gptneox_sampler_chain_remove(chain: Optional[int], i: int, /) -> Optional[int]: ...


# struct gptneox_sampler *gptneox_sampler_init_greedy(void);
@_bind("gptneox_sampler_init_greedy", [], ctypes.c_void_p)
def gptneox_sampler_init_greedy() -> Optional[int]: ...


# struct gptneox_sampler *gptneox_sampler_init_dist(uint32_t seed);
@_bind("gptneox_sampler_init_dist", [ctypes.c_uint32], ctypes.c_void_p)
def gptneox_sampler_init_dist(seed: int, /) -> Optional[int]: ...


# struct gptneox_sampler *gptneox_sampler_init_top_k(int32_t k);
@_bind("gptneox_sampler_init_top_k", [ctypes.c_int32], ctypes.c_void_p)
def gptneox_sampler_init_top_k(k: int, /) -> Optional[int]: ...


# struct gptneox_sampler *gptneox_sampler_init_top_p(float p, size_t min_keep);
@_bind("gptneox_sampler_init_top_p", [ctypes.c_float, ctypes.c_size_t], ctypes.c_void_p)
def gptneox_sampler_init_top_p(p: float, min_keep: int, /) -> Optional[int]: ...


# struct gptneox_sampler *gptneox_sampler_init_min_p(float p, size_t min_keep);
@_bind("gptneox_sampler_init_min_p", [ctypes.c_float, ctypes.c_size_t], ctypes.c_void_p)
def gptneox_sampler_init_min_p(p: float, min_keep: int, /) -> Optional[int]: ...


# struct gptneox_sampler *gptneox_sampler_init_typical(float p, size_t min_keep);
@_bind("gptneox_sampler_init_typical", [ctypes.c_float, ctypes.c_size_t], ctypes.c_void_p)
def gptneox_sampler_init_typical(p: float, min_keep: int, /) -> Optional[int]: ...


# struct gptneox_sampler *gptneox_sampler_init_temp(float t);
@_bind("gptneox_sampler_init_temp", [ctypes.c_float], ctypes.c_void_p)
def gptneox_sampler_init_temp(t: float, /) -> Optional[int]: ...


# struct gptneox_sampler *gptneox_sampler_init_temp_ext(float t, float delta, float exponent);
@_bind("gptneox_sampler_init_temp_ext", [ctypes.c_float, ctypes.c_float, ctypes.c_float], ctypes.c_void_p)
def gptneox_sampler_init_temp_ext(t: float, delta: float, exponent: float, /) -> Optional[int]: ...


# struct gptneox_sampler *gptneox_sampler_init_xtc(float p, float t, size_t min_keep, uint32_t seed);
@_bind(
    "gptneox_sampler_init_xtc",
    [ctypes.c_float, ctypes.c_float, ctypes.c_size_t, ctypes.c_uint32],
    ctypes.c_void_p,
)
def gptneox_sampler_init_xtc(p: float, t: float, min_keep: int, seed: int, /) -> Optional[int]: ...


# struct gptneox_sampler *gptneox_sampler_init_top_n_sigma(float n);
@_bind("gptneox_sampler_init_top_n_sigma", [ctypes.c_float], ctypes.c_void_p)
def gptneox_sampler_init_top_n_sigma(n: float, /) -> Optional[int]: ...


# struct gptneox_sampler *gptneox_sampler_init_mirostat(int32_t n_vocab, uint32_t seed, float tau, float eta,
#     int32_t m);
@_bind(
    "gptneox_sampler_init_mirostat",
    [ctypes.c_int32, ctypes.c_uint32, ctypes.c_float, ctypes.c_float, ctypes.c_int32],
    ctypes.c_void_p,
)
def gptneox_sampler_init_mirostat(
    n_vocab: int, seed: int, tau: float, eta: float, m: int, /
) -> Optional[int]: ...


# struct gptneox_sampler *gptneox_sampler_init_mirostat_v2(uint32_t seed, float tau, float eta);
@_bind("gptneox_sampler_init_mirostat_v2", [ctypes.c_uint32, ctypes.c_float, ctypes.c_float], ctypes.c_void_p)
def gptneox_sampler_init_mirostat_v2(seed: int, tau: float, eta: float, /) -> Optional[int]: ...


# struct gptneox_sampler *gptneox_sampler_init_penalties(int32_t penalty_last_n, float penalty_repeat,
#     float penalty_freq, float penalty_present);
@_bind(
    "gptneox_sampler_init_penalties",
    [ctypes.c_int32, ctypes.c_float, ctypes.c_float, ctypes.c_float],
    ctypes.c_void_p,
)
def gptneox_sampler_init_penalties(
    penalty_last_n: int, penalty_repeat: float, penalty_freq: float, penalty_present: float, /
) -> Optional[int]: ...


# struct gptneox_sampler *gptneox_sampler_init_dry(const struct gptneox_vocab *vocab, int32_t n_ctx_train,
#     float dry_multiplier, float dry_base, int32_t dry_allowed_length, int32_t dry_penalty_last_n,
#     const char **seq_breakers, size_t num_breakers);
@_bind(
    "gptneox_sampler_init_dry",
    [
        ctypes.c_void_p,
        ctypes.c_int32,
        ctypes.c_float,
        ctypes.c_float,
        ctypes.c_int32,
        ctypes.c_int32,
        ctypes.POINTER(ctypes.c_char_p),
        ctypes.c_size_t,
    ],
    ctypes.c_void_p,
)
def gptneox_sampler_init_dry(
    vocab: Optional[int],
    n_ctx_train: int,
    dry_multiplier: float,
    dry_base: float,
    dry_allowed_length: int,
    dry_penalty_last_n: int,
    seq_breakers: Any,
    num_breakers: int,
    /,
) -> Optional[int]: ...


# struct gptneox_sampler *gptneox_sampler_init_logit_bias(int32_t n_vocab, int32_t n_logit_bias,
#     const gptneox_logit_bias *logit_bias);
@_bind("gptneox_sampler_init_logit_bias", [ctypes.c_int32, ctypes.c_int32, ctypes.c_void_p], ctypes.c_void_p)
def gptneox_sampler_init_logit_bias(n_vocab: int, n_logit_bias: int, logit_bias: Any, /) -> Optional[int]: ...


# struct gptneox_sampler *gptneox_sampler_init_grammar(const struct gptneox_vocab *vocab,
#     const char *grammar_str, const char *grammar_root);
@_bind("gptneox_sampler_init_grammar", [ctypes.c_void_p, ctypes.c_char_p, ctypes.c_char_p], ctypes.c_void_p)
def gptneox_sampler_init_grammar(
    vocab: Optional[int], grammar_str: Optional[bytes], grammar_root: Optional[bytes], /
) -> Optional[int]: ...


# struct gptneox_sampler *gptneox_sampler_init_grammar_lazy_patterns(const struct gptneox_vocab *vocab,
#     const char *grammar_str, const char *grammar_root, const char **trigger_patterns,
#     size_t num_trigger_patterns, const gptneox_token *trigger_tokens, size_t num_trigger_tokens);
@_bind(
    "gptneox_sampler_init_grammar_lazy_patterns",
    [
        ctypes.c_void_p,
        ctypes.c_char_p,
        ctypes.c_char_p,
        ctypes.POINTER(ctypes.c_char_p),
        ctypes.c_size_t,
        ctypes.POINTER(ctypes.c_int32),
        ctypes.c_size_t,
    ],
    ctypes.c_void_p,
)
def gptneox_sampler_init_grammar_lazy_patterns(
    vocab: Optional[int],
    grammar_str: Optional[bytes],
    grammar_root: Optional[bytes],
    trigger_patterns: Any,
    num_trigger_patterns: int,
    trigger_tokens: Any,
    num_trigger_tokens: int,
    /,
) -> Optional[int]: ...


# struct gptneox_sampler *gptneox_sampler_init_infill(const struct gptneox_vocab *vocab);
@_bind("gptneox_sampler_init_infill", [ctypes.c_void_p], ctypes.c_void_p)
def gptneox_sampler_init_infill(vocab: Optional[int], /) -> Optional[int]: ...


# Everything bound here is re-exported by neox_cpp._lib (``from neox_cpp._lib_sampling import *``).
__all__ = [name for name in list(globals()) if name.startswith("gptneox_")]
