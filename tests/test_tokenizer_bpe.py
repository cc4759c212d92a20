"""Byte-level BPE in the engine vs HF `tokenizers` (encode(add_special_tokens=False)): id-for-id on >= 20000
generated strings per tokenizer and decode(encode(s)) equal to Tokenizer.decode.

Tokenizers: GPT-NeoX-20B's tokenizer.json converted with add_tokenizer, llama.cpp's own
ggml-vocab-gpt-neox.gguf (no neox_cpp keys), and a byte-level BPE trained here (NFC, space-run added
tokens)."""

from __future__ import annotations

import json
import random
import unicodedata
from pathlib import Path
from typing import Dict, Iterator, List, Tuple

import pytest

tokenizers = pytest.importorskip("tokenizers")

from test_tokenizer_support import (  # noqa: E402
    NEOX_GGUF,
    NEOX_JSON,
    Engine,
    corpus,
    hf_dir_for,
    train_bytelevel_bpe,
    write_vocab_gguf,
)

KINDS = ["neox20b-converted", "neox20b-llamacpp-gguf", "trained-bytelevel"]
_ENGINES: Dict[str, Tuple[Engine, object]] = {}


def _make(kind: str, tmp: Path) -> Tuple[Engine, object]:
    Tokenizer = tokenizers.Tokenizer
    if kind == "trained-bytelevel":
        d = train_bytelevel_bpe()
        return Engine(write_vocab_gguf(d, tmp / "bb.gguf")), Tokenizer.from_file(str(d / "tokenizer.json"))
    if not NEOX_JSON.is_file():
        pytest.skip("20B_tokenizer.json not available")
    ref = Tokenizer.from_file(str(NEOX_JSON))
    if kind == "neox20b-converted":
        d = hf_dir_for(NEOX_JSON, "tokenizer.json")
        return Engine(write_vocab_gguf(d, tmp / "neox.gguf", n_vocab=50432)), ref
    if not NEOX_GGUF.is_file():
        pytest.skip("ggml-vocab-gpt-neox.gguf not available")
    return Engine(NEOX_GGUF), ref


@pytest.fixture(params=KINDS)
def pair(request: pytest.FixtureRequest,
         tmp_path_factory: pytest.TempPathFactory) -> Iterator[Tuple[Engine, object]]:
    if request.param not in _ENGINES:
        _ENGINES[request.param] = _make(request.param, tmp_path_factory.mktemp("bpe"))
    yield _ENGINES[request.param]


def test_corpus_ids_and_round_trip(pair: Tuple[Engine, object]) -> None:
    eng, tok = pair
    strings = corpus(seed=4321)
    assert len(strings) >= 20000
    bad_ids: List[str] = []
    bad_text: List[str] = []
    for s in strings:
        ours = eng.encode(s, parse_special=True)
        ref = tok.encode(s, add_special_tokens=False).ids  # type: ignore[attr-defined]
        if ours != ref:
            bad_ids.append(f"{s[:60]!r}: ours {ours[:16]} ref {ref[:16]}")
            continue
        text = eng.decode(ours).decode("utf-8", errors="replace")
        if text != tok.decode(ref):  # type: ignore[attr-defined]
            bad_text.append(f"{s[:60]!r}: ours {text[:60]!r}")
    assert not bad_ids, f"{len(bad_ids)}/{len(strings)} differ:\n" + "\n".join(bad_ids[:10])
    assert not bad_text, f"{len(bad_text)}/{len(strings)} decode differently:\n" + "\n".join(bad_text[:10])


def test_special_tokens_as_text(pair: Tuple[Engine, object]) -> None:
    """parse_special=False treats <|endoftext|> as text: HF with encode_special_tokens=True."""
    eng, tok = pair
    tok.encode_special_tokens = True  # type: ignore[attr-defined]
    try:
        strings = [s for s in corpus(seed=17, n=4000) if "<|" in s] + ["<|endoftext|>", "a<|padding|>b"]
        for s in strings:
            assert eng.encode(s, parse_special=False) == tok.encode(s, add_special_tokens=False).ids, repr(s)
    finally:
        tok.encode_special_tokens = False  # type: ignore[attr-defined]


def test_invalid_utf8_does_not_crash(pair: Tuple[Engine, object]) -> None:
    eng, _ = pair
    rng = random.Random(3)
    # bytes that never occur in UTF-8 (0xC0, 0xC1, 0xF5..0xFF) may have no symbol in the vocabulary
    # (20B's lacks some): they become <|endoftext|>, the unknown token
    known = [b for b in range(256) if eng.decode(eng.encode(bytes([b]))) == bytes([b])]
    assert len(known) >= 240
    for _ in range(3000):
        data = bytes(rng.randrange(256) for _ in range(rng.randint(1, 40)))
        ids = eng.encode(data, parse_special=True)
        assert all(0 <= t < eng.n_tokens() for t in ids)
        eng.decode(ids)
        data = bytes(rng.choice(known) for _ in range(rng.randint(1, 40)))
        # every known byte survives, up to NFC of the valid stretches
        back = eng.decode(eng.encode(data, parse_special=True)).decode("utf-8", errors="replace")
        assert back == unicodedata.normalize("NFC", data.decode("utf-8", errors="replace")), data


def test_streaming_pieces_are_bytes(pair: Tuple[Engine, object]) -> None:
    """Token pieces are raw bytes: concatenated they give the text, and an incremental UTF-8 decoder fed
    piece by piece emits exactly the text (no partial character)."""
    import codecs

    eng, tok = pair
    for s in corpus(seed=8, n=1000):
        ids = eng.encode(s, parse_special=True)
        dec = codecs.getincrementaldecoder("utf-8")()
        out = "".join(dec.decode(eng.piece(t)) for t in ids) + dec.decode(b"", final=True)
        plain = tok.normalizer.normalize_str(  # type: ignore[attr-defined]
            s.replace("<|endoftext|>", "").replace("<|padding|>", ""))
        assert out == eng.decode(ids).decode("utf-8") == plain


def test_neox_special_ids_and_flags(pair: Tuple[Engine, object]) -> None:
    eng, tok = pair
    eot = tok.token_to_id("<|endoftext|>")  # type: ignore[attr-defined]
    assert eng.eos() == eot == 0
    assert eng.bos() == 0
    assert not eng.get_add_bos() and not eng.get_add_eos()
    assert eng.encode("hi", add_special=True) == tok.encode("hi", add_special_tokens=False).ids
    assert eng.is_eog(0)
    assert eng.nl() == tok.token_to_id("Ċ")  # type: ignore[attr-defined]


def test_expected_encodings_and_llamacpp_cases(tmp_path: Path) -> None:
    eng, _ = _make("neox20b-converted", tmp_path)
    exp = NEOX_JSON.parent / "expected_encodings.json"
    cases = json.loads(exp.read_text(encoding="utf-8"))["cases"]
    for c in cases:
        assert eng.encode(c["text"], parse_special=True) == c["ids"], c["text"][:40]
    inp = NEOX_JSON.parent / "llama.cpp-vocab-tests" / "ggml-vocab-mpt.gguf.inp"
    out = NEOX_JSON.parent / "llama.cpp-vocab-tests" / "ggml-vocab-mpt.gguf.out"
    texts = inp.read_text(encoding="utf-8").split("\n__ggml_vocab_test__\n")
    texts[-1] = texts[-1].removesuffix("\n__ggml_vocab_test__\n").removesuffix("\n__ggml_vocab_test__")
    outs = out.read_text(encoding="utf-8").split("\n")
    n = 0
    for text, line in zip(texts, outs):
        want = [int(x) for x in line.split()]
        assert eng.encode(text, parse_special=True) == want, repr(text)
        n += 1
    assert n >= 40
