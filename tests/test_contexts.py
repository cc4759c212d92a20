"""Several contexts on one model at once: each keeps its own KV cache and outputs, whether their decodes
interleave on one thread or run concurrently on several (ctypes releases the GIL during the calls)."""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Dict, List

import numpy as np

from neox_cpp import _lib

PROMPTS = [[5, 17, 42, 99, 3, 250, 7, 8, 9, 10, 11], [200, 1, 2, 3, 4, 60, 61], [33] * 9]


def alone(model: _lib.Model, tokens: List[int]) -> np.ndarray:
    with _lib.Context(model, n_ctx=64, n_threads=1, n_threads_batch=1) as ctx:
        out = []
        for t in tokens:  # token by token, so every step reads the cache written by the previous ones
            ctx.decode([t])
            out.append(ctx.logits(-1))
        return np.array(out, dtype=np.float32)


def test_interleaved_contexts_do_not_share_state(tiny_gguf: Path) -> None:
    with _lib.Model(tiny_gguf) as model:
        expected = [alone(model, p) for p in PROMPTS]
        ctxs = [_lib.Context(model, n_ctx=64, n_threads=1, n_threads_batch=1) for _ in PROMPTS]
        got: Dict[int, List[List[float]]] = {i: [] for i in range(len(PROMPTS))}
        for step in range(max(len(p) for p in PROMPTS)):
            for i, p in enumerate(PROMPTS):
                if step < len(p):
                    ctxs[i].decode([p[step]])
                    got[i].append(ctxs[i].logits(-1))
        for i, ctx in enumerate(ctxs):
            np.testing.assert_array_equal(np.array(got[i], dtype=np.float32), expected[i])
            ctx.close()


def test_contexts_on_concurrent_threads(tiny_gguf: Path) -> None:
    with _lib.Model(tiny_gguf) as model:
        expected = [alone(model, p) for p in PROMPTS]
        results: Dict[int, np.ndarray] = {}
        errors: List[BaseException] = []

        def work(i: int) -> None:
            try:
                for _ in range(5):  # repeat so the decodes really overlap
                    results[i] = alone(model, PROMPTS[i])
            except BaseException as e:  # reported below, in the main thread
                errors.append(e)

        threads = [threading.Thread(target=work, args=(i,)) for i in range(len(PROMPTS))]
        for t in threads:
            t.start()
        for t in threads:
            t.join(timeout=120)
        assert not errors, errors
        for i in range(len(PROMPTS)):
            np.testing.assert_array_equal(results[i], expected[i])
