"""llama_encode on a GPT-NeoX model.

What llama.cpp does (src/llama-context.cpp `llama_context::encode`, the one vendored in llama-cpp-python
0.3.36): it rejects an empty batch (-1), then builds the model's graph as an ENCODER graph with non-causal
attention, no memory (KV cache) context and every token an output, and fills logits / embeddings. GPT-NeoX
has no encoder (llama_model_has_encoder is false): its graph asks the (NULL) memory context for the KV
attention inputs, so llama.cpp crashes with SIGSEGV (test_llama_cpp_crashes_on_encode shows it with the
peer). neox_cpp answers with a negative status instead (-1 empty batch, GPTNEOX_STATUS_UNSUPPORTED
otherwise) and changes nothing: the KV cache and the last decode's outputs are kept.
llama-cpp-python's Llama never calls llama_encode (it decodes, embeddings included); its
``LlamaContext.encode`` raises RuntimeError on a non-zero return.
"""

from __future__ import annotations

import ctypes
import os
import subprocess
from pathlib import Path
from typing import Iterator, Tuple

import numpy as np
import pytest

from neox_cpp import _lib
from neox_cpp import llama_compat as lc

TOKENS = [5, 60, 70, 80, 90]


@pytest.fixture()
def ctx(tiny_gguf: Path) -> Iterator[Tuple[int, int]]:
    model = lc.llama_model_load_from_file(str(tiny_gguf).encode(), lc.llama_model_default_params())
    assert model
    p = lc.llama_context_default_params()
    p.n_ctx, p.n_batch, p.n_ubatch = 64, 64, 64
    c = lc.llama_init_from_model(model, p)
    assert c
    yield model, c
    lc.llama_free(c)
    lc.llama_model_free(model)


def _batch(tokens: list, pos0: int = 0) -> lc.llama_batch:
    b = lc.llama_batch_init(max(len(tokens), 1), 0, 1)
    b.n_tokens = len(tokens)
    for i, t in enumerate(tokens):
        b.token[i], b.pos[i], b.n_seq_id[i], b.logits[i] = t, pos0 + i, 1, True
        b.seq_id[i][0] = 0
    return b


def test_no_encoder(ctx: Tuple[int, int]) -> None:
    assert lc.llama_model_has_encoder(ctx[0]) is False
    assert lc.llama_model_has_decoder(ctx[0]) is True


def test_encode_fails_and_changes_nothing(ctx: Tuple[int, int]) -> None:
    model, c = ctx
    n_vocab = lc.llama_vocab_n_tokens(lc.llama_model_get_vocab(model))
    b = _batch(TOKENS)
    assert lc.llama_decode(c, b) == 0
    before = np.ctypeslib.as_array(lc.llama_get_logits(c), shape=(len(TOKENS), n_vocab)).copy()
    mem = lc.llama_get_memory(c)
    assert lc.llama_memory_seq_pos_max(mem, 0) == len(TOKENS) - 1

    b2 = _batch([11, 12, 13], pos0=len(TOKENS))
    rc = lc.llama_encode(c, b2)
    assert rc == _lib.GPTNEOX_STATUS_UNSUPPORTED
    assert "no encoder" in _lib.gptneox_last_error().decode()
    assert lc.llama_memory_seq_pos_max(mem, 0) == len(TOKENS) - 1  # KV cache untouched
    after = np.ctypeslib.as_array(lc.llama_get_logits(c), shape=(len(TOKENS), n_vocab))
    np.testing.assert_array_equal(after, before)  # outputs of the last decode kept

    # decoding continues as if encode had not been called
    assert lc.llama_decode(c, b2) == 0
    assert lc.llama_memory_seq_pos_max(mem, 0) == len(TOKENS) + 2
    lc.llama_batch_free(b)
    lc.llama_batch_free(b2)


def test_encode_empty_batch_is_invalid(ctx: Tuple[int, int]) -> None:
    b = _batch([])
    assert lc.llama_encode(ctx[1], b) == -1  # llama.cpp: "n_tokens == 0" -> -1
    lc.llama_batch_free(b)


def test_encode_null_context() -> None:
    b = _batch([1])
    assert lc.llama_encode(None, b) == _lib.GPTNEOX_STATUS_INVALID_ARGUMENT
    lc.llama_batch_free(b)


def test_llama_context_encode_raises(tiny_gguf: Path) -> None:
    """llama-cpp-python's own LlamaContext.encode (on neox_cpp.Llama) turns the status into RuntimeError."""
    from neox_cpp import Llama

    llm = Llama(model_path=str(tiny_gguf), n_ctx=64, n_batch=64, verbose=False)
    try:
        llm._batch.set_batch(TOKENS, n_past=0, logits_all=False)
        with pytest.raises(RuntimeError, match="llama_encode returned"):
            llm._ctx.encode(llm._batch)
        assert llm("the", max_tokens=3, temperature=0.0)["choices"][0]["text"] is not None
    finally:
        llm.close()


_PEER_SCRIPT = r"""
import sys, llama_cpp, llama_cpp.llama_cpp as L
llm = llama_cpp.Llama(model_path=sys.argv[1], n_ctx=64, n_batch=64, n_ubatch=64, verbose=False)
print("has_encoder", L.llama_model_has_encoder(llm._model.model), flush=True)
b = llm._batch
b.set_batch([5, 60, 70, 80, 90], n_past=0, logits_all=False)
print("rc", L.llama_encode(llm._ctx.ctx, b.batch), flush=True)
"""


def test_llama_cpp_crashes_on_encode(tiny_gguf: Path) -> None:
    """The fact our behaviour departs from: llama.cpp (the peer) dies with SIGSEGV in llama_encode on this
    very file. If a peer ever returns instead, this fails: then match what it returns."""
    from peer import require_peer

    py = require_peer()
    # (not LD_PRELOAD either: under the sanitizer CI run, ASan in the peer turns the SIGSEGV into an abort)
    drop = ("PYTHONPATH", "LLAMA_CPP_LIB_PATH", "LD_PRELOAD", "ASAN_OPTIONS", "UBSAN_OPTIONS")
    env = {k: v for k, v in os.environ.items() if k not in drop}
    res = subprocess.run([str(py), "-c", _PEER_SCRIPT, str(tiny_gguf)], capture_output=True, text=True,
                         env=env, timeout=300, check=False)
    assert "has_encoder False" in res.stdout, res.stderr[-2000:]
    assert res.returncode == -11, (res.returncode, res.stdout, res.stderr[-2000:])  # SIGSEGV
    assert not any(line.startswith("rc ") for line in res.stdout.splitlines())


def test_encode_binding_is_the_c_function() -> None:
    assert isinstance(_lib.gptneox_encode, ctypes._CFuncPtr)  # type: ignore[attr-defined]
