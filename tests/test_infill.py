"""llama_sampler_init_infill (the engine's infill sampler) against a Python re-implementation of llama.cpp's
algorithm written here from its description (llama.h / llama-sampling.cpp):

1. softmax, sorted (logit descending). If 3 * P(EOG) * n > P(text): keep only the EOG candidates,
   renormalized.
2. else, for every ordered pair (i0, i1) of finite-logit candidates whose text(i0) is a non-empty prefix of
   text(i1): the more probable (i0 on ties) takes the other's p; the other gets p 0 and logit -inf.
3. keep EOG candidates and p >= 0.2; if no non-EOG one is left: the single candidate {EOT else EOS, logit 1};
   else renormalize, keep EOG and p >= 1 / (n_non_eog + 1), renormalize.

Vocabularies: the real GPT-NeoX-20B vocabulary (../shared/artifacts, vocab-only GGUF; token texts from HF
`tokenizers` on 20B_tokenizer.json) and the tiny sentencepiece model of tests/llm_models.py (texts from the
`sentencepiece` library). Arithmetic is float32, as in the engine.
"""

from __future__ import annotations

import ctypes
from pathlib import Path
from typing import Dict, Iterator, List, Sequence, Tuple

import numpy as np
import pytest

from models import ARTIFACTS
from neox_cpp import llama_compat as lc

F32 = np.float32
NEG_INF = F32(-np.inf)
GPTNEOX_20B = ARTIFACTS / "tokenizers" / "gpt-neox-20b"


# ---------------------------------------------------------------------------------------------------
# Reference


class Cand:
    def __init__(self, tid: int, logit: float) -> None:
        self.id, self.logit, self.p = tid, F32(logit), F32(0.0)


def infill_ref(
    cands: List[Cand], text: Dict[int, bytes], eog: set, eot: int, eos: int
) -> Tuple[List[Tuple[int, float, float]], str]:
    """The algorithm on a copy of the candidates; returns the kept (id, logit, p) and the deciding rule."""
    d = sorted((Cand(c.id, float(c.logit)) for c in cands), key=lambda c: (-float(c.logit), c.id))
    m = d[0].logit
    total = F32(0.0)
    for c in d:
        c.p = F32(np.exp(F32(c.logit - m)))
        total = F32(total + c.p)
    for c in d:
        c.p = F32(c.p / total)

    p_txt, p_eog = F32(0.0), F32(0.0)
    for c in d:
        if c.id in eog:
            p_eog = F32(p_eog + c.p)
        else:
            p_txt = F32(p_txt + c.p)
    if F32(F32(3.0) * p_eog * F32(len(d))) > p_txt:
        kept = [c for c in d if c.id in eog]
        s = F32(0.0)
        for c in kept:
            s = F32(s + c.p)
        return [(c.id, float(c.logit), float(F32(c.p / s))) for c in kept], "eog"

    merged = False
    for i0 in range(len(d)):
        for i1 in range(len(d)):
            if d[i0].logit == NEG_INF:
                break
            if i0 == i1 or d[i1].logit == NEG_INF:
                continue
            t0, t1 = text[d[i0].id], text[d[i1].id]
            if len(t0) > 0 and t1.startswith(t0):
                dst, src = (i1, i0) if d[i1].p > d[i0].p else (i0, i1)
                d[dst].p = F32(d[dst].p + d[src].p)
                d[src].logit, d[src].p = NEG_INF, F32(0.0)
                merged = True

    def keep(arr: List[Cand], thold: F32) -> Tuple[List[Cand], int, F32]:
        out, n_txt, s = [], 0, F32(0.0)
        for c in arr:
            is_eog = c.id in eog
            if not is_eog and c.p < thold:
                continue
            n_txt += 0 if is_eog else 1
            s = F32(s + c.p)
            out.append(c)
        return out, n_txt, s

    kept, n_txt, s = keep(d, F32(0.2))
    if n_txt == 0:
        # in place: the first slot is the first kept candidate (or the old first one); id and logit change
        first = kept[0] if kept else d[0]
        return [(eot if eot >= 0 else eos, 1.0, float(first.p))], "single-eot"
    for c in kept:
        c.p = F32(c.p / s)
    kept, _, s = keep(kept, F32(1.0 / (n_txt + 1)))
    return [(c.id, float(c.logit), float(F32(c.p / s))) for c in kept], "merged" if merged else "thresholds"


# ---------------------------------------------------------------------------------------------------
# Vocabularies: (vocab handle, token text of every id used, EOG ids, eot, eos, candidate pool)


class Vocab:
    def __init__(self, handle: int, text: Dict[int, bytes], eog: set, eot: int, eos: int, path: Path) -> None:
        self.handle, self.text, self.eog, self.eot, self.eos = handle, text, eog, eot, eos
        self.path = path
        self.families: Dict[Tuple[int, int], List[List[int]]] = {}


def _bytes_to_unicode() -> Dict[str, int]:
    keep = list(range(ord("!"), ord("~") + 1)) + list(range(0xA1, 0xAC + 1)) + list(range(0xAE, 0xFF + 1))
    table = {b: chr(b) for b in keep}
    extra = 0
    for b in range(256):
        if b not in table:
            table[b] = chr(256 + extra)
            extra += 1
    return {ch: b for b, ch in table.items()}


def _load(path: Path) -> int:
    p = lc.llama_model_default_params()
    p.vocab_only = True
    model = lc.llama_model_load_from_file(str(path).encode(), p)
    assert model, f"could not load {path}"
    return model


@pytest.fixture(scope="module", params=["gpt-neox-20b", "spm"])
def vocab(request: pytest.FixtureRequest) -> Iterator[Vocab]:
    if request.param == "gpt-neox-20b":
        gguf = GPTNEOX_20B / "ggml-vocab-gpt-neox.gguf"
        if not gguf.is_file():
            pytest.skip("ggml-vocab-gpt-neox.gguf not available")
        from tokenizers import Tokenizer

        tok = Tokenizer.from_file(str(GPTNEOX_20B / "20B_tokenizer.json"))
        dec = _bytes_to_unicode()
        added = set(tok.get_added_tokens_decoder().keys())
        n_model = tok.get_vocab_size(with_added_tokens=False)
        text = {i: bytes(dec[ch] for ch in tok.id_to_token(i)) for i in range(n_model) if i not in added}
        eos = tok.token_to_id("<|endoftext|>")
        text[eos] = b""  # a control token: no text without special
        eog, eot = {eos}, -1
        model = _load(gguf)
    else:
        import sentencepiece as spm
        from llm_models import converted

        hf_dir, gguf = converted("spm")
        sp = spm.SentencePieceProcessor(model_file=str(hf_dir / "spiece.model"))
        text = {}
        for i in range(sp.get_piece_size()):
            if sp.is_control(i) or sp.is_unknown(i) or sp.is_unused(i) or sp.is_byte(i):
                continue
            text[i] = sp.id_to_piece(i).replace("\u2581", " ").encode("utf-8")
        eos = sp.piece_to_id("</s>")
        text[eos] = b""
        eog, eot = {eos}, -1
        model = _load(gguf)
    v = lc.llama_model_get_vocab(model)
    # what the reference assumes about the vocabulary is what the engine reads from the file
    assert lc.llama_vocab_eos(v) == eos and lc.llama_vocab_eot(v) == eot
    yield Vocab(v, text, eog, eot, eos, Path(gguf))
    lc.llama_model_free(model)


def _piece(v: int, tok: int) -> bytes:
    buf = ctypes.create_string_buffer(256)
    n = lc.llama_token_to_piece(v, tok, buf, 256, 0, False)
    return buf.raw[:n]


def _prefix_families(voc: Vocab, n_fam: int, min_ext: int = 3) -> List[List[int]]:
    """Groups [short token, tokens whose text extends it...], short tokens of 1..6 bytes."""
    key = (n_fam, min_ext)
    if key not in voc.families:
        voc.families[key] = _find_families(voc, n_fam, min_ext)
    return voc.families[key]


def _find_families(voc: Vocab, n_fam: int, min_ext: int) -> List[List[int]]:
    by_text = {t: i for i, t in voc.text.items() if t}
    fams: List[List[int]] = []
    for t, i in sorted(by_text.items()):
        if not 1 <= len(t) <= 6 or not t.strip():
            continue
        ext = [j for u, j in by_text.items() if u != t and u.startswith(t) and len(u) <= len(t) + 9]
        if len(ext) >= min_ext:
            fams.append([i, *sorted(ext)[:6]])
        if len(fams) >= n_fam:
            break
    assert len(fams) == n_fam, "the vocabulary has too few prefix families"
    return fams


def _run(voc: Vocab, cands: Sequence[Tuple[int, float]]) -> List[Tuple[int, float, float]]:
    smpl = lc.llama_sampler_init_infill(voc.handle)
    assert smpl
    try:
        n = len(cands)
        buf = (lc.llama_token_data * n)()
        for k, (tid, logit) in enumerate(cands):
            buf[k].id, buf[k].logit, buf[k].p = tid, logit, 0.0
        cur = lc.llama_token_data_array(data=ctypes.cast(buf, lc.llama_token_data_p), size=n, selected=-1,
                                        sorted=False)
        lc.llama_sampler_apply(smpl, ctypes.byref(cur))
        return [(cur.data[k].id, cur.data[k].logit, cur.data[k].p) for k in range(int(cur.size))]
    finally:
        lc.llama_sampler_free(smpl)


def _check(voc: Vocab, cands: Sequence[Tuple[int, float]]) -> str:
    for tid, _ in cands:  # the reference's token texts are the engine's
        assert _piece(voc.handle, tid) == voc.text[tid], tid
        assert lc.llama_vocab_is_eog(voc.handle, tid) == (tid in voc.eog)
    got = _run(voc, cands)
    want, rule = infill_ref([Cand(t, x) for t, x in cands], voc.text, voc.eog, voc.eot, voc.eos)
    assert [g[0] for g in got] == [w[0] for w in want], rule
    np.testing.assert_allclose([g[1] for g in got], [w[1] for w in want], rtol=0, atol=0)
    np.testing.assert_allclose([g[2] for g in got], [w[2] for w in want], rtol=2e-6, atol=1e-7)
    return rule


# ---------------------------------------------------------------------------------------------------
# Tests


def test_name_and_null_vocab() -> None:
    assert lc.llama_sampler_init_infill(None) is None


def test_eog_dominant_keeps_only_eog(vocab: Vocab) -> None:
    fam = _prefix_families(vocab, 1)[0]
    cands = [(vocab.eos, 2.0)] + [(t, 1.0 - 0.1 * k) for k, t in enumerate(fam)]
    assert _check(vocab, cands) == "eog"
    got = _run(vocab, cands)
    assert [g[0] for g in got] == [vocab.eos] and got[0][2] == pytest.approx(1.0)


def test_common_prefix_merge(vocab: Vocab) -> None:
    fam = _prefix_families(vocab, 1)[0]
    # the short token is more probable: it absorbs its extensions
    # ("hel" 0.5, "hell" 0.2, "hello" 0.1 -> "hel" 0.8)
    cands = [(fam[0], 3.0)] + [(t, 2.0 - 0.2 * k) for k, t in enumerate(fam[1:])] + [(vocab.eos, -4.0)]
    assert _check(vocab, cands) == "merged"
    got = _run(vocab, cands)
    assert got[0][0] == fam[0] and got[0][2] > 0.9
    # an extension more probable than the short token takes the short token's mass instead
    cands = [(fam[1], 3.0), (fam[0], 2.5)] + [(t, 0.5) for t in fam[2:]] + [(vocab.eos, -4.0)]
    assert _check(vocab, cands) == "merged"
    assert _run(vocab, cands)[0][0] == fam[1]


def test_flat_text_gives_a_single_end_token(vocab: Vocab) -> None:
    heads: List[int] = []  # 8 tokens of equal weight (each p < 0.2), none a prefix of another
    for tid, t in sorted(vocab.text.items()):
        unrelated = all(not t.startswith(vocab.text[h]) and not vocab.text[h].startswith(t) for h in heads)
        if len(t) >= 2 and unrelated:
            heads.append(tid)
        if len(heads) == 8:
            break
    cands = [(h, 0.0) for h in heads] + [(vocab.eos, -6.0)]
    assert _check(vocab, cands) == "single-eot"
    got = _run(vocab, cands)
    assert len(got) == 1 and got[0][0] == vocab.eos and got[0][1] == 1.0


def _random_case(vocab: Vocab, seed: int) -> List[Tuple[int, float]]:
    """Candidates (id, logit) drawn from prefix families of the vocabulary, EOS often among them."""
    rng = np.random.default_rng(seed)
    fams = _prefix_families(vocab, 4)
    pool = sorted({t for f in fams for t in f})
    n = int(rng.integers(4, min(24, len(pool)) + 1))
    ids = [int(t) for t in rng.choice(pool, size=n, replace=False)]
    if rng.random() < 0.7:
        ids.append(vocab.eos)
    scale = float(rng.choice([0.3, 1.0, 2.5, 5.0]))
    logits = (rng.standard_normal(len(ids)) * scale).astype(np.float32)
    if vocab.eos in ids:
        logits[-1] = F32(logits[-1] - rng.uniform(0.0, 6.0))
    return list(zip(ids, [float(x) for x in logits]))


@pytest.mark.parametrize("seed", range(40))
def test_random_candidates(vocab: Vocab, seed: int) -> None:
    _check(vocab, _random_case(vocab, seed))


def test_every_rule_is_reached_by_the_random_cases(vocab: Vocab) -> None:
    seen = set()
    for seed in range(40):
        cands = [Cand(t, x) for t, x in _random_case(vocab, seed)]
        _, rule = infill_ref(cands, vocab.text, vocab.eog, vocab.eot, vocab.eos)
        seen.add(rule)
    assert {"eog", "merged", "single-eot"} <= seen, seen


def test_in_a_chain_after_top_k(vocab: Vocab) -> None:
    """As meant: top-k then infill then greedy; the chosen token is the reference's most probable one."""
    fam = _prefix_families(vocab, 1)[0]
    chain = lc.llama_sampler_chain_init(lc.llama_sampler_chain_default_params())
    try:
        lc.llama_sampler_chain_add(chain, lc.llama_sampler_init_top_k(5))
        lc.llama_sampler_chain_add(chain, lc.llama_sampler_init_infill(vocab.handle))
        cands = [(fam[1], 2.0), (fam[0], 1.9)] + [(t, 1.0) for t in fam[2:]] + [(vocab.eos, -3.0)]
        buf = (lc.llama_token_data * len(cands))()
        for k, (tid, logit) in enumerate(cands):
            buf[k].id, buf[k].logit = tid, logit
        cur = lc.llama_token_data_array(data=ctypes.cast(buf, lc.llama_token_data_p), size=len(cands),
                                        selected=-1, sorted=False)
        lc.llama_sampler_apply(chain, ctypes.byref(cur))
        top5 = sorted(cands, key=lambda c: (-c[1], c[0]))[:5]
        want, _ = infill_ref([Cand(t, x) for t, x in top5], vocab.text, vocab.eog, vocab.eot, vocab.eos)
        assert [cur.data[k].id for k in range(int(cur.size))] == [w[0] for w in want]
    finally:
        lc.llama_sampler_free(chain)


_PEER_INFILL = r"""
import ctypes, json, sys
import llama_cpp.llama_cpp as L
a = json.loads(sys.stdin.read())
p = L.llama_model_default_params(); p.vocab_only = True
model = L.llama_model_load_from_file(a["path"].encode(), p)
vocab = L.llama_model_get_vocab(model)
out = []
for case in a["cases"]:
    smpl = L.llama_sampler_init_infill(vocab)
    n = len(case)
    buf = (L.llama_token_data * n)()
    for k, (tid, logit) in enumerate(case):
        buf[k].id, buf[k].logit, buf[k].p = tid, logit, 0.0
    cur = L.llama_token_data_array(data=ctypes.cast(buf, L.llama_token_data_p), size=n, selected=-1,
                                   sorted=False)
    L.llama_sampler_apply(smpl, ctypes.byref(cur))
    out.append([[cur.data[k].id, cur.data[k].logit, cur.data[k].p] for k in range(cur.size)])
    L.llama_sampler_free(smpl)
print("@@infill " + json.dumps(out), flush=True)
"""


def _random_cases(voc: Vocab, n_cases: int) -> List[List[Tuple[int, float]]]:
    return [_random_case(voc, 1000 + seed) for seed in range(n_cases)]


def test_matches_llama_cpp(vocab: Vocab) -> None:
    """llama.cpp's own infill sampler (the peer) on the same vocabulary file and candidates."""
    import json
    import os
    import subprocess

    from peer import require_peer

    py = require_peer()
    gguf = vocab.path
    cases = _random_cases(vocab, 60)
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "LLAMA_CPP_LIB_PATH")}
    res = subprocess.run([str(py), "-c", _PEER_INFILL], input=json.dumps({"path": str(gguf), "cases": cases}),
                         capture_output=True, text=True, env=env, timeout=300, check=False)
    line = next((x for x in res.stdout.splitlines() if x.startswith("@@infill ")), None)
    assert line is not None, (res.returncode, res.stderr[-3000:])
    theirs = json.loads(line[len("@@infill "):])
    rules = set()
    for case, want in zip(cases, theirs):
        got = _run(vocab, case)
        assert [g[0] for g in got] == [w[0] for w in want], case
        np.testing.assert_allclose([g[1] for g in got], [w[1] for w in want], rtol=0, atol=0)
        np.testing.assert_allclose([g[2] for g in got], [w[2] for w in want], rtol=2e-6, atol=1e-7)
        rules.add(infill_ref([Cand(t, x) for t, x in case], vocab.text, vocab.eog, vocab.eot, vocab.eos)[1])
    assert {"eog", "merged", "single-eot"} <= rules, rules
