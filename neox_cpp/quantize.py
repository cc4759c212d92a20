"""Re-quantize a gptneox GGUF file: every matrix to another type, 1-D tensors kept F32.

    python -m neox_cpp quantize IN.gguf OUT.gguf q4_0

All key/value pairs are copied with their exact GGUF types (general.file_type is updated); tensors keep
their order and names. Each matrix is dequantized to float32 (gguf.quants) and encoded again with the
converter's encoders, which match ggml's reference quantizers bit for bit. Re-quantizing an already
quantized file compounds the errors: convert from the Hugging Face checkpoint when you can.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any, List, Tuple

import numpy as np

from ._convert_quants import FILE_TYPE, GGML_TYPE, OUT_TYPES, QK, encode, encoded_nbytes
from .convert import ARCH, ConvertError, PathLike, require_converter_deps, write_atomically


def _copy_kvs(reader: Any, writer: Any, path: Path, file_type: int) -> None:
    """Copy every key/value with its exact type and in its order; general.file_type gets file_type."""
    from gguf import GGUFValueType

    if "general.file_type" not in reader.fields:
        writer.add_uint32("general.file_type", file_type)
    for key, field in reader.fields.items():
        if key.startswith("GGUF.") or key == "general.architecture":  # the writer adds the architecture
            continue
        if key == "general.file_type":
            writer.add_uint32(key, file_type)
            continue
        if not field.types:
            raise ConvertError(f"{path}: key {key!r} has no type")
        vtype = field.types[0]
        if vtype == GGUFValueType.ARRAY:
            sub = field.types[-1]
            if len(field.types) != 2:
                raise ConvertError(f"{path}: key {key!r} is a nested array")
            if not field.data:
                print(f"neox-cpp quantize: warning: dropping empty array {key!r}", file=sys.stderr)
                continue
            if sub == GGUFValueType.STRING:
                val: Any = [bytes(field.parts[i]) for i in field.data]
            else:
                val = field.contents()
            writer.add_key_value(key, val, vtype, sub_type=sub)
        elif vtype == GGUFValueType.STRING:
            writer.add_key_value(key, bytes(field.parts[-1]), vtype)
        else:
            writer.add_key_value(key, field.contents(), vtype)


def _plan(reader: Any, outtype: str, path: Path) -> List[Tuple[Any, Tuple[int, ...], str]]:
    plans = []
    for t in reader.tensors:
        shape = tuple(int(s) for s in reversed(t.shape.tolist()))  # NumPy order: row last
        out_type = outtype if len(shape) >= 2 else "f32"
        if out_type in ("q8_0", "q4_0") and shape[-1] % QK != 0:
            raise ConvertError(f"{path}: {t.name}: row length {shape[-1]} is not divisible by {QK}, "
                               f"which {outtype} needs")
        plans.append((t, shape, out_type))
    return plans


def quantize_file(src: PathLike, dst: PathLike, outtype: str, *, progress: bool = True) -> Path:
    """Write dst: the gptneox GGUF src with its matrices in `outtype`. Raises ConvertError."""
    gguf = require_converter_deps()
    from gguf.quants import dequantize
    from tqdm import tqdm

    if outtype not in OUT_TYPES:
        raise ConvertError(f"unknown output type {outtype!r} (choose from {', '.join(OUT_TYPES)})")
    src_path, dst_path = Path(src), Path(dst)
    if not src_path.is_file():
        raise ConvertError(f"{src_path}: no such file")
    if src_path.resolve() == dst_path.resolve():
        raise ConvertError(f"{dst_path}: output must differ from the input")
    try:
        reader = gguf.GGUFReader(src_path, "r")
    except Exception as e:  # GGUFReader raises ValueError and friends on a bad file
        raise ConvertError(f"{src_path}: not a readable GGUF file: {e}") from e
    arch_field = reader.fields.get("general.architecture")
    arch = arch_field.contents() if arch_field is not None else None
    if arch != ARCH:
        raise ConvertError(f"{src_path}: architecture {arch!r}, expected {ARCH!r}")
    plans = _plan(reader, outtype, src_path)

    def write(tmp: Path) -> None:
        writer = gguf.GGUFWriter(None, ARCH)
        try:
            _copy_kvs(reader, writer, src_path, FILE_TYPE[outtype])
            for t, shape, out_type in plans:
                writer.add_tensor_info(t.name, shape, np.dtype(np.float32), encoded_nbytes(shape, out_type),
                                       raw_dtype=gguf.GGMLQuantizationType(GGML_TYPE[out_type]))
            writer.write_header_to_file(tmp)
            writer.write_kv_data_to_file()
            writer.write_ti_data_to_file()
            total = sum(encoded_nbytes(s, o) for _, s, o in plans)
            with tqdm(total=total, unit="B", unit_scale=True, file=sys.stderr, disable=not progress,
                      desc=dst_path.name) as bar:
                for t, shape, out_type in plans:
                    try:
                        x = np.asarray(dequantize(t.data, t.tensor_type), dtype=np.float32).reshape(shape)
                    except NotImplementedError as e:
                        raise ConvertError(f"{src_path}: {t.name}: cannot dequantize type "
                                           f"{t.tensor_type.name}") from e
                    writer.write_tensor_data(encode(x, out_type))
                    bar.update(encoded_nbytes(shape, out_type))
        finally:
            writer.close()

    write_atomically(dst_path, write)
    return dst_path
