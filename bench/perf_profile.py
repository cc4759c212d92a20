"""Where our engine's time goes, by function and instruction: `perf record` on the software cpu-clock event
(a timer, so it works in VMs that give no access to the CPU's performance counters) while our engine runs
a prompt or generation, then perf's report of the hottest symbols and, for the hottest of ours, its
hottest instructions.

    python bench/perf_profile.py [--shape rinna-3.6b] [--type q8_0] [--model FILE.gguf]
                                 [--pp 512 | --tg 32] [--reps 5] [--threads 2]
                                 [--kernels auto|avx2|avx512|amx] [--top 25] [--annotate 2] [--freq 1999]

The model is loaded and warmed up first; perf then attaches to this process (every thread, sampled
--freq times a second each) for the timed runs only: each of --reps runs is one --pp batch from an empty
cache, or --tg single-token decodes. Models come from bench/run.py's cache (made if missing) unless
--model names a GGUF. Needs `perf` (linux-tools) and perf_event_paranoid <= 2 for one's own process.

A sample lands on the instruction that retires after the interrupt, so in annotations a stalled
instruction's samples show on the one after it (skid): read a hot instruction as "this or just before".
phase_profile.py splits the same runs by phase with the engine's own timers.
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import List, Optional, Tuple

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
sys.path.insert(0, str(HERE.parent))

import checkpoint  # noqa: E402
import engines  # noqa: E402
import phase_profile  # noqa: E402
import sysinfo  # noqa: E402

# "    60.68%  libgptneox.so   [.] gptneox::(anonymous namespace)::tile_pair<...>"
# (perf may append IPC columns after two or more spaces: "...>   -      -")
_REPORT_LINE = re.compile(r"^\s*(\d+(?:\.\d+)?)%\s+(\S+)\s+\[([.k])\]\s+(.+?)(?:\s{2,}.*)?$")
# "   15.59 :   d8591:  tdpbf16ps %tmm2,%tmm0,%tmm4"
_ANNOTATE_LINE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s+:\s+([0-9a-f]+):\s+(.+?)\s*$")


def parse_report(text: str) -> List[Tuple[float, str, str]]:
    """(percent, dso, symbol) of each line of `perf report --stdio --no-children --sort dso,symbol`, in the
    report's order (call-chain and comment lines skipped)."""
    rows = []
    for line in text.splitlines():
        m = _REPORT_LINE.match(line)
        if m:
            rows.append((float(m.group(1)), m.group(2), m.group(4)))
    return rows


def parse_annotate(text: str) -> List[Tuple[float, str, str]]:
    """(percent, address, instruction) of each instruction line of `perf annotate --stdio` that carries
    samples (source and blank lines skipped)."""
    rows = []
    for line in text.splitlines():
        m = _ANNOTATE_LINE.match(line)
        if m and float(m.group(1)) > 0:
            rows.append((float(m.group(1)), m.group(2), m.group(3)))
    return rows


def short_symbol(sym: str, width: int = 100) -> str:
    """A C++ symbol without our namespaces (gptneox::, anonymous), cut to `width` characters."""
    s = sym.replace("gptneox::", "").replace("(anonymous namespace)::", "")
    return s if len(s) <= width else s[:width - 3] + "..."


def start_perf(pid: int, data: Path, freq: int) -> subprocess.Popen[bytes]:
    """perf record of every thread of `pid` into `data`; returns once perf has attached."""
    proc = subprocess.Popen(["perf", "record", "-e", "cpu-clock", "-F", str(freq), "-p", str(pid), "-o",
                             str(data)], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    time.sleep(1.0)  # perf prints nothing when attached; it opens its events well within this
    if proc.poll() is not None:
        err = proc.stderr.read().decode(errors="replace") if proc.stderr else ""
        raise RuntimeError(f"perf record exited with {proc.returncode}: {err.strip()}")
    return proc


def stop_perf(proc: subprocess.Popen[bytes]) -> None:
    proc.send_signal(signal.SIGINT)
    try:
        _, err = proc.communicate(timeout=120)
    except subprocess.TimeoutExpired:
        proc.kill()
        raise RuntimeError("perf record did not stop within 120 s of SIGINT") from None
    if proc.returncode not in (0, -signal.SIGINT):
        msg = err.decode(errors="replace").strip()
        raise RuntimeError(f"perf record exited with {proc.returncode}: {msg}")


def perf_text(args: List[str]) -> str:
    r = subprocess.run(["perf", *args], capture_output=True, text=True, timeout=600)
    if r.returncode != 0:
        raise RuntimeError(f"perf {args[0]} failed ({r.returncode}): {r.stderr.strip()[-500:]}")
    return r.stdout


def main(argv: Optional[List[str]] = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--shape", default="rinna-3.6b", choices=sorted(checkpoint.SHAPES))
    ap.add_argument("--type", default="q8_0", help="q8_0, q4_0, f16, bf16 (bench cache models)")
    ap.add_argument("--model", type=Path, help="a GGUF to profile instead of the bench cache's")
    work = ap.add_mutually_exclusive_group()
    work.add_argument("--pp", type=int, help="prompt tokens, one batch per run (the default: 512)")
    work.add_argument("--tg", type=int, help="single-token decodes per run, from an empty cache")
    ap.add_argument("--reps", type=int, default=5)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--kernels", default="auto", choices=sorted(phase_profile.KERNELS))
    ap.add_argument("--top", type=int, default=25, help="symbols listed")
    ap.add_argument("--annotate", type=int, default=1, help="our hottest symbols annotated")
    ap.add_argument("--freq", type=int, default=1999, help="samples per second per thread")
    args = ap.parse_args(argv)
    if args.pp is None and args.tg is None:
        args.pp = 512
    n = args.pp if args.pp is not None else args.tg
    if n < 1 or args.reps < 1 or args.threads < 1 or args.top < 1 or args.annotate < 0 or args.freq < 1:
        ap.error("--pp/--tg, --reps, --threads, --top and --freq must be >= 1, --annotate >= 0")
    if shutil.which("perf") is None:
        print("perf_profile: no `perf` on PATH (linux-tools / linux-perf)", file=sys.stderr)
        return 2

    import run as bench_run

    cache = bench_run.cache_dir()
    path = args.model or bench_run.ensure_gguf(checkpoint.SHAPES[args.shape], args.type, cache)
    _, hp, wtype = phase_profile.gguf_facts(path)
    toks = bench_run.prompt_tokens(hp["n_vocab"], n + 8, seed=1)
    what = f"pp{n}" if args.pp is not None else f"tg{n}"
    eng = engines.OursEngine(path, n + 8, max(n, 8) if args.pp is not None else 8, args.threads,
                             phase_profile.KERNELS[args.kernels])
    with tempfile.TemporaryDirectory(prefix="neox_perf_") as tmp:
        data = Path(tmp) / "perf.data"
        try:
            print(f"{path.name}: {eng.kernel_info()}", file=sys.stderr)
            eng.pp(toks[:8])  # warm-up: weights paged in, repacked copies touched, threads started
            secs: List[float] = []
            proc = start_perf(os.getpid(), data, args.freq)
            try:
                for _ in range(args.reps):
                    secs.append(eng.pp(toks[:n]) if args.pp is not None else eng.tg(toks[:n]))
            finally:
                stop_perf(proc)
        finally:
            eng.close()
        report = parse_report(perf_text(["report", "-i", str(data), "--stdio", "--no-children",
                                         "--sort", "dso,symbol", "--percent-limit", "0.1"]))
        rates = ", ".join(f"{n / s:.1f}" for s in secs)
        print(f"CPU: {sysinfo.cpu_name()}, {args.threads} threads; {path.name} ({wtype}); kernels "
              f"{args.kernels}; {what} x {args.reps}: {n * args.reps / sum(secs):.1f} tok/s (runs {rates})")
        print(f"perf record -e cpu-clock -F {args.freq}, every thread of this process, timed runs only\n")
        print(f"  {'share':>6}  {'where':<16} symbol")
        for pct, dso, sym in report[:args.top]:
            print(f"  {pct:5.1f}%  {dso[:16]:<16} {short_symbol(sym)}")
        listed = sum(p for p, _, _ in report[:args.top])
        print(f"  {listed:5.1f}%  (the {min(args.top, len(report))} above)")
        ours = [sym for _, dso, sym in report if dso.startswith("libgptneox")][:args.annotate]
        for sym in ours:
            rows = parse_annotate(perf_text(["annotate", "-i", str(data), "--stdio", "-s", sym]))
            rows.sort(key=lambda r: -r[0])
            print(f"\nhottest instructions of {short_symbol(sym)} (share of its samples; skid: see --help)")
            for pct, addr, ins in rows[:12]:
                print(f"  {pct:5.1f}%  {addr:>8}  {ins}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
