"""A Q8_0 KV cache (type_k / type_v = GGML_TYPE_Q8_0, as llama.cpp's --cache-type-k/-v q8_0).

The reference is Hugging Face's float64 forward pass with its keys and values (after the rotary
embedding) rounded the way the cache stores them: per head, blocks of 32 elements, d = amax / 127 kept
as f16, q = round(x / d). Our engine (f32 weights, so the cache is the only rounding) must match that
within 1e-4 (f32 against float64, and now and then an element whose x / d lies within that rounding of a
.5 boundary rounding the other way: 8.8e-6 seen), and be visibly farther from plain HF (the test can tell
a cache that rounds from one that does not). Then: batching never changes logits with this cache either;
shifting every cached position (memory_seq_add, which re-rotates and re-quantizes K) continues like the
unshifted sequence within the cache's own rounding; the state of a Q8_0 context saves and restores; bad
combinations are refused with a message. Every test runs on each kernel path this CPU supports.
"""

from __future__ import annotations

import ctypes
import os
from pathlib import Path
from typing import Any, Iterator, List, Tuple

import numpy as np
import pytest

pytest.importorskip("torch")
pytest.importorskip("transformers")
pytest.importorskip("gguf")

from models import INTEROP_SHAPE, convert_model, load_hf_model, make_hf_model, rel_err, sample_tokens  # noqa: E402

try:
    from neox_cpp import _lib
except ImportError as e:  # LibraryNotFoundError: the engine is not built
    if os.environ.get("CI"):
        raise
    pytest.skip(f"libgptneox is not available: {e}", allow_module_level=True)

Q8 = _lib.GPTNEOX_TYPE_Q8_0
F16 = _lib.GPTNEOX_TYPE_F16
F32 = _lib.GPTNEOX_TYPE_F32
PATHS = [pytest.param(p, id=n) for p, n in ((_lib.GPTNEOX_KERNELS_SCALAR, "scalar"),
                                            (_lib.GPTNEOX_KERNELS_AVX2, "avx2"),
                                            (_lib.GPTNEOX_KERNELS_AVX512, "avx512"),
                                            (_lib.GPTNEOX_KERNELS_AMX, "amx"))]
N_TOKENS = 64
Case = Tuple[Path, Path, List[int], np.ndarray, np.ndarray]


def _need_path(path: int) -> None:
    if not _lib.gptneox_kernel_path_supported(path):
        name = (_lib.gptneox_kernel_path_name(path) or b"?").decode()
        pytest.skip(f"kernel path {name} is not supported by this CPU/build")


def q8_0_round(x: Any) -> Any:
    """x (torch, last dim a multiple of 32) rounded as a Q8_0 block row: ggml's quantize_row_q8_0."""
    import torch

    b = x.reshape(*x.shape[:-1], x.shape[-1] // 32, 32)
    d = b.abs().amax(dim=-1, keepdim=True) / 127
    q = torch.round(b * torch.where(d > 0, 1 / torch.where(d > 0, d, 1), 0))
    return (q * d.to(torch.float16).to(x.dtype)).reshape(x.shape)


def hf_logits_q8_kv(hf_dir: Path, tokens: List[int]) -> np.ndarray:
    """HF float64 logits with K and V rounded to Q8_0 before attention: its eager attention function
    wrapped for the call (its mask stays the eager one)."""
    import torch
    from transformers.models.gpt_neox import modeling_gpt_neox as m

    eager = m.eager_attention_forward

    def attention(module: Any, query: Any, key: Any, value: Any, mask: Any, **kw: Any) -> Any:
        return eager(module, query, q8_0_round(key), q8_0_round(value), mask, **kw)

    model = load_hf_model(hf_dir, "float64")
    assert model.config._attn_implementation == "eager"
    m.eager_attention_forward = attention
    try:
        with torch.no_grad():
            out = model(torch.tensor([tokens], dtype=torch.long), use_cache=False)
    finally:
        m.eager_attention_forward = eager
    return out.logits[0].to(torch.float64).numpy()


@pytest.fixture(scope="module")
def case(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Case]:
    """The interop shape (hidden 128, 4 heads: head dim 32), f32 weights: (hf_dir, gguf, tokens, HF, HF
    with a Q8_0 KV)."""
    from models import hf_logits

    work = tmp_path_factory.mktemp("kvq8")
    d = make_hf_model(work / "hf", **INTEROP_SHAPE)  # type: ignore[arg-type]
    tokens = sample_tokens(d, N_TOKENS)
    gguf = convert_model(d, work, "f32", name="kvq8")
    yield d, gguf, tokens, hf_logits(d, tokens, "float64"), hf_logits_q8_kv(d, tokens)


def _logits(gguf: Path, path: int, tokens: List[int], chunk: int = 0, n_ubatch: int = 512,
            type_k: int = Q8, type_v: int = Q8) -> np.ndarray:
    with _lib.Model(gguf) as model, _lib.Context(model, n_ctx=128, n_batch=128, n_ubatch=n_ubatch,
                                                 n_threads=2, n_threads_batch=2, kernel_path=path,
                                                 type_k=type_k, type_v=type_v) as ctx:
        rows = []
        size = chunk or len(tokens)
        for start in range(0, len(tokens), size):
            ctx.decode(tokens[start:start + size], logits_all=True)
            rows.append(np.array(ctx.all_logits(), dtype=np.float64))
        return np.concatenate(rows, axis=0)


@pytest.mark.parametrize("kernel_path", PATHS)
def test_matches_hf_with_q8_0_kv(case: Any, kernel_path: int) -> None:
    _need_path(kernel_path)
    _, gguf, tokens, ref, ref_q8 = case
    ours = _logits(gguf, kernel_path, tokens)
    e_q8, e_plain = rel_err(ours, ref_q8), rel_err(ours, ref)
    e_f16 = rel_err(_logits(gguf, kernel_path, tokens, type_k=F16, type_v=F16), ref)
    print(f"\nQ8_0 KV [{kernel_path}]: rel_err vs HF with a Q8_0 KV {e_q8:.3e}, vs plain HF {e_plain:.3e} "
          f"(the cache's own rounding; an F16 cache: {e_f16:.3e}); "
          f"HF Q8_0 KV vs HF {rel_err(ref_q8, ref):.3e}")
    # f32 compute against float64; a K or V element whose x / d lies within float rounding of a .5
    # boundary may round to the neighbouring q (|error| d), which the bound leaves room for
    assert e_q8 <= 1e-4
    assert e_plain >= 10 * e_q8  # the cache does round: the reference can tell


@pytest.mark.parametrize("kernel_path", PATHS)
@pytest.mark.parametrize("types", [(Q8, Q8), (Q8, F16), (F16, Q8)], ids=["q8_0-q8_0", "q8_0-f16", "f16-q8_0"])
def test_batching_gives_same_logits(case: Any, kernel_path: int, types: Tuple[int, int]) -> None:
    _need_path(kernel_path)
    _, gguf, tokens, _, _ = case
    whole = _logits(gguf, kernel_path, tokens, type_k=types[0], type_v=types[1])
    scale = float(np.abs(whole).max())
    for label, kw in (("several batches", dict(chunk=7)), ("token by token", dict(chunk=1)),
                      ("n_ubatch 16", dict(n_ubatch=16))):
        other = _logits(gguf, kernel_path, tokens, type_k=types[0], type_v=types[1], **kw)  # type: ignore[arg-type]
        diff = float(np.abs(other - whole).max())
        assert diff <= 1e-6 * scale, f"{label}: max diff {diff}"


def _next_logits(gguf: Path, path: int, tokens: List[int], cache: int, shift: int) -> np.ndarray:
    """Logits of the last token, decoded after the others; with `shift`, every cached position is first
    moved by it (gptneox_memory_seq_add) and the last token goes to its shifted position."""
    with _lib.Model(gguf) as model, _lib.Context(model, n_ctx=128, n_batch=128, n_threads=2, kernel_path=path,
                                                 type_k=cache, type_v=cache) as ctx:
        ctx.decode(tokens[:-1])
        if shift:
            _lib.gptneox_memory_seq_add(_lib.gptneox_get_memory(ctx.ptr), 0, 0, -1, shift)
            ctx.n_past += shift
        ctx.decode(tokens[-1:])
        return np.array(ctx.logits(-1), dtype=np.float64)


@pytest.mark.parametrize("kernel_path", PATHS)
def test_shifted_cache_continues(case: Any, kernel_path: int) -> None:
    """Attention sees relative positions only: after moving every cached position by +9 (K re-rotated
    and, in a Q8_0 cache, re-quantized), the next token at its shifted position gets the logits of the
    unshifted run, up to that re-rounding -- the same order as the F16 cache's, far below a wrong
    rotation's (which the -9 case beside it shows)."""
    _need_path(kernel_path)
    _, gguf, tokens, _, _ = case
    errs = {}
    for cache in (F16, Q8):
        base = _next_logits(gguf, kernel_path, tokens, cache, 0)
        errs[cache] = rel_err(_next_logits(gguf, kernel_path, tokens, cache, 9), base)
    # a rotation by the wrong angle: shift the cache but decode the new token 18 positions off
    with _lib.Model(gguf) as model, _lib.Context(model, n_ctx=128, n_batch=128, n_threads=2,
                                                 kernel_path=kernel_path, type_k=Q8, type_v=Q8) as ctx:
        ctx.decode(tokens[:-1])
        _lib.gptneox_memory_seq_add(_lib.gptneox_get_memory(ctx.ptr), 0, 0, -1, 9)
        ctx.n_past -= 9
        ctx.decode(tokens[-1:])
        off = np.array(ctx.logits(-1), dtype=np.float64)
    wrong = rel_err(off, _next_logits(gguf, kernel_path, tokens, Q8, 0))
    print(f"\nshift +9 [{kernel_path}]: rel_err vs unshifted: F16 cache {errs[F16]:.2e}, Q8_0 cache "
          f"{errs[Q8]:.2e}; the new token 18 positions off: {wrong:.2e}")
    assert errs[F16] <= 1e-4
    assert errs[Q8] <= 2e-3
    assert wrong >= 10 * errs[Q8]


def test_state_round_trip(case: Any) -> None:
    """A Q8_0 context's state (gptneox_state_get/set_data) restores the same next logits, and a state of
    one cache type does not load into a context of another."""
    _, gguf, tokens, _, _ = case
    with _lib.Model(gguf) as model:
        with _lib.Context(model, n_ctx=128, n_batch=128, n_threads=2, type_k=Q8, type_v=Q8) as ctx:
            ctx.decode(tokens[:40])
            size = _lib.gptneox_state_get_size(ctx.ptr)
            buf = (ctypes.c_uint8 * size)()
            assert _lib.gptneox_state_get_data(ctx.ptr, buf, size) == size
            ctx.decode(tokens[40:41])
            expected = ctx.logits(-1)
        with _lib.Context(model, n_ctx=128, n_batch=128, n_threads=2, type_k=Q8, type_v=Q8) as ctx:
            assert _lib.gptneox_state_set_data(ctx.ptr, buf, size) == size
            ctx.n_past = 40
            ctx.decode(tokens[40:41])
            assert ctx.logits(-1) == expected
        with _lib.Context(model, n_ctx=128, n_batch=128, n_threads=2) as ctx:  # F16 cache
            assert _lib.gptneox_state_set_data(ctx.ptr, buf, size) == 0


def test_refused_with_a_message(case: Any, tmp_path: Path) -> None:
    _, gguf, _, _, _ = case
    with _lib.Model(gguf) as model:
        for kw, words in ((dict(type_k=Q8, type_v=F32), "F32"), (dict(type_k=F32, type_v=Q8), "F32"),
                          (dict(type_k=_lib.GPTNEOX_TYPE_Q4_0), r"Q8_0 \(8\)")):
            with pytest.raises(_lib.NeoxError, match=words):
                _lib.Context(model, n_ctx=64, **kw)
    # head dim 16 (hidden 64, 4 heads): Q8_0 blocks are 32 wide
    d = make_hf_model(tmp_path / "hd16", hidden=64, layers=1, heads=4, seed=5)
    small = convert_model(d, tmp_path, "f32", name="hd16")
    with _lib.Model(small) as model:
        with pytest.raises(_lib.NeoxError, match="multiple of 32"):
            _lib.Context(model, n_ctx=64, type_v=Q8)
        with _lib.Context(model, n_ctx=64):  # the default F16 cache is fine
            pass


@pytest.mark.parametrize("flash_attn", [False, True])
def test_llama_type_k_type_v(case: Any, flash_attn: bool) -> None:
    """llama-cpp-python's Llama(type_k=GGML_TYPE_Q8_0, type_v=...) runs on it (llama.cpp wants
    flash_attn=True for a quantized V; ours takes either) with the engine's own logits."""
    from neox_cpp import Llama

    _, gguf, tokens, _, _ = case
    llm = Llama(model_path=str(gguf), n_ctx=128, n_batch=128, n_threads=2, type_k=Q8, type_v=Q8,
                flash_attn=flash_attn, logits_all=True, verbose=False)
    try:
        llm.eval(tokens)
        got = np.array(llm.scores[: len(tokens)], dtype=np.float64)
    finally:
        llm.close()
    want = _logits(gguf, _lib.GPTNEOX_KERNELS_AUTO, tokens)
    assert np.abs(got - want).max() <= 1e-6 * np.abs(want).max()
