"""llama_compat, part 3: the sampler API (``llama_sampler_*``) on libgptneox's samplers.

Sampler handles are libgptneox pointers as Python ints. Samplers built in Python the llama.h way (a
``llama_sampler`` struct whose ``iface`` points at a ``llama_sampler_i``, as llama-cpp-python's
``CustomSampler`` does) are accepted wherever a sampler is: ``llama_sampler_chain_add`` wraps them in an
engine-allocated ``{iface, ctx}`` pair (the layouts are identical to gptneox.h's), so the chain never frees
Python memory; ``llama_sampler_chain_remove`` / ``_get`` hand back the caller's own pointer.

Seeds are masked with ``& 0xFFFFFFFF`` (llama-cpp-python passes up to ``2**32`` and ``-1``); 0xFFFFFFFF
means "a random seed", as in llama.h. ``llama_sampler_init_penalties`` takes ``n_vocab`` first, as
llama-cpp-python 0.3.36 declares it (it is not needed). ``llama_sampler_init_grammar`` builds the engine's
GBNF sampler (``None`` with the parse error logged on a bad grammar);
``llama_sampler_init_grammar_lazy_patterns`` its lazy form (trigger patterns and tokens given as ctypes
arrays, as llama.h does, or Python sequences);
``llama_sampler_init_grammar_lazy`` (trigger words, deprecated in llama.h) is the patterns form with the
single pattern llama.cpp builds from the words (:func:`trigger_words_pattern`).
``llama_sampler_init_infill`` is the engine's infill sampler.
"""

from __future__ import annotations

import ctypes
import re
from typing import Any, Dict, List, Optional, Tuple

from neox_cpp import _lib as _n
from neox_cpp._compat_model import GGML_LOG_LEVEL_INFO, _log, _log_last_error
from neox_cpp._compat_types import llama_perf_sampler_data, llama_sampler_chain_params

_U32 = 0xFFFFFFFF

# wrapper address -> (our copy of the foreign interface, the caller's llama_sampler pointer)
_foreign: Dict[int, Tuple[Any, Any]] = {}


def _seed(seed: Any) -> int:
    return int(seed) & _U32


def _addr(smpl: Any) -> Optional[int]:
    """A sampler argument as an address: engine handles are ints; ctypes pointers/structs are foreign."""
    if smpl is None or isinstance(smpl, int):
        return smpl
    if isinstance(smpl, ctypes.c_void_p):
        return smpl.value
    if isinstance(smpl, ctypes._Pointer):
        return ctypes.cast(smpl, ctypes.c_void_p).value
    if isinstance(smpl, ctypes.Structure):
        return ctypes.addressof(smpl)
    return int(smpl)


def _is_foreign(smpl: Any) -> bool:
    return isinstance(smpl, (ctypes._Pointer, ctypes.Structure))


def _foreign_struct(smpl: Any) -> Any:
    return smpl.contents if isinstance(smpl, ctypes._Pointer) else smpl


def _check(handle: Optional[int], what: str) -> Optional[int]:
    if not handle:
        _log_last_error(what)
        return None
    return int(handle)


# ---------------------------------------------------------------------------------------------------
# Generic


def llama_sampler_init(iface: Any, ctx: Any, /) -> Optional[int]:
    return _check(_n.gptneox_sampler_init(iface, ctx), "llama_sampler_init")


def llama_sampler_name(smpl: Any, /) -> bytes:
    return bytes(_n.gptneox_sampler_name(_addr(smpl)) or b"?")


def llama_sampler_accept(smpl: Any, token: Any, /) -> None:
    _n.gptneox_sampler_accept(_addr(smpl), token)


def llama_sampler_apply(smpl: Any, cur_p: Any, /) -> None:
    _n.gptneox_sampler_apply(_addr(smpl), cur_p)


def llama_sampler_reset(smpl: Any, /) -> None:
    _n.gptneox_sampler_reset(_addr(smpl))


def _holds_foreign(chain: Optional[int]) -> bool:
    n = int(_n.gptneox_sampler_chain_n(chain)) if chain else 0
    return any(_n.gptneox_sampler_chain_get(chain, i) in _foreign for i in range(n))


def llama_sampler_clone(smpl: Any, /) -> Optional[int]:
    handle = _addr(smpl)
    if _is_foreign(smpl) or handle in _foreign or _holds_foreign_safe(handle):
        raise NotImplementedError("llama_sampler_clone: samplers implemented in Python cannot be cloned")
    return _check(_n.gptneox_sampler_clone(handle), "llama_sampler_clone")


def _holds_foreign_safe(handle: Optional[int]) -> bool:
    if not handle or not _foreign:
        return False
    name = _n.gptneox_sampler_name(handle)
    return name == b"chain" and _holds_foreign(handle)


def _release_wrapper(handle: int) -> Any:
    """Free our wrapper of a foreign sampler without calling the foreign free; return the caller's pointer."""
    iface, original = _foreign.pop(handle)
    iface.free = _n.gptneox_sampler_i_free()  # NULL: the caller still owns its sampler
    _n.gptneox_sampler_free(handle)
    return original


def llama_sampler_free(smpl: Any, /) -> None:
    if smpl is None:
        return
    if _is_foreign(smpl):  # a sampler built in Python: only its own free callback, no delete
        s = _foreign_struct(smpl)
        if s.iface and s.iface.contents.free:
            s.iface.contents.free(ctypes.pointer(s))
        return
    handle = _addr(smpl)
    if handle in _foreign:
        _release_wrapper(handle)
        return
    held: List[Tuple[Any, Any]] = []
    if _foreign and _n.gptneox_sampler_name(handle) == b"chain":
        for i in range(int(_n.gptneox_sampler_chain_n(handle))):
            sub = _n.gptneox_sampler_chain_get(handle, i)
            if sub in _foreign:
                held.append(_foreign.pop(sub))  # kept alive until the chain has called their free
    _n.gptneox_sampler_free(handle)
    del held


def llama_sampler_get_seed(smpl: Any, /) -> int:
    return int(_n.gptneox_sampler_get_seed(_addr(smpl)))


def llama_sampler_sample(smpl: Any, ctx: Any, idx: Any, /) -> int:
    token = int(_n.gptneox_sampler_sample(_addr(smpl), ctx, idx))
    if token < 0:
        raise RuntimeError(f"llama_sampler_sample: {_n.last_error('llama_sampler_sample')}")
    return token


# ---------------------------------------------------------------------------------------------------
# Chains


def llama_sampler_chain_default_params() -> llama_sampler_chain_params:
    p = llama_sampler_chain_params()
    p.no_perf = True
    return p


def llama_sampler_chain_init(params: Any, /) -> Optional[int]:
    c = _n.gptneox_sampler_chain_default_params()
    c.no_perf = bool(getattr(params, "no_perf", True))
    return _check(_n.gptneox_sampler_chain_init(c), "llama_sampler_chain_init")


def llama_sampler_chain_add(chain: Any, smpl: Any, /) -> None:
    if smpl is None:
        raise ValueError("llama_sampler_chain_add: the sampler is NULL (did its init fail?)")
    if _is_foreign(smpl):
        s = _foreign_struct(smpl)
        if not s.iface:
            raise ValueError("llama_sampler_chain_add: the sampler has no interface")
        iface = _n.gptneox_sampler_i.from_buffer_copy(s.iface.contents)
        wrapper = _n.gptneox_sampler_init(ctypes.addressof(iface), s.ctx)
        if not wrapper:
            _log_last_error("llama_sampler_chain_add")
            return
        _foreign[int(wrapper)] = (iface, smpl)
        if _n.gptneox_sampler_chain_add(_addr(chain), wrapper) < 0:
            _release_wrapper(int(wrapper))
            _log_last_error("llama_sampler_chain_add")
        return
    if _n.gptneox_sampler_chain_add(_addr(chain), _addr(smpl)) < 0:
        _log_last_error("llama_sampler_chain_add")


def llama_sampler_chain_get(chain: Any, i: Any, /) -> Any:
    s = _n.gptneox_sampler_chain_get(_addr(chain), i)
    if s in _foreign:
        return _foreign[s][1]
    return s


def llama_sampler_chain_n(chain: Any, /) -> int:
    return int(_n.gptneox_sampler_chain_n(_addr(chain)))


def llama_sampler_chain_remove(chain: Any, i: Any, /) -> Any:
    s = _n.gptneox_sampler_chain_remove(_addr(chain), i)
    if s in _foreign:
        return _release_wrapper(s)
    return s


# ---------------------------------------------------------------------------------------------------
# Samplers


def llama_sampler_init_greedy() -> Optional[int]:
    return _check(_n.gptneox_sampler_init_greedy(), "llama_sampler_init_greedy")


def llama_sampler_init_dist(seed: Any, /) -> Optional[int]:
    return _check(_n.gptneox_sampler_init_dist(_seed(seed)), "llama_sampler_init_dist")


def llama_sampler_init_top_k(k: Any, /) -> Optional[int]:
    return _check(_n.gptneox_sampler_init_top_k(k), "llama_sampler_init_top_k")


def llama_sampler_init_top_p(p: Any, min_keep: Any, /) -> Optional[int]:
    return _check(_n.gptneox_sampler_init_top_p(p, max(int(min_keep), 0)), "llama_sampler_init_top_p")


def llama_sampler_init_min_p(p: Any, min_keep: Any, /) -> Optional[int]:
    return _check(_n.gptneox_sampler_init_min_p(p, max(int(min_keep), 0)), "llama_sampler_init_min_p")


def llama_sampler_init_typical(p: Any, min_keep: Any, /) -> Optional[int]:
    return _check(_n.gptneox_sampler_init_typical(p, max(int(min_keep), 0)), "llama_sampler_init_typical")


def llama_sampler_init_temp(t: Any, /) -> Optional[int]:
    return _check(_n.gptneox_sampler_init_temp(t), "llama_sampler_init_temp")


def llama_sampler_init_temp_ext(t: Any, delta: Any, exponent: Any, /) -> Optional[int]:
    return _check(_n.gptneox_sampler_init_temp_ext(t, delta, exponent), "llama_sampler_init_temp_ext")


def llama_sampler_init_xtc(p: Any, t: Any, min_keep: Any, seed: Any, /) -> Optional[int]:
    return _check(
        _n.gptneox_sampler_init_xtc(p, t, max(int(min_keep), 0), _seed(seed)), "llama_sampler_init_xtc"
    )


def llama_sampler_init_top_n_sigma(n: Any, /) -> Optional[int]:
    return _check(_n.gptneox_sampler_init_top_n_sigma(n), "llama_sampler_init_top_n_sigma")


def llama_sampler_init_mirostat(n_vocab: Any, seed: Any, tau: Any, eta: Any, m: Any, /) -> Optional[int]:
    return _check(
        _n.gptneox_sampler_init_mirostat(n_vocab, _seed(seed), tau, eta, m), "llama_sampler_init_mirostat"
    )


def llama_sampler_init_mirostat_v2(seed: Any, tau: Any, eta: Any, /) -> Optional[int]:
    return _check(
        _n.gptneox_sampler_init_mirostat_v2(_seed(seed), tau, eta), "llama_sampler_init_mirostat_v2"
    )


def llama_sampler_init_penalties(
    n_vocab: Any, penalty_last_n: Any, penalty_repeat: Any, penalty_freq: Any, penalty_present: Any, /
) -> Optional[int]:
    del n_vocab  # declared by llama-cpp-python 0.3.36; not needed
    return _check(
        _n.gptneox_sampler_init_penalties(penalty_last_n, penalty_repeat, penalty_freq, penalty_present),
        "llama_sampler_init_penalties",
    )


def llama_sampler_init_dry(
    vocab: Any,
    dry_multiplier: Any,
    dry_base: Any,
    dry_allowed_length: Any,
    dry_penalty_last_n: Any,
    seq_breakers: Any,
    num_breakers: Any,
    /,
) -> Optional[int]:
    # llama-cpp-python's declaration has no n_ctx_train: 0 lets the engine use its default (4096) for -1.
    return _check(
        _n.gptneox_sampler_init_dry(
            vocab,
            0,
            dry_multiplier,
            dry_base,
            dry_allowed_length,
            dry_penalty_last_n,
            seq_breakers,
            num_breakers,
        ),
        "llama_sampler_init_dry",
    )


def llama_sampler_init_logit_bias(n_vocab: Any, n_logit_bias: Any, logit_bias: Any, /) -> Optional[int]:
    return _check(
        _n.gptneox_sampler_init_logit_bias(n_vocab, n_logit_bias, logit_bias), "llama_sampler_init_logit_bias"
    )


def llama_sampler_init_grammar(vocab: Any, grammar_str: Any, grammar_root: Any, /) -> Optional[int]:
    def _b(v: Any) -> Optional[bytes]:
        return v.encode("utf-8") if isinstance(v, str) else v

    return _check(
        _n.gptneox_sampler_init_grammar(vocab, _b(grammar_str), _b(grammar_root)),
        "llama_sampler_init_grammar",
    )


def _b(v: Any) -> Optional[bytes]:
    return v.encode("utf-8") if isinstance(v, str) else v


def llama_sampler_init_grammar_lazy_patterns(
    vocab: Any,
    grammar_str: Any,
    grammar_root: Any,
    trigger_patterns: Any,
    num_trigger_patterns: Any,
    trigger_tokens: Any,
    num_trigger_tokens: Any,
    /,
) -> Optional[int]:
    n_pat = int(num_trigger_patterns or 0)
    n_tok = int(num_trigger_tokens or 0)
    pats = trigger_patterns
    if isinstance(pats, (list, tuple)):
        pats = (ctypes.c_char_p * max(n_pat, 1))(*[_b(p) for p in pats[:n_pat]])
    toks = trigger_tokens
    if isinstance(toks, (list, tuple)):
        toks = (ctypes.c_int32 * max(n_tok, 1))(*[int(t) for t in toks[:n_tok]])
    return _check(
        _n.gptneox_sampler_init_grammar_lazy_patterns(
            vocab,
            _b(grammar_str),
            _b(grammar_root),
            ctypes.cast(pats, ctypes.POINTER(ctypes.c_char_p)) if pats is not None else None,
            n_pat,
            ctypes.cast(toks, ctypes.POINTER(ctypes.c_int32)) if toks is not None else None,
            n_tok,
        ),
        "llama_sampler_init_grammar_lazy_patterns",
    )


_REGEX_SPECIAL = re.compile(rb"[.^$|()*+?\[\]{}\\]")


def trigger_words_pattern(words: List[bytes]) -> bytes:
    r"""The one trigger pattern llama.cpp's llama_sampler_init_grammar_lazy makes of trigger words: each word
    with the ECMAScript specials ``. ^ $ | ( ) * + ? [ ] { } \`` backslash-escaped, joined by ``|`` in one
    group, matched anywhere: ``[\s\S]*?(w1|w2|...)[\s\S]*`` (the grammar then starts at the word)."""
    escaped = [_REGEX_SPECIAL.sub(lambda m: b"\\" + m.group(0), w) for w in words]
    return b"[\\s\\S]*?(" + b"|".join(escaped) + b")[\\s\\S]*"


def _strings(arr: Any, n: int) -> List[bytes]:
    if n <= 0 or arr is None:
        return []
    out: List[bytes] = []
    for i in range(n):
        v = arr[i]
        out.append(_b(v) if v is not None else b"")
    return out


def llama_sampler_init_grammar_lazy(
    vocab: Any,
    grammar_str: Any,
    grammar_root: Any,
    trigger_words: Any,
    num_trigger_words: Any,
    trigger_tokens: Any,
    num_trigger_tokens: Any,
    /,
) -> Optional[int]:
    words = _strings(trigger_words, int(num_trigger_words or 0))
    pats: List[bytes] = [trigger_words_pattern(words)] if words else []
    return llama_sampler_init_grammar_lazy_patterns(
        vocab, grammar_str, grammar_root, pats, len(pats), trigger_tokens, num_trigger_tokens
    )


def llama_sampler_init_infill(vocab: Any, /) -> Optional[int]:
    return _check(_n.gptneox_sampler_init_infill(vocab), "llama_sampler_init_infill")


# ---------------------------------------------------------------------------------------------------
# Timings (none are kept for samplers)


def llama_perf_sampler(chain: Any, /) -> llama_perf_sampler_data:
    return llama_perf_sampler_data()


def llama_perf_sampler_print(chain: Any, /) -> None:
    _log(GGML_LOG_LEVEL_INFO, "llama_perf_sampler_print:    sampling time =       0.00 ms (not measured)\n")


def llama_perf_sampler_reset(chain: Any, /) -> None:
    return None
