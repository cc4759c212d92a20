"""Thin Python owners of libgptneox handles: :class:`Model` and :class:`Context` raise
:class:`neox_cpp._lib.NeoxError` on failure and free their handle on ``close()``."""

from __future__ import annotations

import ctypes
import os
from typing import Any, Dict, List, Optional, TypeVar

from neox_cpp._lib import (
    GPTNEOX_STATUS_NO_MEMORY,
    NeoxError,
    _read_string,
    check_ptr,
    check_status,
    gptneox_batch_free,
    gptneox_batch_init,
    gptneox_clear_error,
    gptneox_ctx_default_params,
    gptneox_decode,
    gptneox_free,
    gptneox_get_logits,
    gptneox_get_logits_ith,
    gptneox_get_memory,
    gptneox_init_from_model,
    gptneox_memory_clear,
    gptneox_model_default_params,
    gptneox_model_desc,
    gptneox_model_free,
    gptneox_model_get_vocab,
    gptneox_model_load_from_file,
    gptneox_model_meta_count,
    gptneox_model_meta_key_by_index,
    gptneox_model_meta_val_str_by_index,
    gptneox_model_n_ctx_train,
    gptneox_model_n_embd,
    gptneox_n_batch,
    gptneox_n_ctx,
    gptneox_n_outputs,
    gptneox_token,
    last_error,
)
from neox_cpp._lib_vocab import gptneox_detokenize, gptneox_vocab_n_tokens, gptneox_vocab_tokenize

_T = TypeVar("_T", bound="_Owner")


class _Owner:
    """Frees its native handle in ``close()``; ``with`` and garbage collection call it too."""

    def close(self) -> None:
        raise NotImplementedError

    def __enter__(self: _T) -> _T:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __del__(self) -> None:
        self.close()


class Model(_Owner):
    """A loaded GGUF model. ``close()`` (or ``with``) frees it; contexts must be closed first."""

    def __init__(
        self,
        path: str | os.PathLike[str],
        *,
        vocab_only: bool = False,
        use_mmap: bool = True,
        use_mlock: bool = False,
        check_tensors: bool = False,
        use_extra_bufts: bool = True,
    ) -> None:
        params = gptneox_model_default_params()
        params.vocab_only = vocab_only
        params.use_mmap = use_mmap
        params.use_mlock = use_mlock
        params.check_tensors = check_tensors
        params.use_extra_bufts = use_extra_bufts
        self.path = os.fspath(path)
        self.ptr: Optional[int] = None
        gptneox_clear_error()
        self.ptr = check_ptr(
            gptneox_model_load_from_file(self.path.encode("utf-8"), params), f"loading {self.path}"
        )
        self.vocab: int = check_ptr(gptneox_model_get_vocab(self.ptr), "gptneox_model_get_vocab")

    def close(self) -> None:
        if self.ptr:
            gptneox_model_free(self.ptr)
            self.ptr = None

    @property
    def n_vocab(self) -> int:
        return int(gptneox_vocab_n_tokens(self.vocab))

    @property
    def n_embd(self) -> int:
        return int(gptneox_model_n_embd(self.ptr))

    @property
    def n_ctx_train(self) -> int:
        return int(gptneox_model_n_ctx_train(self.ptr))

    def desc(self) -> str:
        return _read_string(gptneox_model_desc, self.ptr) or ""

    def metadata(self) -> Dict[str, str]:
        out: Dict[str, str] = {}
        for i in range(gptneox_model_meta_count(self.ptr)):
            key = _read_string(gptneox_model_meta_key_by_index, self.ptr, i)
            val = _read_string(gptneox_model_meta_val_str_by_index, self.ptr, i)
            if key is not None and val is not None:
                out[key] = val
        return out

    def tokenize(self, text: bytes, add_special: bool = False, parse_special: bool = False) -> List[int]:
        n_max = max(16, len(text) + 2)
        buf = (gptneox_token * n_max)()
        n = gptneox_vocab_tokenize(self.vocab, text, len(text), buf, n_max, add_special, parse_special)
        if n < 0 and n != -(2**31):
            n_max = -n
            buf = (gptneox_token * n_max)()
            n = gptneox_vocab_tokenize(self.vocab, text, len(text), buf, n_max, add_special, parse_special)
        check_status(n, "gptneox_vocab_tokenize")
        return list(buf[:n])

    def detokenize(
        self, tokens: List[int], remove_special: bool = False, unparse_special: bool = False
    ) -> bytes:
        arr = (gptneox_token * max(1, len(tokens)))(*tokens)
        size = max(64, 8 * len(tokens))
        for _ in range(2):
            buf = ctypes.create_string_buffer(size)
            n = gptneox_detokenize(self.vocab, arr, len(tokens), buf, size, remove_special, unparse_special)
            if n >= 0:
                return buf.raw[:n]
            size = -n
        raise last_error("gptneox_detokenize")


class Context(_Owner):
    """An inference context on a :class:`Model` (KV cache, outputs). Keyword arguments set fields of
    gptneox_ctx_params (n_ctx, n_batch, n_threads, type_k, ...)."""

    def __init__(self, model: Model, **params: Any) -> None:
        cparams = gptneox_ctx_default_params()
        for key, value in params.items():
            if not hasattr(cparams, key):
                raise TypeError(f"unknown context parameter {key!r}")
            setattr(cparams, key, value)
        self.model = model
        self._batch: Any = None
        self.ptr: Optional[int] = None
        gptneox_clear_error()
        self.ptr: Optional[int] = check_ptr(
            gptneox_init_from_model(model.ptr, cparams), "gptneox_init_from_model"
        )
        self.n_vocab = model.n_vocab
        self._batch = gptneox_batch_init(int(gptneox_n_batch(self.ptr)), 0, 1)
        if not self._batch.token:
            self.close()
            raise NeoxError("gptneox_batch_init failed", GPTNEOX_STATUS_NO_MEMORY)
        self._batch_cap = int(gptneox_n_batch(self.ptr))
        self.n_past = 0

    def close(self) -> None:
        batch = getattr(self, "_batch", None)
        if batch is not None:
            gptneox_batch_free(batch)
            self._batch = None
        if getattr(self, "ptr", None):
            gptneox_free(self.ptr)
            self.ptr = None

    @property
    def n_ctx(self) -> int:
        return int(gptneox_n_ctx(self.ptr))

    def decode(self, tokens: List[int], logits_all: bool = False) -> None:
        """Append ``tokens`` (sequence 0) at positions n_past.., in chunks of n_batch; the last token of
        each chunk (every token with ``logits_all``) produces an output."""
        for start in range(0, len(tokens), self._batch_cap):
            chunk = tokens[start : start + self._batch_cap]
            b = self._batch
            b.n_tokens = len(chunk)
            for i, tok in enumerate(chunk):
                b.token[i] = tok
                b.pos[i] = self.n_past + i
                b.n_seq_id[i] = 1
                b.seq_id[i][0] = 0
                b.logits[i] = 1 if logits_all or i == len(chunk) - 1 else 0
            rc = gptneox_decode(self.ptr, b)
            if rc == 1:
                raise NeoxError(f"the KV cache ({self.n_ctx} positions) has no room for the batch", rc)
            check_status(rc, "gptneox_decode")
            self.n_past += len(chunk)

    def logits(self, i: int = -1) -> List[float]:
        """Row ``i`` of the last decode's outputs (negative counts from the end)."""
        ptr = check_ptr(gptneox_get_logits_ith(self.ptr, i), "gptneox_get_logits_ith")
        return list(ptr[: self.n_vocab])

    def n_outputs(self) -> int:
        return int(gptneox_n_outputs(self.ptr))

    def all_logits(self) -> List[List[float]]:
        n_out = self.n_outputs()
        ptr = check_ptr(gptneox_get_logits(self.ptr), "gptneox_get_logits")
        flat = ptr[: n_out * self.n_vocab]
        return [flat[r * self.n_vocab : (r + 1) * self.n_vocab] for r in range(n_out)]

    def clear(self) -> None:
        gptneox_memory_clear(gptneox_get_memory(self.ptr), True)
        self.n_past = 0
