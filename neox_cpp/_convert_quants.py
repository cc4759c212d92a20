"""Weight encodings written by the converter and the quantizer, in NumPy.

Each encoder takes a float32 array whose last axis is a row (GGUF ne0) and returns the bytes of the
encoded tensor as a uint8 array. Q8_0 and Q4_0 reproduce ggml's reference quantizers
(quantize_row_q8_0_ref / quantize_row_q4_0_ref, see quant-formats.md) bit for bit: the arithmetic is done
in float32 in the same order as the C code, and the roundings are the C ones (roundf = half away from
zero, an (int8_t) cast = truncation toward zero, f32->f16 = round to nearest even).
"""

from __future__ import annotations

from typing import Callable, Dict

import numpy as np

QK = 32  # elements per block of Q8_0 and Q4_0

# ggml type ids (GGUF tensor types) and llama_ftype ids (general.file_type) of the output types.
GGML_TYPE = {"f32": 0, "f16": 1, "q4_0": 2, "q8_0": 8, "bf16": 30}
FILE_TYPE = {"f32": 0, "f16": 1, "q4_0": 2, "q8_0": 7, "bf16": 32}
BLOCK_BYTES = {"q8_0": 34, "q4_0": 18}
OUT_TYPES = ("f32", "f16", "bf16", "q8_0", "q4_0")


def _blocks(x: np.ndarray) -> np.ndarray:
    x = np.ascontiguousarray(x, dtype=np.float32)
    if x.shape[-1] % QK != 0:
        raise ValueError(f"row length {x.shape[-1]} is not a multiple of {QK}")
    return x.reshape(-1, QK)


def _roundf(v: np.ndarray) -> np.ndarray:
    """C roundf on float32 values: half away from zero (exact in float64)."""
    d = v.astype(np.float64)
    return np.sign(d) * np.floor(np.abs(d) + 0.5)


def quantize_q8_0(x: np.ndarray) -> np.ndarray:
    b = _blocks(x)
    amax = np.abs(b).max(axis=1)
    d = amax / np.float32(127.0)  # float32 / float32
    with np.errstate(divide="ignore"):
        inv = np.where(d != 0, np.float32(1.0) / d, np.float32(0.0)).astype(np.float32)
    q = _roundf(b * inv[:, None]).astype(np.int8)
    out = np.empty((b.shape[0], 34), dtype=np.uint8)
    out[:, 0:2] = d.astype("<f2").reshape(-1, 1).view(np.uint8)
    out[:, 2:] = q.view(np.uint8)
    return out.reshape(-1)


def quantize_q4_0(x: np.ndarray) -> np.ndarray:
    b = _blocks(x)
    idx = np.abs(b).argmax(axis=1)  # first index of the largest |x| (ggml: strict '<')
    mx = b[np.arange(b.shape[0]), idx]
    d = mx / np.float32(-8.0)
    with np.errstate(divide="ignore"):
        inv = np.where(d != 0, np.float32(1.0) / d, np.float32(0.0)).astype(np.float32)
    v = b * inv[:, None] + np.float32(8.5)  # float32 multiply, then float32 add, as in C
    q = np.minimum(np.trunc(v), 15).astype(np.uint8)  # (int8_t) cast truncates; values are >= 0 here
    out = np.empty((b.shape[0], 18), dtype=np.uint8)
    out[:, 0:2] = d.astype("<f2").reshape(-1, 1).view(np.uint8)
    out[:, 2:] = q[:, :16] | (q[:, 16:] << 4)
    return out.reshape(-1)


def encode_f32(x: np.ndarray) -> np.ndarray:
    return np.ascontiguousarray(x, dtype="<f4").reshape(-1).view(np.uint8)


def encode_f16(x: np.ndarray) -> np.ndarray:
    return np.ascontiguousarray(x, dtype=np.float32).astype("<f2").reshape(-1).view(np.uint8)


def encode_bf16(x: np.ndarray) -> np.ndarray:
    bits = np.ascontiguousarray(x, dtype=np.float32).reshape(-1).view(np.uint32).astype(np.uint64)
    rounded = ((bits + 0x7FFF + ((bits >> 16) & 1)) >> 16).astype(np.uint16)
    nan = np.isnan(np.ascontiguousarray(x, dtype=np.float32).reshape(-1))
    if nan.any():
        rounded[nan] = ((bits[nan] >> 16) | 0x40).astype(np.uint16)
    return rounded.astype("<u2").view(np.uint8)


ENCODERS: Dict[str, Callable[[np.ndarray], np.ndarray]] = {
    "f32": encode_f32,
    "f16": encode_f16,
    "bf16": encode_bf16,
    "q8_0": quantize_q8_0,
    "q4_0": quantize_q4_0,
}


def encoded_nbytes(shape: tuple, out_type: str) -> int:
    """Bytes of a tensor of NumPy shape `shape` (last axis = row) encoded as `out_type`."""
    n = int(np.prod(shape)) if shape else 1
    if out_type in BLOCK_BYTES:
        return n // QK * BLOCK_BYTES[out_type]
    return n * (4 if out_type == "f32" else 2)


_CHUNK_ELEMENTS = 1 << 22  # encode big matrices a slice of rows at a time, to bound temporary memory


def encode(x: np.ndarray, out_type: str) -> np.ndarray:
    """The bytes of x (float32, last axis = row) encoded as out_type, as a flat uint8 array."""
    fn = ENCODERS[out_type]
    if x.ndim < 2 or x.size <= _CHUNK_ELEMENTS:
        return fn(x)
    rows = x.reshape(-1, x.shape[-1])
    step = max(1, _CHUNK_ELEMENTS // rows.shape[1])
    return np.concatenate([fn(rows[i:i + step]) for i in range(0, rows.shape[0], step)])
