"""The engine's samplers through llama-cpp-python's llama_sampler_* API (neox_cpp.llama_compat).

Each sampler is applied to random logits in a llama_token_data_array and compared with a NumPy
reference written here from llama.cpp's documented semantics (gptneox.h, "Sampling").
"""

from __future__ import annotations

import ctypes
import math
from pathlib import Path
from typing import Dict, Iterator, List, Optional, Sequence, Tuple

import numpy as np
import pytest

from neox_cpp import _compat_sampling
from neox_cpp import llama_compat as lc

N_VOCAB = 300


class Result:
    def __init__(
        self, ids: np.ndarray, logits: np.ndarray, p: np.ndarray, selected: int, is_sorted: bool
    ) -> None:
        self.ids, self.logits, self.p, self.selected, self.sorted = ids, logits, p, selected, is_sorted


def _array(logits: np.ndarray) -> Tuple[ctypes.Array, lc.llama_token_data_array]:  # type: ignore[type-arg]
    n = len(logits)
    buf = (lc.llama_token_data * n)()
    for i, v in enumerate(logits):
        buf[i].id = i
        buf[i].logit = float(v)
        buf[i].p = 0.0
    cur = lc.llama_token_data_array(
        data=ctypes.cast(buf, lc.llama_token_data_p), size=n, selected=-1, sorted=False
    )
    return buf, cur


def _read(cur: lc.llama_token_data_array) -> Result:
    n = int(cur.size)
    ids = np.array([cur.data[i].id for i in range(n)], dtype=np.int64)
    logits = np.array([cur.data[i].logit for i in range(n)], dtype=np.float32)
    p = np.array([cur.data[i].p for i in range(n)], dtype=np.float32)
    return Result(ids, logits, p, int(cur.selected), bool(cur.sorted))


def apply(smpl: int, logits: np.ndarray) -> Result:
    buf, cur = _array(logits)
    lc.llama_sampler_apply(smpl, ctypes.byref(cur))
    del buf
    return _read(cur)


@pytest.fixture()
def sampler_factory() -> Iterator[object]:
    made: List[int] = []

    def make(handle: Optional[int]) -> int:
        assert handle, "sampler init failed"
        made.append(handle)
        return handle

    yield make
    for h in made:
        lc.llama_sampler_free(h)


def random_logits(seed: int, n: int = N_VOCAB, scale: float = 3.0) -> np.ndarray:
    return (np.random.default_rng(seed).standard_normal(n) * scale).astype(np.float32)


def softmax(x: np.ndarray) -> np.ndarray:
    x = x.astype(np.float64)
    e = np.exp(x - x.max())
    return e / e.sum()


def desc_order(logits: np.ndarray) -> np.ndarray:
    """Indices by logit descending, then id ascending."""
    return np.lexsort((np.arange(len(logits)), -logits.astype(np.float64)))


SEEDS = [0, 1, 2, 3, 4]


# ---------------------------------------------------------------------------------------------------
# greedy / dist


@pytest.mark.parametrize("seed", SEEDS)
def test_greedy_selects_argmax(sampler_factory: object, seed: int) -> None:
    s = sampler_factory(lc.llama_sampler_init_greedy())  # type: ignore[operator]
    logits = random_logits(seed)
    r = apply(s, logits)
    assert r.ids[r.selected] == int(np.argmax(logits))


def _draws(smpl: int, logits: np.ndarray, n: int) -> List[int]:
    out = []
    for _ in range(n):
        r = apply(smpl, logits)
        out.append(int(r.ids[r.selected]))
    return out


def test_dist_is_reproducible_and_masks_seeds(sampler_factory: object) -> None:
    make = sampler_factory
    logits = random_logits(7, 50, 1.0)
    a = _draws(make(lc.llama_sampler_init_dist(1234)), logits, 200)  # type: ignore[operator]
    b = _draws(make(lc.llama_sampler_init_dist(1234)), logits, 200)  # type: ignore[operator]
    c = _draws(make(lc.llama_sampler_init_dist(1235)), logits, 200)  # type: ignore[operator]
    assert a == b
    assert a != c
    # 2**32 + 1234 reaches a uint32 parameter as 1234 (llama-cpp-python passes up to 2**32 and -1)
    d = _draws(make(lc.llama_sampler_init_dist(2**32 + 1234)), logits, 200)  # type: ignore[operator]
    assert d == a
    s0 = make(lc.llama_sampler_init_dist(2**32))  # type: ignore[operator]
    assert lc.llama_sampler_get_seed(s0) == 0
    rnd = make(lc.llama_sampler_init_dist(-1))  # type: ignore[operator]  # 0xFFFFFFFF: a random seed
    actual = lc.llama_sampler_get_seed(rnd)
    e = _draws(rnd, logits, 50)
    assert e == _draws(make(lc.llama_sampler_init_dist(actual)), logits, 50)  # type: ignore[operator]


def test_dist_reset_restarts_the_sequence(sampler_factory: object) -> None:
    s = sampler_factory(lc.llama_sampler_init_dist(99))  # type: ignore[operator]
    logits = random_logits(3, 40, 1.0)
    a = _draws(s, logits, 30)
    lc.llama_sampler_reset(s)
    assert _draws(s, logits, 30) == a


def _chi2_critical(df: int, z: float = 3.719) -> float:
    """Wilson-Hilferty approximation of the chi-square quantile (z = 3.719: p = 0.9999)."""
    return df * (1 - 2 / (9 * df) + z * math.sqrt(2 / (9 * df))) ** 3


def test_dist_matches_softmax_chi_square(sampler_factory: object) -> None:
    s = sampler_factory(lc.llama_sampler_init_dist(2024))  # type: ignore[operator]
    logits = random_logits(11, 12, 1.0)
    expected = softmax(logits)
    r = apply(s, logits)
    np.testing.assert_allclose(r.p, expected, rtol=1e-5)  # dist sets p = softmax
    n = 30000
    counts = np.bincount(_draws(s, logits, n), minlength=len(logits))
    chi2 = float(((counts - n * expected) ** 2 / (n * expected)).sum())
    assert chi2 < _chi2_critical(len(logits) - 1), (chi2, counts, n * expected)
    # and a wrong distribution is rejected by the same statistic (the test can fail)
    wrong = softmax(logits * 1.2)
    assert float(((counts - n * wrong) ** 2 / (n * wrong)).sum()) > _chi2_critical(len(logits) - 1)


# ---------------------------------------------------------------------------------------------------
# truncation samplers


@pytest.mark.parametrize("seed", SEEDS)
@pytest.mark.parametrize("k", [1, 5, 40, N_VOCAB + 10])
def test_top_k(sampler_factory: object, seed: int, k: int) -> None:
    s = sampler_factory(lc.llama_sampler_init_top_k(k))  # type: ignore[operator]
    logits = random_logits(seed)
    r = apply(s, logits)
    ref = desc_order(logits)[: min(k, N_VOCAB)]
    assert r.ids.tolist() == ref.tolist()
    np.testing.assert_array_equal(r.logits, logits[ref])
    assert r.sorted


def test_top_k_zero_is_a_no_op(sampler_factory: object) -> None:
    s = sampler_factory(lc.llama_sampler_init_top_k(0))  # type: ignore[operator]
    r = apply(s, random_logits(0))
    assert r.ids.tolist() == list(range(N_VOCAB))


def _top_p_ref(logits: np.ndarray, p: float, min_keep: int) -> Tuple[np.ndarray, np.ndarray, float]:
    order = desc_order(logits)
    probs = softmax(logits)[order]
    cum = np.cumsum(probs)
    last = len(order)
    for i in range(len(order)):
        if cum[i] >= p and i + 1 >= min_keep:
            last = i + 1
            break
    margin = float(np.min(np.abs(cum - p)))
    return order[:last], probs, margin


@pytest.mark.parametrize("seed", SEEDS)
@pytest.mark.parametrize("p,min_keep", [(0.5, 1), (0.9, 1), (0.95, 1), (0.05, 3)])
def test_top_p(sampler_factory: object, seed: int, p: float, min_keep: int) -> None:
    s = sampler_factory(lc.llama_sampler_init_top_p(p, min_keep))  # type: ignore[operator]
    logits = random_logits(seed)
    ref, probs, margin = _top_p_ref(logits, p, min_keep)
    assert margin > 1e-5, "reference too close to the threshold for float32: pick other logits"
    r = apply(s, logits)
    assert r.ids.tolist() == ref.tolist()
    np.testing.assert_allclose(r.p, probs[: len(ref)], rtol=1e-4, atol=1e-7)


def test_top_p_one_is_a_no_op(sampler_factory: object) -> None:
    s = sampler_factory(lc.llama_sampler_init_top_p(1.0, 1))  # type: ignore[operator]
    assert apply(s, random_logits(1)).ids.tolist() == list(range(N_VOCAB))


@pytest.mark.parametrize("seed", SEEDS)
@pytest.mark.parametrize("p", [0.01, 0.05, 0.3, 0.9])
def test_min_p(sampler_factory: object, seed: int, p: float) -> None:
    s = sampler_factory(lc.llama_sampler_init_min_p(p, 1))  # type: ignore[operator]
    logits = random_logits(seed)
    probs = softmax(logits)
    keep = np.nonzero(probs >= p * probs.max())[0]  # p_i >= p * p_max  <=>  logit_i >= max + ln p
    r = apply(s, logits)
    assert sorted(r.ids.tolist()) == keep.tolist()
    np.testing.assert_array_equal(r.logits, logits[r.ids])
    np.testing.assert_allclose(softmax(r.logits), probs[r.ids] / probs[r.ids].sum(), rtol=1e-5)


def _typical_ref(logits: np.ndarray, p: float, min_keep: int) -> Tuple[List[int], np.ndarray]:
    order = desc_order(logits)
    probs = softmax(logits)[order]
    entropy = -float(np.sum(probs * np.log(probs)))
    shifted = np.abs(-np.log(probs) - entropy)
    idx = np.lexsort((np.arange(len(order)), shifted))
    cum = np.cumsum(probs[idx])
    last = len(idx)
    for i in range(len(idx)):
        if cum[i] > p and i + 1 >= min_keep:
            last = i + 1
            break
    return order[idx[:last]].tolist(), probs[idx[:last]]


@pytest.mark.parametrize("seed", SEEDS)
@pytest.mark.parametrize("p", [0.2, 0.5, 0.9])
def test_typical(sampler_factory: object, seed: int, p: float) -> None:
    s = sampler_factory(lc.llama_sampler_init_typical(p, 1))  # type: ignore[operator]
    logits = random_logits(seed)
    ids, probs = _typical_ref(logits, p, 1)
    r = apply(s, logits)
    assert r.ids.tolist() == ids
    np.testing.assert_allclose(r.p, probs, rtol=1e-4, atol=1e-7)


@pytest.mark.parametrize("t", [0.5, 1.0, 1.7])
def test_temp_scales_logits(sampler_factory: object, t: float) -> None:
    s = sampler_factory(lc.llama_sampler_init_temp(t))  # type: ignore[operator]
    logits = random_logits(5)
    r = apply(s, logits)
    assert r.ids.tolist() == list(range(N_VOCAB))
    np.testing.assert_allclose(r.logits, logits / np.float32(t), rtol=1e-6)
    np.testing.assert_allclose(softmax(r.logits), softmax(logits.astype(np.float64) / t), rtol=1e-5)


def test_temp_zero_keeps_only_the_argmax(sampler_factory: object) -> None:
    s = sampler_factory(lc.llama_sampler_init_temp(0.0))  # type: ignore[operator]
    logits = random_logits(6)
    r = apply(s, logits)
    finite = np.isfinite(r.logits)
    assert finite.sum() == 1 and r.ids[finite][0] == int(np.argmax(logits))


@pytest.mark.parametrize("seed", SEEDS[:3])
@pytest.mark.parametrize("t,delta,exponent", [(1.0, 0.5, 1.0), (0.8, 0.3, 2.0), (1.2, 1.5, 0.5)])
def test_temp_ext_dynamic_temperature(
    sampler_factory: object, seed: int, t: float, delta: float, exponent: float
) -> None:
    s = sampler_factory(lc.llama_sampler_init_temp_ext(t, delta, exponent))  # type: ignore[operator]
    logits = random_logits(seed, 100, 2.0)
    probs = softmax(logits)
    entropy = -float(np.sum(probs * np.log(probs)))
    lo, hi = max(0.0, t - delta), t + delta
    dyn = lo + (hi - lo) * (entropy / math.log(len(logits))) ** exponent
    order = desc_order(logits)
    r = apply(s, logits)
    assert r.ids.tolist() == order.tolist()
    np.testing.assert_allclose(r.p, softmax(logits[order].astype(np.float64) / dyn), rtol=1e-4, atol=1e-7)


def test_temp_ext_without_delta_is_temp(sampler_factory: object) -> None:
    s = sampler_factory(lc.llama_sampler_init_temp_ext(0.7, 0.0, 1.0))  # type: ignore[operator]
    logits = random_logits(8)
    np.testing.assert_allclose(apply(s, logits).logits, logits / np.float32(0.7), rtol=1e-6)


@pytest.mark.parametrize("seed", SEEDS)
@pytest.mark.parametrize("threshold", [0.02, 0.05, 0.1])
def test_xtc_removes_all_top_choices_but_the_last(
    sampler_factory: object, seed: int, threshold: float
) -> None:
    s = sampler_factory(lc.llama_sampler_init_xtc(1.0, threshold, 1, 42))  # type: ignore[operator]
    logits = random_logits(seed, 60, 1.5)
    order = desc_order(logits)
    probs = softmax(logits)[order]
    above = int(np.sum(probs >= threshold))
    expected = order[above - 1 :] if above >= 2 else order
    r = apply(s, logits)
    assert r.ids.tolist() == expected.tolist()


def test_xtc_probability_zero_is_a_no_op(sampler_factory: object) -> None:
    s = sampler_factory(lc.llama_sampler_init_xtc(0.0, 0.05, 1, 42))  # type: ignore[operator]
    assert apply(s, random_logits(1)).ids.tolist() == list(range(N_VOCAB))


@pytest.mark.parametrize("seed", SEEDS)
@pytest.mark.parametrize("n", [0.5, 1.0, 2.0])
def test_top_n_sigma(sampler_factory: object, seed: int, n: float) -> None:
    s = sampler_factory(lc.llama_sampler_init_top_n_sigma(n))  # type: ignore[operator]
    logits = random_logits(seed)
    logits[::17] = -np.inf  # masked tokens do not count in the statistics
    finite = logits[np.isfinite(logits)].astype(np.float64)
    cut = finite.max() - n * finite.std()
    r = apply(s, logits)
    keep = np.nonzero(logits >= cut)[0]
    assert np.nonzero(np.isfinite(r.logits))[0].tolist() == keep.tolist()


# ---------------------------------------------------------------------------------------------------
# penalties, logit bias


def _penalties_ref(
    logits: np.ndarray, history: Sequence[int], last_n: int, repeat: float, freq: float, present: float
) -> np.ndarray:
    out = logits.astype(np.float32).copy()
    window = list(history)[-last_n:] if last_n > 0 else []
    counts: Dict[int, int] = {}
    for t in window:
        counts[t] = counts.get(t, 0) + 1
    for t, c in counts.items():
        v = out[t]
        v = v * np.float32(repeat) if v <= 0 else v / np.float32(repeat)
        out[t] = v - np.float32(c * freq + present)
    return out


@pytest.mark.parametrize("seed", SEEDS)
@pytest.mark.parametrize(
    "last_n,repeat,freq,present",
    [(64, 1.3, 0.0, 0.0), (16, 1.0, 0.5, 0.3), (8, 1.1, 0.2, 0.7), (0, 2.0, 1.0, 1.0)],
)
def test_penalties(
    sampler_factory: object, seed: int, last_n: int, repeat: float, freq: float, present: float
) -> None:
    s = sampler_factory(lc.llama_sampler_init_penalties(N_VOCAB, last_n, repeat, freq, present))  # type: ignore[operator]
    rng = np.random.default_rng(seed)
    history = rng.integers(0, 20, size=100).tolist()  # many repeats among few tokens
    for t in history:
        lc.llama_sampler_accept(s, t)
    logits = random_logits(seed)
    r = apply(s, logits)
    np.testing.assert_allclose(
        r.logits, _penalties_ref(logits, history, last_n, repeat, freq, present), rtol=1e-6
    )
    lc.llama_sampler_reset(s)
    np.testing.assert_array_equal(apply(s, logits).logits, logits)


def test_logit_bias(sampler_factory: object) -> None:
    bias = {3: 5.0, 17: -2.5, 299: 1.25}
    arr = (lc.llama_logit_bias * len(bias))()
    for i, (tok, b) in enumerate(bias.items()):
        arr[i].token = tok
        arr[i].bias = b
    s = sampler_factory(lc.llama_sampler_init_logit_bias(N_VOCAB, len(bias), arr))  # type: ignore[operator]
    logits = random_logits(2)
    expected = logits.copy()
    for tok, b in bias.items():
        expected[tok] += np.float32(b)
    np.testing.assert_array_equal(apply(s, logits).logits, expected)
    # also when the candidates are no longer in id order (after top-k)
    chain = sampler_factory(lc.llama_sampler_chain_init(lc.llama_sampler_chain_default_params()))  # type: ignore[operator]
    lc.llama_sampler_chain_add(chain, lc.llama_sampler_init_top_k(100))
    lc.llama_sampler_chain_add(chain, lc.llama_sampler_init_logit_bias(N_VOCAB, len(bias), arr))
    r = apply(chain, logits)
    np.testing.assert_array_equal(r.logits, expected[r.ids])


# ---------------------------------------------------------------------------------------------------
# mirostat


def _surprise(p: np.ndarray) -> np.ndarray:
    return -np.log2(p)


@pytest.mark.parametrize("seed", SEEDS[:3])
def test_mirostat_v2_truncation_and_mu_update(sampler_factory: object, seed: int) -> None:
    tau, eta = 3.0, 0.3
    s = sampler_factory(lc.llama_sampler_init_mirostat_v2(77 + seed, tau, eta))  # type: ignore[operator]
    logits = random_logits(seed, 200, 2.0)
    order = desc_order(logits)
    probs = softmax(logits)[order]
    mu = 2 * tau
    for _ in range(6):
        keep = max(1, int(np.argmax(_surprise(probs) > mu)) if np.any(_surprise(probs) > mu) else len(probs))
        r = apply(s, logits)
        assert r.ids.tolist() == order[:keep].tolist()
        renorm = probs[:keep] / probs[:keep].sum()
        np.testing.assert_allclose(r.p, renorm, rtol=1e-4)
        mu = mu - eta * (float(_surprise(renorm[r.selected])) - tau)


@pytest.mark.parametrize("seed", SEEDS[:3])
def test_mirostat_v1_k_and_mu_update(sampler_factory: object, seed: int) -> None:
    tau, eta, m = 4.0, 0.2, 100
    n_vocab = 200
    s = sampler_factory(lc.llama_sampler_init_mirostat(n_vocab, 5 + seed, tau, eta, m))  # type: ignore[operator]
    logits = random_logits(seed, n_vocab, 2.0)
    order = desc_order(logits)
    probs = softmax(logits)[order]
    i = np.arange(min(m - 1, n_vocab - 1))
    t = np.log((i + 2) / (i + 1))
    b = np.log(probs[i] / probs[i + 1])
    s_hat = float(np.sum(t * b) / np.sum(t * t))
    mu = 2 * tau
    for _ in range(6):
        eps = s_hat - 1
        k = ((eps * 2**mu) / (1 - n_vocab ** (-eps))) ** (1 / s_hat)
        k = int(min(max(k, 1), n_vocab))
        r = apply(s, logits)
        assert r.ids.tolist() == order[:k].tolist()
        renorm = probs[:k] / probs[:k].sum()
        np.testing.assert_allclose(r.p, renorm, rtol=1e-4)
        mu = mu - eta * (float(_surprise(renorm[r.selected])) - tau)


# ---------------------------------------------------------------------------------------------------
# DRY (needs a vocabulary: the tiny model's byte-level one)


@pytest.fixture(scope="module")
def vocab(tiny_gguf: Path) -> Iterator[Tuple[int, object]]:
    model = lc.llama_model_load_from_file(str(tiny_gguf).encode(), lc.llama_model_default_params())
    assert model
    yield lc.llama_model_get_vocab(model), model
    lc.llama_model_free(model)


def _piece(v: int, tok: int) -> bytes:
    buf = ctypes.create_string_buffer(64)
    n = lc.llama_token_to_piece(v, tok, buf, 64, 0, True)
    return buf.raw[:n]


def _dry_ref(
    history: List[int],
    n_vocab: int,
    multiplier: float,
    base: float,
    allowed: int,
    last_n: int,
    breaker_tokens: Sequence[int],
) -> np.ndarray:
    """Penalties of a DRY sampler whose breakers are all single tokens, computed naively."""
    window = history[-last_n:]
    n = len(window)
    pen = np.zeros(n_vocab, dtype=np.float64)
    if n <= allowed:
        return pen
    rep_limit = n
    for i in range(n):  # most recent breaker
        if window[n - 1 - i] in breaker_tokens:
            rep_limit = i
            break
    if rep_limit < allowed:
        return pen
    best: Dict[int, int] = {}
    for j in range(n - 1):  # the repeat ending at j, continued by window[j + 1]
        length = 0
        while length <= j and window[j - length] == window[n - 1 - length]:
            length += 1
        length = min(length, rep_limit)
        if length >= allowed:
            nxt = window[j + 1]
            best[nxt] = max(best.get(nxt, 0), length)
    for tok, length in best.items():
        if tok not in breaker_tokens:
            pen[tok] = multiplier * base ** (length - allowed)
    return pen


def _dry(
    v: int, multiplier: float, base: float, allowed: int, last_n: int, breakers: List[bytes]
) -> Optional[int]:
    arr = (ctypes.c_char_p * len(breakers))(*breakers)
    return lc.llama_sampler_init_dry(v, multiplier, base, allowed, last_n, arr, len(breakers))


@pytest.mark.parametrize("seed", [0, 1, 2])
@pytest.mark.parametrize("allowed,last_n", [(2, 64), (3, 40), (1, 200)])
def test_dry_penalties_on_a_constructed_history(
    sampler_factory: object, vocab: Tuple[int, object], seed: int, allowed: int, last_n: int
) -> None:
    v = vocab[0]
    n_vocab = lc.llama_vocab_n_tokens(v)
    nl = [t for t in range(n_vocab) if b"\n" in _piece(v, t)]
    assert nl
    s = sampler_factory(_dry(v, 0.8, 1.75, allowed, last_n, [b"\n"]))  # type: ignore[operator]
    rng = np.random.default_rng(seed)
    phrase = rng.integers(40, 120, size=6).tolist()
    history = rng.integers(40, 120, size=10).tolist() + phrase + rng.integers(40, 120, size=5).tolist()
    history += phrase[:4]  # a repeat in progress: phrase[4] would extend it
    if seed == 1:
        history = history[:-2] + [nl[0]] + history[-2:]  # a breaker cuts the repeat short
    for t in history:
        lc.llama_sampler_accept(s, t)
    logits = random_logits(seed, n_vocab)
    r = apply(s, logits)
    expected = logits.astype(np.float64) - _dry_ref(history, n_vocab, 0.8, 1.75, allowed, last_n, nl)
    np.testing.assert_allclose(r.logits, expected, rtol=1e-5, atol=1e-5)
    if seed != 1:
        assert r.logits[phrase[4]] < logits[phrase[4]]  # the constructed repeat is penalized


def test_dry_multi_token_breaker_limits_the_repeat(
    sampler_factory: object, vocab: Tuple[int, object]
) -> None:
    v = vocab[0]
    n_vocab = lc.llama_vocab_n_tokens(v)
    s = sampler_factory(_dry(v, 1.0, 2.0, 2, 100, [b"QZ"]))  # type: ignore[operator]
    q, z = lc.llama_tokenize(v, b"QZ", 2, (lc.llama_token * 4)(), 4, False, False), None
    assert q == 2
    toks = (lc.llama_token * 4)()
    lc.llama_tokenize(v, b"QZ", 2, toks, 4, False, False)
    q, z = toks[0], toks[1]
    phrase = [50, 51, 52, 53, 54]
    history = [60, 61] + phrase + [62, q, z] + phrase[:3]
    for t in history:
        lc.llama_sampler_accept(s, t)
    logits = random_logits(0, n_vocab)
    r = apply(s, logits)
    # the breaker "Q Z" sits 3 tokens back: repeats are cut to 3 tokens -> phrase[3] gets 2^(3-2)
    assert r.logits[phrase[3]] == pytest.approx(logits[phrase[3]] - 2.0, abs=1e-5)
    # without the breaker the repeat would be 3 long as well, but a longer one is cut: check with 4
    s2 = sampler_factory(_dry(v, 1.0, 2.0, 2, 100, [b"QZ"]))  # type: ignore[operator]
    for t in [60, 61] + phrase + [62, q, z, 70] + phrase[:4]:
        lc.llama_sampler_accept(s2, t)
    r2 = apply(s2, logits)
    assert r2.logits[phrase[4]] == pytest.approx(logits[phrase[4]] - 4.0, abs=1e-5)  # 2^(4-2)
    s3 = sampler_factory(_dry(v, 1.0, 2.0, 2, 100, [b"QZ"]))  # type: ignore[operator]
    for t in [60, 61] + phrase + [q, z] + phrase[:4]:  # the breaker right before the repeat: cut to 4
        lc.llama_sampler_accept(s3, t)
    assert apply(s3, logits).logits[phrase[4]] == pytest.approx(logits[phrase[4]] - 4.0, abs=1e-5)


def test_dry_disabled_is_a_no_op(sampler_factory: object, vocab: Tuple[int, object]) -> None:
    s = sampler_factory(_dry(vocab[0], 0.0, 1.75, 2, 64, [b"\n"]))  # type: ignore[operator]
    for t in [5, 6, 7, 5, 6]:
        lc.llama_sampler_accept(s, t)
    logits = random_logits(0, 100)
    np.testing.assert_array_equal(apply(s, logits).logits, logits)


# ---------------------------------------------------------------------------------------------------
# chains, Python samplers, sample()


def test_chain_add_get_remove_and_free(sampler_factory: object) -> None:
    chain = sampler_factory(lc.llama_sampler_chain_init(lc.llama_sampler_chain_default_params()))  # type: ignore[operator]
    top_k = lc.llama_sampler_init_top_k(5)
    dist = lc.llama_sampler_init_dist(3)
    lc.llama_sampler_chain_add(chain, top_k)
    lc.llama_sampler_chain_add(chain, dist)
    assert lc.llama_sampler_chain_n(chain) == 2
    assert lc.llama_sampler_chain_get(chain, 0) == top_k
    assert lc.llama_sampler_name(chain) == b"chain"
    assert lc.llama_sampler_name(top_k) == b"top-k"
    assert lc.llama_sampler_get_seed(chain) == 3
    logits = random_logits(9)
    r = apply(chain, logits)
    assert r.ids[r.selected] in desc_order(logits)[:5]
    removed = lc.llama_sampler_chain_remove(chain, 0)
    assert removed == top_k and lc.llama_sampler_chain_n(chain) == 1
    # the removed sampler was not freed: it still works and now belongs to us
    assert apply(removed, logits).ids.tolist() == desc_order(logits)[:5].tolist()
    lc.llama_sampler_free(removed)


def test_chain_clone_continues_identically(sampler_factory: object) -> None:
    chain = sampler_factory(lc.llama_sampler_chain_init(lc.llama_sampler_chain_default_params()))  # type: ignore[operator]
    lc.llama_sampler_chain_add(chain, lc.llama_sampler_init_penalties(N_VOCAB, 16, 1.5, 0.1, 0.1))
    lc.llama_sampler_chain_add(chain, lc.llama_sampler_init_top_k(20))
    lc.llama_sampler_chain_add(chain, lc.llama_sampler_init_temp(0.9))
    lc.llama_sampler_chain_add(chain, lc.llama_sampler_init_dist(5))
    logits = random_logits(4)
    for _ in range(5):
        r = apply(chain, logits)
        lc.llama_sampler_accept(chain, int(r.ids[r.selected]))
    twin = sampler_factory(lc.llama_sampler_clone(chain))  # type: ignore[operator]
    a, b = [], []
    for out, s in ((a, chain), (b, twin)):
        for _ in range(20):
            r = apply(s, logits)
            tok = int(r.ids[r.selected])
            lc.llama_sampler_accept(s, tok)
            out.append(tok)
    assert a == b


def test_python_sampler_in_a_chain(sampler_factory: object) -> None:
    """A llama_sampler built in Python with only `apply` set, as llama-cpp-python's CustomSampler does."""
    seen: List[int] = []

    def apply_cb(smpl: object, cur_p: object) -> None:
        cur = cur_p.contents  # type: ignore[attr-defined]
        seen.append(int(cur.size))
        for i in range(int(cur.size)):
            if cur.data[i].id % 2 == 0:
                cur.data[i].logit = -math.inf  # ban even ids

    iface = lc.llama_sampler_i()
    iface.apply = lc.llama_sampler_i_apply(apply_cb)
    iface.name = lc.llama_sampler_i_name(0)
    iface.accept = lc.llama_sampler_i_accept(0)
    iface.reset = lc.llama_sampler_i_reset(0)
    iface.clone = lc.llama_sampler_i_clone(0)
    iface.free = lc.llama_sampler_i_free(0)
    custom = lc.llama_sampler()
    custom.iface = ctypes.pointer(iface)
    custom.ctx = None
    ptr = ctypes.pointer(custom)

    chain = sampler_factory(lc.llama_sampler_chain_init(lc.llama_sampler_chain_default_params()))  # type: ignore[operator]
    before = set(_compat_sampling._foreign)
    lc.llama_sampler_chain_add(chain, ptr)
    wrappers = set(_compat_sampling._foreign) - before
    assert len(wrappers) == 1
    lc.llama_sampler_chain_add(chain, lc.llama_sampler_init_greedy())
    assert lc.llama_sampler_chain_n(chain) == 2
    logits = random_logits(12)
    r = apply(chain, logits)
    assert seen == [N_VOCAB]  # the full vocabulary, before any truncation
    odd = np.arange(1, N_VOCAB, 2)
    assert r.ids[r.selected] == odd[np.argmax(logits[odd])]
    with pytest.raises(NotImplementedError):
        lc.llama_sampler_clone(chain)
    got = lc.llama_sampler_chain_remove(chain, 0)
    assert ctypes.addressof(got.contents) == ctypes.addressof(custom)  # the caller's own pointer back
    assert not wrappers & set(_compat_sampling._foreign)  # our wrapper is gone with the removal


def test_sample_from_a_context(tiny_gguf: Path) -> None:
    from neox_cpp import Llama

    llm = Llama(model_path=str(tiny_gguf), n_ctx=64, verbose=False, logits_all=True)
    try:
        tokens = llm.tokenize(b"the cat sat", add_bos=False)
        llm.eval(tokens)
        last = np.array(llm.scores[len(tokens) - 1], dtype=np.float32)
        ctx = llm._ctx.ctx  # type: ignore[attr-defined]
        chain = lc.llama_sampler_chain_init(lc.llama_sampler_chain_default_params())
        lc.llama_sampler_chain_add(chain, lc.llama_sampler_init_penalties(llm.n_vocab(), 64, 1.0, 0.0, 1e9))
        lc.llama_sampler_chain_add(chain, lc.llama_sampler_init_greedy())
        first = lc.llama_sampler_sample(chain, ctx, -1)
        assert first == int(np.argmax(last))
        # sample() accepted `first`: the huge presence penalty now rules it out
        second = lc.llama_sampler_sample(chain, ctx, -1)
        masked = last.copy()
        masked[first] = -np.inf
        assert second == int(np.argmax(masked))
        # a positive index is a batch position (every token is an output with logits_all)
        lc.llama_sampler_reset(chain)
        assert lc.llama_sampler_sample(chain, ctx, 0) == int(np.argmax(llm.scores[0]))
        with pytest.raises(RuntimeError):
            lc.llama_sampler_sample(chain, ctx, 1000)
        lc.llama_sampler_free(chain)
    finally:
        llm.close()


def test_grammar_without_vocab_is_an_error() -> None:
    # The grammar sampler itself is tested in tests/test_grammar.py.
    assert lc.llama_sampler_init_grammar(None, b"root ::= [a-z]+", b"root") is None
