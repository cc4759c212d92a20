"""Llama(embedding=True): embed / create_embedding against Hugging Face's final hidden states.

Reference: transformers' GPTNeoXModel output (last_hidden_state: the final layer norm applied) for the
same token ids, pooled in numpy (mean over the tokens, or the last token), L2-normalized in numpy when
normalize=True (as llama-cpp-python's normalize_embedding does).
"""

from __future__ import annotations

from typing import Any, Dict, Iterator, List, Tuple

import numpy as np
import pytest
from llm_models import converted

import neox_cpp
from models import load_hf_model, rel_err

pytestmark = pytest.mark.torch

TEXTS = {
    "bpe": ["the cat sat on the mat", "To be, or not to be: that is the question.", "a"],
    "spm": ["吾輩は猫である。", "ある日の暮方の事である。<NL>一人の下人が", "雨"],
}
POOL_NONE, POOL_MEAN, POOL_LAST = 0, 1, 3
TOL = 1e-3  # f32 weights, f16 KV cache (the default type_k/type_v)


def _hf_hidden(hf_dir: Any, tokens: List[int]) -> np.ndarray:
    import torch

    model = load_hf_model(hf_dir, "float32")
    with torch.no_grad():
        out = model.gpt_neox(torch.tensor([tokens], dtype=torch.long), output_hidden_states=True)
    last = out.last_hidden_state[0].to(torch.float64).numpy()
    # the final layer norm is applied to last_hidden_state (not to the layer outputs)
    with torch.no_grad():
        normed = model.gpt_neox.final_layer_norm(out.hidden_states[-1])[0].to(torch.float64).numpy()
    if not np.allclose(normed, last, atol=1e-5):  # hidden_states[-1] is already normalized
        assert np.allclose(out.hidden_states[-1][0].numpy(), last, atol=1e-5)
    return last


def _l2(v: np.ndarray) -> np.ndarray:
    n = np.linalg.norm(v)
    return v / n if n != 0 else v


@pytest.fixture(scope="module", params=["bpe", "spm"])
def case(request: pytest.FixtureRequest) -> Iterator[Tuple[str, Any, Any]]:
    hf_dir, path = converted(request.param)
    models: Dict[int, Any] = {}

    def get(pooling: int) -> Any:
        if pooling not in models:
            models[pooling] = neox_cpp.Llama(model_path=str(path), n_ctx=256, embedding=True,
                                             pooling_type=pooling, verbose=False)
        return models[pooling]

    yield request.param, hf_dir, get
    for m in models.values():
        m.close()


@pytest.mark.parametrize("pooling", [POOL_MEAN, POOL_LAST])
@pytest.mark.parametrize("normalize", [False, True])
def test_pooled_embeddings_match_hf(case: Tuple[str, Any, Any], pooling: int, normalize: bool) -> None:
    kind, hf_dir, get = case
    llm = get(pooling)
    assert llm.pooling_type() == pooling
    texts = TEXTS[kind]
    got = llm.embed(texts, normalize=normalize)
    assert len(got) == len(texts)
    for text, vec in zip(texts, got):
        tokens = llm.tokenize(text.encode())
        hidden = _hf_hidden(hf_dir, tokens)
        ref = hidden.mean(axis=0) if pooling == POOL_MEAN else hidden[-1]
        if normalize:
            ref = _l2(ref)
            assert abs(np.linalg.norm(vec) - 1.0) < 1e-5
        assert len(vec) == llm.n_embd()
        assert rel_err(np.asarray(vec), ref) < TOL, text


def test_single_string_and_batch_agree(case: Tuple[str, Any, Any]) -> None:
    """Inputs packed into one batch as separate sequences give what each gives alone."""
    kind, _, get = case
    llm = get(POOL_MEAN)
    texts = TEXTS[kind]
    batch = llm.embed(texts)
    for text, vec in zip(texts, batch):
        alone = llm.embed(text)
        assert rel_err(np.asarray(alone), np.asarray(vec)) < 1e-5


def test_no_pooling_gives_token_rows(case: Tuple[str, Any, Any]) -> None:
    kind, hf_dir, get = case
    llm = get(POOL_NONE)
    assert llm.pooling_type() == POOL_NONE
    text = TEXTS[kind][1]
    rows = llm.embed([text])[0]
    tokens = llm.tokenize(text.encode())
    hidden = _hf_hidden(hf_dir, tokens)
    assert len(rows) == len(tokens)
    assert rel_err(np.asarray(rows), hidden) < TOL
    normed = llm.embed([text], normalize=True)[0]
    assert rel_err(np.asarray(normed), np.stack([_l2(r) for r in hidden])) < TOL


def test_create_embedding_response(case: Tuple[str, Any, Any]) -> None:
    kind, hf_dir, get = case
    llm = get(POOL_MEAN)
    texts = TEXTS[kind][:2]
    resp = llm.create_embedding(texts, model="tiny")
    assert resp["object"] == "list" and resp["model"] == "tiny"
    assert [d["index"] for d in resp["data"]] == [0, 1]
    n_tokens = sum(len(llm.tokenize(t.encode())) for t in texts)
    assert resp["usage"] == {"prompt_tokens": n_tokens, "total_tokens": n_tokens}
    for text, item in zip(texts, resp["data"]):
        ref = _hf_hidden(hf_dir, llm.tokenize(text.encode())).mean(axis=0)
        assert item["object"] == "embedding"
        assert rel_err(np.asarray(item["embedding"]), ref) < TOL


def test_embed_requires_embedding_mode(case: Tuple[str, Any, Any]) -> None:
    kind, _, _ = case
    _, path = converted(kind)
    llm = neox_cpp.Llama(model_path=str(path), n_ctx=64, verbose=False)
    try:
        with pytest.raises(RuntimeError, match="embedding=True"):
            llm.embed("x")
    finally:
        llm.close()
