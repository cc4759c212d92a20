"""CTranslate2 int8 as a bench peer (issue 6): the same HF checkpoint converted with CTranslate2's
Transformers converter (`--quantization int8`), run by `ctranslate2.Generator` on the CPU with
`inter_threads=1, intra_threads=<threads>`.

Timings, matched to what the other engines measure:
  pp(tokens)  one `forward_batch` of the whole prompt from an empty state. CTranslate2 has no
              "logits of the last position only", so it also projects every position to the
              vocabulary (for rinna-3.6B: +2.5% of the prompt's multiply-adds; stated in the table note).
  tg(tokens)  `generate_batch` from tokens[0] with greedy search and min_length = max_length = n:
              the start token's forward pass plus n - 1 single-token steps = n forward passes, the
              same count as n single-token decodes; EOS cannot end it early.

The converted model is cached next to the GGUFs (`<cache>/<checkpoint name>-ct2-int8/`, with a
`.complete` marker written last, holding the converter's peak RSS). `prepare_watched` runs the conversion
in a subprocess (`python bench/ctranslate2_engine.py convert HF_DIR CACHE`) whose resident memory is
polled and capped, so its memory is given back before anything is timed.

The AVX2-limited variant needs three settings, read when the libraries load, so it runs in a worker
process of its own (bench/worker.py, bench/engines.py): CT2_FORCE_CPU_ISA=AVX2 for CTranslate2's own
kernels (which pick AVX2 on AMD CPUs anyway), ONEDNN_MAX_CPU_ISA=AVX2 for its int8 GEMM (oneDNN 3.1 on
non-Intel CPUs: AVX-512 VNNI here unless limited) and MKL_ENABLE_INSTRUCTIONS=AVX2 (MKL, used on Intel).
CTranslate2's int8 GEMM backend and ISA show with CT2_VERBOSE=1 and ONEDNN_VERBOSE=1.
"""

from __future__ import annotations

import json
import os
import shutil
import struct
import sys
import time
from pathlib import Path
from typing import Any, BinaryIO, Dict, List, Optional, Sequence, Tuple


def available() -> Optional[str]:
    """None if CTranslate2 can run here, else why not."""
    try:
        import ctranslate2
    except ImportError:
        return "ctranslate2 is not installed (pip install ctranslate2==4.8.5)"
    if "int8" not in ctranslate2.get_supported_compute_types("cpu"):
        return "this CTranslate2 build has no int8 on the CPU"
    return None


def prepare(hf_dir: Path, cache: Path) -> Path:
    """Convert hf_dir to a CTranslate2 int8 model under cache (once); returns its directory."""
    out = Path(cache) / f"{Path(hf_dir).name}-ct2-int8"
    if (out / ".complete").exists():
        return out
    from ctranslate2.converters import TransformersConverter

    class _Converter(TransformersConverter):  # type: ignore[misc]
        def load_model(self, model_class: Any, model_name_or_path: str, **kwargs: Any) -> Any:
            model = super().load_model(model_class, model_name_or_path, **kwargs)
            # CTranslate2 4.8.5 reads config.rotary_pct and model.embed_out, which recent transformers
            # name rope_parameters["partial_rotary_factor"] and lm_head
            cfg = model.config
            if not hasattr(cfg, "rotary_pct"):
                rp = getattr(cfg, "rope_parameters", None) or {}
                default = getattr(cfg, "partial_rotary_factor", 1.0)
                cfg.rotary_pct = float(rp.get("partial_rotary_factor", default))
            if not hasattr(model, "embed_out") and hasattr(model, "lm_head"):
                model.embed_out = model.lm_head  # the output matrix's older attribute name
            return model

    tmp = out.with_name(out.name + ".tmp")
    if tmp.exists():
        shutil.rmtree(tmp)
    # f16 load and low_cpu_mem_usage: a 3.6B checkpoint then needs ~7 GB of RAM to convert, not 15
    conv = _Converter(str(hf_dir), load_as_float16=True, low_cpu_mem_usage=True)
    conv.convert(str(tmp), quantization="int8", force=True)
    if out.exists():
        shutil.rmtree(out)
    tmp.rename(out)
    (out / ".complete").write_text(json.dumps({"peak_rss": _vm_hwm()}) + "\n", encoding="utf-8")
    return out


def _vm_hwm() -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) * 1024
    return 0


def model_dir_for(hf_dir: Path, cache: Path) -> Path:
    return Path(cache) / f"{Path(hf_dir).name}-ct2-int8"


def conversion_peak_rss(model_dir: Path) -> Optional[int]:
    """Peak RSS (bytes) the conversion of a cached model took, if it was recorded."""
    try:
        return int(json.loads((Path(model_dir) / ".complete").read_text())["peak_rss"])
    except (OSError, ValueError, KeyError, TypeError):
        return None


def prepare_watched(hf_dir: Path, cache: Path, limit_bytes: int = 20 * 10**9) -> Tuple[Path, Optional[int]]:
    """prepare() in a subprocess whose RSS is capped at limit_bytes (killed beyond). Returns the model
    directory and the conversion's peak RSS in bytes."""
    out = model_dir_for(hf_dir, cache)
    if not (out / ".complete").exists():
        here = Path(__file__).resolve()
        sys.path.insert(0, str(here.parent))
        import sysinfo

        cmd = [sys.executable, str(here), "convert", str(hf_dir), str(cache)]
        rc, polled = sysinfo.run_watched(cmd, limit_bytes)
        if rc != 0 or not (out / ".complete").exists():
            raise RuntimeError(f"CTranslate2 conversion of {hf_dir} failed (exit code {rc})")
        return out, max(polled, conversion_peak_rss(out) or 0)
    return out, conversion_peak_rss(out)


def _read_string(f: BinaryIO) -> str:
    (n,) = struct.unpack("<H", f.read(2))
    return f.read(n)[:-1].decode("utf-8")


def variables(model_dir: Path) -> Dict[str, Tuple[Tuple[int, ...], int]]:
    """{name: (shape, bytes)} of model.bin (CTranslate2's binary layout: version, spec name, revision,
    count, then per variable: name, rank, dims, dtype id, byte count, data)."""
    out: Dict[str, Tuple[Tuple[int, ...], int]] = {}
    with open(Path(model_dir) / "model.bin", "rb") as f:
        f.read(4)  # binary version
        _read_string(f)  # spec name
        f.read(4)  # revision
        (count,) = struct.unpack("<I", f.read(4))
        for _ in range(count):
            name = _read_string(f)
            (rank,) = struct.unpack("<B", f.read(1))
            dims = struct.unpack(f"<{rank}I", f.read(4 * rank)) if rank else ()
            f.read(1)  # dtype id
            (nbytes,) = struct.unpack("<I", f.read(4))
            f.seek(nbytes, os.SEEK_CUR)
            out[name] = (tuple(dims), nbytes)
    return out


def bytes_per_token(model_dir: Path) -> int:
    """Bytes of model.bin variables read to generate one token: all but the embedding table (one row)."""
    return sum(b for name, (_, b) in variables(model_dir).items() if "embeddings" not in name)


def _vocabulary(model_dir: Path) -> List[str]:
    """Token strings by id, as the converter wrote them (vocabulary.json, or .txt in older versions)."""
    js = model_dir / "vocabulary.json"
    if js.exists():
        return list(json.loads(js.read_text(encoding="utf-8")))
    return (model_dir / "vocabulary.txt").read_text(encoding="utf-8").split("\n")


class CTranslate2Runner:
    """pp/tg timings of a converted model (see the module docstring)."""

    name = "CTranslate2"
    weights = "int8"

    def __init__(self, model_dir: Path, n_threads: int) -> None:
        import ctranslate2

        self._gen: Any = ctranslate2.Generator(
            str(model_dir), device="cpu", compute_type="int8", inter_threads=1, intra_threads=n_threads
        )
        self._vocab = _vocabulary(Path(model_dir))

    def kernel_info(self) -> str:
        import ctranslate2

        limits = [f"{k}={os.environ[k]}" for k in ("CT2_FORCE_CPU_ISA", "ONEDNN_MAX_CPU_ISA",
                                                   "MKL_ENABLE_INSTRUCTIONS") if os.environ.get(k)]
        return f"ctranslate2 {ctranslate2.__version__}" + (f" ({', '.join(limits)})" if limits else "")

    def pp(self, tokens: Sequence[int]) -> float:
        t = time.perf_counter()
        self._gen.forward_batch([list(map(int, tokens))])
        return time.perf_counter() - t

    def tg(self, tokens: Sequence[int]) -> float:
        n = len(tokens)
        start = [self._vocab[int(tokens[0])]]
        t = time.perf_counter()
        res = self._gen.generate_batch(
            [start], max_length=n, min_length=n, sampling_topk=1, include_prompt_in_result=False
        )
        dt = time.perf_counter() - t
        got = len(res[0].sequences_ids[0])
        if got != n:
            raise RuntimeError(f"CTranslate2 generated {got} tokens, asked for {n}")
        return dt

    def logits(self, tokens: Sequence[int]) -> Any:
        """[n_tokens, n_vocab] logits of every position (for checks, not timing)."""
        import numpy as np

        out = self._gen.forward_batch([list(map(int, tokens))])
        return np.asarray(out)[0].astype(np.float32)

    def close(self) -> None:
        self._gen = None


if __name__ == "__main__":
    if len(sys.argv) != 4 or sys.argv[1] != "convert":
        sys.exit("usage: ctranslate2_engine.py convert HF_DIR CACHE")
    t0 = time.perf_counter()
    d = prepare(Path(sys.argv[2]), Path(sys.argv[3]))
    print(f"converted to {d} in {time.perf_counter() - t0:.0f}s, peak RSS {_vm_hwm() / 1e9:.2f} GB",
          file=sys.stderr)
