"""The engines the bench times, all behind one small interface.

Each engine loads one GGUF (or its own model format) and answers three timings:
  pp(tokens)  seconds to evaluate the prompt in one batch (logits of the last position only), empty cache
  tg(tokens)  seconds to evaluate the tokens one by one (each a single-token decode), empty cache at start

- OursEngine: libgptneox through neox_cpp._lib directly (no Llama layer), in this process. A fresh context
  is made for each measurement and freed after it, so our thread pool is not alive while a peer runs.
- LlamaCppEngine: llama-cpp-python 0.3.36 compiled in full, in its own venv (tests/peer.py), driven through
  its high-level Llama.eval (n_batch = n_ubatch = 512, logits of the last position only).
- CTranslate2Engine: the hook for issue 6 (int8 CTranslate2 model converted from the same HF checkpoint).
  `available()` says whether it can run; until it is written the bench lists it as "not run".
"""

from __future__ import annotations

import sys
import time
from pathlib import Path
from typing import Any, Optional, Sequence

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent / "tests"))  # tests/peer.py (peer venv driver)

import peer as _peer  # noqa: E402


class Engine:
    name = "engine"

    def pp(self, tokens: Sequence[int]) -> float:
        raise NotImplementedError

    def tg(self, tokens: Sequence[int]) -> float:
        raise NotImplementedError

    def close(self) -> None:
        pass


class OursEngine(Engine):
    name = "neox_cpp"

    def __init__(self, path: Path, n_ctx: int, n_batch: int, n_threads: int) -> None:
        from neox_cpp import _lib as L

        self._L = L
        self.n_ctx, self.n_batch, self.n_threads = n_ctx, n_batch, n_threads
        mp = L.gptneox_model_default_params()
        self.model = L.check_ptr(L.gptneox_model_load_from_file(str(path).encode(), mp), f"loading {path}")
        self.batch = L.gptneox_batch_init(n_batch, 0, 1)
        if not self.batch.token:
            raise MemoryError("gptneox_batch_init failed")
        self._seq0 = [self.batch.seq_id[i] for i in range(n_batch)]

    def kernel_info(self) -> str:
        raw = self._L.gptneox_print_system_info()
        return raw.decode() if raw else ""

    def _new_ctx(self) -> Any:
        L = self._L
        cp = L.gptneox_ctx_default_params()
        cp.n_ctx = self.n_ctx
        cp.n_batch = self.n_batch
        cp.n_ubatch = self.n_batch
        cp.n_seq_max = 1
        cp.n_threads = self.n_threads
        cp.n_threads_batch = self.n_threads
        return L.check_ptr(L.gptneox_init_from_model(self.model, cp), "gptneox_init_from_model")

    def _fill(self, tokens: Sequence[int], pos0: int) -> None:
        b = self.batch
        n = len(tokens)
        for i, t in enumerate(tokens):
            b.token[i] = int(t)
            b.pos[i] = pos0 + i
            b.n_seq_id[i] = 1
            self._seq0[i][0] = 0
            b.logits[i] = 1 if i == n - 1 else 0
        b.n_tokens = n

    def _decode(self, ctx: Any) -> None:
        rc = self._L.gptneox_decode(ctx, self.batch)
        if rc != 0:
            self._L.check_status(rc if rc < 0 else -7, f"gptneox_decode returned {rc}")

    def pp(self, tokens: Sequence[int]) -> float:
        ctx = self._new_ctx()
        try:
            self._fill(tokens, 0)
            t = time.perf_counter()
            self._decode(ctx)
            return time.perf_counter() - t
        finally:
            self._L.gptneox_free(ctx)

    def tg(self, tokens: Sequence[int]) -> float:
        ctx = self._new_ctx()
        try:
            t = time.perf_counter()
            for i, tok in enumerate(tokens):
                self._fill([tok], i)
                self._decode(ctx)
            return time.perf_counter() - t
        finally:
            self._L.gptneox_free(ctx)

    def logits(self, tokens: Sequence[int]) -> Any:
        """[n_tokens, n_vocab] logits of every position, in one batch (for checks, not timing)."""
        import numpy as np

        L = self._L
        ctx = self._new_ctx()
        try:
            self._fill(tokens, 0)
            for i in range(len(tokens)):
                self.batch.logits[i] = 1
            self._decode(ctx)
            n_vocab = L.gptneox_vocab_n_tokens(L.gptneox_model_get_vocab(self.model))
            ptr = L.check_ptr(L.gptneox_get_logits(ctx), "gptneox_get_logits")
            return np.ctypeslib.as_array(ptr, shape=(len(tokens), n_vocab)).copy()
        finally:
            L.gptneox_free(ctx)

    def close(self) -> None:
        if self.model:
            self._L.gptneox_batch_free(self.batch)
            self._L.gptneox_model_free(self.model)
            self.model = None


class LlamaCppEngine(Engine):
    name = "llama.cpp"

    def __init__(self, path: Path, n_ctx: int, n_batch: int, n_threads: int, extra_bufts: bool) -> None:
        self._peer = _peer.Peer(extra_bufts=extra_bufts)
        self.system_info = self._peer.system_info
        self._peer.load(path, n_ctx=n_ctx, n_batch=n_batch, n_threads=n_threads, logits_all=False)

    def pp(self, tokens: Sequence[int]) -> float:
        return self._peer.pp_seconds(tokens)

    def tg(self, tokens: Sequence[int]) -> float:
        return self._peer.tg_seconds(tokens)

    def close(self) -> None:
        self._peer.close()


class CTranslate2Engine(Engine):
    """CTranslate2 int8 on the same HF checkpoint (ct2-transformers-converter --quantization int8, then
    ctranslate2.Generator(..., inter_threads=1, intra_threads=n_threads)); bench/ctranslate2_engine.py."""

    name = "CTranslate2"
    weights = "int8"

    @staticmethod
    def available() -> Optional[str]:
        """None if it can run, else why not."""
        import ctranslate2_engine

        return ctranslate2_engine.available()

    @staticmethod
    def prepare(hf_dir: Path, cache: Path) -> Path:
        """Convert (once, cached under `cache`) and return the CTranslate2 model directory."""
        import ctranslate2_engine

        return ctranslate2_engine.prepare(hf_dir, cache)

    def __init__(self, model_dir: Path, n_threads: int) -> None:
        import ctranslate2_engine

        self._r = ctranslate2_engine.CTranslate2Runner(model_dir, n_threads)

    def kernel_info(self) -> str:
        return self._r.kernel_info()

    def pp(self, tokens: Sequence[int]) -> float:
        return self._r.pp(tokens)

    def tg(self, tokens: Sequence[int]) -> float:
        return self._r.tg(tokens)

    def close(self) -> None:
        self._r.close()
