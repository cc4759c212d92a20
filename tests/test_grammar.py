"""GBNF grammar sampling through neox_cpp.Llama (llama-cpp-python's ``grammar=`` path).

Random tiny converted models (byte-level BPE and sentencepiece with byte fallback) generate under a
grammar with several seeds; every output must be in the grammar's language, checked independently with
Python's ``re`` (regular grammars) or ``json.loads`` (llama_grammar's JSON grammar).
"""

from __future__ import annotations

import ctypes
import json
import re
import sys
from pathlib import Path
from typing import Any, Dict, List

import pytest
from llm_models import converted

from neox_cpp import Llama, LlamaGrammar
from neox_cpp import _lib as _n
from neox_cpp import llama_compat as lc

# llama-cpp-python's JSON grammar, from neox_cpp's private copy of its llama_grammar module.
JSON_GBNF: str = sys.modules["neox_cpp._peer.llama_cpp.llama_grammar"].JSON_GBNF

SEEDS = [1, 2, 3, 4, 5]

# (GBNF, equivalent regular expression); finite languages, so generation always ends with EOS.
REGULAR = {
    "words": ('root ::= "yes" | "no" | "maybe so"', r"yes|no|maybe so"),
    "digits": ("root ::= [1-9] [0-9]{0,5}", r"[1-9][0-9]{0,5}"),
    "word-number": (
        'root ::= [a-z]{1,8} (" " | "-") ("0" | [1-9] [0-9]{0,2}) "."?\n',
        r"[a-z]{1,8}[ -](0|[1-9][0-9]{0,2})\.?",
    ),
    "unicode": ('root ::= ("é" | "ü" | [α-ω]){1,4} "!"', r"[éüα-ω]{1,4}!"),
    "negated": ('root ::= "\\"" [^"\\n]{0,10} "\\""', r'"[^"\n]{0,10}"'),
}

_models: Dict[str, Any] = {}


def _llm(kind: str) -> Llama:
    if kind not in _models:
        _, path = converted(kind)
        _models[kind] = Llama(model_path=str(Path(path)), n_ctx=512, verbose=False, seed=0)
    return _models[kind]


@pytest.fixture(scope="module", params=["bpe", "spm"])
def llm(request: pytest.FixtureRequest) -> Llama:
    return _llm(request.param)


@pytest.mark.parametrize("name", sorted(REGULAR))
def test_regular_grammar_output_matches(llm: Llama, name: str) -> None:
    gbnf, pattern = REGULAR[name]
    grammar = LlamaGrammar.from_string(gbnf, verbose=False)
    for seed in SEEDS:
        out = llm("Answer:", grammar=grammar, max_tokens=64, temperature=1.0, seed=seed)
        choice = out["choices"][0]
        assert choice["finish_reason"] == "stop", (seed, choice)
        assert re.fullmatch(pattern, choice["text"], flags=re.DOTALL), (seed, choice["text"])


def test_unconstrained_output_is_not_in_the_language(llm: Llama) -> None:
    """Sanity: without the grammar the random model does not produce these strings by itself."""
    out = llm("Answer:", max_tokens=16, temperature=1.0, seed=1)
    assert not re.fullmatch(REGULAR["words"][1], out["choices"][0]["text"])


def _bias(llm: Llama, texts: List[str], value: float) -> Dict[int, float]:
    """A logit bias on EOS and on the single-token texts given (a random model rarely closes a string)."""
    out = {lc.llama_vocab_eos(lc.llama_model_get_vocab(llm.model)): value}
    for t in texts:
        ids = llm.tokenize(t.encode(), add_bos=False, special=False)
        if len(ids) == 1:
            out[ids[0]] = value
    return out


def test_json_grammar_output_parses(llm: Llama) -> None:
    grammar = LlamaGrammar.from_string(JSON_GBNF, verbose=False)
    # Biases end strings and objects soon after the grammar allows it (all are masked before that).
    bias = _bias(llm, ['"', "}", "]", ","], 6.0)
    stopped = 0
    for seed in SEEDS:
        out = llm("{", grammar=grammar, max_tokens=300, temperature=0.8, seed=seed, logit_bias=bias)
        choice = out["choices"][0]
        if choice["finish_reason"] == "stop":
            stopped += 1
            value = json.loads(choice["text"])
            assert isinstance(value, dict), choice["text"]
        else:
            assert choice["text"].lstrip().startswith("{"), choice["text"]
    assert stopped >= 3


def test_chat_response_format_json_object(llm: Llama) -> None:
    bias = _bias(llm, ['"', "}", "]", ","], 6.0)
    for seed in SEEDS[:3]:
        out = llm.create_chat_completion(
            messages=[{"role": "user", "content": "hi"}],
            response_format={"type": "json_object"},
            max_tokens=200,
            temperature=0.8,
            seed=seed,
            logit_bias=bias,
        )
        choice = out["choices"][0]
        assert choice["finish_reason"] == "stop", choice
        assert isinstance(json.loads(choice["message"]["content"] or ""), dict), choice


def test_grammar_from_json_schema(llm: Llama) -> None:
    schema = {
        "type": "object",
        "properties": {"ok": {"type": "boolean"}, "n": {"type": "integer"}},
        "required": ["ok", "n"],
    }
    grammar = LlamaGrammar.from_json_schema(json.dumps(schema), verbose=False)
    bias = _bias(llm, ["}", ","], 4.0)
    stopped = 0
    for seed in SEEDS[:3]:
        out = llm("x", grammar=grammar, max_tokens=200, temperature=0.8, seed=seed, logit_bias=bias)
        choice = out["choices"][0]
        if choice["finish_reason"] != "stop":
            continue
        stopped += 1
        value = json.loads(choice["text"])
        assert set(value) == {"ok", "n"} and isinstance(value["ok"], bool) and isinstance(value["n"], int)
    assert stopped >= 1


def _piece(vocab: Any, token: int) -> bytes:
    buf = ctypes.create_string_buffer(256)
    n = lc.llama_token_to_piece(vocab, token, buf, 256, 0, False)
    return buf.raw[: max(n, 0)]


def test_allowed_tokens_brute_force(llm: Llama) -> None:
    """After each accepted token, a token is allowed iff history + its bytes is a byte prefix of a word
    of the language (computed here over the whole vocabulary); EOG iff the history is a word."""
    words = ["hello world", "help", "yes", "naïve 日本"]
    gbnf = "root ::= " + " | ".join(json.dumps(w, ensure_ascii=False) for w in words)
    lang = [w.encode() for w in words]
    vocab = lc.llama_model_get_vocab(llm.model)
    n = lc.llama_vocab_n_tokens(vocab)
    pieces = [_piece(vocab, i) for i in range(n)]
    eog = [lc.llama_vocab_is_eog(vocab, i) for i in range(n)]
    smpl = lc.llama_sampler_init_grammar(vocab, gbnf.encode(), b"root")
    assert smpl
    try:
        for word in lang:
            lc.llama_sampler_reset(smpl)
            history = b""
            # Follow the word one token at a time, always taking the longest allowed piece.
            while True:
                buf = (lc.llama_token_data * n)()
                for i in range(n):
                    buf[i].id, buf[i].logit, buf[i].p = i, 0.0, 0.0
                cur = lc.llama_token_data_array(
                    data=ctypes.cast(buf, lc.llama_token_data_p), size=n, selected=-1, sorted=False
                )
                lc.llama_sampler_apply(smpl, ctypes.byref(cur))
                for i in range(n):
                    got = buf[i].logit != float("-inf")
                    if eog[i]:
                        want = history in lang
                    else:
                        text = history + pieces[i]
                        want = bool(pieces[i]) and any(w.startswith(text) for w in lang)
                    assert got == want, (word, history, i, pieces[i])
                if history == word:
                    break
                rest = word[len(history) :]
                best = max(
                    (i for i in range(n) if not eog[i] and pieces[i] and rest.startswith(pieces[i])),
                    key=lambda i: len(pieces[i]),
                )
                lc.llama_sampler_accept(smpl, best)
                history += pieces[best]
    finally:
        lc.llama_sampler_free(smpl)


def test_bad_grammar_returns_none_with_error(llm: Llama) -> None:
    vocab = lc.llama_model_get_vocab(llm.model)
    assert lc.llama_sampler_init_grammar(vocab, b'root ::= "a"\nitem ::= [a-', b"root") is None
    err = (_n.gptneox_last_error() or b"").decode()
    assert "line 2, column" in err and "character class" in err, err
    assert lc.llama_sampler_init_grammar(vocab, b'root ::= "a"', b"nope") is None
    assert lc.llama_sampler_init_grammar(vocab, b"root ::= root [a]", b"root") is None  # left recursion
    s = lc.llama_sampler_init_grammar(vocab, b'root ::= "a"', b"root")
    assert s
    assert lc.llama_sampler_name(s) == b"grammar"
    c = lc.llama_sampler_clone(s)
    assert c
    lc.llama_sampler_free(c)
    lc.llama_sampler_free(s)


# ---------------------------------------------------------------------------------------------------
# Lazy grammar (llama_sampler_init_grammar_lazy_patterns)


def _apply_logits(smpl: Any, logits: List[float]) -> List[float]:
    n = len(logits)
    buf = (lc.llama_token_data * n)()
    for i, v in enumerate(logits):
        buf[i].id, buf[i].logit, buf[i].p = i, v, 0.0
    cur = lc.llama_token_data_array(
        data=ctypes.cast(buf, lc.llama_token_data_p), size=n, selected=-1, sorted=False
    )
    lc.llama_sampler_apply(smpl, ctypes.byref(cur))
    return [buf[i].logit for i in range(n)]


def _argmax(xs: List[float]) -> int:
    return max(range(len(xs)), key=lambda i: xs[i])


def _lazy_generate(smpl: Any, pieces: List[bytes], eog: List[bool], bias_tok: int, seed: int) -> bytes:
    """Greedy generation on seeded random logits (bias_tok boosted) after the trigger; every step the
    biased token, outside the grammar, must be masked. Returns the text up to the first EOG."""
    import random

    rng = random.Random(seed)
    n = len(pieces)
    text = b""
    for _ in range(64):
        logits = [rng.uniform(-5.0, 5.0) for _ in range(n)]
        logits[bias_tok] = 100.0
        out = _apply_logits(smpl, logits)
        assert out[bias_tok] == float("-inf")
        tok = _argmax(out)
        assert out[tok] != float("-inf")
        lc.llama_sampler_accept(smpl, tok)
        if eog[tok]:
            return text
        text += pieces[tok]
    raise AssertionError(f"no end of generation: {text!r}")


def _lazy_setup(llm: Llama) -> Any:
    vocab = lc.llama_model_get_vocab(llm.model)
    n = lc.llama_vocab_n_tokens(vocab)
    pieces = [_piece(vocab, i) for i in range(n)]
    eog = [bool(lc.llama_vocab_is_eog(vocab, i)) for i in range(n)]
    # A token outside every grammar below: letters only, no digits or brackets.
    bias_tok = next(i for i in range(n) if pieces[i].isalpha())
    return vocab, n, pieces, eog, bias_tok


def test_lazy_grammar_trigger_token(llm: Llama) -> None:
    vocab, n, pieces, eog, bias_tok = _lazy_setup(llm)
    trig = next(i for i in range(n) if pieces[i] == b"{")
    gbnf = b'root ::= "{" [0-9]{1,3} "}"'
    toks = (lc.llama_token * 1)(trig)
    smpl = lc.llama_sampler_init_grammar_lazy_patterns(vocab, gbnf, b"root", None, 0, toks, 1)
    assert smpl
    try:
        for seed in SEEDS[:3]:
            lc.llama_sampler_reset(smpl)
            # Not triggered: nothing is masked, so the biased token (outside the grammar) wins, and text
            # that the grammar rejects is accepted.
            for _ in range(3):
                logits = [0.0] * n
                logits[bias_tok] = 100.0
                out = _apply_logits(smpl, logits)
                assert out == logits
                assert _argmax(out) == bias_tok
                lc.llama_sampler_accept(smpl, bias_tok)
            lc.llama_sampler_accept(smpl, trig)  # starts the grammar, fed "{"
            text = b"{" + _lazy_generate(smpl, pieces, eog, bias_tok, seed)
            assert re.fullmatch(rb"\{[0-9]{1,3}\}", text), text
    finally:
        lc.llama_sampler_free(smpl)


def test_lazy_grammar_trigger_pattern(llm: Llama) -> None:
    vocab, n, pieces, eog, bias_tok = _lazy_setup(llm)
    gbnf = b'root ::= "<call>" [0-9]{1,3} "</call>"'
    for pattern, prefix in (
        (rb"[\s\S]*?(<call>[\s\S]*)", b"say hi "),  # fed from the capturing group
        (rb"<call>[\s\S]*", b""),  # no group: fed from the match start (the whole text)
    ):
        pats = (ctypes.c_char_p * 1)(pattern)
        smpl = lc.llama_sampler_init_grammar_lazy_patterns(vocab, gbnf, b"root", pats, 1, None, 0)
        assert smpl
        try:
            for seed in SEEDS[:3]:
                lc.llama_sampler_reset(smpl)
                before = llm.tokenize(prefix + b"<call>", add_bos=False, special=False)
                seen = b""
                for tok in before:
                    # Until the whole "<call>" is in, the pattern does not match: nothing is masked.
                    logits = [0.0] * n
                    logits[bias_tok] = 100.0
                    assert _apply_logits(smpl, logits) == logits
                    lc.llama_sampler_accept(smpl, tok)
                    seen += pieces[tok]
                assert seen == prefix + b"<call>"
                text = b"<call>" + _lazy_generate(smpl, pieces, eog, bias_tok, seed)
                assert re.fullmatch(rb"<call>[0-9]{1,3}</call>", text), text
        finally:
            lc.llama_sampler_free(smpl)
    # Lists are accepted too (llama-cpp-python callers may pass them).
    smpl = lc.llama_sampler_init_grammar_lazy_patterns(vocab, gbnf, b"root", ["<call>.*"], 1, [0], 1)
    assert smpl
    lc.llama_sampler_free(smpl)


def test_lazy_grammar_errors(llm: Llama) -> None:
    vocab = lc.llama_model_get_vocab(llm.model)
    n = lc.llama_vocab_n_tokens(vocab)
    pats = (ctypes.c_char_p * 1)(b"(<call>")
    assert (
        lc.llama_sampler_init_grammar_lazy_patterns(vocab, b'root ::= "a"', b"root", pats, 1, None, 0) is None
    )
    err = (_n.gptneox_last_error() or b"").decode()
    assert "trigger pattern" in err, err
    good = (ctypes.c_char_p * 1)(b"x.*")
    bad_gbnf = b'root ::= "a"\nitem ::= [a-'
    assert lc.llama_sampler_init_grammar_lazy_patterns(vocab, bad_gbnf, b"root", good, 1, None, 0) is None
    err = (_n.gptneox_last_error() or b"").decode()
    assert "line 2, column" in err, err
    toks = (lc.llama_token * 1)(n)
    assert (
        lc.llama_sampler_init_grammar_lazy_patterns(vocab, b'root ::= "a"', b"root", None, 0, toks, 1) is None
    )
    assert "out of range" in (_n.gptneox_last_error() or b"").decode()
    s = lc.llama_sampler_init_grammar_lazy_patterns(vocab, b'root ::= "a"', b"root", good, 1, None, 0)
    assert s
    c = lc.llama_sampler_clone(s)
    assert c
    lc.llama_sampler_free(c)
    lc.llama_sampler_free(s)
