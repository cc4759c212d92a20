"""Rooflines: what the hardware allows, to put each measured speed against.

- Generation (tg) is bound by memory: roofline tokens/s = read bandwidth ÷ bytes of weights read per
  token of that engine's own file/format (GGUF tensors, CTranslate2 model.bin variables, torch parameters;
  all but the input embedding, of which one row is read).
- Prompts (pp) are bound by compute: multiply-adds (MACs) per second ÷ the peak MAC rate of the matrix
  instruction the engine's kernels use on this CPU, measured by bench/peak.c with the same thread count.

MACs of a prompt of n tokens from an empty cache, counted exactly from the shape (e = n_embd, f = n_ff,
L = n_layer, V = n_vocab):
  weights:   n × L × (3e·e + e·e + 2·e·f)     every weight matrix is one MAC per weight per token
  attention: L × 2 × e × n(n+1)/2            QK^T and AV over the causal prefix (all heads together)
  output:    k × e × V                       k = 1 (logits of the last position only; CTranslate2: n)
"""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path
from typing import Dict, Optional, Tuple

from checkpoint import Shape

HERE = Path(__file__).resolve().parent

# Which measured peak (bench/peak.c kernel names) an engine's prompt kernels are held against: the best
# rate of each family (e.g. VNNI on ymm and on zmm: Zen 4 runs both at 64 MACs/cycle, Intel zmm faster).
FAMILIES = {
    "amx": ("amx_int8",),
    "amx_bf16": ("amx_bf16",),
    "vnni": ("avx512_vnni", "avx512_vnni256", "avx_vnni"),
    "avx2_int8": ("avx2_int8",),
    "fma": ("fma512_f32", "fma256_f32"),
    "fma256": ("fma256_f32",),
    "bf16dp": ("avx512_bf16",),
}


def layer_matmul_macs(s: Shape) -> int:
    """MACs of the weight matrices of one layer for one token."""
    e, f = s.n_embd, s.n_ff
    return 3 * e * e + e * e + 2 * e * f


def pp_macs(s: Shape, n: int, all_logits: bool = False) -> int:
    """MACs of a prompt of n tokens from an empty cache (see the module docstring)."""
    weights = n * s.n_layer * layer_matmul_macs(s)
    attention = s.n_layer * 2 * s.n_embd * n * (n + 1) // 2
    output = (n if all_logits else 1) * s.n_embd * s.n_vocab
    return weights + attention + output


def measure_peaks(threads: int, cache: Path, ms: int = 300) -> Dict[str, float]:
    """{kernel: GMAC/s} from bench/peak.c with `threads` threads ({} if it cannot be built or run).
    peak.c runs only the kernels whose instructions this CPU has (cpuid)."""
    cc = shutil.which("gcc") or shutil.which("cc")
    if cc is None:
        return {}
    exe = cache / "peak"
    src = HERE / "peak.c"
    if not exe.exists() or exe.stat().st_mtime < src.stat().st_mtime:
        cache.mkdir(parents=True, exist_ok=True)
        cmd = [cc, "-O2", "-pthread", "-o", str(exe), str(src)]
        res = subprocess.run(cmd, capture_output=True, text=True)
        if res.returncode != 0:
            return {}
    res = subprocess.run([str(exe), str(threads), str(ms)], capture_output=True, text=True)
    if res.returncode != 0:
        return {}
    out: Dict[str, float] = {}
    for line in res.stdout.splitlines():
        parts = line.split()
        if len(parts) >= 2:
            out[parts[0]] = float(parts[1])
    return out


def best_peaks(a: Dict[str, float], b: Dict[str, float]) -> Dict[str, float]:
    """Kernel-wise maximum of two measurements (a busy machine only ever lowers a peak)."""
    return {k: max(a.get(k, 0.0), b.get(k, 0.0)) for k in set(a) | set(b)}


def engine_isa(engine: str, wtype: str, peaks: Dict[str, float]) -> Optional[str]:
    """The instruction family (FAMILIES) an engine's prompt matrix products are held against on this CPU.
    Integer rows (q8_0/q4_0/int8): on a CPU with AMX, our default path's tiles are AMX-BF16 (it dequantizes
    Q8_0 / Q4_0 to bf16 for prompts) and CTranslate2's oneDNN uses AMX-INT8; else VNNI, else AVX2
    vpmaddubsw; VNNI for engines limited to AVX-512 (our "avx512" row) and AVX2 for engines limited to it
    (llama.cpp's AVX2 build, CTranslate2 with CT2_FORCE_CPU_ISA=AVX2, our AVX2 path).
    Float rows (f16/bf16/f32): the best f32 FMA (ymm only for the AVX2-limited); bf16 rows of engines
    that multiply bf16 pairs (ours and torch) against AMX-BF16 tiles where the CPU has them, else
    VDPBF16PS where it has that."""
    avx2_only = "AVX2" in engine or "avx2" in engine or engine.startswith("llama.cpp")
    if wtype == "bf16" and not avx2_only:
        fams: Tuple[str, ...] = ("amx_bf16", "bf16dp", "fma")
    elif wtype in ("f16", "bf16", "f32"):
        fams = ("fma256",) if avx2_only else ("fma",)
    elif avx2_only:
        fams = ("avx2_int8",)
    elif "avx512" in engine.lower():
        fams = ("vnni", "avx2_int8")
    else:
        fams = ("amx_bf16" if engine.startswith("neox_cpp") else "amx", "vnni", "avx2_int8")
    for f in fams:
        if family_peak(f, peaks):
            return f
    return None


def family_peak(family: str, peaks: Dict[str, float]) -> float:
    """GMAC/s of the best measured kernel of `family` (0 if none ran)."""
    return max((peaks.get(k, 0.0) for k in FAMILIES[family]), default=0.0)


def roofline_tg(bandwidth_gbs: float, bytes_per_token: int) -> float:
    """Tokens/s that memory bandwidth allows."""
    return bandwidth_gbs * 1e9 / bytes_per_token if bytes_per_token else 0.0
