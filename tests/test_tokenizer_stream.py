"""Detokenization through llama-cpp-python's ``Llama`` on the engine is UTF-8 safe.

On the tiny sentencepiece model of tests/llm_models.py (unigram, byte fallback, <NL>, 1000 pieces, so
most kanji and every emoji fall back to byte pieces): the C function behind ``llama_token_to_piece``
returns the raw byte of a byte piece (a partial UTF-8 sequence), ``Llama.tokenize`` matches
sentencepiece, ``Llama.detokenize(tokens, prev_tokens=...)`` gives the text back at every split point, and
a streamed completion (tokens forced to the encoding of a known text) never emits part of a character:
its chunks join to exactly that text. References: sentencepiece's encode/decode and Python's incremental
UTF-8 decoder.
"""

from __future__ import annotations

import codecs
import ctypes
from typing import Any, Iterator, List, Tuple

import numpy as np
import pytest

sentencepiece = pytest.importorskip("sentencepiece")

from llm_models import converted  # noqa: E402

TEXTS = [
    "吾輩は猫である。名前はまだ無い。",
    "😀👍🏽 👨‍👩‍👧 🇯🇵 emoji と 絵文字",
    "𠮷野家で鰻を食べた。<NL>次の行 ﾃｽﾄ Ωμέγα ﬁ",
    "combining: e\u0301 \u304b\u3099 and CJK Ext B: \U00020000\U0002A6D6",
]


@pytest.fixture(scope="module")
def spm_llama() -> Iterator[Tuple[Any, Any]]:
    hf_dir, gguf_path = converted("spm")
    from neox_cpp import Llama

    llm = Llama(model_path=str(gguf_path), n_ctx=256, n_batch=64, verbose=False, seed=1)
    sp = sentencepiece.SentencePieceProcessor(model_file=str(hf_dir / "spiece.model"))
    yield llm, sp
    llm.close()


def _c_piece(llm: Any, token: int, size: int = 64, special: bool = False) -> Tuple[int, bytes]:
    """gptneox_token_to_piece through llama_compat's llama_token_to_piece: (return value, bytes)."""
    from neox_cpp import llama_compat

    buf = ctypes.create_string_buffer(max(1, size))
    n = llama_compat.llama_token_to_piece(llm._model.vocab, token, buf, size, 0, special)
    return n, buf.raw[:max(0, n)]


def test_tokenize_matches_sentencepiece(spm_llama: Tuple[Any, Any]) -> None:
    llm, sp = spm_llama
    for text in TEXTS:
        ours = llm.tokenize(text.encode("utf-8"), add_bos=False, special=False)
        assert ours == sp.encode(text), text


def test_byte_pieces_are_raw_bytes(spm_llama: Tuple[Any, Any]) -> None:
    llm, sp = spm_llama
    seen = 0
    for text in TEXTS:
        for t in sp.encode(text):
            n, raw = _c_piece(llm, t)
            if sp.is_byte(t):
                seen += 1
                want = bytes([int(sp.id_to_piece(t)[3:5], 16)])
                assert (n, raw) == (1, want), f"byte piece {sp.id_to_piece(t)}: {n} {raw!r}"
            else:
                assert n >= 0 and raw == sp.id_to_piece(t).replace("\u2581", " ").encode("utf-8")
    assert seen >= 20, "the texts must exercise byte fallback"
    # partial UTF-8 sequences are bytes, not U+FFFD: the three byte pieces of a character rebuild it
    ids = sp.encode("𠮷")
    assert all(sp.is_byte(t) for t in ids) and len(ids) == 4
    assert b"".join(_c_piece(llm, t)[1] for t in ids) == "𠮷".encode()


def test_token_to_piece_buffer_protocol(spm_llama: Tuple[Any, Any]) -> None:
    llm, sp = spm_llama
    longest = max(range(sp.get_piece_size()), key=lambda i: len(sp.id_to_piece(i).encode("utf-8"))
                  if sp.is_unknown(i) is False and not sp.is_control(i) and not sp.is_byte(i) else 0)
    want = sp.id_to_piece(longest).replace("\u2581", " ").encode("utf-8")
    assert len(want) >= 2
    assert _c_piece(llm, longest, size=0)[0] == -len(want)
    assert _c_piece(llm, longest, size=len(want) - 1)[0] == -len(want)
    assert _c_piece(llm, longest, size=len(want)) == (len(want), want)
    # control tokens: nothing unless special
    eos = sp.eos_id()
    assert _c_piece(llm, eos)[0] == 0
    assert _c_piece(llm, eos, special=True) == (len(b"</s>"), b"</s>")


def test_detokenize_with_prev_tokens(spm_llama: Tuple[Any, Any]) -> None:
    llm, sp = spm_llama
    for text in TEXTS:
        ids = sp.encode(text)
        text = sp.decode(ids)  # the model normalizes (NFKC): its text is sentencepiece's decode
        whole = llm.detokenize(ids)
        assert whole.decode("utf-8") == text
        for k in range(len(ids) + 1):
            head = llm.detokenize(ids[:k])
            tail = llm.detokenize(ids[k:], prev_tokens=ids[:k])
            assert head + tail == whole, f"split at {k} of {text!r}"
        # token by token, as a stream: an incremental decoder never sees an invalid sequence and every
        # prefix it releases is a prefix of the text
        dec = codecs.getincrementaldecoder("utf-8")(errors="strict")
        out = ""
        prev: List[int] = []
        for t in ids:
            out += dec.decode(llm.detokenize([t], prev_tokens=prev))
            prev.append(t)
            assert text.startswith(out)
        out += dec.decode(b"", final=True)
        assert out == text


def test_stream_never_splits_a_character(spm_llama: Tuple[Any, Any]) -> None:
    llm, sp = spm_llama
    prompt = "吾輩は"
    prompt_ids = llm.tokenize(prompt.encode("utf-8"), add_bos=False, special=False)
    for text in TEXTS:
        target = sp.encode(text)
        text = sp.decode(target)

        def force(input_ids: np.ndarray, scores: np.ndarray, target: List[int] = target) -> np.ndarray:
            # teacher forcing: only the next token of `target` (then </s>) may be picked
            i = len(input_ids) - len(prompt_ids)
            out = np.full_like(scores, -1e30)
            out[target[i] if i < len(target) else sp.eos_id()] = 0.0
            return out

        chunks = list(llm.create_completion(prompt, max_tokens=len(target), stream=True, temperature=0.0,
                                            logits_processor=[force]))
        texts = [c["choices"][0]["text"] for c in chunks]
        assert len(texts) > 3, "streamed in several chunks"
        assert "".join(texts) == text, f"{texts!r}"
        assert all("\ufffd" not in t for t in texts)
