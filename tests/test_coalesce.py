"""Coalesced decode calls (gptneox_decode, src/api/decode.cpp): small calls are queued and computed
together when their results are first needed. Every test compares against the same calls computed one by
one (the logits read after each call force that), bit for bit, and checks with gptneox_n_queued that the
queue really was used (or, where it must not be, was not).

Bit for bit holds where a token's result does not depend on its batch: every path except AMX's Q8_0 /
Q4_0 tiles (batches of 16+ tokens, bf16 activations). Those model types run these tests on the AVX-512
path where AMX is the default, and test_amx_queue_is_one_batch checks the AMX path's own promise: a queue
computes exactly what the same tokens give as one batch."""

from __future__ import annotations

import ctypes
from pathlib import Path
from typing import Dict, Iterator, List, Optional, Sequence, Tuple

import numpy as np
import pytest

from neox_cpp import _lib
from neox_cpp.quantize import quantize_file

# (tokens, positions, sequence ids of each token, which tokens want logits)
Call = Tuple[List[int], List[int], List[List[int]], List[bool]]


KERNELS_AVX512, KERNELS_AMX = _lib.GPTNEOX_KERNELS_AVX512, _lib.GPTNEOX_KERNELS_AMX
HAVE_AMX = bool(_lib.gptneox_kernel_path_supported(KERNELS_AMX))
# the kernel path of every Ctx (0: the default); set by the model fixture
_kernel_path = 0


@pytest.fixture(scope="module", params=["f32", "q8_0", "q4_0"])
def model(
    request: pytest.FixtureRequest, tiny_gguf: Path, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[_lib.Model]:
    global _kernel_path
    path = tiny_gguf
    if request.param != "f32":
        path = tmp_path_factory.mktemp("coalesce") / f"tiny-{request.param}.gguf"
        quantize_file(tiny_gguf, path, request.param, progress=False)
    # (a batch-invariant path for the quantized types where AMX, whose tiles are not, is the default)
    _kernel_path = KERNELS_AVX512 if HAVE_AMX and request.param != "f32" else 0
    with _lib.Model(path) as m:
        yield m
    _kernel_path = 0


class Ctx:
    """A context with a batch of n_batch tokens in up to 4 sequences, fed raw calls."""

    def __init__(self, model: _lib.Model, **params: object) -> None:
        p = {"n_ctx": 256, "n_batch": 64, "n_ubatch": 8, "n_seq_max": 4, "n_threads": 2, "n_threads_batch": 2}
        p["kernel_path"] = _kernel_path
        p.update(params)
        self.c = _lib.Context(model, **p)
        self.ptr = self.c.ptr
        self.n_vocab = model.n_vocab
        self.batch = _lib.gptneox_batch_init(int(p["n_batch"]), 0, 4)  # type: ignore[arg-type]

    def close(self) -> None:
        _lib.gptneox_batch_free(self.batch)
        self.c.close()

    def decode(self, call: Call) -> int:
        toks, pos, seqs, want = call
        b = self.batch
        b.n_tokens = len(toks)
        for i, t in enumerate(toks):
            b.token[i] = t
            b.pos[i] = pos[i]
            b.n_seq_id[i] = len(seqs[i])
            for j, s in enumerate(seqs[i]):
                b.seq_id[i][j] = s
            b.logits[i] = 1 if want[i] else 0
        return int(_lib.gptneox_decode(self.ptr, b))

    def queued(self) -> int:
        return int(_lib.gptneox_n_queued(self.ptr))

    def feed(self, calls: List[Call]) -> List[int]:
        """Decode each call (each must succeed); the queue's length after each."""
        seen = []
        for call in calls:
            assert self.decode(call) == 0
            seen.append(self.queued())
        return seen

    def outputs(self) -> np.ndarray:
        n = int(_lib.gptneox_n_outputs(self.ptr))
        ptr = _lib.check_ptr(_lib.gptneox_get_logits(self.ptr), "gptneox_get_logits")
        return np.ctypeslib.as_array(ptr, shape=(n * self.n_vocab,)).reshape(n, self.n_vocab).copy()

    def mem(self) -> int:
        return int(_lib.gptneox_get_memory(self.ptr))

    def state(self) -> bytes:
        size = int(_lib.gptneox_state_get_size(self.ptr))
        buf = (ctypes.c_uint8 * size)()
        n = int(_lib.gptneox_state_get_data(self.ptr, buf, size))
        assert n > 0
        return bytes(buf[:n])


def seq_calls(tokens: Sequence[int], size: int, seq: int = 0, pos0: int = 0) -> List[Call]:
    """tokens as consecutive calls of `size` tokens in one sequence, the last token of each an output."""
    out = []
    for s in range(0, len(tokens), size):
        t = list(tokens[s : s + size])
        want = [i == len(t) - 1 for i in range(len(t))]
        out.append((t, list(range(pos0 + s, pos0 + s + len(t))), [[seq]] * len(t), want))
    return out


def one_by_one(model: _lib.Model, calls: List[Call], **params: object) -> List[Optional[np.ndarray]]:
    """The outputs of each call, read right after it (so nothing is ever queued behind it)."""
    c = Ctx(model, **params)
    try:
        res: List[Optional[np.ndarray]] = []
        for call in calls:
            assert c.decode(call) == 0
            res.append(c.outputs() if any(call[3]) else None)
        return res
    finally:
        c.close()


def tokens(n: int, seed: int, n_vocab: int) -> List[int]:
    return [int(x) for x in np.random.default_rng(seed).integers(0, n_vocab, size=n)]


def test_prompt_in_small_calls(model: _lib.Model) -> None:
    # 300 tokens in calls of 8 with n_ubatch 8: coalesced up to 256 tokens (a flush mid-way), then read
    calls = seq_calls(tokens(300, 1, model.n_vocab), 8)
    ref = one_by_one(model, calls, n_ctx=512)
    c = Ctx(model, n_ctx=512)
    try:
        queued = c.feed(calls)
        assert queued[:3] == [8, 16, 24]
        assert max(queued) == 256 and queued[32] == 8  # full at 32 calls; the 33rd starts a new queue
        # seq_pos_max sees queued cells, and synchronizes
        assert _lib.gptneox_memory_seq_pos_max(c.mem(), 0) == 299
        assert c.queued() == 0
        np.testing.assert_array_equal(c.outputs(), ref[-1])
    finally:
        c.close()


def test_matches_one_big_batch_and_each_step(model: _lib.Model) -> None:
    # the last call's outputs equal those of one 40-token batch; and after a sync mid-way, each step too
    toks = tokens(40, 2, model.n_vocab)
    big = one_by_one(model, [(toks, list(range(40)), [[0]] * 40, [True] * 40)], n_batch=64, n_ubatch=64)[0]
    assert big is not None
    c = Ctx(model)
    try:
        for call in seq_calls(toks[:32], 8):
            assert c.decode(call) == 0
        assert c.queued() == 32
        assert _lib.gptneox_synchronize(c.ptr) == 0 and c.queued() == 0
        assert c.decode((toks[32:], list(range(32, 40)), [[0]] * 8, [True] * 8)) == 0
        assert c.queued() == 8
        np.testing.assert_array_equal(c.outputs(), big[32:])
    finally:
        c.close()


def test_sequences_interleaved_and_a_step_back(model: _lib.Model) -> None:
    # calls alternating between sequences join one queue; a call that goes back in a sequence's
    # positions (it would see a cell the queue holds) makes the queue run first
    n = model.n_vocab
    a, b = tokens(24, 3, n), tokens(24, 4, n)
    calls: List[Call] = []
    for i in range(3):
        calls += seq_calls(a[8 * i : 8 * i + 8], 8, seq=0, pos0=8 * i)
        calls += seq_calls(b[8 * i : 8 * i + 8], 8, seq=1, pos0=8 * i)
    # a token in both sequences (at a new position of each); sequence 2 at 40..43, then back at 10..13
    calls.append(([7], [30], [[0, 1]], [True]))
    back: Call = (a[:4], [10, 11, 12, 13], [[2]] * 4, [True] * 4)
    calls.append((a[4:8], [40, 41, 42, 43], [[2]] * 4, [True] * 4))
    calls.append(back)
    calls.append(([9], [50], [[2]], [True]))  # sees 40..43 and 10..13: shows if 40..43 saw 10..13
    ref = one_by_one(model, calls)
    c = Ctx(model)
    try:
        seen = c.feed(calls)
        assert seen[:7] == [8, 16, 24, 32, 40, 48, 49]
        assert seen[7] == 53
        assert seen[8] == 4  # pos 10 in sequence 2 after 40..43 queued there: ran them first
        assert seen[9] == 5
        np.testing.assert_array_equal(c.outputs(), ref[-1])
    finally:
        c.close()


def test_memory_and_state_calls_see_the_computed_queue(model: _lib.Model) -> None:
    toks = tokens(48, 5, model.n_vocab)
    calls = seq_calls(toks, 8)

    def run(read_each: bool) -> Tuple[bytes, np.ndarray]:
        c = Ctx(model)
        try:
            for call in calls[:4]:
                assert c.decode(call) == 0
                if read_each:
                    c.outputs()
            # seq_rm of the last 8 positions, then 2 more calls
            assert _lib.gptneox_memory_seq_rm(c.mem(), 0, 24, -1)
            for call in calls[3:5]:
                assert c.decode(call) == 0
                if read_each:
                    c.outputs()
            assert c.queued() == (0 if read_each else 16)
            st = c.state()
            assert c.queued() == 0
            return st, c.outputs()
        finally:
            c.close()

    st1, out1 = run(False)
    st2, out2 = run(True)
    assert st1 == st2
    np.testing.assert_array_equal(out1, out2)


def test_full_cache_returns_1_and_keeps_the_outputs(model: _lib.Model) -> None:
    # the 16-token call does not fit the queue (capacity min(256, n_ctx) = 32): the queue runs, then the
    # call finds no room and changes nothing
    toks = tokens(40, 6, model.n_vocab)
    calls = seq_calls(toks[:24], 8)
    ref = one_by_one(model, calls, n_ctx=32)
    c = Ctx(model, n_ctx=32)
    try:
        for call in calls:
            assert c.decode(call) == 0
        assert c.queued() == 24
        assert c.decode((toks[24:40], list(range(24, 40)), [[0]] * 16, [True] * 16)) == 1
        assert c.queued() == 0
        np.testing.assert_array_equal(c.outputs(), ref[-1])
    finally:
        c.close()


@pytest.mark.parametrize("case", ["big_call", "embeddings", "abort_callback"])
def test_calls_that_run_at_once(model: _lib.Model, case: str) -> None:
    toks = tokens(72, 7, model.n_vocab)
    params: Dict[str, object] = {}
    keep = []
    if case == "embeddings":
        params["embeddings"] = True
    if case == "abort_callback":
        cb = _lib.gptneox_abort_callback(lambda data: False)
        keep.append(cb)
        params["abort_callback"] = cb
    calls = seq_calls(toks[:16], 8) + [(toks[16:56], list(range(16, 56)), [[0]] * 40, [True] * 40)]
    ref = one_by_one(model, calls, **params)
    c = Ctx(model, **params)
    try:
        for call in calls:
            assert c.decode(call) == 0
            if case != "big_call":
                assert c.queued() == 0
        assert c.queued() == 0  # a 40-token call runs the queue, then itself
        np.testing.assert_array_equal(c.outputs(), ref[-1])
    finally:
        c.close()


def test_perf_counts_every_token(model: _lib.Model) -> None:
    c = Ctx(model)
    try:
        for call in seq_calls(tokens(24, 8, model.n_vocab), 8):
            assert c.decode(call) == 0
        assert c.decode(([5], [24], [[0]], [True])) == 0
        perf = _lib.gptneox_perf_context(c.ptr)
        assert perf.n_p_eval + perf.n_eval == 25
    finally:
        c.close()


def test_llama_with_langchains_n_batch(tiny_gguf: Path) -> None:
    # llama-cpp-python's Llama with n_batch=8 (LangChain's default): Llama.eval's calls are queued, and the
    # completion equals the one from a Llama fed the prompt in one batch
    from neox_cpp import Llama, llama_compat

    prompt = tokens(100, 9, 200)
    texts: List[str] = []
    for n_batch in (8, 512):
        llm = Llama(model_path=str(tiny_gguf), n_ctx=256, n_batch=n_batch, n_threads=2, verbose=False)
        try:
            llm.eval(prompt)
            assert _lib.gptneox_n_queued(llm._ctx.ctx) == (100 if n_batch == 8 else 0)
            llama_compat.llama_synchronize(llm._ctx.ctx)
            assert _lib.gptneox_n_queued(llm._ctx.ctx) == 0
            llm.reset()
            out = llm.create_completion(prompt, max_tokens=16, temperature=0.0)
            texts.append(out["choices"][0]["text"])
        finally:
            llm.close()
    assert texts[0] == texts[1]


@pytest.mark.skipif(not HAVE_AMX, reason="no AMX-BF16 on this CPU (or the OS refused the tile state)")
@pytest.mark.parametrize("qtype", ["q8_0", "q4_0"])
def test_amx_queue_is_one_batch(tiny_gguf: Path, tmp_path: Path, qtype: str) -> None:
    # On AMX a 40-token queue of 8-token calls runs on the bf16 tiles, as one 40-token call does: the same
    # bits. Calls computed one by one (8 tokens: the VNNI kernels, Q8_0 activations) differ in the last
    # digits, and only there.
    path = tmp_path / f"tiny-{qtype}.gguf"
    quantize_file(tiny_gguf, path, qtype, progress=False)
    toks = tokens(40, 11, 200)
    calls = seq_calls(toks, 8)
    with _lib.Model(path) as m:
        assert m.n_vocab >= 200
        big = one_by_one(m, [(toks, list(range(40)), [[0]] * 40, [i % 8 == 7 for i in range(40)])],
                         kernel_path=KERNELS_AMX, n_ubatch=64)[0]
        alone = one_by_one(m, calls, kernel_path=KERNELS_AMX)
        c = Ctx(m, kernel_path=KERNELS_AMX)
        try:
            assert c.feed(calls) == [8, 16, 24, 32, 40]
            out = c.outputs()
        finally:
            c.close()
    assert big is not None
    np.testing.assert_array_equal(out, big[-1:])
    last = alone[-1]
    assert last is not None
    diff = np.abs(out - last).max()
    assert 0 < diff < 0.05 * np.abs(last).max()
