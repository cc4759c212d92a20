"""Logits of our engine (libgptneox through neox_cpp._lib) against Hugging Face transformers.

rel_err = ||ours - HF|| / ||HF|| over all positions of a 64-token sequence, HF computed in float64 (and
float32 for the table). Every test runs on each kernel path this CPU supports (SCALAR, AVX2, AVX512).
Run with `pytest -s tests/test_parity.py` to see the rel_err table of the weight types."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Dict, Iterator, List, Tuple

import numpy as np
import pytest

pytest.importorskip("torch")
pytest.importorskip("transformers")
gguf = pytest.importorskip("gguf")

import models  # noqa: E402
from models import (  # noqa: E402
    INTEROP_SHAPE,
    convert_model,
    hf_logits,
    load_hf_model,
    make_hf_model,
    rel_err,
    sample_tokens,
)

try:
    from neox_cpp import _lib
except ImportError as e:  # LibraryNotFoundError: the engine is not built
    if os.environ.get("CI"):  # in CI a missing engine is a failure, not a skip
        raise
    pytest.skip(f"libgptneox is not available: {e}", allow_module_level=True)

SCALAR, AVX2, AVX512 = _lib.GPTNEOX_KERNELS_SCALAR, _lib.GPTNEOX_KERNELS_AVX2, _lib.GPTNEOX_KERNELS_AVX512
AMX = _lib.GPTNEOX_KERNELS_AMX
F32_TYPE = _lib.GPTNEOX_TYPE_F32
PATHS = [pytest.param(p, id=n)
         for p, n in ((SCALAR, "scalar"), (AVX2, "avx2"), (AVX512, "avx512"), (AMX, "amx"))]
N_TOKENS = 64
F32_BOUND = 1e-5


def _need_path(path: int) -> None:
    if not _lib.gptneox_kernel_path_supported(path):
        name = (_lib.gptneox_kernel_path_name(path) or b"?").decode()
        pytest.skip(f"kernel path {name} is not supported by this CPU/build")


class Engine:
    """One model + one context; logits as NumPy arrays."""

    def __init__(self, gguf_path: Path, kernel_path: int, f32_cache: bool = True,
                 n_ubatch: int = 512) -> None:
        self.model = _lib.Model(gguf_path)
        kw: Dict[str, Any] = dict(n_ctx=128, n_batch=512, n_ubatch=n_ubatch, n_threads=2, n_threads_batch=2,
                                  kernel_path=kernel_path)
        if f32_cache:
            kw.update(type_k=F32_TYPE, type_v=F32_TYPE)
        self.ctx = _lib.Context(self.model, **kw)
        self.n_vocab = self.ctx.n_vocab

    def close(self) -> None:
        self.ctx.close()
        self.model.close()

    def __enter__(self) -> Engine:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _outputs(self) -> np.ndarray:
        n = self.ctx.n_outputs()
        ptr = _lib.gptneox_get_logits(self.ctx.ptr)
        assert ptr, "no logits"
        return np.ctypeslib.as_array(ptr, shape=(n, self.n_vocab)).astype(np.float64)

    def logits(self, tokens: List[int], chunk: int = 0) -> np.ndarray:
        """Logits of every position; the prompt goes in chunks of `chunk` tokens (0: one batch)."""
        self.ctx.clear()
        size = chunk or len(tokens)
        rows = []
        for start in range(0, len(tokens), size):
            self.ctx.decode(tokens[start:start + size], logits_all=True)
            rows.append(self._outputs())
        return np.concatenate(rows, axis=0)


# ------------------------------------------------------------------------------------------------
# f32 parity over the model variants

VARIANTS: Dict[str, Dict[str, Any]] = {
    "parallel-rot0.25-bpe-old-safetensors": dict(parallel=True, rotary_pct=0.25, tokenizer="bpe",
                                                 config_style="old", weights="safetensors", seed=11),
    "sequential-rot1.0-spm-new-safetensors": dict(parallel=False, rotary_pct=1.0, tokenizer="spm",
                                                  config_style="new", weights="safetensors", seed=12),
    "parallel-rot0.5-bpe-new-sharded": dict(parallel=True, rotary_pct=0.5, tokenizer="bpe",
                                            config_style="new", weights="sharded", seed=13),
    "sequential-rot0.25-spm-old-bin": dict(parallel=False, rotary_pct=0.25, tokenizer="spm",
                                           config_style="old", weights="bin", seed=14),
    "hidden72-rot0.25-bpe-old-bin": dict(hidden=72, heads=4, parallel=False, rotary_pct=0.25, tokenizer="bpe",
                                         config_style="old", weights="bin", seed=15),
    # rows of 2 KiB multiples (n 512, 3n 1536, n_ff 2048 floats): the forward pass pads the strides of
    # qkv, att_proj, ff and ff_out (gptneox.cpp's padded_row), so this runs every buffer on a padded stride
    "hidden512-rot0.25-bpe-old-safetensors": dict(hidden=512, heads=8, parallel=True, rotary_pct=0.25,
                                                  tokenizer="bpe", config_style="old", weights="safetensors",
                                                  seed=16),
}


@pytest.fixture(scope="module")
def work(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("parity")


_BUILT: Dict[str, Tuple[Path, List[int], np.ndarray]] = {}


def _variant(work: Path, name: str) -> Tuple[Path, List[int], np.ndarray]:
    if name not in _BUILT:
        d = make_hf_model(work / name, **VARIANTS[name])
        tokens = sample_tokens(d, N_TOKENS)
        _BUILT[name] = (d, tokens, hf_logits(d, tokens, "float64"))
    return _BUILT[name]


@pytest.mark.parametrize("kernel_path", PATHS)
@pytest.mark.parametrize("variant", list(VARIANTS))
def test_f32_matches_hf(work: Path, variant: str, kernel_path: int) -> None:
    _need_path(kernel_path)
    hf_dir, tokens, ref = _variant(work, variant)
    path = convert_model(hf_dir, work, "f32", name=variant)
    with Engine(path, kernel_path) as eng:
        ours = eng.logits(tokens)
    assert ours.shape == ref.shape
    err = rel_err(ours, ref)
    print(f"\n{variant} f32 [{kernel_path}]: rel_err {err:.3e}")
    assert err <= F32_BOUND


@pytest.mark.parametrize("kernel_path", PATHS)
def test_padded_rows_f16_cache(work: Path, kernel_path: int) -> None:
    """The padded-stride variant again with the F16 KV cache, whose attention kernels (blocks of queries)
    read Q from the qkv rows at their own stride. Bound: the K/V rounding to f16 alone measured 1.35e-4 on
    every path; a row read at the wrong stride moves the logits by O(1)."""
    _need_path(kernel_path)
    name = "hidden512-rot0.25-bpe-old-safetensors"
    hf_dir, tokens, ref = _variant(work, name)
    path = convert_model(hf_dir, work, "f32", name=name)
    with Engine(path, kernel_path, f32_cache=False) as eng:
        ours = eng.logits(tokens)
    err = rel_err(ours, ref)
    print(f"\n{name} f32, F16 KV [{kernel_path}]: rel_err {err:.3e}")
    assert err <= 5e-4


@pytest.mark.parametrize("kernel_path", PATHS)
def test_f16_hidden72(work: Path, kernel_path: int) -> None:
    """A hidden size that is not a multiple of 32 (head_dim 18, n_rot 4) in F16; the F16 weights alone
    cost an error that we measure with HF on the F16-rounded weights."""
    _need_path(kernel_path)
    name = "hidden72-rot0.25-bpe-old-bin"
    hf_dir, tokens, ref = _variant(work, name)
    path = convert_model(hf_dir, work, "f16", name=name)
    deq = _hf_on_gguf_weights(hf_dir, path, tokens)
    with Engine(path, kernel_path) as eng:
        ours = eng.logits(tokens)
    print(f"\n{name} f16 [{kernel_path}]: rel_err {rel_err(ours, ref):.3e}, "
          f"vs HF on the same f16 weights {rel_err(ours, deq):.3e}")
    assert rel_err(ours, deq) <= 2e-3
    assert rel_err(ours, ref) <= 2e-3


# ------------------------------------------------------------------------------------------------
# one batch, several batches, token by token


@pytest.mark.parametrize("kernel_path", PATHS)
@pytest.mark.parametrize("outtype", ["f32", "f16", "bf16", "q8_0", "q4_0"])
def test_batching_gives_same_logits(work: Path, outtype: str, kernel_path: int) -> None:
    _need_path(kernel_path)
    name = "parallel-rot0.25-bpe-old-safetensors"
    hf_dir, tokens, _ = _variant(work, name)
    path = convert_model(hf_dir, work, outtype, name=name)
    for f32_cache in (True, False):
        with Engine(path, kernel_path, f32_cache=f32_cache) as eng:
            whole = eng.logits(tokens)
            several = eng.logits(tokens, chunk=7)
            single = eng.logits(tokens, chunk=1)
        with Engine(path, kernel_path, f32_cache=f32_cache, n_ubatch=16) as eng:
            ubatched = eng.logits(tokens)  # one decode call, computed by the library in steps of 16
        scale = float(np.abs(whole).max())
        # AMX's Q8_0 / Q4_0 tiles (batches of 16+ tokens) take bf16 activations, the VNNI kernels Q8_0
        # ones: a prompt's logits move between the two by the activations' rounding (measured ~0.9% of
        # the scale here; the Q8_0 activations' own "compute" error in test_weight_type_table is 1.1e-2,
        # the tiles' 4.3e-3), held to 3e-2, below q8_0's rel_err bound vs HF
        tiles = outtype in ("q8_0", "q4_0") and kernel_path == AMX
        regimes = 3e-2 if tiles else 1e-6
        for label, other, ref, tol in (("several batches", several, whole, regimes),
                                       ("token by token", single, several, 1e-6),
                                       ("n_ubatch 16", ubatched, whole, regimes)):
            diff = float(np.abs(other - ref).max())
            assert diff <= tol * scale, f"{label} ({'f32' if f32_cache else 'f16'} cache): max diff {diff}"


# ------------------------------------------------------------------------------------------------
# the rel_err table of the weight types (3-layer model, the interop tests' shape)


def _hf_on_gguf_weights(hf_dir: Path, gguf_path: Path, tokens: List[int]) -> np.ndarray:
    """HF's float64 forward pass with every weight replaced by the dequantized tensor of the GGUF file:
    the error the file's weights cause by themselves."""
    import copy

    import torch

    model = copy.deepcopy(load_hf_model(hf_dir, "float64"))
    cfg = model.config
    n, h = cfg.hidden_size, cfg.num_attention_heads
    hd = n // h
    names = {"token_embd.weight": "gpt_neox.embed_in.weight", "output.weight": "embed_out.weight",
             "output_norm.weight": "gpt_neox.final_layer_norm.weight",
             "output_norm.bias": "gpt_neox.final_layer_norm.bias"}
    per_layer = {"attn_norm": "input_layernorm", "attn_qkv": "attention.query_key_value",
                 "attn_output": "attention.dense", "ffn_norm": "post_attention_layernorm",
                 "ffn_up": "mlp.dense_h_to_4h", "ffn_down": "mlp.dense_4h_to_h"}
    params = dict(model.named_parameters())
    if "embed_out.weight" not in params and "lm_head.weight" in params:
        names["output.weight"] = "lm_head.weight"
    for i in range(cfg.num_hidden_layers):
        for g, hf in per_layer.items():
            for s in ("weight", "bias"):
                names[f"blk.{i}.{g}.{s}"] = f"gpt_neox.layers.{i}.{hf}.{s}"
    with torch.no_grad():
        for t in gguf.GGUFReader(gguf_path).tensors:
            shape = tuple(int(s) for s in reversed(t.shape.tolist()))
            x = np.asarray(gguf.quants.dequantize(t.data, t.tensor_type), dtype=np.float64).reshape(shape)
            if ".attn_qkv." in t.name:  # [Q; K; V] back to HF's per-head interleaving
                x = x.reshape((3, h, hd) + shape[1:]).swapaxes(0, 1).reshape(shape)
            params[names[t.name]].copy_(torch.from_numpy(x))
        out = model(torch.tensor([tokens], dtype=torch.long), use_cache=False)
    return out.logits[0].numpy()


# Upper bounds for rel_err vs HF. F16/Q8_0/Q4_0: llama.cpp's own rel_err on a 3-layer random model of this
# kind (issue 3: f16 1.4e-3, q8_0 3.4e-2, q4_0 3.4e-1); the interop test compares with llama.cpp on the
# very same file. BF16 has 3 fewer mantissa bits than F16: 8x F16's bound.
TABLE_BOUNDS = {"f32": F32_BOUND, "f16": 1.4e-3, "bf16": 1.1e-2, "q8_0": 3.4e-2, "q4_0": 3.4e-1}


@pytest.fixture(scope="module")
def table_case(work: Path) -> Iterator[Tuple[Path, List[int], np.ndarray, np.ndarray]]:
    d = make_hf_model(work / "table3", **INTEROP_SHAPE)  # type: ignore[arg-type]
    tokens = sample_tokens(d, N_TOKENS)
    yield d, tokens, hf_logits(d, tokens, "float64"), hf_logits(d, tokens, "float32")


@pytest.mark.parametrize("kernel_path", PATHS)
def test_weight_type_table(work: Path, table_case: Any, kernel_path: int) -> None:
    _need_path(kernel_path)
    hf_dir, tokens, ref64, ref32 = table_case
    pname = (_lib.gptneox_kernel_path_name(kernel_path) or b"?").decode()
    rows = []
    failures = []
    for outtype, bound in TABLE_BOUNDS.items():
        path = convert_model(hf_dir, work, outtype, name=f"table3-{pname}")
        deq = _hf_on_gguf_weights(hf_dir, path, tokens)
        with Engine(path, kernel_path) as eng:
            ours = eng.logits(tokens)
        with Engine(path, kernel_path, f32_cache=False) as eng:
            ours_f16kv = eng.logits(tokens)
        e64, e32, ew, ec = rel_err(ours, ref64), rel_err(ours, ref32), rel_err(deq, ref64), rel_err(ours, deq)
        ekv = rel_err(ours_f16kv, ref64)
        rows.append((outtype, e64, e32, ekv, ew, ec, bound))
        if not e64 <= bound or not ekv <= max(bound, 1e-4):
            failures.append(f"{outtype}: rel_err {e64:.3e} (f16 KV {ekv:.3e}) > bound {bound:.1e}")
    print(f"\nrel_err vs HF, 3-layer random model (hidden 128, 4 heads, rotary 0.25, parallel), "
          f"{len(tokens)} tokens, kernel path {pname}")
    print(f"{'type':6} {'vs HF f64':>10} {'vs HF f32':>10} {'f16 KV':>10} {'weights':>10} {'compute':>10} "
          f"{'bound':>8}")
    for outtype, e64, e32, ekv, ew, ec, bound in rows:
        print(f"{outtype:6} {e64:10.3e} {e32:10.3e} {ekv:10.3e} {ew:10.3e} {ec:10.3e} {bound:8.1e}")
    print("(weights: HF float64 on the file's dequantized weights vs HF; compute: ours vs that; "
          "f16 KV: ours with the default F16 KV cache)")
    assert not failures, "; ".join(failures)


# ------------------------------------------------------------------------------------------------
# the model shipped in models/

REPO = Path(__file__).resolve().parents[1]
TINY_SPM = models.ARTIFACTS / "legacy" / "hf" / "tiny-spm"
LEGACY_PROMPT = "ある日の暮方の事である。<NL>吾輩は 猫だ。"


def test_shipped_model() -> None:
    """models/tiny-spm-q8_0.gguf: our tokenizer gives sentencepiece's ids, and the logits are within
    Q8_0's own error of HF's."""
    if not TINY_SPM.is_dir():
        pytest.skip(f"{TINY_SPM} (the shipped model's source) is not here")
    import sentencepiece as spm

    path = REPO / "models" / "tiny-spm-q8_0.gguf"
    ids = list(spm.SentencePieceProcessor(model_file=str(TINY_SPM / "spiece.model")).encode(LEGACY_PROMPT))
    with Engine(path, _lib.GPTNEOX_KERNELS_AUTO, f32_cache=False) as eng:
        assert eng.model.tokenize(LEGACY_PROMPT.encode(), add_special=False, parse_special=True) == ids
        ours = eng.logits(ids)
    ref = hf_logits(TINY_SPM, ids, "float64")
    deq = _hf_on_gguf_weights(TINY_SPM, path, ids)
    print(f"\nshipped tiny-spm q8_0: rel_err vs HF {rel_err(ours, ref):.3e}, weights alone "
          f"{rel_err(deq, ref):.3e}, compute {rel_err(ours, deq):.3e}")
    assert rel_err(ours, ref) <= TABLE_BOUNDS["q8_0"]
    assert rel_err(ours, deq) <= TABLE_BOUNDS["q8_0"]
