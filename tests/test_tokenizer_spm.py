"""Sentencepiece tokenizers in the engine vs the sentencepiece library: id-for-id on >= 20000 generated
strings per tokenizer, and decode(encode(s)) equal to sentencepiece's decode.

Tokenizers: unigram with byte fallback and <NL> (rinna-like: no dummy prefix, extra whitespace kept) with
identity and nmt_nfkc normalization, a sentencepiece BPE (dummy prefix, whitespace collapsed, nmt_nfkc),
and rinna's real google_sp.model (unigram, nmt_nfkc charsmap, no byte fallback)."""

from __future__ import annotations

import json
import random
from pathlib import Path
from typing import Dict, Iterator, List, Tuple

import pytest

sentencepiece = pytest.importorskip("sentencepiece")

from test_tokenizer_support import (  # noqa: E402
    RINNA_GPT2_SP,
    SPECIALS,
    Engine,
    corpus,
    hf_dir_for,
    long_texts,
    train_spm,
    write_vocab_gguf,
)

KINDS = ["unigram-identity", "unigram-nfkc", "unigram-nfkc-prefix", "unigram-nosplit-ws", "bpe-nfkc",
         "rinna-gpt2-real"]


def _hf_dir(kind: str) -> Path:
    if kind == "unigram-identity":
        return train_spm("unigram", "identity")
    if kind == "unigram-nfkc":
        return train_spm("unigram", "nmt_nfkc")
    if kind == "unigram-nfkc-prefix":  # the common sentencepiece setup
        return train_spm("unigram", "nmt_nfkc", add_dummy_prefix=True, remove_extra_whitespaces=True)
    if kind == "unigram-nosplit-ws":  # pieces hold U+2581 inside: the engine may not cut there
        return train_spm("unigram", "identity", split_by_whitespace=False)
    if kind == "bpe-nfkc":
        return train_spm("bpe", "nmt_nfkc", add_dummy_prefix=True, remove_extra_whitespaces=True)
    if not RINNA_GPT2_SP.is_file():
        pytest.skip("rinna google_sp.model not available")
    return hf_dir_for(RINNA_GPT2_SP, "spiece.model")


_ENGINES: Dict[str, Tuple[Engine, object]] = {}


@pytest.fixture(params=KINDS)
def pair(request: pytest.FixtureRequest,
         tmp_path_factory: pytest.TempPathFactory) -> Iterator[Tuple[Engine, object]]:
    kind = request.param
    if kind not in _ENGINES:
        d = _hf_dir(kind)
        gguf_path = write_vocab_gguf(d, tmp_path_factory.mktemp("spm") / f"{kind}.gguf")
        ref = sentencepiece.SentencePieceProcessor(model_file=str(d / "spiece.model"))
        _ENGINES[kind] = (Engine(gguf_path), ref)
    yield _ENGINES[kind]


def test_corpus_ids_and_round_trip(pair: Tuple[Engine, object]) -> None:
    eng, sp = pair
    strings = corpus(seed=1234)
    assert len(strings) >= 20000
    bad_ids: List[str] = []
    bad_text: List[str] = []
    for s in strings:
        ours = eng.encode(s)
        ref = sp.encode(s)  # type: ignore[attr-defined]
        if ours != ref:
            bad_ids.append(f"{s[:60]!r}: ours {ours[:16]} ref {ref[:16]}")
            continue
        text = eng.decode(ours).decode("utf-8", errors="replace")
        if text != sp.decode(ref):  # type: ignore[attr-defined]
            bad_text.append(f"{s[:60]!r}: ours {text[:60]!r}")
    assert not bad_ids, f"{len(bad_ids)}/{len(strings)} differ:\n" + "\n".join(bad_ids[:10])
    assert not bad_text, f"{len(bad_text)}/{len(strings)} decode differently:\n" + "\n".join(bad_text[:10])


def test_long_texts(pair: Tuple[Engine, object]) -> None:
    """Whole paragraphs and pages (2k-20k characters) id for id: the engine solves long unigram lattices
    in chunks, and a chunk boundary must never change the result. (Past ~40k characters, where path
    scores pass ~1e5, sentencepiece 0.2.3 and a float re-computation of its published Viterbi disagree
    on a few near-ties; the engine follows the published algorithm. Not covered here.)"""
    eng, sp = pair
    bad: List[str] = []
    texts = long_texts(seed=77)
    for s in texts:
        ours = eng.encode(s)
        ref = sp.encode(s)  # type: ignore[attr-defined]
        if ours != ref:
            i = next((k for k, (a, b) in enumerate(zip(ours, ref)) if a != b), min(len(ours), len(ref)))
            bad.append(f"len {len(s)}: first difference at token {i}: "
                       f"ours {ours[i:i + 8]} ref {ref[i:i + 8]}")
    assert not bad, f"{len(bad)}/{len(texts)} differ:\n" + "\n".join(bad[:10])


def test_parse_special_splits_on_control_pieces(pair: Tuple[Engine, object]) -> None:
    """parse_special=True: control pieces written in the text become their ids; the text between them is
    encoded by sentencepiece piece by piece."""
    eng, sp = pair
    controls = {sp.id_to_piece(i): i for i in range(sp.get_piece_size())  # type: ignore[attr-defined]
                if sp.is_control(i) or sp.is_unknown(i)}  # type: ignore[attr-defined]

    def reference(s: str) -> List[int]:
        out: List[int] = []
        start = i = 0
        while i < len(s):
            match = max((c for c in controls if s.startswith(c, i)), key=len, default=None)
            if match is None:
                i += 1
                continue
            if i > start:
                out += sp.encode(s[start:i])  # type: ignore[attr-defined]
            out.append(controls[match])
            i += len(match)
            start = i
        if start < len(s):
            out += sp.encode(s[start:])  # type: ignore[attr-defined]
        return out

    strings = [s for s in corpus(seed=99, n=3000) if any(c in s for c in controls)]
    strings += ["</s>", "<s>x</s>", "a</s></s>b", "<unk>", "<NL></s>"]
    for s in strings:
        assert eng.encode(s, parse_special=True) == reference(s), repr(s)
        assert eng.encode(s, parse_special=False) == sp.encode(s), repr(s)  # type: ignore[attr-defined]


def test_invalid_utf8_does_not_crash(pair: Tuple[Engine, object]) -> None:
    eng, sp = pair
    rng = random.Random(7)
    for _ in range(2000):
        data = bytes(rng.randrange(256) for _ in range(rng.randint(1, 40)))
        ids = eng.encode(data)
        assert all(0 <= t < eng.n_tokens() for t in ids)
        eng.decode(ids)
        try:
            ref = sp.encode(data)  # type: ignore[attr-defined]
        except Exception:  # noqa: BLE001 - the binding may refuse bytes
            continue
        assert ids == ref, data


def test_piece_concatenation_is_detokenize(pair: Tuple[Engine, object]) -> None:
    """Streaming: the bytes of each token, concatenated, are the detokenized text (no leading space is
    stripped for these models, or only the dummy prefix of the first piece)."""
    eng, sp = pair
    for s in corpus(seed=5, n=500):
        ids = eng.encode(s)
        joined = b"".join(eng.piece(t) for t in ids)
        full = eng.decode(ids)
        assert joined == full or (joined.startswith(b" ") and joined[1:] == full), repr(s)


def test_rinna_like_special_tokens(tmp_path: Path) -> None:
    d = train_spm("unigram", "identity")
    eng = Engine(write_vocab_gguf(d, tmp_path / "v.gguf"))
    sp = sentencepiece.SentencePieceProcessor(model_file=str(d / "spiece.model"))
    assert eng.bos() == sp.piece_to_id("<s>") == 2
    assert eng.eos() == sp.piece_to_id("</s>") == 3
    assert eng.pad() == 0 and eng.unk() == 1
    assert not eng.get_add_bos() and not eng.get_add_eos()
    nl = sp.piece_to_id("<NL>")
    assert eng.nl() == nl
    assert eng.encode("<NL>") == [nl] == sp.encode("<NL>")
    prompt = "ユーザー: こんにちは<NL>システム: "
    assert eng.encode(prompt, add_special=True) == sp.encode(prompt)
    assert eng.encode("</s>", parse_special=True) == [3]
    assert eng.encode("</s>", parse_special=False) == sp.encode("</s>")
    assert eng.decode([3]) == b"" and eng.decode([3], unparse_special=True) == b"</s>"
    # byte fallback: a character outside the vocabulary becomes its UTF-8 bytes
    ids = eng.encode("😀")
    assert [sp.id_to_piece(i) for i in ids] == ["<0xF0>", "<0x9F>", "<0x98>", "<0x80>"]
    assert eng.decode(ids) == "😀".encode()
    assert eng.piece(ids[0]) == b"\xf0"


def test_rinna_gpt2_expected_encodings(tmp_path: Path) -> None:
    exp = RINNA_GPT2_SP.parent / "expected_encodings.json"
    if not exp.is_file():
        pytest.skip("expected_encodings.json not available")
    eng = Engine(write_vocab_gguf(hf_dir_for(RINNA_GPT2_SP, "spiece.model"), tmp_path / "g.gguf"))
    cases = json.loads(exp.read_text(encoding="utf-8"))["cases"]
    for c in cases:
        assert eng.encode(c["text"]) == c["ids"], c["text"][:40]


def test_specials_list_is_covered() -> None:
    assert "<NL>" in SPECIALS and "</s>" in SPECIALS
