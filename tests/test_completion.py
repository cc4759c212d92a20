"""Llama.create_completion / __call__ on our engine (llama-cpp-python's own code over llama_compat).

References are computed here from the engine's logits (Llama.eval + scores, or a second model): greedy
decoding by hand, log_softmax for logprobs. Most tests restrict the tiny random model to printable ASCII
tokens with a logits_processor, so that texts are comparable byte for byte (llama-cpp-python 0.3.36's
own streaming drops characters whose UTF-8 bytes span tokens: see llama-cpp-python.md).
"""

from __future__ import annotations

import gc
import os
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any, Dict, Iterator, List

import numpy as np
import pytest

import neox_cpp
from neox_cpp import _compat_sampling, _lib

ROOT = Path(__file__).resolve().parents[1]
PROMPT = "the cat sat on"


def _ascii_ids(llm: Any) -> np.ndarray:
    ok = []
    for t in range(llm.n_vocab()):
        piece = llm.detokenize([t])
        if piece and all(0x20 <= b < 0x7F for b in piece):
            ok.append(t)
    return np.array(ok)


@pytest.fixture(scope="module")
def llm(tiny_gguf: Path) -> Iterator[Any]:
    model = neox_cpp.Llama(model_path=str(tiny_gguf), n_ctx=128, verbose=False, logits_all=True, seed=1)
    yield model
    model.close()


@pytest.fixture(scope="module")
def ascii_only(llm: Any) -> Any:
    allowed = _ascii_ids(llm)
    mask = np.full(llm.n_vocab(), -np.inf, dtype=np.float32)
    mask[allowed] = 0.0

    def processor(input_ids: np.ndarray, logits: np.ndarray) -> np.ndarray:
        return logits + mask

    return processor


def _text(out: Dict[str, Any]) -> str:
    return str(out["choices"][0]["text"])


def _stream_text(chunks: Iterator[Dict[str, Any]]) -> str:
    return "".join(c["choices"][0]["text"] for c in chunks)


@pytest.mark.parametrize("seed", [1, 7, 123])
def test_stream_and_non_stream_give_the_same_text(llm: Any, ascii_only: Any, seed: int) -> None:
    kw = dict(max_tokens=24, seed=seed, logits_processor=[ascii_only])
    full = llm.create_completion(PROMPT, **kw)
    streamed = _stream_text(llm.create_completion(PROMPT, stream=True, **kw))
    assert _text(full) and streamed == _text(full)
    assert _text(llm(PROMPT, **kw)) == _text(full)  # __call__ is create_completion


def test_same_seed_same_text_different_seed_different_text(llm: Any, ascii_only: Any) -> None:
    kw = dict(max_tokens=24, logits_processor=[ascii_only], temperature=1.0)
    a = _text(llm(PROMPT, seed=42, **kw))
    assert _text(llm(PROMPT, seed=42, **kw)) == a
    assert _text(llm(PROMPT, seed=43, **kw)) != a


def test_same_seed_same_text_across_processes(tiny_gguf: Path) -> None:
    code = textwrap.dedent(
        f"""
        import neox_cpp
        llm = neox_cpp.Llama(model_path={str(tiny_gguf)!r}, n_ctx=128, verbose=False)
        out = llm("the cat", max_tokens=16, seed=2024, temperature=1.0)
        print(repr(out["choices"][0]["text"]))
        """
    )
    env = dict(os.environ, NEOX_CPP_LIB=str(_lib.lib_path()))  # the library this process uses
    runs = [
        subprocess.run(
            [sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT, check=True, env=env
        ).stdout
        for _ in range(2)
    ]
    assert runs[0] == runs[1] and runs[0].strip()


def test_max_tokens_and_finish_reason_length(llm: Any, ascii_only: Any) -> None:
    for n in (1, 5, 17):
        out = llm(PROMPT, max_tokens=n, seed=3, logits_processor=[ascii_only])
        assert out["usage"]["completion_tokens"] == n
        assert out["choices"][0]["finish_reason"] == "length"


def test_end_of_generation_gives_finish_reason_stop(llm: Any) -> None:
    eos = llm.token_eos()
    out = llm(PROMPT, max_tokens=10, logit_bias={eos: 100.0})
    assert out["choices"][0]["finish_reason"] == "stop"
    assert _text(out) == "" and out["usage"]["completion_tokens"] == 0


def test_logit_bias_forces_a_token(llm: Any) -> None:
    tok = llm.tokenize(b"Q", add_bos=False)[0]
    out = llm(PROMPT, max_tokens=6, seed=5, logit_bias={tok: 100.0})
    assert _text(out) == "Q" * 6


def _greedy_by_hand(model: Any, prompt: str, n: int) -> List[int]:
    tokens = model.tokenize(prompt.encode(), add_bos=False)
    model.reset()
    model.eval(tokens)
    out: List[int] = []
    for _ in range(n):
        nxt = int(np.argmax(model.scores[model.n_tokens - 1]))
        out.append(nxt)
        if model.token_eos() == nxt:
            break
        model.eval([nxt])
    return out


def test_temperature_zero_is_argmax_decoding(tiny_gguf: Path) -> None:
    ref = neox_cpp.Llama(model_path=str(tiny_gguf), n_ctx=128, verbose=False, logits_all=True)
    model = neox_cpp.Llama(model_path=str(tiny_gguf), n_ctx=128, verbose=False)
    try:
        expected = _greedy_by_hand(ref, PROMPT, 20)
        prompt_tokens = model.tokenize(PROMPT.encode(), add_bos=False)
        got = []
        for tok in model.generate(prompt_tokens, temp=0.0):
            got.append(tok)
            if len(got) == len(expected):
                break
        assert got == expected
        text = _text(model(PROMPT, max_tokens=len(expected), temperature=0.0))
        assert text == model.detokenize(expected).decode("utf-8", errors="ignore")
    finally:
        ref.close()
        model.close()


def test_stop_strings_non_stream_and_stream(llm: Any, ascii_only: Any) -> None:
    kw = dict(max_tokens=30, seed=9, logits_processor=[ascii_only])
    full = _text(llm(PROMPT, **kw))
    assert len(full) >= 12
    for stop in (full[5:8], full[10:11]):
        cut = full[: full.index(stop)]
        out = llm(PROMPT, stop=[stop], **kw)
        assert _text(out) == cut
        assert out["choices"][0]["finish_reason"] == "stop"
        chunks = list(llm(PROMPT, stop=[stop], stream=True, **kw))
        assert _stream_text(iter(chunks)) == cut  # nothing of the stop string leaks while streaming
        assert chunks[-1]["choices"][0]["finish_reason"] == "stop"
    # a stop string that never occurs changes nothing
    assert _text(llm(PROMPT, stop=["\x01never"], **kw)) == full


def test_echo(llm: Any, ascii_only: Any) -> None:
    kw = dict(max_tokens=8, seed=4, logits_processor=[ascii_only])
    plain = _text(llm(PROMPT, **kw))
    echoed = _text(llm(PROMPT, echo=True, **kw))
    assert echoed == PROMPT + plain


def _log_softmax(x: np.ndarray) -> np.ndarray:
    x = x.astype(np.float64)
    m = x.max()
    return x - m - np.log(np.exp(x - m).sum())


def test_logprobs_equal_log_softmax_of_the_engine_logits(llm: Any, tiny_gguf: Path) -> None:
    n_top = 3
    out = llm(PROMPT, max_tokens=8, seed=11, logprobs=n_top)
    lp = out["choices"][0]["logprobs"]
    n_prompt = len(llm.tokenize(PROMPT.encode(), add_bos=False))
    # the tokens evaluated (prompt + completion but the last), re-evaluated in a fresh model
    evaluated = [int(t) for t in llm.input_ids[: llm.n_tokens]]
    ref = neox_cpp.Llama(model_path=str(tiny_gguf), n_ctx=128, verbose=False, logits_all=True)
    try:
        ref.eval(evaluated)
        rows = np.array(ref.scores[: len(evaluated)], dtype=np.float32)
    finally:
        ref.close()
    n_completion = out["usage"]["completion_tokens"]
    assert len(lp["token_logprobs"]) == n_completion == len(evaluated) - n_prompt + 1
    for i in range(n_completion):
        ls = _log_softmax(rows[n_prompt - 1 + i])
        # top_logprobs: the n_top best tokens plus the chosen one, keyed by their text (tokens with the
        # same text collapse), so every value is one of those log-probabilities
        allowed = np.append(np.sort(ls)[::-1][:n_top], lp["token_logprobs"][i])
        values = list(lp["top_logprobs"][i].values())
        assert values
        for v in values:
            assert np.min(np.abs(allowed - v)) < 1e-4, (v, allowed)
        assert max(values) == pytest.approx(ls.max(), abs=1e-4) or len(set(map(str, values))) < n_top
        if i + 1 < n_completion:  # the token chosen at step i is evaluated at n_prompt + i
            tok = evaluated[n_prompt + i]
            assert lp["token_logprobs"][i] == pytest.approx(ls[tok], abs=1e-4)


def test_logprobs_need_logits_all(tiny_gguf: Path) -> None:
    model = neox_cpp.Llama(model_path=str(tiny_gguf), n_ctx=64, verbose=False)
    try:
        with pytest.raises(ValueError):
            model(PROMPT, max_tokens=2, logprobs=2)
    finally:
        model.close()


def test_logits_processor_really_bans_a_token(llm: Any) -> None:
    prompt_tokens = llm.tokenize(PROMPT.encode(), add_bos=False)
    greedy: List[int] = []
    for tok in llm.generate(prompt_tokens, temp=0.0):
        greedy.append(tok)
        if len(greedy) == 12:
            break
    banned = greedy[0]
    gc.collect()
    foreign_before = len(_compat_sampling._foreign)  # other tests' Llama objects may still hold theirs

    def ban(input_ids: np.ndarray, logits: np.ndarray) -> np.ndarray:
        logits[banned] = -np.inf
        return logits

    for temp in (0.0, 1.5):
        got: List[int] = []
        for tok in llm.generate(prompt_tokens, temp=temp, logits_processor=[ban]):
            got.append(tok)
            if len(got) == 30:
                break
        assert banned not in got
    # no wrapper of the Python sampler is left behind once the chains are gone (llama-cpp-python's
    # LlamaSampler is freed by the cyclic GC; the model keeps its last chain)
    gc.collect()
    assert len(_compat_sampling._foreign) <= foreign_before + 1


def test_stopping_criteria(llm: Any, ascii_only: Any) -> None:
    n_prompt = len(llm.tokenize(PROMPT.encode(), add_bos=False))

    def after_four(input_ids: np.ndarray, logits: np.ndarray) -> bool:
        return len(input_ids) >= n_prompt + 4

    out = llm(
        PROMPT,
        max_tokens=20,
        seed=2,
        logits_processor=[ascii_only],
        stopping_criteria=neox_cpp.StoppingCriteriaList([after_four]),
    )
    assert out["choices"][0]["finish_reason"] == "stop"
    full = _text(llm(PROMPT, max_tokens=20, seed=2, logits_processor=[ascii_only]))
    assert full.startswith(_text(out)) and len(_text(out)) < len(full)


def test_penalties_and_mirostat_run(llm: Any, ascii_only: Any) -> None:
    kw = dict(max_tokens=12, seed=6, logits_processor=[ascii_only])
    base = _text(llm(PROMPT, **kw))
    penalized = _text(llm(PROMPT, repeat_penalty=1.5, frequency_penalty=0.5, presence_penalty=0.5, **kw))
    assert penalized == _text(
        llm(PROMPT, repeat_penalty=1.5, frequency_penalty=0.5, presence_penalty=0.5, **kw)
    )
    assert isinstance(base, str)
    for mode in (1, 2):
        a = _text(llm(PROMPT, mirostat_mode=mode, mirostat_tau=3.0, mirostat_eta=0.2, **kw))
        assert a == _text(llm(PROMPT, mirostat_mode=mode, mirostat_tau=3.0, mirostat_eta=0.2, **kw))


def test_prompt_longer_than_the_context_raises_value_error(tiny_gguf: Path) -> None:
    model = neox_cpp.Llama(model_path=str(tiny_gguf), n_ctx=32, verbose=False)
    try:
        with pytest.raises(ValueError):
            model("the cat " * 40, max_tokens=4)
    finally:
        model.close()


@pytest.mark.torch
def test_greedy_completion_matches_transformers_on_a_converted_model(tmp_path: Path) -> None:
    """A converted tiny Hugging Face model: temperature=0 completion = argmax decoding with transformers."""
    pytest.importorskip("torch")
    pytest.importorskip("transformers")
    import models

    hf_dir = models.make_hf_model(tmp_path / "hf", hidden=64, layers=2, heads=4, seed=7, tokenizer="bpe")
    path = models.convert_model(hf_dir, tmp_path, "f32")
    model = neox_cpp.Llama(model_path=str(path), n_ctx=128, verbose=False)
    try:
        prompt = "To be, or not to be"
        tokens = model.tokenize(prompt.encode(), add_bos=False)
        expected: List[int] = []
        seq = list(tokens)
        for _ in range(16):
            nxt = int(np.argmax(models.hf_logits(hf_dir, seq)[-1]))
            expected.append(nxt)
            if nxt == model.token_eos():
                break
            seq.append(nxt)
        got: List[int] = []
        for tok in model.generate(tokens, temp=0.0):
            got.append(tok)
            if len(got) == len(expected):
                break
        assert got == expected
        out = model(prompt, max_tokens=len(expected), temperature=0.0)
        # llama-cpp-python may run past max_tokens to complete a UTF-8 character: compare the same count
        n = out["usage"]["completion_tokens"]
        longer: List[int] = []
        for tok in model.generate(tokens, temp=0.0):
            longer.append(tok)
            if len(longer) == n:
                break
        assert longer[: len(expected)] == expected
        assert _text(out) == model.detokenize(longer).decode("utf-8", errors="ignore")
    finally:
        model.close()
