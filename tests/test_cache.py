"""save_state / load_state, LlamaRAMCache / LlamaDiskCache prefix reuse, reset, set_seed, pickling.

Reference for "same logits": the same Llama evaluating the whole token sequence from an empty context
(one eval call), compared with continuing from a restored state.
"""

from __future__ import annotations

import pickle
from pathlib import Path
from typing import Any, Iterator, List

import numpy as np
import pytest
from llm_models import converted

import neox_cpp

pytestmark = pytest.mark.torch

PROMPT = "To be, or not to be: that is the question."
MORE = " Whether 'tis nobler in the mind to suffer"
OTHER = "Now is the winter of our discontent made glorious summer"


@pytest.fixture(scope="module")
def gguf_path() -> Path:
    return converted("bpe")[1]


@pytest.fixture()
def llm(gguf_path: Path) -> Iterator[Any]:
    model = neox_cpp.Llama(model_path=str(gguf_path), n_ctx=256, n_batch=32, logits_all=True, verbose=False)
    yield model
    model.close()


def _tok(llm: Any, text: str) -> List[int]:
    return llm.tokenize(text.encode(), add_bos=False)


def _full_scores(llm: Any, tokens: List[int]) -> np.ndarray:
    llm.reset()
    llm.eval(tokens)
    return np.array(llm.scores[: len(tokens)])


def test_restored_state_continues_with_same_logits(llm: Any) -> None:
    a, b = _tok(llm, PROMPT), _tok(llm, MORE)
    ref = _full_scores(llm, a + b)
    llm.reset()
    llm.eval(a)
    scores_a = np.array(llm.scores[: len(a)])
    state = llm.save_state()
    assert state.n_tokens == len(a) and state.llama_state_size == len(state.llama_state) > 0
    llm.eval(_tok(llm, OTHER))  # move on: different tokens after the prefix
    llm.load_state(state)
    assert llm.n_tokens == len(a)
    assert list(llm.input_ids[: len(a)]) == a
    np.testing.assert_array_equal(np.array(llm.scores[: len(a)]), scores_a)
    llm.eval(b)
    got = np.array(llm.scores[: len(a) + len(b)])
    np.testing.assert_allclose(got[len(a):], ref[len(a):], rtol=0, atol=1e-4 * np.abs(ref).max())


def test_state_moves_between_instances(llm: Any, gguf_path: Path) -> None:
    a, b = _tok(llm, PROMPT), _tok(llm, MORE)
    ref = _full_scores(llm, a + b)
    llm.reset()
    llm.eval(a)
    state = llm.save_state()
    other = neox_cpp.Llama(model_path=str(gguf_path), n_ctx=256, n_batch=32, logits_all=True, verbose=False)
    try:
        other.load_state(state)
        other.eval(b)
        got = np.array(other.scores[len(a): len(a) + len(b)])
    finally:
        other.close()
    np.testing.assert_allclose(got, ref[len(a):], rtol=0, atol=1e-4 * np.abs(ref).max())


def test_load_state_rejects_garbage(llm: Any) -> None:
    llm.eval(_tok(llm, PROMPT))
    state = llm.save_state()
    bad = bytearray(state.llama_state)
    bad[:8] = b"\xff" * 8
    state.llama_state = bytes(bad)
    with pytest.raises(RuntimeError, match="Failed to set llama state data"):
        llm.load_state(state)


def test_reset_then_eval_equals_fresh(llm: Any) -> None:
    a = _tok(llm, PROMPT)
    ref = _full_scores(llm, a)
    llm.eval(_tok(llm, OTHER))
    llm.reset()
    assert llm.n_tokens == 0
    llm.eval(a)
    np.testing.assert_allclose(np.array(llm.scores[: len(a)]), ref, rtol=0, atol=1e-5 * np.abs(ref).max())


@pytest.mark.parametrize("kind", ["ram", "disk"])
def test_cache_finds_longest_prefix_and_restores(llm: Any, kind: str, tmp_path: Path) -> None:
    cache = neox_cpp.LlamaRAMCache() if kind == "ram" else neox_cpp.LlamaDiskCache(str(tmp_path / "c"))
    a, b, c = _tok(llm, PROMPT), _tok(llm, MORE), _tok(llm, OTHER)
    ref = _full_scores(llm, a + b)
    llm.reset()
    llm.eval(a)
    cache[a] = llm.save_state()
    llm.reset()
    llm.eval(c)
    cache[c] = llm.save_state()
    assert a in cache and c in cache
    hit = cache[a + b]  # longest prefix: the state saved after a
    assert hit.n_tokens == len(a)
    with pytest.raises(KeyError):
        cache[_tok(llm, "Zzz")]
    llm.reset()
    llm.load_state(hit)
    llm.eval(b)
    got = np.array(llm.scores[len(a): len(a) + len(b)])
    np.testing.assert_allclose(got, ref[len(a):], rtol=0, atol=1e-4 * np.abs(ref).max())


def test_ram_cache_capacity_evicts_oldest(llm: Any) -> None:
    a, c = _tok(llm, PROMPT), _tok(llm, OTHER)
    llm.eval(a)
    state_a = llm.save_state()
    llm.reset()
    llm.eval(c)
    state_c = llm.save_state()
    cache = neox_cpp.LlamaRAMCache(capacity_bytes=max(state_a.llama_state_size, state_c.llama_state_size) + 1)
    cache[a] = state_a
    cache[c] = state_c
    assert list(cache.cache_state) == [tuple(c)]
    assert cache[c].n_tokens == len(c)


def _count_evals(llm: Any) -> List[int]:
    counts: List[int] = []
    original = llm.eval

    def eval_and_count(tokens: Any) -> None:
        counts.append(len(tokens))
        original(tokens)

    llm.eval = eval_and_count
    return counts


def test_completion_prefix_reuse_through_cache(gguf_path: Path) -> None:
    """A completion whose prompt extends an earlier prompt+completion restores the cached state
    (only the new tokens are evaluated) and gives the same text as without the cache."""
    kw = dict(max_tokens=8, temperature=0.0)
    plain = neox_cpp.Llama(model_path=str(gguf_path), n_ctx=256, verbose=False)
    cached = neox_cpp.Llama(model_path=str(gguf_path), n_ctx=256, verbose=False)
    try:
        cached.set_cache(neox_cpp.LlamaRAMCache())
        first = cached(PROMPT, **kw)["choices"][0]["text"]
        assert first == plain(PROMPT, **kw)["choices"][0]["text"]
        cached(OTHER, **kw)  # the context now holds something else
        follow = PROMPT + first + MORE
        counts = _count_evals(cached)
        got = cached(follow, **kw)["choices"][0]["text"]
        assert got == plain(follow, **kw)["choices"][0]["text"]
        n_follow = len(cached.tokenize(follow.encode(), add_bos=False))
        n_cached = len(cached.tokenize((PROMPT + first).encode(), add_bos=False))
        # the first eval is the prompt's uncached part (a token or two of slack at the boundary)
        assert counts[0] <= n_follow - n_cached + 3 < n_follow
    finally:
        plain.close()
        cached.close()


def test_set_seed_and_seed_argument(llm: Any) -> None:
    kw = dict(max_tokens=24, temperature=1.5, top_k=0, top_p=1.0, min_p=0.0)
    texts = []
    for seed in (1, 2, 3, 4):
        llm.set_seed(seed)
        first = llm(PROMPT, **kw)["choices"][0]["text"]
        llm.set_seed(seed)
        assert llm(PROMPT, **kw)["choices"][0]["text"] == first
        again = llm(PROMPT, seed=seed, **kw)["choices"][0]["text"]
        assert llm(PROMPT, seed=seed, **kw)["choices"][0]["text"] == again
        texts.append(first)
    assert len(set(texts)) > 1  # the seed matters


def test_pickle_round_trip_keeps_class(llm: Any) -> None:
    copy = pickle.loads(pickle.dumps(llm))
    try:
        assert type(copy) is type(llm) is neox_cpp.Llama
        assert copy.n_ctx() == llm.n_ctx() and copy.model_path == llm.model_path
    finally:
        copy.close()
