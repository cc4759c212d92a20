"""Reading the tensors of a Hugging Face checkpoint, lazily, as float32 NumPy arrays.

Supported: model.safetensors, sharded safetensors (model.safetensors.index.json), pytorch_model.bin and
sharded .bin (pytorch_model.bin.index.json). Safetensors files are parsed here (header + np.memmap), so
torch is needed only for .bin checkpoints, and imported only then.
"""

from __future__ import annotations

import json
import struct
from pathlib import Path
from typing import Any, Callable, Dict, List, Tuple

import numpy as np


class WeightsError(Exception):
    """A checkpoint file is missing, unreadable or malformed (turned into ConvertError by convert.py)."""


_ST_DTYPES: Dict[str, Any] = {
    "F32": np.dtype("<f4"),
    "F16": np.dtype("<f2"),
    "F64": np.dtype("<f8"),
    "BF16": np.dtype("<u2"),  # widened to float32 on read
}


class _SafetensorsFile:
    def __init__(self, path: Path) -> None:
        self.path = path
        try:
            size = path.stat().st_size
            with open(path, "rb") as f:
                raw = f.read(8)
                if len(raw) != 8:
                    raise WeightsError(f"{path}: not a safetensors file (shorter than 8 bytes)")
                (hlen,) = struct.unpack("<Q", raw)
                if hlen > size - 8 or hlen > 100 * 1024 * 1024:
                    raise WeightsError(f"{path}: bad safetensors header length {hlen}")
                header = json.loads(f.read(hlen).decode("utf-8"))
        except OSError as e:
            raise WeightsError(f"{path}: cannot read: {e.strerror or e}") from e
        except (UnicodeDecodeError, json.JSONDecodeError) as e:
            raise WeightsError(f"{path}: bad safetensors header: {e}") from e
        if not isinstance(header, dict):
            raise WeightsError(f"{path}: bad safetensors header")
        self.data_start = 8 + hlen
        self.infos: Dict[str, Tuple[str, Tuple[int, ...], int, int]] = {}
        for name, info in header.items():
            if name == "__metadata__":
                continue
            try:
                dtype = str(info["dtype"])
                shape = tuple(int(s) for s in info["shape"])
                begin, end = (int(v) for v in info["data_offsets"])
            except (KeyError, TypeError, ValueError) as e:
                raise WeightsError(f"{path}: bad header entry for {name!r}") from e
            if dtype not in _ST_DTYPES:
                raise WeightsError(f"{path}: tensor {name!r} has unsupported dtype {dtype}")
            n = int(np.prod(shape)) if shape else 1
            if end - begin != n * _ST_DTYPES[dtype].itemsize or begin < 0 or self.data_start + end > size:
                raise WeightsError(f"{path}: tensor {name!r} lies outside the file or has a wrong size")
            self.infos[name] = (dtype, shape, begin, end)

    def load(self, name: str) -> np.ndarray:
        dtype, shape, begin, end = self.infos[name]
        n = int(np.prod(shape)) if shape else 1
        if n == 0:
            return np.zeros(shape, dtype=np.float32)
        mm = np.memmap(self.path, dtype=_ST_DTYPES[dtype], mode="r", offset=self.data_start + begin,
                       shape=(n,))
        if dtype == "BF16":
            arr = (mm.astype(np.uint32) << 16).view(np.float32)
        else:
            arr = np.asarray(mm, dtype=np.float32)
        return arr.reshape(shape)


class _TorchFile:
    def __init__(self, path: Path) -> None:
        self.path = path
        try:
            import torch  # only for .bin checkpoints
        except ImportError as e:
            raise WeightsError(f"{path}: reading pytorch_model.bin needs torch (pip install torch)") from e
        try:
            try:
                sd = torch.load(str(path), weights_only=True, map_location="cpu", mmap=True)
            except RuntimeError:  # legacy (non-zip) format cannot be memory-mapped
                sd = torch.load(str(path), weights_only=True, map_location="cpu")
        except Exception as e:  # torch raises many types for a bad file
            raise WeightsError(f"{path}: cannot load: {e}") from e
        if not isinstance(sd, dict):
            raise WeightsError(f"{path}: not a state dict")
        self.tensors: Dict[str, Any] = {k: v for k, v in sd.items() if isinstance(v, torch.Tensor)}
        self.infos = {k: ("torch", tuple(v.shape), 0, 0) for k, v in self.tensors.items()}

    def load(self, name: str) -> np.ndarray:
        import torch

        return self.tensors[name].detach().to(torch.float32).contiguous().numpy()


class Checkpoint:
    """name -> lazily loaded float32 array, over one or several files."""

    def __init__(self, hf_dir: Path) -> None:
        self.files: List[Path] = []
        self._where: Dict[str, Any] = {}
        opener: Callable[[Path], Any]
        st_single = hf_dir / "model.safetensors"
        st_index = hf_dir / "model.safetensors.index.json"
        pt_single = hf_dir / "pytorch_model.bin"
        pt_index = hf_dir / "pytorch_model.bin.index.json"
        if st_single.is_file():
            files, opener = [st_single], _SafetensorsFile
        elif st_index.is_file():
            files, opener = self._shards(st_index), _SafetensorsFile
        elif pt_single.is_file():
            files, opener = [pt_single], _TorchFile
        elif pt_index.is_file():
            files, opener = self._shards(pt_index), _TorchFile
        else:
            raise WeightsError(
                f"{hf_dir}: no weights found (expected model.safetensors, model.safetensors.index.json, "
                "pytorch_model.bin or pytorch_model.bin.index.json)"
            )
        for path in files:
            f = opener(path)
            self.files.append(path)
            for name in f.infos:
                if name in self._where:
                    raise WeightsError(f"{path}: tensor {name!r} appears in two files")
                self._where[name] = f

    @staticmethod
    def _shards(index: Path) -> List[Path]:
        try:
            data = json.loads(index.read_text(encoding="utf-8"))
            weight_map = data["weight_map"]
            names = sorted(set(str(v) for v in weight_map.values()))
        except (OSError, ValueError, KeyError, TypeError, AttributeError) as e:
            raise WeightsError(f"{index}: bad index file: {e}") from e
        paths = [index.parent / n for n in names]
        for p in paths:
            if not p.is_file():
                raise WeightsError(f"{p}: shard listed in {index.name} is missing")
        return paths

    def names(self) -> List[str]:
        return list(self._where)

    def shape(self, name: str) -> Tuple[int, ...]:
        return tuple(self._where[name].infos[name][1])

    def load(self, name: str) -> np.ndarray:
        return self._where[name].load(name)
