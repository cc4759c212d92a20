"""Where our engine's time goes: the forward pass split by phase (gptneox_perf_phases) for a prompt and
for generation, each phase against what bounds it.

    python bench/phase_profile.py [--shape rinna-3.6b] [--type q8_0] [--pp 512] [--tg 32] [--context 0]
                            [--kv-type f16|q8_0]
                            [--reps 3] [--threads 2] [--kernels auto|avx2|avx512|amx] [--model FILE.gguf]

Prompt (one batch of --pp tokens, empty cache): per phase ms per token, share of the step, and for the
matrix phases multiply-adds per second against the measured peak of the instruction our kernels use
(bench/peak.c, same threads): compute-bound work should sit near that peak. Generation (--tg single-token
decodes after --context prompt tokens, evaluated first in --pp batches and not timed): per phase ms per
token and share, and for the matrix phases the weight bytes they stream per second against the read
bandwidth measured right after (bench/bandwidth.c): memory-bound work should sit near it; attention the
same for the K/V cache it reads (every cached position, K and V, every layer). Phases are summed over
the --reps runs (each from an emptied cache, in one context). Models come from bench/run.py's cache
(NEOX_BENCH_CACHE; made if missing) unless --model names a GGUF.
"""

from __future__ import annotations

import argparse
import statistics
import sys
from pathlib import Path
from typing import Dict, List, Optional, Tuple

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
sys.path.insert(0, str(HERE.parent))

import checkpoint  # noqa: E402
import engines  # noqa: E402
import roofline  # noqa: E402
import sysinfo  # noqa: E402

KERNELS = {"auto": 0, "avx2": 2, "avx512": 3, "amx": 4}
# phase -> the GGUF weight whose matrices it multiplies ("blk.N.<suffix>" for every layer, or a name)
MATRIX_OF = {"qkv": "attn_qkv.weight", "attn_out": "attn_output.weight", "ffn_up": "ffn_up.weight",
             "ffn_down": "ffn_down.weight", "output": "output.weight"}


def gguf_facts(path: Path) -> Tuple[Dict[str, int], Dict[str, int], str]:
    """(bytes per phase's matrices, hparams {n_embd, n_ff, n_layer, n_vocab}, weight type name)."""
    from gguf import GGUFReader

    r = GGUFReader(str(path))
    nbytes = {phase: 0 for phase in MATRIX_OF}
    types: Dict[str, int] = {}
    for t in r.tensors:
        for phase, suffix in MATRIX_OF.items():
            if t.name == suffix or t.name.endswith("." + suffix):
                nbytes[phase] += int(t.n_bytes)
                types[t.tensor_type.name] = types.get(t.tensor_type.name, 0) + int(t.n_bytes)

    def field(key: str) -> int:
        f = r.fields[key]
        return int(f.parts[f.data[0]][0])

    hp = {"n_embd": field("gptneox.embedding_length"), "n_ff": field("gptneox.feed_forward_length"),
          "n_layer": field("gptneox.block_count"),
          "n_vocab": len(r.fields["tokenizer.ggml.tokens"].data)}
    wtype = max(types, key=lambda k: types[k]).lower() if types else "?"
    return nbytes, hp, wtype


def phase_macs(hp: Dict[str, int], n: int) -> Dict[str, int]:
    """Multiply-adds of each matrix phase (and attention) for a prompt of n tokens (roofline.py's count)."""
    e, f, L = hp["n_embd"], hp["n_ff"], hp["n_layer"]
    return {"qkv": n * L * 3 * e * e, "attn_out": n * L * e * e, "ffn_up": n * L * e * f,
            "ffn_down": n * L * e * f, "attention": L * 2 * e * n * (n + 1) // 2, "output": e * hp["n_vocab"]}


KV_TYPES = {"f16": 1, "q8_0": 8}  # enum gptneox_type of the K and V cache


def kv_bytes(hp: Dict[str, int], context: int, tg: int, kv_type: str = "f16") -> int:
    """Bytes of K and V cache (f16, or q8_0: 34 bytes per 32 elements) the attention of tg single-token
    decodes after `context` tokens reads (decode i attends to context + i + 1 positions)."""
    positions = sum(context + i + 1 for i in range(tg))
    row = hp["n_embd"] * 2 if kv_type == "f16" else hp["n_embd"] // 32 * 34
    return positions * hp["n_layer"] * 2 * row


def summed(runs: List[Dict[str, float]]) -> Dict[str, float]:
    return {k: sum(r[k] for r in runs) for k in runs[0]}


def table(title: str, ms: Dict[str, float], n_tokens: int, rate: Dict[str, str]) -> str:
    total = sum(ms.values())
    lines = [title, f"  {'phase':<10} {'ms/token':>9} {'share':>7}  bound"]
    for k, v in ms.items():
        lines.append(f"  {k:<10} {v / n_tokens:9.3f} {100 * v / total:6.1f}%  {rate.get(k, '')}".rstrip())
    lines.append(f"  {'total':<10} {total / n_tokens:9.3f} {100.0:6.1f}%")
    return "\n".join(lines)


def main(argv: Optional[List[str]] = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--shape", default="rinna-3.6b", choices=sorted(checkpoint.SHAPES))
    ap.add_argument("--type", default="q8_0", help="q8_0, q4_0, f16, bf16 (bench cache models)")
    ap.add_argument("--model", type=Path, help="a GGUF to profile instead of the bench cache's")
    ap.add_argument("--pp", type=int, default=512, help="prompt tokens (one batch)")
    ap.add_argument("--tg", type=int, default=32, help="generated tokens (single-token decodes)")
    ap.add_argument("--context", type=int, default=0, help="prompt tokens evaluated before generation")
    ap.add_argument("--reps", type=int, default=3)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--kernels", default="auto", choices=sorted(KERNELS))
    ap.add_argument("--kv-type", default="f16", choices=sorted(KV_TYPES), help="K and V cache type")
    args = ap.parse_args(argv)
    if args.pp < 2 or args.tg < 1 or args.reps < 1 or args.threads < 1 or args.context < 0:
        ap.error("--pp must be >= 2, --tg, --reps and --threads >= 1, --context >= 0")

    import run as bench_run

    cache = bench_run.cache_dir()
    path = args.model or bench_run.ensure_gguf(checkpoint.SHAPES[args.shape], args.type, cache)
    nbytes, hp, wtype = gguf_facts(path)
    n_ctx = max(args.pp, args.context + args.tg) + 8
    toks = bench_run.prompt_tokens(hp["n_vocab"], n_ctx, seed=1)
    eng = engines.OursEngine(path, n_ctx, args.pp, args.threads, KERNELS[args.kernels],
                             kv_type=KV_TYPES[args.kv_type])
    try:
        print(f"{path.name}: {eng.kernel_info()}", file=sys.stderr)
        eng.pp(toks[:8])  # warm-up: weights paged in, repacked copies touched
        pp_runs: List[Dict[str, float]] = []
        tg_runs: List[Dict[str, float]] = []
        pp_s: List[float] = []
        tg_s: List[float] = []
        bws: List[float] = []
        for _ in range(args.reps):
            ph: Dict[str, float] = {}
            pp_s.append(eng.pp(toks[:args.pp], ph))
            pp_runs.append(ph)
            ph = {}
            tg_s.append(eng.tg_after(toks[:args.context], toks[args.context:args.context + args.tg], ph))
            tg_runs.append(ph)
            bws.append(sysinfo.read_bandwidth(args.threads, cache, reps=3)[0])
    finally:
        eng.close()
    peaks = roofline.measure_peaks(args.threads, cache)
    engine_name = {"avx2": "neox_cpp AVX2", "avx512": "neox_cpp avx512"}.get(args.kernels, "neox_cpp")
    fam = roofline.engine_isa(engine_name, wtype, peaks)
    peak = roofline.family_peak(fam, peaks) if fam else 0.0

    pp_ms = summed(pp_runs)
    macs = phase_macs(hp, args.pp)
    pp_rate: Dict[str, str] = {}
    for k, m in macs.items():
        secs = pp_ms[k] / 1e3 / args.reps
        if secs > 0:
            g = m / secs / 1e9
            share = f" = {100 * g / peak:5.1f}% of {fam} peak" if peak and k != "attention" else ""
            pp_rate[k] = f"{g:7.1f} GMAC/s{share}"
    tg_ms = summed(tg_runs)
    bw = statistics.median(bws)
    tg_rate: Dict[str, str] = {}
    for k, b in nbytes.items():
        secs = tg_ms[k] / 1e3 / (args.reps * args.tg)
        if secs > 0 and b:
            g = b / secs / 1e9
            tg_rate[k] = f"{g:7.1f} GB/s = {100 * g / bw:5.1f}% of read bandwidth"
    if tg_ms["attention"] > 0:
        g = kv_bytes(hp, args.context, args.tg, args.kv_type) / (tg_ms["attention"] / 1e3 / args.reps) / 1e9
        tg_rate["attention"] = (f"{g:7.1f} GB/s of {args.kv_type} K/V cache = {100 * g / bw:5.1f}% of read "
                                "bandwidth")

    print(f"CPU: {sysinfo.cpu_name()}, {args.threads} threads; {path.name} ({wtype}); "
          f"kernels {args.kernels}; {args.kv_type} KV cache")
    print(f"peak of {fam or '?'}: {peak:.1f} GMAC/s (bench/peak.c); read bandwidth after each tg run: "
          + ", ".join(f"{b:.1f}" for b in bws) + " GB/s (bench/bandwidth.c)")
    pp_runs_txt = ", ".join(f"{args.pp / s:.1f}" for s in pp_s)
    tg_runs_txt = ", ".join(f"{args.tg / s:.2f}" for s in tg_s)
    print(table(f"\nprompt, {args.pp} tokens in one batch: {args.pp * args.reps / sum(pp_s):.1f} tok/s "
                f"(runs {pp_runs_txt})", pp_ms, args.pp * args.reps, pp_rate))
    print(table(f"\ngeneration, {args.tg} single-token decodes after {args.context} tokens: "
                f"{args.tg * args.reps / sum(tg_s):.2f} tok/s "
                f"(runs {tg_runs_txt})", tg_ms, args.tg * args.reps, tg_rate))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
