"""neox_cpp.Llama streams exactly the non-streamed text, even when characters are split over tokens.

Two tiny converted models: byte-level BPE (GPT-NeoX style) and sentencepiece with byte fallback (rinna
style). A logits processor forces a chosen token sequence in which Japanese characters and emoji are
spelled with single-byte tokens (bytes of one character spread over 2-4 tokens); seeded sampling biased
towards byte tokens gives random splits. Expected values: the non-streamed text, and Python's own UTF-8
decoding of the forced byte sequence.
"""

from __future__ import annotations

from typing import Any, Dict, Iterator, List, Tuple

import numpy as np
import pytest
from llm_models import converted

import neox_cpp

pytestmark = pytest.mark.torch

TEXT = "日本語のテキスト、吾輩は猫である。😀🎉 café ✓ end"


def _byte_tokens(llm: Any) -> Dict[int, int]:
    """byte value -> token whose piece is exactly that single byte (byte-level BPE / <0xXX> pieces)."""
    out: Dict[int, int] = {}
    for tok in range(llm.n_vocab()):
        piece = llm.detokenize([tok])
        if len(piece) == 1 and piece[0] not in out:
            out[piece[0]] = tok
    return out


def _split_tokens(llm: Any, text: str) -> List[int]:
    """Tokens spelling `text` with one token per byte for every non-ASCII character."""
    bytes_to_tok = _byte_tokens(llm)
    tokens: List[int] = []
    for ch in text:
        if ord(ch) < 0x80:
            tokens += llm.tokenize(ch.encode(), add_bos=False, special=False)
        else:
            tokens += [bytes_to_tok[b] for b in ch.encode()]
    assert llm.detokenize(tokens) == text.encode()
    return tokens


def _spell_bytes(llm: Any, data: bytes) -> List[int]:
    """One single-byte token per byte of `data` (which need not be valid UTF-8)."""
    bytes_to_tok = _byte_tokens(llm)
    tokens = [bytes_to_tok[b] for b in data]
    assert llm.detokenize(tokens) == data
    return tokens


class _Force:
    """Logits processor making the sampler produce `tokens` then EOS after a prompt of n_prompt tokens."""

    def __init__(self, tokens: List[int], eos: int, n_prompt: int) -> None:
        self.tokens, self.eos, self.n_prompt = tokens, eos, n_prompt

    def __call__(self, input_ids: np.ndarray, scores: np.ndarray) -> np.ndarray:
        k = len(input_ids) - self.n_prompt
        target = self.tokens[k] if k < len(self.tokens) else self.eos
        out = np.full_like(scores, -1e4)
        out[target] = 1e4
        return out


@pytest.fixture(scope="module", params=["bpe", "spm"])
def model(request: pytest.FixtureRequest) -> Iterator[Tuple[str, Any]]:
    _, path = converted(request.param)
    llm = neox_cpp.Llama(model_path=str(path), n_ctx=512, verbose=False)
    yield request.param, llm
    llm.close()


def _run(llm: Any, prompt: str, **kw: Any) -> Tuple[Dict[str, Any], List[Dict[str, Any]]]:
    whole = llm.create_completion(prompt, **kw)
    chunks = list(llm.create_completion(prompt, stream=True, **kw))
    return whole, chunks


def _streamed(chunks: List[Dict[str, Any]]) -> str:
    return "".join(c["choices"][0]["text"] for c in chunks)


def _forced_kwargs(llm: Any, prompt: str, text: str, tokens: Any = None) -> Dict[str, Any]:
    n_prompt = len(llm.tokenize(prompt.encode(), add_bos=llm._model.add_bos_token(), special=True))
    force = _Force(tokens or _split_tokens(llm, text), llm.token_eos(), n_prompt)
    return dict(max_tokens=200, temperature=0.0, logits_processor=neox_cpp.LogitsProcessorList([force]))


def test_forced_split_characters_stream_whole(model: Tuple[str, Any]) -> None:
    _, llm = model
    prompt = "吾輩は"
    whole, chunks = _run(llm, prompt, **_forced_kwargs(llm, prompt, TEXT))
    assert whole["choices"][0]["text"] == TEXT
    assert whole["choices"][0]["finish_reason"] == "stop"
    assert _streamed(chunks) == TEXT
    assert chunks[-1]["choices"][0]["finish_reason"] == "stop"
    assert all(c["choices"][0]["finish_reason"] is None for c in chunks[:-1])
    assert len(chunks) > 3  # really streamed, not one block at the end
    for c in chunks:
        assert "\ufffd" not in c["choices"][0]["text"]
        assert c["id"] == chunks[0]["id"]


@pytest.mark.parametrize("stop", ["😀", "猫で", "\u2713 e", "。😀🎉"])
def test_forced_split_characters_with_stop(model: Tuple[str, Any], stop: str) -> None:
    _, llm = model
    prompt = "吾輩は"
    whole, chunks = _run(llm, prompt, stop=[stop], **_forced_kwargs(llm, prompt, TEXT))
    expected = TEXT[: TEXT.index(stop)]
    assert whole["choices"][0]["text"] == expected
    assert _streamed(chunks) == expected
    assert chunks[-1]["choices"][0]["finish_reason"] == "stop"


def test_cut_by_max_tokens_matches(model: Tuple[str, Any]) -> None:
    """max_tokens reached inside a character (the peer then completes the character first): streamed
    and non-streamed agree and neither cuts it."""
    _, llm = model
    prompt = "吾輩は"
    kw = _forced_kwargs(llm, prompt, TEXT)
    n_cut = len(_split_tokens(llm, "日本")) + 1  # one byte of 語
    kw["max_tokens"] = n_cut
    whole, chunks = _run(llm, prompt, **kw)
    text = whole["choices"][0]["text"]
    assert text.startswith("日本") and TEXT.startswith(text) and len(text) <= 3
    assert _streamed(chunks) == text
    assert chunks[-1]["choices"][0]["finish_reason"] == "length"


# Stray bytes (a lead byte with no continuation, a lone continuation byte) before split characters, as a
# random model emits them: the non-streamed text drops only the stray bytes.
STRAY = b"\xe3" + "日本".encode() + b"\x81" + "語😀".encode() + b"\xf0\x9f" + " ok é".encode()


def test_stray_bytes(model: Tuple[str, Any]) -> None:
    _, llm = model
    prompt = "吾輩は"
    kw = _forced_kwargs(llm, prompt, "", _spell_bytes(llm, STRAY))
    expected = STRAY.decode("utf-8", errors="ignore")
    assert expected == "日本語😀 ok é"
    whole, chunks = _run(llm, prompt, **kw)
    assert whole["choices"][0]["text"] == expected
    assert _streamed(chunks) == expected


def test_peer_class_loses_characters_here(model: Tuple[str, Any]) -> None:
    """The fault this class fixes is real: the peer's own streaming loses characters on the same case."""
    _, llm = model
    base = type(llm).__mro__[1]
    assert base.__module__ == "llama_cpp.llama"
    prompt = "吾輩は"
    kw = _forced_kwargs(llm, prompt, "", _spell_bytes(llm, STRAY))
    peer_chunks = base._create_completion(llm, prompt, stream=True, **kw)
    peer_text = "".join(c["choices"][0]["text"] for c in peer_chunks)
    assert peer_text != STRAY.decode("utf-8", errors="ignore")
    ours = _streamed(list(llm.create_completion(prompt, stream=True, **kw)))
    assert ours == STRAY.decode("utf-8", "ignore")


@pytest.mark.parametrize("seed", range(6))
def test_random_byte_splits(model: Tuple[str, Any], seed: int) -> None:
    """Seeded sampling pushed towards the byte tokens of Japanese text and emoji."""
    _, llm = model
    bytes_to_tok = _byte_tokens(llm)
    wanted = set("".join(ch for ch in TEXT if ord(ch) >= 0x80).encode())
    bias = {bytes_to_tok[b]: 12.0 for b in wanted}
    kw = dict(max_tokens=48, temperature=0.8, top_k=0, top_p=1.0, min_p=0.0, seed=seed, logit_bias=bias)
    whole, chunks = _run(llm, "猫", **kw)
    text = whole["choices"][0]["text"]
    assert _streamed(chunks) == text
    assert chunks[-1]["choices"][0]["finish_reason"] == whole["choices"][0]["finish_reason"]
    assert any(ord(ch) >= 0x80 for ch in text)


def test_stream_of_chat_completion(model: Tuple[str, Any]) -> None:
    """create_chat_completion(stream=True) goes through the same fixed stream."""
    _, llm = model
    messages = [{"role": "user", "content": "こんにちは"}]
    kw = dict(max_tokens=40, temperature=0.0, seed=1)
    whole = llm.create_chat_completion(messages=messages, **kw)
    chunks = list(llm.create_chat_completion(messages=messages, stream=True, **kw))
    streamed = "".join(c["choices"][0]["delta"].get("content", "") for c in chunks)
    assert streamed == whole["choices"][0]["message"]["content"]
