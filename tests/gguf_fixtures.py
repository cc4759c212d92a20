"""Tiny valid `gptneox` GGUF files written with the `gguf` package (GGUFWriter), for loader tests.

write_tiny_model() writes every key and tensor llama.cpp's gptneox loader requires (gguf.md §10-§11) for
a small random model (default: 2 layers, n_embd 64, 4 heads, n_ff 256) with a small byte-level BPE
vocabulary (the 256 byte symbols, a few merges, <|endoftext|>). Keyword options let a test drop keys or
tensors, change a key's value or type, or change a tensor's shape or type, so corrupt-file tests can start
from a file that is known to load.

tensor_layout() reads back where each tensor's data lives (absolute file offsets), so a test can cut or
patch a file at a precise place.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Dict, Iterable, List, Optional, Tuple, Union

import numpy as np

import gguf

PathLike = Union[str, "os.PathLike[str]"]
VT = gguf.GGUFValueType

# key -> (value, type); the architecture is written by GGUFWriter itself.
Keys = Dict[str, Tuple[Any, VT]]


def byte_symbols() -> List[str]:
    """GPT-2's bytes_to_unicode symbols, one per byte, in byte order."""
    printable = list(range(0x21, 0x7F)) + list(range(0xA1, 0xAD)) + list(range(0xAE, 0x100))
    out: List[str] = []
    extra = 0
    for b in range(256):
        if b in printable:
            out.append(chr(b))
        else:
            out.append(chr(0x100 + extra))
            extra += 1
    return out


def tiny_vocab() -> Tuple[List[str], List[int], List[str]]:
    """(tokens, token types, merges): <|endoftext|>, the 256 byte symbols, and three merged tokens."""
    merges = ["h e", "l l", "he ll"]
    tokens = ["<|endoftext|>"] + byte_symbols() + ["he", "ll", "hell"]
    types = [3] + [1] * (len(tokens) - 1)  # 3 = CONTROL, 1 = NORMAL
    return tokens, types, merges


def default_keys(
    n_layer: int = 2, n_embd: int = 64, n_head: int = 4, n_ff: int = 256, n_ctx: int = 128, ftype: int = 0
) -> Keys:
    tokens, types, merges = tiny_vocab()
    return {
        "general.name": ("tiny-gptneox", VT.STRING),
        "general.file_type": (ftype, VT.UINT32),
        "general.quantization_version": (2, VT.UINT32),
        "gptneox.context_length": (n_ctx, VT.UINT32),
        "gptneox.embedding_length": (n_embd, VT.UINT32),
        "gptneox.block_count": (n_layer, VT.UINT32),
        "gptneox.feed_forward_length": (n_ff, VT.UINT32),
        "gptneox.attention.head_count": (n_head, VT.UINT32),
        "gptneox.rope.dimension_count": (n_embd // n_head // 2, VT.UINT32),
        "gptneox.attention.layer_norm_epsilon": (1e-5, VT.FLOAT32),
        "gptneox.use_parallel_residual": (True, VT.BOOL),
        "tokenizer.ggml.model": ("gpt2", VT.STRING),
        "tokenizer.ggml.tokens": (tokens, VT.ARRAY),
        "tokenizer.ggml.token_type": (types, VT.ARRAY),
        "tokenizer.ggml.merges": (merges, VT.ARRAY),
        "tokenizer.ggml.bos_token_id": (0, VT.UINT32),
        "tokenizer.ggml.eos_token_id": (0, VT.UINT32),
        "tokenizer.chat_template": ("{% for m in messages %}{{ m['content'] }}{% endfor %}", VT.STRING),
    }


_ARRAY_SUBTYPES = {
    "tokenizer.ggml.tokens": VT.STRING,
    "tokenizer.ggml.merges": VT.STRING,
    "tokenizer.ggml.token_type": VT.INT32,
}


def tensor_shapes(n_layer: int, n_embd: int, n_ff: int, n_vocab: int) -> Dict[str, Tuple[int, ...]]:
    """GGUF name -> NumPy shape (row-major, so the GGUF ne is the reverse)."""
    n = n_embd
    shapes: Dict[str, Tuple[int, ...]] = {"token_embd.weight": (n_vocab, n)}
    for i in range(n_layer):
        b = f"blk.{i}."
        shapes.update(
            {
                b + "attn_norm.weight": (n,),
                b + "attn_norm.bias": (n,),
                b + "attn_qkv.weight": (3 * n, n),
                b + "attn_qkv.bias": (3 * n,),
                b + "attn_output.weight": (n, n),
                b + "attn_output.bias": (n,),
                b + "ffn_norm.weight": (n,),
                b + "ffn_norm.bias": (n,),
                b + "ffn_up.weight": (n_ff, n),
                b + "ffn_up.bias": (n_ff,),
                b + "ffn_down.weight": (n, n_ff),
                b + "ffn_down.bias": (n,),
            }
        )
    shapes.update({"output_norm.weight": (n,), "output_norm.bias": (n,), "output.weight": (n_vocab, n)})
    return shapes


_MATRIX_TYPES = {
    "f32": gguf.GGMLQuantizationType.F32,
    "f16": gguf.GGMLQuantizationType.F16,
    "bf16": gguf.GGMLQuantizationType.BF16,
    "q8_0": gguf.GGMLQuantizationType.Q8_0,
    "q4_0": gguf.GGMLQuantizationType.Q4_0,
    # valid GGUF types this build does not compute with (for "not supported" tests)
    "q4_1": gguf.GGMLQuantizationType.Q4_1,
    "q5_0": gguf.GGMLQuantizationType.Q5_0,
}
_FTYPES = {"f32": 0, "f16": 1, "q4_0": 2, "q4_1": 3, "q8_0": 7, "q5_0": 8, "bf16": 32}


def _encode(arr: np.ndarray, qtype: gguf.GGMLQuantizationType) -> Tuple[np.ndarray, Optional[Any]]:
    if qtype == gguf.GGMLQuantizationType.F32:
        return arr.astype(np.float32), None
    if qtype == gguf.GGMLQuantizationType.F16:
        return arr.astype(np.float16), None
    return gguf.quants.quantize(arr.astype(np.float32), qtype), qtype


def write_tiny_model(
    path: PathLike,
    *,
    n_layer: int = 2,
    n_embd: int = 64,
    n_head: int = 4,
    n_ff: int = 256,
    n_ctx: int = 128,
    n_vocab: Optional[int] = None,
    matrix_type: str = "f32",
    arch: str = "gptneox",
    seed: int = 0,
    drop_keys: Iterable[str] = (),
    set_keys: Optional[Keys] = None,
    drop_tensors: Iterable[str] = (),
    tensor_shape: Optional[Dict[str, Tuple[int, ...]]] = None,
    tensor_type: Optional[Dict[str, str]] = None,
    extra_tensors: Optional[Dict[str, np.ndarray]] = None,
) -> Path:
    """Write a tiny gptneox GGUF to `path` and return it.

    drop_keys / set_keys (key -> (value, GGUFValueType)) edit the metadata; drop_tensors, tensor_shape
    (name -> NumPy shape) and tensor_type (name -> a key of _MATRIX_TYPES) edit the tensors.
    n_vocab defaults to the number of tokens of the tiny vocabulary.
    """
    path = Path(path)
    tokens, _, _ = tiny_vocab()
    n_vocab = len(tokens) if n_vocab is None else n_vocab
    keys = default_keys(n_layer, n_embd, n_head, n_ff, n_ctx, _FTYPES[matrix_type])
    for k in drop_keys:
        keys.pop(k, None)
    keys.update(set_keys or {})

    w = gguf.GGUFWriter(str(path), arch)
    for k, (v, t) in keys.items():
        if t == VT.ARRAY:
            w.add_key_value(k, v, t, sub_type=_ARRAY_SUBTYPES.get(k))
        else:
            w.add_key_value(k, v, t)

    rng = np.random.default_rng(seed)
    shapes = tensor_shapes(n_layer, n_embd, n_ff, n_vocab)
    shapes.update(tensor_shape or {})
    dropped = set(drop_tensors)
    types = tensor_type or {}
    for name, shape in shapes.items():
        if name in dropped:
            continue
        arr = (rng.standard_normal(shape) * 0.05).astype(np.float32)
        kind = types.get(name, matrix_type if len(shape) == 2 else "f32")
        data, raw = _encode(arr, _MATRIX_TYPES[kind])
        if raw is None:
            w.add_tensor(name, data)
        else:
            w.add_tensor(name, data, raw_dtype=raw)
    for name, arr in (extra_tensors or {}).items():
        w.add_tensor(name, arr)

    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_tensors_to_file()
    w.close()
    return path


def tensor_layout(path: PathLike) -> Dict[str, Tuple[int, int]]:
    """name -> (absolute file offset of the data, number of bytes), read back with GGUFReader."""
    r = gguf.GGUFReader(str(path))
    return {t.name: (int(t.data_offset), int(t.n_bytes)) for t in r.tensors}


def header_offsets(path: PathLike) -> Dict[str, int]:
    """Offsets of a few header fields: 'version', 'tensor_count', 'kv_count', 'first_key' (fixed by the
    format), and 'kv:<key>' = the offset of that key's u32 type field."""
    r = gguf.GGUFReader(str(path))
    out = {"version": 4, "tensor_count": 8, "kv_count": 16, "first_key": 24}
    for name, field in r.fields.items():
        if name.startswith("GGUF."):
            continue
        # parts: key length, key bytes, value type, value...; field.offset is where the key starts
        out["kv:" + name] = int(field.offset) + 8 + len(name.encode("utf-8"))
    return out
