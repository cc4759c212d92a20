"""Llama(embedding=True, pooling MEAN/LAST) also produces logits (as llama.cpp does): embed() still gives
the pooled hidden states of Hugging Face's model, and completion / logits on the same Llama equal those of
a Llama made without embeddings.
"""

from __future__ import annotations

from typing import Any, Iterator, Tuple

import numpy as np
import pytest
from llm_models import converted

import neox_cpp
from models import load_hf_model, rel_err

pytestmark = pytest.mark.torch

POOL_MEAN, POOL_LAST = 1, 3
TEXT = "the cat sat on the mat"
PROMPT = "To be, or not to be"
TOL = 1e-3  # f32 weights, f16 KV cache (the default type_k/type_v)


def _hf_last_hidden(hf_dir: Any, tokens: Any) -> np.ndarray:
    import torch

    model = load_hf_model(hf_dir, "float32")
    with torch.no_grad():
        out = model.gpt_neox(torch.tensor([tokens], dtype=torch.long))
    return out.last_hidden_state[0].to(torch.float64).numpy()


@pytest.fixture(scope="module")
def bpe() -> Iterator[Tuple[Any, Any]]:
    hf_dir, path = converted("bpe")
    yield hf_dir, path


def _llama(path: Any, **kw: Any) -> Any:
    return neox_cpp.Llama(model_path=str(path), n_ctx=128, verbose=False, **kw)


@pytest.mark.parametrize("pooling", [POOL_MEAN, POOL_LAST])
def test_embed_then_complete_on_one_llama(bpe: Tuple[Any, Any], pooling: int) -> None:
    hf_dir, path = bpe
    emb = _llama(path, embedding=True, pooling_type=pooling)
    plain = _llama(path)
    try:
        vec = np.asarray(emb.embed(TEXT))
        hidden = _hf_last_hidden(hf_dir, emb.tokenize(TEXT.encode()))
        ref = hidden.mean(axis=0) if pooling == POOL_MEAN else hidden[-1]
        assert rel_err(vec, ref) < TOL

        got = emb.create_completion(PROMPT, max_tokens=8, temperature=0.0)["choices"][0]["text"]
        want = plain.create_completion(PROMPT, max_tokens=8, temperature=0.0)["choices"][0]["text"]
        assert got == want and len(want) > 0

        # embeddings still work after completing
        assert rel_err(np.asarray(emb.embed(TEXT)), vec) < 1e-5
    finally:
        emb.close()
        plain.close()


def test_pooled_logits_equal_plain_logits(bpe: Tuple[Any, Any]) -> None:
    hf_dir, path = bpe
    emb = _llama(path, embedding=True, pooling_type=POOL_MEAN, logits_all=True)
    plain = _llama(path, logits_all=True)
    try:
        tokens = plain.tokenize(PROMPT.encode())
        plain.eval(tokens)
        emb.eval(tokens)
        want = np.array(plain.scores[: len(tokens)], dtype=np.float64)
        got = np.array(emb.scores[: len(tokens)], dtype=np.float64)
        assert np.isfinite(want).all() and np.abs(want).max() > 0
        np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-5)
        # and the logits are the model's: Hugging Face's final hidden state times its output matrix
        import torch

        model = load_hf_model(hf_dir, "float32")
        with torch.no_grad():
            hf = model(torch.tensor([tokens], dtype=torch.long)).logits[0].to(torch.float64).numpy()
        assert rel_err(got, hf) < TOL
        # the pooled embedding of the same decode is there too
        pooled = neox_cpp.llama_compat.llama_get_embeddings_seq(emb._ctx.ctx, 0)
        vec = np.ctypeslib.as_array(pooled, shape=(emb.n_embd(),)).astype(np.float64)
        assert rel_err(vec, _hf_last_hidden(hf_dir, tokens).mean(axis=0)) < TOL
    finally:
        emb.close()
        plain.close()
