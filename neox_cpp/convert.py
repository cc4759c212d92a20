"""Hugging Face GPTNeoXForCausalLM checkpoint -> GGUF (llama.cpp's `gptneox` architecture).

Keys, key types, tensor names and shapes follow llama.cpp (docs: shared/reference/gguf.md §10, §11, §13):
every 1-D tensor is F32, every matrix is written in the chosen output type (F32, F16, BF16, Q8_0, Q4_0,
quantized bit-exactly like ggml's reference quantizers), and the fused QKV rows are re-ordered from HF's
per-head interleaving to [Q; K; V]. The tokenizer half lives in convert_vocab.py.

The output is written to OUT.tmp-<pid> in the same directory and renamed into place, so OUT is never
half-written, not even after an exception.

    python -m neox_cpp convert HF_DIR -o OUT.gguf --outtype q8_0
"""

from __future__ import annotations

import json
import os
import re
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Dict, List, Optional, Tuple, Union

import numpy as np

from ._convert_quants import FILE_TYPE, GGML_TYPE, OUT_TYPES, QK, encode, encoded_nbytes
from ._convert_weights import Checkpoint, WeightsError

ARCH = "gptneox"
QUANTIZATION_VERSION = 2
SUPPORTED_ARCHITECTURES = ("GPTNeoXForCausalLM",)

PathLike = Union[str, "os.PathLike[str]"]


class ConvertError(Exception):
    """A checkpoint that cannot be converted; the message says which file and why."""


@dataclass
class HParams:
    n_vocab: int
    n_ctx: int
    n_embd: int
    n_layer: int
    n_head: int
    n_ff: int
    n_rot: int
    rope_base: float
    eps: float
    parallel: bool
    tied: bool
    attention_bias: bool
    hidden_act: str
    bos_token_id: Optional[int]
    eos_token_id: Optional[int]


def _need(cfg: Dict[str, Any], key: str, path: Path) -> Any:
    if key not in cfg or cfg[key] is None:
        raise ConvertError(f"{path}: missing key {key!r}")
    return cfg[key]


def _int(cfg: Dict[str, Any], key: str, path: Path) -> int:
    v = _need(cfg, key, path)
    if isinstance(v, bool) or not isinstance(v, int) or v <= 0:
        raise ConvertError(f"{path}: {key} must be a positive integer, got {v!r}")
    return v


def read_config(hf_dir: PathLike) -> Dict[str, Any]:
    d = Path(hf_dir)
    if not d.is_dir():
        raise ConvertError(f"{d}: no such directory")
    path = d / "config.json"
    if not path.is_file():
        raise ConvertError(f"{d}: config.json not found (not a Hugging Face checkpoint directory?)")
    try:
        cfg = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as e:
        raise ConvertError(f"{path}: cannot read: {e}") from e
    if not isinstance(cfg, dict):
        raise ConvertError(f"{path}: not a JSON object")
    return cfg


def read_hparams(hf_dir: PathLike) -> HParams:
    """Model hyper-parameters from config.json, in either spelling (rotary_pct/rotary_emb_base as on the
    Hub, or transformers 5's rope_parameters {rope_theta, partial_rotary_factor})."""
    cfg = read_config(hf_dir)
    path = Path(hf_dir) / "config.json"
    archs = cfg.get("architectures")
    if archs is None:
        if cfg.get("model_type") != "gpt_neox":
            raise ConvertError(f"{path}: no 'architectures' and model_type {cfg.get('model_type')!r}; "
                               f"only {', '.join(SUPPORTED_ARCHITECTURES)} is supported")
    elif not isinstance(archs, list) or not any(a in SUPPORTED_ARCHITECTURES for a in archs):
        raise ConvertError(f"{path}: unsupported architecture {archs!r}; "
                           f"only {', '.join(SUPPORTED_ARCHITECTURES)} is supported")

    n_embd = _int(cfg, "hidden_size", path)
    n_head = _int(cfg, "num_attention_heads", path)
    if n_embd % n_head != 0:
        raise ConvertError(f"{path}: hidden_size {n_embd} is not a multiple of num_attention_heads {n_head}")
    head_dim = n_embd // n_head

    rope = cfg.get("rope_parameters") or {}
    if not isinstance(rope, dict):
        raise ConvertError(f"{path}: rope_parameters must be an object")
    if cfg.get("rotary_pct") is not None:
        rotary_pct = float(cfg["rotary_pct"])
    elif rope.get("partial_rotary_factor") is not None:
        rotary_pct = float(rope["partial_rotary_factor"])
    elif cfg.get("partial_rotary_factor") is not None:
        rotary_pct = float(cfg["partial_rotary_factor"])
    else:
        rotary_pct = 0.25  # GPTNeoXConfig's default
    if cfg.get("rotary_emb_base") is not None:
        rope_base = float(cfg["rotary_emb_base"])
    elif rope.get("rope_theta") is not None:
        rope_base = float(rope["rope_theta"])
    elif cfg.get("rope_theta") is not None:
        rope_base = float(cfg["rope_theta"])
    else:
        rope_base = 10000.0
    scaling = cfg.get("rope_scaling")
    rope_type = rope.get("rope_type", rope.get("type", "default"))
    if scaling or rope_type not in ("default", None):
        raise ConvertError(f"{path}: RoPE scaling ({scaling or rope_type!r}) is not supported")
    n_rot = int(head_dim * rotary_pct)
    if not 0 < rotary_pct <= 1 or n_rot % 2 != 0:
        raise ConvertError(f"{path}: rotary fraction {rotary_pct} gives {n_rot} rotary dims of {head_dim} "
                           "(must be even and > 0)")

    hidden_act = str(cfg.get("hidden_act", "gelu"))
    if hidden_act not in ("gelu", "gelu_fast", "gelu_new", "gelu_pytorch_tanh"):
        raise ConvertError(f"{path}: unsupported hidden_act {hidden_act!r}")

    def opt_id(key: str) -> Optional[int]:
        v = cfg.get(key)
        return v if isinstance(v, int) and not isinstance(v, bool) and v >= 0 else None

    return HParams(
        n_vocab=_int(cfg, "vocab_size", path),
        n_ctx=_int(cfg, "max_position_embeddings", path),
        n_embd=n_embd,
        n_layer=_int(cfg, "num_hidden_layers", path),
        n_head=n_head,
        n_ff=_int(cfg, "intermediate_size", path),
        n_rot=n_rot,
        rope_base=rope_base,
        eps=float(cfg.get("layer_norm_eps", 1e-5)),
        parallel=bool(cfg.get("use_parallel_residual", True)),
        tied=bool(cfg.get("tie_word_embeddings", False)),
        attention_bias=bool(cfg.get("attention_bias", True)),
        hidden_act=hidden_act,
        bos_token_id=opt_id("bos_token_id"),
        eos_token_id=opt_id("eos_token_id"),
    )


# --------------------------------------------------------------------------------------------------
# Tensor plan

# Non-persistent buffers some exports contain; they are not weights.
_DROP = re.compile(r"(^|\.)attention\.(bias|masked_bias)$|(^|\.)rotary_emb\.inv_freq$")

_LAYER_MAP = {
    "input_layernorm.weight": "attn_norm.weight",
    "input_layernorm.bias": "attn_norm.bias",
    "attention.query_key_value.weight": "attn_qkv.weight",
    "attention.query_key_value.bias": "attn_qkv.bias",
    "attention.dense.weight": "attn_output.weight",
    "attention.dense.bias": "attn_output.bias",
    "post_attention_layernorm.weight": "ffn_norm.weight",
    "post_attention_layernorm.bias": "ffn_norm.bias",
    "mlp.dense_h_to_4h.weight": "ffn_up.weight",
    "mlp.dense_h_to_4h.bias": "ffn_up.bias",
    "mlp.dense_4h_to_h.weight": "ffn_down.weight",
    "mlp.dense_4h_to_h.bias": "ffn_down.bias",
}
_GLOBAL_MAP = {
    "gpt_neox.embed_in.weight": "token_embd.weight",
    "gpt_neox.final_layer_norm.weight": "output_norm.weight",
    "gpt_neox.final_layer_norm.bias": "output_norm.bias",
    "embed_out.weight": "output.weight",
    "lm_head.weight": "output.weight",  # the same matrix under transformers 5's in-memory name
}
_LAYER_RE = re.compile(r"^gpt_neox\.layers\.(\d+)\.(.+)$")


@dataclass
class TensorPlan:
    name: str                 # GGUF name
    source: Optional[str]     # HF name (None: zeros, for a model without attention biases)
    shape: Tuple[int, ...]    # NumPy (torch) shape; GGUF ne is the reverse
    out_type: str             # f32 for 1-D tensors, the output type for matrices
    transform: Optional[Callable[[np.ndarray], np.ndarray]] = None

    @property
    def nbytes(self) -> int:
        return encoded_nbytes(self.shape, self.out_type)


def _qkv_permutation(n_head: int, head_dim: int) -> Callable[[np.ndarray], np.ndarray]:
    """HF's per-head [q_h, k_h, v_h] rows -> [Q; K; V] (gptneox-model.md §3), for weight and bias."""

    def permute(x: np.ndarray) -> np.ndarray:
        rest = x.shape[1:]
        y = x.reshape((n_head, 3, head_dim) + rest).swapaxes(0, 1)
        return np.ascontiguousarray(y.reshape((3 * n_head * head_dim,) + rest))

    return permute


def gguf_name(hf_name: str) -> Optional[str]:
    """GGUF name of an HF tensor, or None for a name this converter does not know."""
    if hf_name in _GLOBAL_MAP:
        return _GLOBAL_MAP[hf_name]
    m = _LAYER_RE.match(hf_name)
    if m and m.group(2) in _LAYER_MAP:
        return f"blk.{int(m.group(1))}.{_LAYER_MAP[m.group(2)]}"
    return None


def plan_tensors(ckpt: Checkpoint, hp: HParams, outtype: str, where: str = "") -> List[TensorPlan]:
    """Every GGUF tensor in write order, checked against the checkpoint (names, shapes, divisibility)."""
    by_gguf: Dict[str, str] = {}
    for hf in ckpt.names():
        if _DROP.search(hf):
            continue
        g = gguf_name(hf)
        if g is None:
            raise ConvertError(f"{where}unsupported tensor {hf!r} {list(ckpt.shape(hf))}")
        by_gguf[g] = hf
    n, f, v, hd = hp.n_embd, hp.n_ff, hp.n_vocab, hp.n_embd // hp.n_head
    if "output.weight" not in by_gguf and hp.tied and "token_embd.weight" in by_gguf:
        by_gguf["output.weight"] = by_gguf["token_embd.weight"]

    wanted: List[Tuple[str, Tuple[int, ...]]] = [("token_embd.weight", (v, n))]
    for i in range(hp.n_layer):
        p = f"blk.{i}."
        wanted += [
            (p + "attn_norm.weight", (n,)), (p + "attn_norm.bias", (n,)),
            (p + "attn_qkv.weight", (3 * n, n)), (p + "attn_qkv.bias", (3 * n,)),
            (p + "attn_output.weight", (n, n)), (p + "attn_output.bias", (n,)),
            (p + "ffn_norm.weight", (n,)), (p + "ffn_norm.bias", (n,)),
            (p + "ffn_up.weight", (f, n)), (p + "ffn_up.bias", (f,)),
            (p + "ffn_down.weight", (n, f)), (p + "ffn_down.bias", (n,)),
        ]
    wanted += [("output_norm.weight", (n,)), ("output_norm.bias", (n,)), ("output.weight", (v, n))]
    wanted_names = {w for w, _ in wanted}
    extra = sorted(set(by_gguf) - wanted_names)
    if extra:  # e.g. a layer index >= num_hidden_layers
        raise ConvertError(f"{where}unsupported tensor {by_gguf[extra[0]]!r} (config has "
                           f"{hp.n_layer} layers)")

    qkv = _qkv_permutation(hp.n_head, hd)
    plans: List[TensorPlan] = []
    for name, shape in wanted:
        src = by_gguf.get(name)
        if src is None:
            optional_bias = not hp.attention_bias and (name.endswith("attn_qkv.bias")
                                                       or name.endswith("attn_output.bias"))
            if not optional_bias:
                raise ConvertError(f"{where}missing tensor for {name} in the checkpoint")
        elif ckpt.shape(src) != shape:
            raise ConvertError(f"{where}tensor {src!r} has shape {list(ckpt.shape(src))}, "
                               f"expected {list(shape)} from config.json")
        out_type = outtype if len(shape) == 2 else "f32"
        if out_type in ("q8_0", "q4_0") and shape[-1] % QK != 0:
            raise ConvertError(f"{where}{name}: row length {shape[-1]} is not divisible by {QK}, "
                               f"which {outtype} needs; use --outtype f16 or f32")
        plans.append(TensorPlan(name, src, shape, out_type,
                                qkv if name.split(".")[-2] == "attn_qkv" else None))
    return plans


# --------------------------------------------------------------------------------------------------
# Writing


def require_converter_deps() -> Any:
    """The gguf module, after checking that the converter's dependencies are installed."""
    try:
        import tqdm  # noqa: F401

        import gguf
    except ImportError as e:
        raise ConvertError(f"the converter needs {e.name or 'gguf and tqdm'}: "
                           "pip install 'neox-cpp[convert]'") from e
    return gguf


def _tokenizer_hooks() -> Tuple[Optional[Callable[..., Any]], Optional[Callable[..., Any]]]:
    try:
        from .convert_vocab import add_tokenizer, chat_template_for
    except ImportError:  # the tokenizer half is not there (yet)
        return None, None
    return add_tokenizer, chat_template_for


def add_hparams(writer: Any, hp: HParams, outtype: str, name: str) -> None:
    writer.add_string("general.name", name)
    writer.add_uint32("general.file_type", FILE_TYPE[outtype])
    writer.add_uint32("general.quantization_version", QUANTIZATION_VERSION)
    writer.add_uint32(f"{ARCH}.context_length", hp.n_ctx)
    writer.add_uint32(f"{ARCH}.embedding_length", hp.n_embd)
    writer.add_uint32(f"{ARCH}.block_count", hp.n_layer)
    writer.add_uint32(f"{ARCH}.feed_forward_length", hp.n_ff)
    writer.add_uint32(f"{ARCH}.attention.head_count", hp.n_head)
    writer.add_float32(f"{ARCH}.attention.layer_norm_epsilon", hp.eps)
    writer.add_bool(f"{ARCH}.use_parallel_residual", hp.parallel)
    writer.add_uint32(f"{ARCH}.rope.dimension_count", hp.n_rot)
    writer.add_float32(f"{ARCH}.rope.freq_base", hp.rope_base)
    writer.add_uint32(f"{ARCH}.vocab_size", hp.n_vocab)


def _warn(msg: str) -> None:
    print(f"neox-cpp convert: warning: {msg}", file=sys.stderr)


def write_atomically(out: Path, write: Callable[[Path], None]) -> None:
    """Call write(tmp) on OUT.tmp-<pid> beside OUT, then rename it to OUT; remove tmp on any failure."""
    tmp = out.with_name(f"{out.name}.tmp-{os.getpid()}")
    try:
        write(tmp)
        os.replace(tmp, out)
    except BaseException:
        try:
            tmp.unlink()
        except FileNotFoundError:
            pass
        raise


def convert(hf_dir: PathLike, out: PathLike, outtype: str = "f16", *, name: Optional[str] = None,
            progress: bool = True) -> Path:
    """Convert the checkpoint in hf_dir to the GGUF file `out`. Raises ConvertError."""
    gguf = require_converter_deps()

    if outtype not in OUT_TYPES:
        raise ConvertError(f"unknown output type {outtype!r} (choose from {', '.join(OUT_TYPES)})")
    src_dir = Path(hf_dir)
    hp = read_hparams(src_dir)
    if hp.hidden_act != "gelu":
        _warn(f"hidden_act is {hp.hidden_act!r}; the engine computes the exact erf GELU of 'gelu'")
    try:
        ckpt = Checkpoint(src_dir)
    except WeightsError as e:
        raise ConvertError(str(e)) from e
    plans = plan_tensors(ckpt, hp, outtype, where=f"{src_dir}: ")
    out_path = Path(out)
    if not out_path.parent.is_dir():
        raise ConvertError(f"{out_path.parent}: output directory does not exist")
    model_name = name or src_dir.resolve().name
    add_tokenizer, chat_template_for = _tokenizer_hooks()
    if add_tokenizer is None:
        _warn("neox_cpp.convert_vocab is not available: the file gets no tokenizer")

    def write(tmp: Path) -> None:
        writer = gguf.GGUFWriter(None, ARCH)
        try:
            add_hparams(writer, hp, outtype, model_name)
            if add_tokenizer is not None and chat_template_for is not None:
                try:
                    add_tokenizer(writer, src_dir, hp.n_vocab)
                    template = chat_template_for(src_dir)
                except (ValueError, OSError) as e:  # convert_vocab.VocabError is a ValueError
                    raise ConvertError(str(e)) from e
                if template:
                    writer.add_string("tokenizer.chat_template", template)
            for p in plans:
                writer.add_tensor_info(p.name, p.shape, np.dtype(np.float32), p.nbytes,
                                       raw_dtype=gguf.GGMLQuantizationType(GGML_TYPE[p.out_type]))
            writer.write_header_to_file(tmp)
            writer.write_kv_data_to_file()
            writer.write_ti_data_to_file()
            _write_tensors(writer, ckpt, plans, progress, out_path.name)
        finally:
            writer.close()

    write_atomically(out_path, write)
    return out_path


def _write_tensors(writer: Any, ckpt: Checkpoint, plans: List[TensorPlan], progress: bool,
                   label: str) -> None:
    from tqdm import tqdm

    total = sum(p.nbytes for p in plans)
    with tqdm(total=total, unit="B", unit_scale=True, file=sys.stderr, disable=not progress,
              desc=label, leave=True) as bar:
        for p in plans:
            if p.source is None:
                x = np.zeros(p.shape, dtype=np.float32)
            else:
                try:
                    x = ckpt.load(p.source)
                except WeightsError as e:
                    raise ConvertError(str(e)) from e
            if p.transform is not None:
                x = p.transform(x)
            if not np.all(np.isfinite(x)):
                _warn(f"{p.name} contains NaN or Inf values")
            data = encode(x, p.out_type)
            if data.nbytes != p.nbytes:
                raise ConvertError(f"internal: {p.name} encoded to {data.nbytes} bytes, planned {p.nbytes}")
            writer.write_tensor_data(data)
            bar.update(p.nbytes)
