"""Speed of our engine next to llama.cpp on the same GGUF files: `python bench/run.py [--quick]`.

Creates and caches (NEOX_BENCH_CACHE, default ~/.cache/neox_cpp/bench) random-weight HF checkpoints with
the exact shapes of rinna/japanese-gpt-neox-3.6b and EleutherAI/pythia-410m (bench/checkpoint.py),
converts them with our converter to q8_0 and q4_0, then measures prompt processing (pp64, pp512: one
batch, empty cache) and generation (tg32: 32 single-token decodes from an empty cache) in tokens/s for
our engine (neox_cpp._lib directly) and llama.cpp (llama-cpp-python 0.3.36 compiled in full, in its own
venv: .ci/build-peer.sh) on the SAME files, with the same thread count. Runs are interleaved (for each
repetition, every engine runs every test in turn) after one warm-up each; the table gives the median and
min-max, our ratio to llama.cpp, the CPU and its features, the measured read bandwidth and, for tg, the
share of the bandwidth roofline (bandwidth / bytes of weights read per token).

`--quick` runs a small shape (4 layers, 256 wide) as a smoke test of the whole pipeline.
CTranslate2 int8 (issue 6) plugs in through bench/engines.py:CTranslate2Engine.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import sys
import time
from pathlib import Path
from typing import Dict, List, Optional, Tuple

import numpy as np

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
sys.path.insert(0, str(HERE.parent))

import checkpoint  # noqa: E402
import engines  # noqa: E402
import sysinfo  # noqa: E402

TESTS = ("pp64", "pp512", "tg32")


def cache_dir() -> Path:
    env = os.environ.get("NEOX_BENCH_CACHE")
    return Path(env) if env else Path.home() / ".cache" / "neox_cpp" / "bench"


def log(msg: str) -> None:
    print(f"[bench {time.strftime('%H:%M:%S')}] {msg}", file=sys.stderr, flush=True)


def _has_tokenizer(path: Path) -> bool:
    from gguf import GGUFReader

    return "tokenizer.ggml.model" in GGUFReader(str(path)).fields


def ensure_gguf(shape: checkpoint.Shape, outtype: str, cache: Path, reconvert: bool = False) -> Path:
    """Our converter's GGUF of the random checkpoint of `shape` (both built once, then cached)."""
    out = cache / "gguf" / f"{shape.name}-{outtype}.gguf"
    if out.exists() and not reconvert and _has_tokenizer(out):
        return out
    hf = cache / "hf" / shape.name
    need = 2 * shape.n_params() if not (hf / ".complete").exists() else 0
    need += shape.n_params() * (34 if outtype == "q8_0" else 18) // 32
    free = shutil.disk_usage(cache).free
    if free < need * 1.1:
        raise SystemExit(f"not enough disk under {cache}: {free / 1e9:.1f} GB free, "
                         f"{need / 1e9:.1f} GB needed")
    if not (hf / ".complete").exists():
        log(f"writing a random {shape.name} checkpoint ({shape.n_params() / 1e9:.2f}B weights, f16) to {hf}")
        t = time.perf_counter()
        checkpoint.write_checkpoint(shape, hf)
        log(f"  done in {time.perf_counter() - t:.0f}s")
    from neox_cpp.convert import convert

    out.parent.mkdir(parents=True, exist_ok=True)
    log(f"converting {shape.name} to {outtype} with neox_cpp.convert")
    t = time.perf_counter()
    convert(hf, out, outtype, name=f"random {shape.name}", progress=sys.stderr.isatty())
    log(f"  {out} ({out.stat().st_size / 1e9:.2f} GB) in {time.perf_counter() - t:.0f}s")
    return out


def weight_bytes_per_token(path: Path) -> int:
    """Bytes of tensor data read to generate one token: every tensor but the token embedding (of which
    one row is read)."""
    from gguf import GGUFReader

    r = GGUFReader(str(path))
    total = 0
    for t in r.tensors:
        if t.name != "token_embd.weight":
            total += int(t.n_bytes)
    return total


def prompt_tokens(n_vocab: int, n: int, seed: int) -> List[int]:
    rng = np.random.default_rng(seed)
    return [int(x) for x in rng.integers(16, min(n_vocab, 30000), size=n)]


def measure(eng: engines.Engine, test: str, toks: Dict[str, List[int]]) -> float:
    """tokens/s of one run of `test`."""
    n = int(test[2:])
    secs = eng.pp(toks[test]) if test.startswith("pp") else eng.tg(toks[test])
    return n / secs


Results = Dict[str, Dict[str, List[float]]]


def bench_file(path: Path, shape: checkpoint.Shape, args: argparse.Namespace) -> Results:
    """{engine: {test: [tokens/s per repetition]}}, interleaved."""
    toks = {t: prompt_tokens(shape.n_vocab, int(t[2:]), seed=i) for i, t in enumerate(TESTS)}
    n_ctx = 512
    engs: List[engines.Engine] = []
    try:
        log(f"{path.name}: loading neox_cpp")
        engs.append(engines.OursEngine(path, n_ctx, 512, args.threads))
        if not args.no_peer:
            reason = engines._peer.peer_missing_reason()
            if reason:
                log(f"llama.cpp skipped: {reason}")
            else:
                log(f"{path.name}: loading llama.cpp")
                engs.append(engines.LlamaCppEngine(path, n_ctx, 512, args.threads,
                                                   extra_bufts=not args.peer_no_repack))
        res: Results = {e.name: {t: [] for t in args.tests} for e in engs}
        for e in engs:  # warm-up: fault in the mapped weights, start thread pools
            e.pp(toks["pp64"][:16])
            e.tg(toks["tg32"][:2])
        for rep in range(args.reps):
            for test in args.tests:
                for e in engs:
                    v = measure(e, test, toks)
                    res[e.name][test].append(v)
                    log(f"  rep {rep + 1}/{args.reps} {test:5s} {e.name:9s} {v:8.2f} tok/s")
        return res
    finally:
        for e in engs:
            e.close()


def fmt(vals: List[float]) -> str:
    if not vals:
        return "–"
    med = statistics.median(vals)
    if len(vals) == 1:
        return f"{med:.3g}"
    return f"{med:.3g} ({min(vals):.3g}–{max(vals):.3g})"


def table(rows: List[Tuple[str, str, Path, int, Results]], bw: float,
          tests: List[str]) -> str:
    head = "| model | weights | file GB | engine | " + " | ".join(tests) + " | tg % of roofline |"
    out = [head, "|" + "---|" * (5 + len(tests))]
    ratios: List[str] = []
    for shape, wtype, path, per_tok, res in rows:
        for eng, r in res.items():
            roof = ""
            if "tg32" in r and r["tg32"]:
                roof = f"{100 * statistics.median(r['tg32']) * per_tok / (bw * 1e9):.0f}%"
            cells = " | ".join(fmt(r[t]) for t in tests)
            out.append(f"| {shape} | {wtype} | {path.stat().st_size / 1e9:.2f} | {eng} | {cells} | {roof} |")
        if "neox_cpp" in res and "llama.cpp" in res:
            cells = " | ".join(
                f"{statistics.median(res['neox_cpp'][t]) / statistics.median(res['llama.cpp'][t]):.2f}× "
                f"(best {max(res['neox_cpp'][t]) / max(res['llama.cpp'][t]):.2f}×)"
                for t in tests)
            ratios.append(f"| {shape} | {wtype} | | **ours / llama.cpp** | {cells} | |")
    return "\n".join(out + ratios)


def snapshot_library(cache: Path) -> None:
    """Run on a private copy of the source tree's libgptneox.so: a `make` elsewhere while the bench runs
    rewrites that file under the mapped library and kills the process. NEOX_CPP_LIB, if set, wins."""
    lib = HERE.parent / "libgptneox.so"
    if os.environ.get("NEOX_CPP_LIB") or not lib.is_file():
        return
    copy = cache / f"libgptneox-{int(lib.stat().st_mtime)}.so"
    if not copy.exists():
        shutil.copyfile(lib, copy)
    os.environ["NEOX_CPP_LIB"] = str(copy)
    log(f"using a snapshot of {lib}: {copy}")


def main(argv: Optional[List[str]] = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--quick", action="store_true", help="small shape, 1 repetition: a smoke run")
    ap.add_argument("--shapes", default=None, help="comma list of bench/checkpoint.py shapes "
                    "(default rinna-3.6b,pythia-410m; tiny with --quick)")
    ap.add_argument("--types", default="q8_0,q4_0", help="weight types (default q8_0,q4_0)")
    ap.add_argument("--tests", default=",".join(TESTS), help="comma list of pp64,pp512,tg32")
    ap.add_argument("--reps", type=int, default=None, help="repetitions (default 3; 1 with --quick)")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--no-peer", action="store_true", help="ours only")
    ap.add_argument("--peer-no-repack", action="store_true",
                    help="llama.cpp with use_extra_bufts=False (no weight repacking; needed on AMX builds)")
    ap.add_argument("--reconvert", action="store_true", help="convert again even if the GGUF is cached")
    ap.add_argument("--out", type=Path, default=None, help="also write the markdown table here")
    args = ap.parse_args(argv)
    shapes = (args.shapes or ("tiny" if args.quick else "rinna-3.6b,pythia-410m")).split(",")
    args.reps = args.reps or (1 if args.quick else 3)
    args.tests = args.tests.split(",")
    cache = cache_dir()
    cache.mkdir(parents=True, exist_ok=True)
    snapshot_library(cache)

    load0 = os.getloadavg()[0]
    bw, how = sysinfo.read_bandwidth(args.threads, cache)
    log(f"CPU: {sysinfo.describe()}; read bandwidth {bw:.1f} GB/s ({how})")
    rows = []
    for name in shapes:
        shape = checkpoint.SHAPES[name]
        for wtype in args.types.split(","):
            path = ensure_gguf(shape, wtype, cache, args.reconvert)
            res = bench_file(path, shape, args)
            rows.append((name, wtype, path, weight_bytes_per_token(path), res))
    bw_after, _ = sysinfo.read_bandwidth(args.threads, cache)
    load1 = os.getloadavg()[0]

    lines = [
        f"CPU: {sysinfo.describe()}",
        f"Read bandwidth ({how}): {bw:.1f} GB/s before, {bw_after:.1f} GB/s after; roofline uses the larger.",
        f"{args.threads} threads; tokens/s, median (min–max) of {args.reps} interleaved runs (ratios: of "
        "medians, and of the best runs, which a busy machine disturbs least); "
        "pp: one batch from an empty cache; tg32: 32 single-token decodes from an empty cache.",
        f"Load average (1 min) {load0:.1f} at start, {load1:.1f} at end (other work on the machine skews "
        "every number when it exceeds 0.5).",
    ]
    ct2 = engines.CTranslate2Engine.available()
    if ct2:
        lines.append(f"CTranslate2 int8: not run ({ct2}).")
    lines += ["", table(rows, max(bw, bw_after), args.tests)]
    text = "\n".join(lines)
    print(text)
    if args.out:
        args.out.write_text(text + "\n")
    raw = {"cpu": sysinfo.describe(), "bandwidth_gbs": [bw, bw_after], "threads": args.threads,
           "results": [{"shape": s, "type": w, "file": str(p), "bytes_per_token": b, "tok_s": r}
                       for s, w, p, b, r in rows]}
    (cache / f"results-{time.strftime('%Y%m%d-%H%M%S')}.json").write_text(json.dumps(raw, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
