"""Lazy grammars: llama_sampler_init_grammar_lazy (trigger words) and full generations through
llama-cpp-python's ``Llama`` on our engine with a lazy grammar sampler in its sampler chain.

llama.cpp's rule for trigger words (llama-sampling.cpp, llama_sampler_init_grammar_impl): the words become ONE
pattern ``[\\s\\S]*?(w1|w2|...)[\\s\\S]*`` with the ECMAScript specials ``.^$|()*+?[]{}\\`` of each word
backslash-escaped; the grammar starts at the word (the capturing group). Checked here against llama.cpp
itself (the peer) on the same vocabulary, and by behaviour: a word with regex specials must not be matched
by text that only a regex reading of it would match.

Full generation: ``Llama.create_completion`` builds its chain as [logits_processor (Python), penalties,
grammar, greedy]; the test puts a lazy grammar in the grammar slot (LlamaSampler.add_grammar is wrapped for
LazyGrammar objects). A logits_processor forces a planned free text that the grammar rejects, containing
the trigger, then pushes a token outside the grammar at every step: before the trigger the forced text
must come out unchanged (nothing masked), after it the output must be in the grammar's language.
"""

from __future__ import annotations

import ctypes
import json
import os
import re
import subprocess
import sys
from pathlib import Path
from typing import Any, Iterator, List, Optional, Sequence

import numpy as np
import pytest

from neox_cpp import Llama, LlamaGrammar, _compat_sampling
from neox_cpp import llama_compat as lc

INTERNALS = sys.modules["neox_cpp._peer.llama_cpp._internals"]

GBNF_CALL = 'root ::= "<call>" [0-9]{1,3} "</call>"'
GBNF_DOT = 'root ::= "a.b(" [0-9]{1,3} ")"'
GBNF_EITHER = 'root ::= ("<call>" | "a.b(") [0-9]{1,3} ";"'


class LazyGrammar(LlamaGrammar):  # type: ignore[misc]
    """A LlamaGrammar that Llama's chain builds as a lazy grammar (see _lazy_add_grammar)."""

    trigger_words: List[bytes] = []
    trigger_patterns: List[bytes] = []

    @classmethod
    def make(cls, gbnf: str, words: Sequence[bytes] = (), patterns: Sequence[bytes] = ()) -> LazyGrammar:
        g = cls(_grammar=gbnf)
        g.trigger_words, g.trigger_patterns = list(words), list(patterns)
        return g


@pytest.fixture()
def lazy_chain(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    original = INTERNALS.LlamaSampler.add_grammar

    def add_grammar(self: Any, model: Any, grammar: Any) -> None:
        if not isinstance(grammar, LazyGrammar):
            return original(self, model, grammar)
        gbnf, root = grammar._grammar.encode(), grammar._root.encode()
        if grammar.trigger_words:
            words = (ctypes.c_char_p * len(grammar.trigger_words))(*grammar.trigger_words)
            smpl = lc.llama_sampler_init_grammar_lazy(model.vocab, gbnf, root, words, len(words), None, 0)
        else:
            pats = (ctypes.c_char_p * len(grammar.trigger_patterns))(*grammar.trigger_patterns)
            smpl = lc.llama_sampler_init_grammar_lazy_patterns(
                model.vocab, gbnf, root, pats, len(pats), None, 0
            )
        assert smpl, "lazy grammar init failed"
        lc.llama_sampler_chain_add(self.sampler, smpl)

    monkeypatch.setattr(INTERNALS.LlamaSampler, "add_grammar", add_grammar)
    yield


@pytest.fixture(scope="module")
def llm(tiny_gguf: Path) -> Iterator[Llama]:
    m = Llama(model_path=str(tiny_gguf), n_ctx=128, n_batch=64, verbose=False, seed=0)
    yield m
    m.close()


def _forcing(llm: Llama, n_prompt: int, plan: List[int], push: int) -> Any:
    """logits_processor: step k < len(plan) forces plan[k]; later steps push `push` (outside the grammar)."""

    def proc(input_ids: np.ndarray, scores: np.ndarray) -> np.ndarray:
        k = len(input_ids) - n_prompt
        out = np.array(scores, copy=True)
        if k < len(plan):
            out[plan[k]] += 1000.0
        else:
            out[push] += 1000.0
        return out

    return [proc]


def _generate(llm: Llama, free: bytes, trigger: bytes, grammar: Optional[LlamaGrammar]) -> bytes:
    prompt = "Q:"
    n_prompt = len(llm.tokenize(prompt.encode(), add_bos=False, special=False))
    plan = llm.tokenize(free + trigger, add_bos=False, special=False)
    push = llm.tokenize(b"x", add_bos=False, special=False)[0]
    out = llm.create_completion(prompt, max_tokens=len(plan) + 12, temperature=0.0, grammar=grammar,
                                logits_processor=_forcing(llm, n_prompt, plan, push))
    return out["choices"][0]["text"].encode()


@pytest.mark.parametrize(
    "gbnf,free,trigger,words,patterns,after",
    [
        (GBNF_CALL, b"hello world! ", b"<call>", [b"<call>"], [], rb"<call>[0-9]{1,3}</call>"),
        (GBNF_CALL, b"hello world! ", b"<call>", [], [rb"[\s\S]*?(<call>[\s\S]*)"],
         rb"<call>[0-9]{1,3}</call>"),
        # "axb(" would wake a grammar whose trigger regex were the unescaped word "a.b("
        (GBNF_DOT, b"say axb( or ab( then ", b"a.b(", [b"zzz", b"a.b("], [], rb"a\.b\([0-9]{1,3}\)"),
    ],
)
def test_llama_generation_with_lazy_grammar(
    llm: Llama, lazy_chain: None, gbnf: str, free: bytes, trigger: bytes, words: List[bytes],
    patterns: List[bytes], after: bytes,
) -> None:
    text = _generate(llm, free, trigger, LazyGrammar.make(gbnf, words, patterns))
    assert text.startswith(free + trigger), text  # before (and up to) the trigger: free
    assert not re.fullmatch(after, free + trigger)  # ... though the grammar rejects that text
    assert re.fullmatch(after, text[len(free):]), text  # after it: the grammar's language


def test_controls_show_the_test_can_fail(llm: Llama, lazy_chain: None) -> None:
    free, trigger = b"hello world! ", b"<call>"
    # without a grammar, the pushed token follows the trigger: out of the language
    text = _generate(llm, free, trigger, None)
    assert text.startswith(free + trigger) and not re.fullmatch(rb"<call>[0-9]{1,3}</call>", text[len(free):])
    # a grammar that is not lazy masks the forced free text from the first token
    text = _generate(llm, free, trigger, LlamaGrammar.from_string(GBNF_CALL, verbose=False))
    assert not text.startswith(free), text
    assert re.fullmatch(rb"<call>[0-9]{1,3}</call>", text), text


# ---------------------------------------------------------------------------------------------------
# llama_sampler_init_grammar_lazy itself


def test_trigger_words_pattern_rule() -> None:
    pat = _compat_sampling.trigger_words_pattern([b"<call>", b"a.b(c)", b"x\\y", b"$1+[]{}^|?*-"])
    assert pat == rb"[\s\S]*?(<call>|a\.b\(c\)|x\\y|\$1\+\[\]\{\}\^\|\?\*-)[\s\S]*"
    # Python's re reads these specials as ECMAScript does: each word matches only itself
    rx = re.compile(pat)
    for text, hit in [(b"..a.b(c)..", True), (b"axb(c)", False), (b"x\\y", True), (b"xy", False),
                      (b"$1+[]{}^|?*-", True), (b"1+", False), (b"<call>", True)]:
        assert bool(rx.fullmatch(text)) == hit, text


def _masks(vocab: Any, smpl: Any, n_vocab: int, accepted: List[int]) -> List[List[int]]:
    """After each accepted token (and before the first), the ids the sampler sets to -inf."""
    out: List[List[int]] = []
    for k in range(len(accepted) + 1):
        buf = (lc.llama_token_data * n_vocab)()
        for i in range(n_vocab):
            buf[i].id, buf[i].logit = i, 0.0
        cur = lc.llama_token_data_array(data=ctypes.cast(buf, lc.llama_token_data_p), size=n_vocab,
                                        selected=-1, sorted=False)
        lc.llama_sampler_apply(smpl, ctypes.byref(cur))
        out.append([int(buf[i].id) for i in range(n_vocab) if buf[i].logit == float("-inf")])
        if k < len(accepted):
            lc.llama_sampler_accept(smpl, accepted[k])
    return out


_PEER_MASKS = r"""
import ctypes, json, sys
import llama_cpp.llama_cpp as L
a = json.loads(sys.argv[1])
p = L.llama_model_default_params(); p.vocab_only = True
model = L.llama_model_load_from_file(a["path"].encode(), p)
vocab = L.llama_model_get_vocab(model)
n = L.llama_vocab_n_tokens(vocab)
words = (ctypes.c_char_p * len(a["words"]))(*[w.encode("latin-1") for w in a["words"]])
toks = (L.llama_token * max(len(a["tokens"]), 1))(*a["tokens"])
smpl = L.llama_sampler_init_grammar_lazy(vocab, a["gbnf"].encode(), b"root", words, len(a["words"]), toks,
                                         len(a["tokens"]))
out = []
for k in range(len(a["accepted"]) + 1):
    buf = (L.llama_token_data * n)()
    for i in range(n):
        buf[i].id, buf[i].logit = i, 0.0
    cur = L.llama_token_data_array(data=ctypes.cast(buf, L.llama_token_data_p), size=n, selected=-1,
                                   sorted=False)
    L.llama_sampler_apply(smpl, ctypes.byref(cur))
    out.append([int(buf[i].id) for i in range(n) if buf[i].logit == float("-inf")])
    if k < len(a["accepted"]):
        L.llama_sampler_accept(smpl, a["accepted"][k])
print("@@masks " + json.dumps(out), flush=True)
"""


@pytest.mark.parametrize(
    "gbnf,words,text",
    [
        (GBNF_DOT, [b"a.b("], b"say axb( ab( a.b(42)"),
        (GBNF_CALL, [b"zzz", b"<call>"], b"hi <ca ll> <call>7</call>"),
        # the earliest word in the text wins, whatever its place in the list
        (GBNF_EITHER, [b"<call>", b"a.b("], b"x axb( a.b(3;"),
        (GBNF_EITHER, [b"a.b(", b"<call>"], b"hi <ca <call>12"),
    ],
)
def test_trigger_words_match_llama_cpp(llm: Llama, tiny_gguf: Path, gbnf: str, words: List[bytes],
                                       text: bytes) -> None:
    from peer import require_peer

    vocab = lc.llama_model_get_vocab(llm.model)
    n = lc.llama_vocab_n_tokens(vocab)
    accepted = [int(t) for t in llm.tokenize(text, add_bos=False, special=False)]
    arr = (ctypes.c_char_p * len(words))(*words)
    smpl = lc.llama_sampler_init_grammar_lazy(vocab, gbnf.encode(), b"root", arr, len(words), None, 0)
    assert smpl
    try:
        ours = _masks(vocab, smpl, n, accepted)
    finally:
        lc.llama_sampler_free(smpl)
    assert ours[0] == [] and any(ours), "the grammar never started"

    py = require_peer()
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "LLAMA_CPP_LIB_PATH")}
    args = json.dumps({"path": str(tiny_gguf), "gbnf": gbnf, "words": [w.decode("latin-1") for w in words],
                       "tokens": [], "accepted": accepted})
    res = subprocess.run([str(py), "-c", _PEER_MASKS, args], capture_output=True, text=True, env=env,
                         timeout=300, check=False)
    line = next((x for x in res.stdout.splitlines() if x.startswith("@@masks ")), None)
    assert line is not None, (res.returncode, res.stderr[-3000:])
    theirs = json.loads(line[len("@@masks "):])
    assert ours == theirs


def test_grammar_lazy_words_errors_and_tokens(llm: Llama) -> None:
    vocab = lc.llama_model_get_vocab(llm.model)
    # no words and no tokens: a lazy grammar that never wakes (as llama.cpp: patterns path, nothing to match)
    smpl = lc.llama_sampler_init_grammar_lazy(vocab, GBNF_CALL.encode(), b"root", None, 0, None, 0)
    assert smpl
    lc.llama_sampler_free(smpl)
    # a bad grammar is NULL (None), as for the patterns form
    words = (ctypes.c_char_p * 1)(b"<call>")
    assert lc.llama_sampler_init_grammar_lazy(vocab, b"root ::= [a-", b"root", words, 1, None, 0) is None
    # trigger tokens are passed through
    lt = llm.tokenize(b"<", add_bos=False, special=False)[0]
    toks = (lc.llama_token * 1)(lt)
    smpl = lc.llama_sampler_init_grammar_lazy(vocab, GBNF_CALL.encode(), b"root", words, 1, toks, 1)
    assert smpl
    try:
        n = lc.llama_vocab_n_tokens(vocab)
        masks = _masks(vocab, smpl, n, [lt])
        assert masks[0] == [] and len(masks[1]) > 0  # woken by the token "<" alone
    finally:
        lc.llama_sampler_free(smpl)
