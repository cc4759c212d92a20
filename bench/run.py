"""Speed of our engine next to its peers: `python bench/run.py [--quick]`.

Creates and caches (NEOX_BENCH_CACHE, default ~/.cache/neox_cpp/bench) random-weight HF checkpoints with
the exact shapes of rinna/japanese-gpt-neox-3.6b and EleutherAI/pythia-410m (bench/checkpoint.py),
converts them with our converter to q8_0, q4_0, f16 and bf16 GGUFs, and (once, early, alone, in a
memory-capped subprocess) to a CTranslate2 int8 model. It then measures prompt processing (pp64, pp512:
one batch, empty cache) and generation (tg32: 32 single-token decodes from an empty cache) in tokens/s for
  - our engine (neox_cpp._lib directly) and llama.cpp (llama-cpp-python 0.3.36 compiled in full, in its
    own venv: .ci/build-peer.sh) on the SAME GGUF files, every row (with --peer-fa also llama.cpp with
    flash attention, which llama-cpp-python leaves off by default);
  - CTranslate2 4.8.5 int8 on q8_0 rows (and, with --ct2-avx2, CTranslate2 limited to AVX2);
  - transformers + torch on f16/bf16 rows (bf16 weights for bf16 rows, f32 for f16 rows), in a worker
    process so its memory goes away after the row;
with the same thread count. Runs are interleaved (for each repetition, every engine runs every test in
turn, the order rotated by one each repetition) after one warm-up each. The table (bench/table.py) gives
the median and min-max, our ratio to each peer and to the best peer, tg as a share of the bandwidth
roofline of each engine's own format, pp as a share of the measured peak of the engine's matrix
instruction (bench/peak.c, bench/roofline.py), the CPU, its features, the load average and the bandwidth
before/after; then the cost of the layers above the engine (bench/api_overhead.py: Llama API overhead,
LangChain's n_batch=8, peak RSS).

`--quick` runs a small shape (4 layers, 256 wide) through every engine and section: a smoke test.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
import time
from pathlib import Path
from typing import Callable, Dict, List, Optional, Tuple

import numpy as np

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
sys.path.insert(0, str(HERE.parent))

import api_overhead  # noqa: E402
import checkpoint  # noqa: E402
import ctranslate2_engine  # noqa: E402
import engines  # noqa: E402
import roofline  # noqa: E402
import sysinfo  # noqa: E402
import table  # noqa: E402
import torch_engine  # noqa: E402

TESTS = ("pp64", "pp512", "tg32")
WTYPES = ("q8_0", "q4_0", "f16", "bf16")
CT2_LIMIT = 20 * 10**9  # the CTranslate2 converter is killed beyond this RSS


def _amx_supported() -> bool:
    """Whether this CPU (and OS) runs our AMX kernel path (gptneox_kernel_path_supported)."""
    from neox_cpp import _lib

    return bool(_lib.gptneox_kernel_path_supported(_lib.GPTNEOX_KERNELS_AMX))


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
    need += shape.n_params() * {"q8_0": 34, "q4_0": 18, "f32": 128}.get(outtype, 64) // 32
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


def make_engines(path: Path, shape: checkpoint.Shape, wtype: str, args: argparse.Namespace,
                 cache: Path) -> Tuple[List[table.EngineRun], List[Tuple[table.EngineRun, engines.Engine]]]:
    """The engines of one row: every EngineRun (skipped ones say why) and the loaded (run, engine) pairs."""
    size = path.stat().st_size
    per_tok = weight_bytes_per_token(path)
    runs: List[table.EngineRun] = []
    live: List[Tuple[table.EngineRun, engines.Engine]] = []
    fmt = f"{wtype} GGUF"

    def add(run: table.EngineRun, make: Callable[[], engines.Engine]) -> None:
        runs.append(run)
        try:
            log(f"{shape.name} {wtype}: loading {run.name}")
            eng = make()
            live.append((run, eng))
            run.info = eng.kernel_info() if hasattr(eng, "kernel_info") else ""  # type: ignore[attr-defined]
        except Exception as e:  # a peer that cannot run is a note in the table, not a failed bench
            run.skipped = f"failed to load ({type(e).__name__}: {str(e)[:200]})"
            log(f"  {run.name}: {run.skipped}")

    add(table.EngineRun("neox_cpp", fmt, size, per_tok),
        lambda: engines.OursEngine(path, 512, 512, args.threads))
    if args.ours_avx2:
        add(table.EngineRun("neox_cpp avx2", fmt, size, per_tok),
            lambda: engines.OursEngine(path, 512, 512, args.threads, kernel_path=2))
    if wtype in ("q8_0", "q4_0") and _amx_supported():
        # AUTO runs the AMX tiles for prompts here; the AVX-512 (VNNI) path beside it shows what they add
        add(table.EngineRun("neox_cpp avx512", fmt, size, per_tok),
            lambda: engines.OursEngine(path, 512, 512, args.threads, kernel_path=3))
    if not args.no_peer:
        reason = engines._peer.peer_missing_reason()
        run = table.EngineRun("llama.cpp", fmt, size, per_tok)
        if reason:
            run.skipped = reason
            runs.append(run)
        else:
            add(run, lambda: engines.LlamaCppEngine(path, 512, 512, args.threads,
                                                    extra_bufts=not args.peer_no_repack))
            if args.peer_fa:
                add(table.EngineRun("llama.cpp FA", fmt, size, per_tok),
                    lambda: engines.LlamaCppEngine(path, 512, 512, args.threads,
                                                   extra_bufts=not args.peer_no_repack, flash_attn=True))
    hf = cache / "hf" / shape.name
    if wtype == "q8_0" and not args.no_ct2:
        ct2_dir = ctranslate2_engine.model_dir_for(hf, cache / "ct2")
        why = engines.CTranslate2Engine.available() or (
            None if (ct2_dir / ".complete").exists() else "not converted")
        ct2_bytes = ctranslate2_engine.bytes_per_token(ct2_dir) if why is None else 0
        ct2_size = (ct2_dir / "model.bin").stat().st_size if why is None else 0
        for isa in [None] + (["AVX2"] if args.ct2_avx2 else []):
            name = "CTranslate2" if isa is None else f"CTranslate2 {isa}"
            run = table.EngineRun(name, "int8 CT2", ct2_size, ct2_bytes, all_logits=True)
            if why:
                run.skipped = why
                runs.append(run)
            else:
                add(run, lambda isa=isa: engines.CTranslate2Engine(ct2_dir, args.threads, isa))
    if wtype in ("f16", "bf16") and not args.no_torch:
        dtype = "bfloat16" if wtype == "bf16" else "float32"
        tb = torch_engine.weight_bytes_per_token(shape, dtype)
        total = tb + shape.n_vocab * shape.n_embd * (2 if dtype == "bfloat16" else 4)
        run = table.EngineRun(f"torch {'bf16' if wtype == 'bf16' else 'f32'}",
                              f"{'bf16' if wtype == 'bf16' else 'f32'} torch", total, tb)
        avail = sysinfo.mem_available()
        if total > args.torch_max_gb * 1e9 or (avail and total > avail - 4e9):
            run.skipped = (f"not run: {total / 1e9:.1f} GB of weights in memory is over --torch-max-gb "
                           f"{args.torch_max_gb:g} or MemAvailable - 4 GB")
            runs.append(run)
        else:
            add(run, lambda: engines.TorchEngine(hf, dtype, args.threads))
    return runs, live


def bench_row(path: Path, shape: checkpoint.Shape, wtype: str, args: argparse.Namespace,
              cache: Path) -> table.Row:
    """One (shape, weights) row: every engine, interleaved."""
    names = list(dict.fromkeys(list(TESTS) + list(args.tests)))
    toks = {t: prompt_tokens(shape.n_vocab, int(t[2:]), seed=i) for i, t in enumerate(names)}
    runs: List[table.EngineRun] = []
    pairs: List[Tuple[table.EngineRun, engines.Engine]] = []
    bw_reps: List[float] = []
    try:
        runs, pairs = make_engines(path, shape, wtype, args, cache)
        for r, _ in pairs:
            r.tok_s = {t: [] for t in args.tests}
        for _, e in pairs:  # warm-up: fault in the weights, start thread pools
            e.pp(toks["pp64"][:16])
            e.tg(toks["tg32"][:2])
        for rep in range(args.reps):
            order = pairs[rep % len(pairs):] + pairs[:rep % len(pairs)]  # rotate: no engine always first
            for test in args.tests:
                for r, e in order:
                    time.sleep(args.settle)  # let the previous engine's spinning workers go to sleep
                    v = measure(e, test, toks)
                    r.tok_s[test].append(v)
                    log(f"  rep {rep + 1}/{args.reps} {test:5s} {r.name:16s} {v:8.2f} tok/s")
                if test == "tg32":  # this round's roofline: the bandwidth right after it
                    bw_reps.append(sysinfo.read_bandwidth(args.threads, cache, reps=3)[0])
                    log(f"  rep {rep + 1}/{args.reps} read bandwidth {bw_reps[-1]:.1f} GB/s")
    finally:
        for r, e in pairs:
            e.close()
            r.peak_rss = getattr(e, "peak_rss", 0)
    return table.Row(shape, wtype, runs, bw_reps if len(bw_reps) == args.reps else [])


def drop_old_snapshots(cache: Path, keep: Path, now: float) -> None:
    """Each build leaves a 20 MB snapshot: drop those of other builds once no run can still be loading them
    (a run's workers load its snapshot as the run goes, so only copies made more than a day ago)."""
    for old in cache.glob("libgptneox-*.so"):
        if old != keep and now - old.stat().st_mtime > 86400:
            old.unlink(missing_ok=True)


def snapshot_library(cache: Path) -> None:
    """Run on a private copy of the source tree's libgptneox.so: a `make` elsewhere while the bench runs
    rewrites that file under the mapped library and kills the process. NEOX_CPP_LIB, if set, wins."""
    # the file neox_cpp/_lib.py would load: neox_cpp/libgptneox*.so first, then the one beside it
    found = sorted((HERE.parent / "neox_cpp").glob("libgptneox*.so")) + [HERE.parent / "libgptneox.so"]
    lib = next((f for f in found if f.is_file()), None)
    if os.environ.get("NEOX_CPP_LIB") or lib is None:
        return
    copy = cache / f"libgptneox-{int(lib.stat().st_mtime)}.so"
    drop_old_snapshots(cache, copy, time.time())
    if not copy.exists():
        shutil.copyfile(lib, copy)
    os.environ["NEOX_CPP_LIB"] = str(copy)
    log(f"using a snapshot of {lib}: {copy}")


def prepare(shapes: List[str], types: List[str], args: argparse.Namespace, cache: Path) -> List[str]:
    """Every file the run needs, before anything is timed: GGUFs, then the CTranslate2 conversions (each
    alone in a subprocess, RSS capped at CT2_LIMIT). Returns notes for the table."""
    notes: List[str] = []
    for name in shapes:
        shape = checkpoint.SHAPES[name]
        for wtype in types:
            ensure_gguf(shape, wtype, cache, args.reconvert)
        if "q8_0" in types and not args.no_ct2 and engines.CTranslate2Engine.available() is None:
            hf = cache / "hf" / name
            log(f"CTranslate2 int8 model of {name} (converted once, alone, RSS capped at "
                f"{CT2_LIMIT / 1e9:.0f} GB)")
            try:
                d, peak = ctranslate2_engine.prepare_watched(hf, cache / "ct2", CT2_LIMIT)
                if peak:
                    notes.append(f"CTranslate2 conversion of {name}: peak RSS {peak / 1e9:.1f} GB "
                                 f"(limit {CT2_LIMIT / 1e9:.0f} GB); model.bin "
                                 f"{(d / 'model.bin').stat().st_size / 1e9:.2f} GB")
            except (RuntimeError, MemoryError) as e:
                notes.append(f"CTranslate2 conversion of {name} failed: {e}")
                log(notes[-1])
    return notes


def main(argv: Optional[List[str]] = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--quick", action="store_true", help="small shape, 1 repetition: a smoke run")
    ap.add_argument("--shapes", default=None, help="comma list of bench/checkpoint.py shapes "
                    "(default rinna-3.6b,pythia-410m; tiny with --quick)")
    ap.add_argument("--types", default=",".join(WTYPES), help="weight types (default q8_0,q4_0,f16,bf16)")
    ap.add_argument("--tests", default=",".join(TESTS), help="comma list of pp64,pp512,tg32")
    ap.add_argument("--reps", type=int, default=None, help="repetitions (default 3; 1 with --quick)")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--no-peer", action="store_true", help="no llama.cpp")
    ap.add_argument("--no-ct2", action="store_true", help="no CTranslate2")
    ap.add_argument("--ct2-avx2", action="store_true",
                    help="also CTranslate2 limited to AVX2 (on with --quick)")
    ap.add_argument("--ours-avx2", action="store_true", help="also our engine forced to its AVX2 kernels")
    ap.add_argument("--no-torch", action="store_true", help="no transformers + torch on f16/bf16 rows")
    ap.add_argument("--torch-max-gb", type=float, default=8.0,
                    help="skip torch when its weights would take more memory than this (default 8)")
    ap.add_argument("--no-api", action="store_true", help="skip the API overhead / n_batch / RSS section")
    ap.add_argument("--api-shape", default=None,
                    help="shape whose q8_0 file the API section uses (default: the first shape)")
    ap.add_argument("--settle", type=float, default=0.3,
                    help="seconds of idle before each measurement (OpenMP pools of the engine measured "
                    "before may still spin: Intel OpenMP's default KMP_BLOCKTIME is 200 ms)")
    ap.add_argument("--peer-fa", action="store_true",
                    help="also llama.cpp with flash_attn=True (llama-cpp-python's Llama defaults to False; "
                         "llama.cpp's own tools to auto, i.e. on for the CPU)")
    ap.add_argument("--peer-no-repack", action="store_true",
                    help="llama.cpp with use_extra_bufts=False (no weight repacking; needed on AMX builds)")
    ap.add_argument("--reconvert", action="store_true", help="convert again even if the GGUF is cached")
    ap.add_argument("--out", type=Path, default=None, help="also write the markdown table here")
    args = ap.parse_args(argv)
    shapes = (args.shapes or ("tiny" if args.quick else "rinna-3.6b,pythia-410m")).split(",")
    args.reps = args.reps or (1 if args.quick else 3)
    args.ct2_avx2 = args.ct2_avx2 or args.quick
    args.tests = args.tests.split(",")
    types = args.types.split(",")
    cache = cache_dir()
    cache.mkdir(parents=True, exist_ok=True)
    snapshot_library(cache)

    notes = prepare(shapes, types, args, cache)
    load0 = os.getloadavg()
    bw, how = sysinfo.read_bandwidth(args.threads, cache)
    peak_ms = 100 if args.quick else 300
    peaks0 = roofline.measure_peaks(args.threads, cache, peak_ms)
    log(f"CPU: {sysinfo.describe()}; read bandwidth {bw:.1f} GB/s ({how}); peaks {peaks0}")
    rows: List[table.Row] = []
    for name in shapes:
        shape = checkpoint.SHAPES[name]
        for wtype in types:
            path = ensure_gguf(shape, wtype, cache, False)
            rows.append(bench_row(path, shape, wtype, args, cache))
    api: Optional[Dict[str, object]] = None
    if not args.no_api:
        api_shape = checkpoint.SHAPES[args.api_shape or shapes[0]]
        api_file = ensure_gguf(api_shape, "q8_0", cache, False)
        log(f"API overhead, n_batch=8 and peak RSS on {api_file.name}")
        small = ensure_gguf(checkpoint.SHAPES["tiny"], "q8_0", cache, False)
        api = api_overhead.run(api_file, args.reps if not args.quick else 1, args.threads, small)
    bw_after, _ = sysinfo.read_bandwidth(args.threads, cache)
    peaks = roofline.best_peaks(peaks0, roofline.measure_peaks(args.threads, cache, peak_ms))
    load1 = os.getloadavg()

    bws = [b for row in rows for b in row.bw_reps]
    kinfo = {r.name: r.info for row in rows for r in row.engines if r.info and not r.skipped}
    lines = [
        f"CPU: {sysinfo.describe()}",
        f"Read bandwidth ({how}): {bw:.1f} GB/s before, {bw_after:.1f} GB/s after"
        + (f", {min(bws):.1f}–{max(bws):.1f} GB/s right after each repetition's tg round (each tg run's "
           "roofline: the bandwidth of its own round)." if bws else "; rooflines use the larger."),
        table.peaks_line(peaks),
        f"{args.threads} threads; tokens/s, median (min–max) of {args.reps} interleaved runs (ratios: of "
        "medians, and of the best runs, which a busy machine disturbs least); "
        "pp: one batch from an empty cache; tg32: 32 single-token decodes from an empty cache.",
        f"Load average (1/5/15 min) {load0[0]:.1f}/{load0[1]:.1f}/{load0[2]:.1f} at start, "
        f"{load1[0]:.1f}/{load1[1]:.1f}/{load1[2]:.1f} at end (other work on the machine skews every "
        "number when it exceeds 0.5).",
        "tg % of roofline: tokens/s × bytes of weights read per token of that engine's own format "
        "(all but the input embedding) ÷ bandwidth. pp % of peak: multiply-adds/s of the longest pp "
        "(weights + causal attention + output; CTranslate2 projects every position to the vocabulary and "
        "is credited for it) ÷ the measured peak of the instruction named.",
        "Engines: " + "; ".join(f"{k}: {v.splitlines()[0][:160]}" for k, v in kinfo.items()),
    ]
    lines += [f"Note: {n}" for n in notes]
    lines += ["", table.render(rows, max(bw, bw_after), peaks, args.tests)]
    rss = [f"{r.name} ({row.shape.name} {row.wtype}) {r.peak_rss / 1e9:.2f} GB"
           for row in rows for r in row.engines if r.peak_rss]
    if rss:
        lines += ["", "Peak RSS of the worker processes: " + ", ".join(rss) + "."]
    if api is not None:
        lines += ["", api_overhead.report(api)]
    text = "\n".join(lines)
    print(text)
    if args.out:
        args.out.write_text(text + "\n")
    raw = {"cpu": sysinfo.describe(), "bandwidth_gbs": [bw, bw_after], "peaks_gmacs": peaks,
           "threads": args.threads, "load": [load0, load1], "api": api,
           "rows": [{"shape": r.shape.name, "type": r.wtype,
                     "bandwidth_gbs_per_rep": r.bw_reps,
                     "engines": [dict(vars(e)) for e in r.engines]} for r in rows]}
    (cache / f"results-{time.strftime('%Y%m%d-%H%M%S')}.json").write_text(json.dumps(raw, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
