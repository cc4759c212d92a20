"""gptneox_perf_phases / gptneox_perf_phase_name: the forward pass's time split by phase, kept per context
beside gptneox_perf_context's totals (single-token steps and batches apart)."""

from __future__ import annotations

import ctypes
import re
from pathlib import Path
from typing import Dict, Iterator

import pytest

from neox_cpp import _lib

HEADER = Path(__file__).resolve().parent.parent / "include" / "gptneox.h"
MATMUL_PHASES = ("qkv", "attn_out", "ffn_up", "ffn_down")


@pytest.fixture(scope="module")
def model(tiny_gguf: Path) -> Iterator[_lib.Model]:
    with _lib.Model(tiny_gguf) as m:
        yield m


def run(ctx: _lib.Context, prompt: int = 9, steps: int = 3) -> None:
    """A prompt of `prompt` tokens in one batch, then `steps` single-token decodes, each computed alone
    (the logits read after each one)."""
    ctx.decode([(7 * i + 3) % 200 for i in range(prompt)])
    ctx.logits()
    for s in range(steps):
        ctx.decode([11 + s])
        ctx.logits()


def phases(ctx: _lib.Context, batch: bool) -> Dict[str, float]:
    return _lib.perf_phases(ctx.ptr, batch)


def test_names_follow_the_header_enum() -> None:
    enum = re.search(r"enum gptneox_perf_phase \{(.*?)\};", HEADER.read_text(), re.S)
    assert enum is not None
    members = re.findall(r"GPTNEOX_PHASE_(\w+) = (\d+)", enum.group(1))
    assert members[-1] == ("COUNT", str(_lib.GPTNEOX_PHASE_COUNT))
    for name, value in members[:-1]:
        assert getattr(_lib, f"GPTNEOX_PHASE_{name}") == int(value)
        assert _lib.gptneox_perf_phase_name(int(value)) == name.lower().encode()
    assert len(members) - 1 == _lib.GPTNEOX_PHASE_COUNT
    assert _lib.gptneox_perf_phase_name(-1) is None
    assert _lib.gptneox_perf_phase_name(_lib.GPTNEOX_PHASE_COUNT) is None


def test_phases_split_prompt_and_decode_time(model: _lib.Model) -> None:
    with _lib.Context(model, n_ctx=64, n_batch=32, n_threads=2, n_threads_batch=2) as ctx:
        assert all(v == 0.0 for v in phases(ctx, True).values())
        run(ctx)
        perf = _lib.gptneox_perf_context(ctx.ptr)
        assert (perf.n_p_eval, perf.n_eval) == (9, 3)
        for batch, total in ((True, perf.t_p_eval_ms), (False, perf.t_eval_ms)):
            ph = phases(ctx, batch)
            assert list(ph) == [(_lib.gptneox_perf_phase_name(i) or b"").decode()
                                for i in range(_lib.GPTNEOX_PHASE_COUNT)]
            assert all(v >= 0.0 for v in ph.values()), ph
            assert all(ph[p] > 0.0 for p in MATMUL_PHASES + ("attention", "output")), ph
            # inside the timed decode calls, and most of them (the rest: staging the batch, the queue)
            assert 0.3 * total < sum(ph.values()) <= total + 0.02, (ph, total)


def test_phases_accumulate_and_reset(model: _lib.Model) -> None:
    with _lib.Context(model, n_ctx=64, n_batch=32, n_threads=1, n_threads_batch=1) as ctx:
        run(ctx, steps=2)
        first = phases(ctx, False)
        run_more = 4
        for s in range(run_more):
            ctx.decode([40 + s])
            ctx.logits()
        later = phases(ctx, False)
        assert all(later[p] >= first[p] for p in first)
        assert sum(later.values()) > sum(first.values())
        _lib.gptneox_perf_context_reset(ctx.ptr)
        assert all(v == 0.0 for v in phases(ctx, False).values())
        assert all(v == 0.0 for v in phases(ctx, True).values())


def test_no_perf_keeps_no_phases(model: _lib.Model) -> None:
    with _lib.Context(model, n_ctx=64, n_batch=32, no_perf=True) as ctx:
        run(ctx)
        assert all(v == 0.0 for v in phases(ctx, True).values())
        assert all(v == 0.0 for v in phases(ctx, False).values())


def test_bad_arguments_are_errors_not_crashes(model: _lib.Model) -> None:
    assert _lib.gptneox_perf_phases(None, True, None, 0) == -1
    assert b"NULL" in (_lib.gptneox_last_error() or b"")
    with _lib.Context(model, n_ctx=64) as ctx:
        assert _lib.gptneox_perf_phases(ctx.ptr, True, None, 3) == -1
        assert _lib.gptneox_perf_phases(ctx.ptr, True, None, 0) == _lib.GPTNEOX_PHASE_COUNT
        two = (ctypes.c_double * 3)(-1.0, -1.0, -1.0)
        assert _lib.gptneox_perf_phases(ctx.ptr, False, two, 2) == _lib.GPTNEOX_PHASE_COUNT
        assert list(two) == [0.0, 0.0, -1.0]  # n values written, no more
        with pytest.raises(_lib.NeoxError):
            _lib.perf_phases(None, True)
