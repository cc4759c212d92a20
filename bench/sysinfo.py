"""The machine the bench runs on: CPU name, the SIMD features that matter, memory read bandwidth."""

from __future__ import annotations

import os
import platform
import shutil
import subprocess
import time
from pathlib import Path
from typing import List, Optional, Sequence, Tuple

import numpy as np

HERE = Path(__file__).resolve().parent

# Features that decide which kernels any engine can use.
FEATURES = ["sse4_2", "avx", "avx2", "fma", "f16c", "avx_vnni", "avx512f", "avx512bw", "avx512vl",
            "avx512_vnni", "avx512vbmi", "avx512_bf16", "avx512_fp16", "amx_tile", "amx_int8", "amx_bf16"]


def _cpuinfo() -> str:
    try:
        return Path("/proc/cpuinfo").read_text()
    except OSError:
        return ""


def cpu_name() -> str:
    for line in _cpuinfo().splitlines():
        if line.startswith("model name"):
            return line.split(":", 1)[1].strip()
    return platform.processor() or platform.machine()


def cpu_flags() -> List[str]:
    for line in _cpuinfo().splitlines():
        if line.startswith("flags"):
            have = set(line.split(":", 1)[1].split())
            return [f for f in FEATURES if f in have]
    return []


def _bandwidth_c(threads: int, mib: int, reps: int, cache: Path) -> Optional[float]:
    cc = shutil.which("gcc") or shutil.which("cc")
    if cc is None:
        return None
    exe = cache / "bandwidth"
    src = HERE / "bandwidth.c"
    if not exe.exists() or exe.stat().st_mtime < src.stat().st_mtime:
        cache.mkdir(parents=True, exist_ok=True)
        cmd = [cc, "-O2", "-pthread", "-o", str(exe), str(src)]
        res = subprocess.run(cmd, capture_output=True, text=True)
        if res.returncode != 0:
            return None
    res = subprocess.run([str(exe), str(threads), str(mib), str(reps)], capture_output=True, text=True)
    if res.returncode != 0:
        return None
    return float(res.stdout.split()[0])


def _bandwidth_numpy(mib: int, reps: int) -> float:
    a = np.ones(mib * 1024 * 1024 // 8, dtype=np.float64)
    best = 0.0
    for _ in range(reps):
        t = time.perf_counter()
        a.sum()
        best = max(best, a.nbytes / (time.perf_counter() - t) / 1e9)
    return best


def read_bandwidth(threads: int, cache: Path, mib: int = 1024, reps: int = 7) -> tuple[float, str]:
    """Best-of-`reps` read bandwidth in GB/s with `threads` threads, and how it was measured."""
    bw = _bandwidth_c(threads, mib, reps, cache)
    if bw is not None:
        return bw, f"C, {threads} threads, {mib} MiB"
    return _bandwidth_numpy(mib, reps), f"numpy sum, 1 thread, {mib} MiB"


def describe() -> str:
    return f"{cpu_name()} ({os.cpu_count()} logical CPUs; {' '.join(cpu_flags())})"


def _status_kb(field: str, pid: str = "self") -> int:
    """A `kB` field of /proc/<pid>/status (VmRSS, VmHWM, ...) in bytes; 0 if unreadable."""
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith(field + ":"):
                return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        pass
    return 0


def peak_rss(pid: str = "self") -> int:
    """Peak resident set size (VmHWM) of a process, in bytes."""
    return _status_kb("VmHWM", pid)


def mem_available() -> int:
    """MemAvailable of /proc/meminfo in bytes (0 if unknown)."""
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemAvailable:"):
                return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        pass
    return 0


def run_watched(cmd: Sequence[str], limit_bytes: int, env: Optional[dict] = None,
                poll_s: float = 0.2) -> Tuple[int, int]:
    """Run `cmd`, polling its resident memory; kill it if it passes `limit_bytes`.
    Returns (exit code, peak RSS in bytes seen by polling or reported by VmHWM). Raises MemoryError
    when the limit was hit."""
    proc = subprocess.Popen(list(cmd), env=env)
    peak = 0
    pid = str(proc.pid)
    while proc.poll() is None:
        peak = max(peak, _status_kb("VmHWM", pid), _status_kb("VmRSS", pid))
        if peak > limit_bytes:
            proc.kill()
            proc.wait()
            raise MemoryError(f"{cmd[0]}... passed {limit_bytes / 1e9:.1f} GB of RSS: killed")
        time.sleep(poll_s)
    return proc.returncode, peak
