"""use_extra_bufts (gptneox_model_params, llama.h's option of the same name): Q4_0 and Q8_0 matrices
repacked at load for the AVX-512 VNNI kernels (Q4_0 for the AVX2 ones), F16 for the AVX-512 ones, each split
among the cores. Quantized logits are bit-identical with and without it, on the path that reads the packed
copy and on the other paths (which read the file's pages again, after the loader released them); F16's
packed kernel sums in another order (gemm-f16-packed-avx512.cpp), and on AMX Q8_0 / Q4_0 prompts run on
bf16 tiles over the packed copy only (gemm-qbf16-amx.cpp), so there they agree to rounding. The loader says
what it repacked.
src/kernels/packed_test.cpp checks the kernels themselves on odd shapes."""

from __future__ import annotations

import ctypes
from pathlib import Path
from typing import Iterator, List

import numpy as np
import pytest

from neox_cpp import _lib
from neox_cpp.quantize import quantize_file


def _packs_here(qtype: str) -> bool:
    """Whether this CPU's best kernel table repacks qtype: AMX and AVX-512 VNNI the quantized types, AVX2
    Q4_0; AMX and AVX-512 F16."""
    info = (_lib.gptneox_print_system_info() or b"").decode()
    if "kernels = amx" in info:
        return True
    if qtype == "f16":
        return "kernels = avx512" in info
    if "kernels = avx512" in info:
        return "AVX512_VNNI = 1" in info
    return "kernels = avx2" in info and qtype == "q4_0"


@pytest.fixture(scope="module", params=["q4_0", "q8_0", "f16"])
def q_path(request: pytest.FixtureRequest, tiny_gguf: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("repack") / f"tiny-{request.param}.gguf"
    quantize_file(tiny_gguf, out, request.param, progress=False)
    return out


@pytest.fixture
def log_lines() -> Iterator[List[str]]:
    lines: List[str] = []

    @_lib.gptneox_log_callback
    def cb(level: int, text: bytes, user_data: object) -> None:
        lines.append(text.decode("utf-8", "replace"))

    _lib.gptneox_log_set(cb, None)
    try:
        yield lines
    finally:
        _lib.gptneox_log_set(ctypes.cast(None, _lib.gptneox_log_callback), None)


def _logits(model: _lib.Model, tokens: List[int], kernel_path: int) -> np.ndarray:
    """Logits of every prompt position (one batch), then of 4 single-token steps."""
    params = {"n_ctx": 128, "n_batch": 64, "n_threads": 2, "n_threads_batch": 2, "kernel_path": kernel_path}
    with _lib.Context(model, **params) as c:
        c.decode(tokens, logits_all=True)
        rows = c.all_logits()
        for t in (3, 1, 4, 1):
            c.decode([t])
            rows.append(c.logits(-1))
        return np.array(rows, dtype=np.float32)


PATHS = [_lib.GPTNEOX_KERNELS_AUTO, _lib.GPTNEOX_KERNELS_SCALAR, _lib.GPTNEOX_KERNELS_AVX2,
         _lib.GPTNEOX_KERNELS_AVX512, _lib.GPTNEOX_KERNELS_AMX]
# the paths whose F16 kernel reads the packed copy (where the CPU repacks F16)
F16_PACKED_PATHS = {_lib.GPTNEOX_KERNELS_AUTO, _lib.GPTNEOX_KERNELS_AVX512, _lib.GPTNEOX_KERNELS_AMX}
# the paths whose Q8_0 / Q4_0 prompts run on AMX's bf16 tiles over the packed copy (AUTO is AMX there)
AMX_TILE_PATHS = {_lib.GPTNEOX_KERNELS_AMX} | (
    {_lib.GPTNEOX_KERNELS_AUTO} if _lib.gptneox_kernel_path_supported(_lib.GPTNEOX_KERNELS_AMX) else set())


def test_same_logits_with_and_without_repacking(q_path: Path, log_lines: List[str]) -> None:
    tokens = [int(x) for x in np.random.default_rng(3).integers(0, 200, size=37)]
    with _lib.Model(q_path, use_extra_bufts=False) as plain:
        assert not any("repacked" in s for s in log_lines)
        ref = {p: _logits(plain, tokens, p) for p in PATHS if _lib.gptneox_kernel_path_supported(p)}
    qtype = q_path.stem.rsplit("-", 1)[1]
    packs = _packs_here(qtype)
    with _lib.Model(q_path) as packed:
        said = [s for s in log_lines if "repacked" in s]
        if packs:
            # qkv, out, up, down of 2 layers (the output matrix has 268 rows: not whole groups of 16)
            assert len(said) == 1 and " 8 matrices " in said[0], said
        else:
            assert not said, said
        for p, want in ref.items():
            try:
                got = _logits(packed, tokens, p)
            except _lib.NeoxError:  # a path this CPU lacks
                continue
            tol = None  # bit for bit
            if qtype == "f16" and packs and p in F16_PACKED_PATHS:
                tol = 1e-5
            elif qtype in ("q8_0", "q4_0") and packs and p in AMX_TILE_PATHS:
                # the 37-token prompt ran on the bf16 tiles over the packed copy (the rows in place: the
                # VNNI kernels, Q8_0 activations); its logits and the steps after it differ by the
                # activations' rounding (test_parity.py's bound for the two)
                tol = 3e-2
            if tol is None:
                np.testing.assert_array_equal(got, want, err_msg=f"kernel path {p}")
            else:  # nonzero: the packed kernel ran
                scale = float(np.abs(want).max())
                diff = float(np.abs(got - want).max())
                assert 0 < diff <= tol * scale, f"kernel path {p}: max diff {diff} (scale {scale})"
    if not packs:
        pytest.skip("this CPU's kernels repack no such matrix (the equality above is trivial)")
