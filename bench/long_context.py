"""Generation at long contexts: tokens/s of single-token decodes after a prompt of N tokens, our engine
and the llama.cpp peer on the same GGUF file (2 threads, n_ctx 2048, f16 KV cache), interleaved.

At 2048 cells the f16 K and V that every generated token reads are 2 x n_layer x 2048 x n_embd x 2 bytes
(0.83 GB for rinna-3.6B's shape, 40% of its q4_0 weights): the attention's reads, not only the weights',
decide the speed. The table gives each engine's tokens/s at each context, the ratio to its own speed
at the shortest one, and ours / llama.cpp.

    python bench/long_context.py [--shape rinna-3.6b] [--type q4_0] [--contexts 8,1024,1900] [--reps 2]
                                 [--ours-avx2] [--q8-kv]

--ours-avx2 adds our engine with its AVX2 kernels forced (what an AVX2-only CPU such as Zen 3 runs).
--q8-kv adds both engines with a Q8_0 K and V cache (Llama's type_k / type_v = GGML_TYPE_Q8_0: 34 bytes
per 32 elements instead of 64), and llama.cpp with flash_attn=True (which it needs for a quantized V)
on the f16 cache too, to tell the cache type's effect from flash attention's.

Models come from bench/run.py's cache (NEOX_BENCH_CACHE; made if missing). Without the llama.cpp peer
(.ci/build-peer.sh) only our rows are printed.
"""

from __future__ import annotations

import argparse
import statistics
import sys
from pathlib import Path
from typing import Dict, List, Optional

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
sys.path.insert(0, str(HERE.parent))

import checkpoint  # noqa: E402
import engines  # noqa: E402
import sysinfo  # noqa: E402
from api_overhead import _tokens  # noqa: E402

N_CTX = 2048
N_GEN = 16
KERNELS_AVX2 = 2  # enum gptneox_kernel_path
Q8_0 = 8  # enum gptneox_type = ggml_type


def main(argv: Optional[List[str]] = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--shape", default="rinna-3.6b")
    ap.add_argument("--type", default="q4_0")
    ap.add_argument("--contexts", default="8,1024,1900", help="prompt lengths (+16 generated must fit 2048)")
    ap.add_argument("--reps", type=int, default=2)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--ours-avx2", action="store_true", help="also our engine with the AVX2 kernels forced")
    ap.add_argument("--q8-kv", action="store_true", help="also both engines with a Q8_0 KV cache")
    args = ap.parse_args(argv)
    contexts = [int(c) for c in args.contexts.split(",")]
    if max(contexts) + N_GEN > N_CTX:
        ap.error(f"contexts must leave {N_GEN} cells of the {N_CTX}")

    from run import cache_dir, ensure_gguf

    path = ensure_gguf(checkpoint.SHAPES[args.shape], args.type, cache_dir(), False)
    makers = {"neox_cpp": lambda: engines.OursEngine(path, N_CTX, 512, args.threads)}
    if args.ours_avx2:
        makers["neox_cpp AVX2"] = lambda: engines.OursEngine(path, N_CTX, 512, args.threads, KERNELS_AVX2)
    if args.q8_kv:
        makers["neox_cpp q8_0 KV"] = lambda: engines.OursEngine(path, N_CTX, 512, args.threads, kv_type=Q8_0)
    why = engines._peer.peer_missing_reason()
    if why:
        print(f"llama.cpp peer not run: {why}")
    else:
        makers["llama.cpp"] = lambda: engines.LlamaCppEngine(path, N_CTX, 512, args.threads, extra_bufts=True)
        if args.q8_kv:
            makers["llama.cpp FA"] = lambda: engines.LlamaCppEngine(path, N_CTX, 512, args.threads,
                                                                    extra_bufts=True, flash_attn=True)
            makers["llama.cpp FA q8_0 KV"] = lambda: engines.LlamaCppEngine(
                path, N_CTX, 512, args.threads, extra_bufts=True, flash_attn=True, kv_type=Q8_0)
    live = {name: make() for name, make in makers.items()}
    prompt = _tokens(max(contexts), 5)
    gen = _tokens(N_GEN, 6)
    res: Dict[str, Dict[int, List[float]]] = {n: {c: [] for c in contexts} for n in live}
    try:
        for rep in range(args.reps):
            for c in contexts:
                for name in (list(live) if rep % 2 == 0 else list(live)[::-1]):
                    secs = live[name].tg_after(prompt[:c], gen)
                    res[name][c].append(N_GEN / secs)
                    print(f"  rep {rep + 1}/{args.reps} context {c:5d} {name:20s} {N_GEN / secs:7.2f} tok/s",
                          flush=True)
    finally:
        for e in live.values():
            e.close()

    med = {n: {c: statistics.median(v) for c, v in r.items()} for n, r in res.items()}
    print(f"\nCPU: {sysinfo.describe()}; {path.name}, n_ctx {N_CTX}, f16 KV cache unless named, "
          f"{args.threads} threads, "
          f"tokens/s of {N_GEN} decodes after the context, median (min-max) of {args.reps}\n")
    print("| engine | " + " | ".join(f"context {c}" for c in contexts) + " |")
    print("|---|" + "---|" * len(contexts))
    for n, r in res.items():
        cells = [f"{med[n][c]:.2f} ({min(r[c]):.2f}-{max(r[c]):.2f}), {med[n][c] / med[n][contexts[0]]:.2f}x"
                 for c in contexts]
        print(f"| {n} | " + " | ".join(cells) + " |")
    def ratio(ours: str, peer: str) -> None:
        label = "ours" + ours[len("neox_cpp"):]
        cells = " | ".join(f"{med[ours][c] / med[peer][c]:.2f}x" for c in contexts)
        print(f"| {label} / {peer} | {cells} |")

    if "llama.cpp" in med:
        for n in (n for n in med if n.startswith("neox_cpp") and "q8_0" not in n):
            for p in ("llama.cpp", "llama.cpp FA"):
                if p in med:
                    ratio(n, p)
        if "neox_cpp q8_0 KV" in med and "llama.cpp FA q8_0 KV" in med:
            ratio("neox_cpp q8_0 KV", "llama.cpp FA q8_0 KV")
    return 0


if __name__ == "__main__":
    sys.exit(main())
